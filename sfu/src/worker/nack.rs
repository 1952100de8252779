//! NACKs answered from the Mirror's packet store, one buffer per layer for
//! every viewer of it (str0m hands the NACK over: patch 2 in
//! `vendor/str0m/PATCHES.md`). The viewer's Forwarder maps each NACKed
//! outgoing sequence number back to the source packet; the resend is that
//! packet rewritten exactly as it was first sent, on the RTX stream when
//! the viewer negotiated one.
//!
//! Rules: a packet is resent only if it is still stored, belongs to the
//! Mirror's current epoch, went out to this viewer within [`RESEND_MAX_AGE`]
//! (a replayed packet went out when its replay ran, however long ago it
//! arrived), and the viewer's [`ResendBudget`] allows it.
//!
//! [`ResendBudget`]: crate::core::resend_budget::ResendBudget

use std::time::{Duration, Instant};

use str0m::rtp::NackRequest;

use super::egress::Class;
use super::fanout::send;
use super::guard::Io;
use super::session::SessionKey;
use super::Worker;
use crate::metrics::DropReason;

/// Live playback at sub-second latency cannot use a packet older than this,
/// and after a congestion episode the receiver NACKs hundreds of packets
/// sent before its layer switch: resending those only refills the link that
/// just overflowed. A second still allows several attempts on a 300 ms
/// round trip.
pub const RESEND_MAX_AGE: Duration = Duration::from_secs(1);

impl Worker {
    pub(super) fn answer_nack(&mut self, key: SessionKey, nack: NackRequest, now: Instant) {
        let Worker {
            sessions,
            mirrors,
            socket,
            egress,
            metrics,
            failed,
            ..
        } = self;
        let Some(session) = sessions.get_mut(key) else {
            return;
        };
        let Some(mirror) = mirrors.get(&session.broadcast) else {
            return;
        };
        let mut io = Io {
            socket: &*socket,
            egress,
            metrics,
        };
        for out_seq in nack.seq_nos {
            let out_seq = *out_seq;
            let Some(state) = session.viewer_mut() else {
                return;
            };
            let Some(video) = state.video.as_ref().filter(|v| v.mid == nack.mid) else {
                return;
            };
            let (Some(pt), Some(origin)) = (video.pt, video.forwarder.resend(out_seq)) else {
                io.metrics.count_drop(DropReason::ResendUnavailable);
                continue;
            };
            let stored = (mirror.epoch() == Some(origin.source.epoch))
                .then(|| mirror.layers.get(usize::from(origin.source.layer)))
                .flatten()
                .and_then(|l| Some((l.store.get(origin.in_seq)?.clone(), l.meter.bps())));
            let Some((pkt, layer_bps)) = stored else {
                io.metrics.count_drop(DropReason::ResendUnavailable);
                continue;
            };
            let sent_at = pkt.arrival.max(origin.since);
            if now.saturating_duration_since(sent_at) > RESEND_MAX_AGE {
                io.metrics.count_drop(DropReason::ResendUnavailable);
                continue;
            }
            if !state.resend_budget.take(now, pkt.payload.len(), layer_bps) {
                io.metrics.count_drop(DropReason::ResendBudget);
                continue;
            }
            let Some(translated) = video.forwarder.rewrite_resend(out_seq, &pkt) else {
                continue;
            };
            let mid = video.mid;
            match send(
                session,
                &mut io,
                mid,
                pt,
                &translated,
                &pkt,
                now,
                false,
                true,
                Class::Bulk,
            ) {
                Ok(()) => io.metrics.inc(&io.metrics.resends),
                Err(Some(_)) => {}
                Err(None) => {
                    failed.push(key);
                    return;
                }
            }
        }
    }
}
