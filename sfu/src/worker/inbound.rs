//! Inbound datagrams to their sessions: UDP ones from the worker's socket
//! and ICE-TCP ones from its connections ([`super::ice_tcp`]), routed by
//! the same [`Demux`](super::demux::Demux) and fed to str0m as what they
//! came over. A TCP connection no session claims is closed at its first
//! datagram.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::Input;

use super::{ice_tcp, Worker};
use crate::metrics::DropReason;

impl Worker {
    pub(super) fn datagram(&mut self, source: SocketAddr, data: &[u8], now: Instant) {
        self.receive(Protocol::Udp, source, data, now);
    }

    /// One of the worker's ICE-TCP connections opened, carried a frame
    /// (a datagram, routed as one) or closed.
    pub(super) fn tcp_event(&mut self, ev: ice_tcp::TcpEvent, now: Instant) {
        match ev {
            ice_tcp::TcpEvent::Opened(from, link) => {
                self.egress.tcp.insert(from, link);
            }
            ice_tcp::TcpEvent::Frame(from, data) => {
                if !self.egress.tcp.contains_key(&from) {
                    // Opened before a restart of this worker: unknown here.
                    return;
                }
                if !self.receive(Protocol::Tcp, from, &data, now) {
                    // Nobody's: close it rather than let it hold a slot.
                    self.egress.tcp.remove(&from);
                }
            }
            ice_tcp::TcpEvent::Closed(from) => {
                self.egress.tcp.remove(&from);
            }
        }
    }

    /// Routes one datagram to its session; `false` when no session claims it.
    fn receive(&mut self, proto: Protocol, source: SocketAddr, data: &[u8], now: Instant) -> bool {
        self.metrics.inc(&self.metrics.datagrams_in);
        let Some((key, learned)) = self.demux.route(source, data) else {
            self.metrics.count_drop(DropReason::UnknownPeer);
            return false;
        };
        let Ok(receive) = Receive::new(proto, source, self.candidate, data) else {
            self.metrics.count_drop(DropReason::Malformed);
            return true;
        };
        if let Some(session) = self.sessions.get_mut(key) {
            session.last_input = now;
            if learned {
                session.addrs.push(source);
            }
        }
        self.input(key, Input::Receive(now, receive), now);
        self.pump();
        true
    }
}
