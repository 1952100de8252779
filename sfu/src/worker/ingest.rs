//! The publisher side of the worker loop: an incoming RTP packet of a
//! publisher session becomes a [`Source`](super::source::Source) packet and
//! goes to every Mirror of the broadcast as one `Arc` (the local one
//! through the local queue, the others through their workers' inboxes).

use std::time::Instant;

use str0m::rtp::RtpPacket;

use super::bus::{Downstream, TrackRef};
use super::session::{Role, SessionKey};
use super::source::classify;
use super::Worker;
use crate::metrics::DropReason;

impl Worker {
    pub(super) fn on_publisher_rtp(&mut self, key: SessionKey, pkt: RtpPacket, now: Instant) {
        self.metrics.inc(&self.metrics.packets_in);
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let stream = session
            .rtc
            .direct_api()
            .stream_rx(&pkt.header.ssrc)
            .map(|s| (s.mid(), s.rid()));
        let Role::Publisher(state) = &mut session.role else {
            return;
        };
        let Some(track) = classify(state, stream, &pkt) else {
            self.metrics.count_drop(DropReason::UnknownTrack);
            return;
        };
        let layer_rid = match track {
            TrackRef::Video { layer } => state.layer_keys.get(usize::from(layer)).and_then(|k| k.0),
            TrackRef::Audio => None,
        };
        let pt = pkt.header.payload_type;
        let spec = match state.codecs.get(&pt) {
            Some(spec) => *spec,
            None => {
                let Some(params) = session
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|p| p.pt() == pt)
                else {
                    self.metrics.count_drop(DropReason::UnknownTrack);
                    return;
                };
                let spec = params.spec();
                state.codecs.insert(pt, spec);
                spec
            }
        };
        let (id, name) = (session.id, session.broadcast.clone());
        let Some(source) = self.sources.get_mut(&name) else {
            return;
        };
        if source.publisher != Some(id) {
            return;
        }
        let ingested = match source.ingest(track, layer_rid, spec, &pkt, now) {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(reason) => {
                self.metrics.count_drop(reason);
                return;
            }
        };
        // Codecs, layers or liveness learned from this packet reach the
        // Mirrors before the packet does.
        self.announce_epoch(&name);
        self.emit(&name, Downstream::Packet(ingested.track, ingested.packet));
    }
}
