//! The tick's upkeep of this worker's Sources: which layers an obedient
//! publisher may pause, and the keyframes a recorded broadcast is asked
//! for.
//!
//! Invariants: a recorded broadcast keeps every layer (the recording has
//! them all, watched or not) and gets a keyframe request for a layer whose
//! last keyframe is older than the recorder's interval (segments are cut at
//! keyframes; a browser sends one only when asked); requests go through
//! each layer's keyframe throttle.

use std::time::Instant;

use str0m::rtp::Ssrc;

use super::Worker;
use crate::ids::{BroadcastName, SessionId};

impl Worker {
    pub(super) fn tend_sources(&mut self, now: Instant) {
        let keyframe_interval = self.recorder.as_ref().map(|r| r.keyframe_interval);
        let names: Vec<BroadcastName> = self.sources.keys().cloned().collect();
        for name in names {
            let mut due = Vec::new();
            let mut publisher = None;
            if let Some(source) = self.sources.get_mut(&name) {
                match keyframe_interval {
                    Some(every) if source.records() => {
                        if !every.is_zero() {
                            due = source.keyframes_due(now, every);
                            publisher = source.publisher;
                        }
                    }
                    _ => source.update_paused(now),
                }
            }
            for ssrc in due {
                self.ask_keyframe(publisher, ssrc, now);
            }
            self.announce_epoch(&name);
        }
    }

    /// A PLI to the publisher for the layer arriving on `ssrc`.
    pub(super) fn ask_keyframe(&mut self, publisher: Option<SessionId>, ssrc: Ssrc, now: Instant) {
        let Some(key) = publisher.and_then(|id| self.sessions.key(id)) else {
            return;
        };
        self.metrics.inc(&self.metrics.keyframe_requests);
        self.call(key, now, |rtc| {
            if let Some(stream) = rtc.direct_api().stream_rx(&ssrc) {
                stream.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
            }
            Ok(())
        });
    }
}
