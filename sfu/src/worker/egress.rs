//! [`Egress`]: every datagram a worker sends, batched into `sendmmsg` calls
//! ([`super::mmsg`]), with a bounded backlog for what the kernel cannot take
//! yet.
//!
//! The fan-out writes each viewer's protected packet straight into a slot
//! buffer ([`Egress::slot`], then [`Egress::commit`]); nothing is allocated
//! per datagram once the slots exist. A full batch is sent at once; the
//! worker flushes the rest after every pass of its loop.
//!
//! Invariants:
//! - Priority datagrams (audio, RTCP, STUN, DTLS) never wait behind bulk
//!   ones (video): when the kernel pushes back, the backlog sends every
//!   priority datagram first, so a keyframe burst to hundreds of viewers
//!   cannot starve audio.
//! - The backlog holds at most [`MAX_BACKLOG_BYTES`] of bulk datagrams and
//!   twice that in all; past that, datagrams are dropped and counted
//!   (`send_queue_full`) as the network would drop them, so a stuck socket
//!   never grows memory. Sustained
//!   backlog is what makes the worker's load governor shed layers, so this
//!   is the last resort, not the way overload is handled.
//! - Within a class, datagrams leave in the order they were committed.
//! - A datagram to an address that is an ICE-TCP connection's
//!   ([`Egress::tcp`]) goes into that connection's bounded queue instead,
//!   or is dropped and counted (`tcp_send_queue_full`); while the worker has
//!   no TCP connection this costs one emptiness check per datagram. Routing
//!   is by peer address alone: a UDP peer at the very ip:port of one of the
//!   worker's TCP peers (two hosts behind one NAT mapping both protocols to
//!   the same port) would get its datagrams over that TCP connection.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use std::collections::HashMap;

use super::ice_tcp::TcpLink;
use super::mmsg::{self, MAX_BATCH};
use crate::metrics::{DropReason, Metrics};

/// Bytes the backlog may hold: a second of a 60 Mbit/s fan-out.
pub const MAX_BACKLOG_BYTES: usize = 8 * 1024 * 1024;
/// A slot buffer's capacity: any datagram we send fits.
const SLOT_CAPACITY: usize = 1500;

/// Which queue a datagram waits in when the kernel pushes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Priority,
    Bulk,
}

type Waiting = VecDeque<(SocketAddr, Vec<u8>)>;

pub struct Egress {
    slots: Vec<Vec<u8>>,
    to: Vec<(SocketAddr, Class)>,
    /// Filled slots.
    len: usize,
    priority: Waiting,
    bulk: Waiting,
    backlog_bytes: usize,
    /// Buffers of sent backlog entries, reused for new slots.
    spare: Vec<Vec<u8>>,
    /// The worker's ICE-TCP connections by peer address.
    pub tcp: HashMap<SocketAddr, TcpLink>,
    /// TCP datagrams dropped since the last flush (counted there).
    tcp_full: u64,
}

impl Default for Egress {
    fn default() -> Self {
        Egress {
            slots: (0..MAX_BATCH)
                .map(|_| Vec::with_capacity(SLOT_CAPACITY))
                .collect(),
            to: Vec::with_capacity(MAX_BATCH),
            len: 0,
            priority: VecDeque::new(),
            bulk: VecDeque::new(),
            backlog_bytes: 0,
            spare: Vec::new(),
            tcp: HashMap::new(),
            tcp_full: 0,
        }
    }
}

impl Egress {
    /// The next free slot's buffer, empty. Write one datagram into it, then
    /// [`Egress::commit`] it (or leave it: an uncommitted slot is reused).
    pub fn slot(&mut self, socket: &impl AsFd, metrics: &Metrics) -> &mut Vec<u8> {
        if self.len == MAX_BATCH {
            self.flush(socket, metrics);
        }
        let slot = &mut self.slots[self.len];
        slot.clear();
        slot
    }

    /// Sends the slot last returned by [`Egress::slot`] to `to`.
    pub fn commit(&mut self, to: SocketAddr, class: Class) {
        debug_assert!(self.len < MAX_BATCH, "slot() makes room");
        if !self.tcp.is_empty() {
            if let Some(link) = self.tcp.get_mut(&to) {
                // The slot stays free for the next datagram.
                if !link.try_send(&self.slots[self.len], class == Class::Bulk) {
                    self.tcp_full += 1;
                }
                return;
            }
        }
        self.to.push((to, class));
        self.len += 1;
    }

    /// Copies `datagram` into a slot and commits it.
    pub fn push(
        &mut self,
        socket: &impl AsFd,
        metrics: &Metrics,
        to: SocketAddr,
        datagram: &[u8],
        class: Class,
    ) {
        self.slot(socket, metrics).extend_from_slice(datagram);
        self.commit(to, class);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.backlog_bytes == 0
    }

    pub fn has_backlog(&self) -> bool {
        self.backlog_bytes > 0
    }

    pub fn backlog_bytes(&self) -> usize {
        self.backlog_bytes
    }

    /// Hands the backlog (priority first) and then the filled slots to the
    /// kernel until it pushes back; what it does not take waits.
    pub fn flush(&mut self, socket: &impl AsFd, metrics: &Metrics) {
        for _ in 0..std::mem::take(&mut self.tcp_full) {
            metrics.count_drop(DropReason::TcpSendQueueFull);
        }
        if self.backlog_bytes > 0 {
            let drained = Self::drain(&mut self.priority, &mut self.spare, socket, metrics)
                .and_then(|()| Self::drain(&mut self.bulk, &mut self.spare, socket, metrics));
            self.backlog_bytes = self
                .priority
                .iter()
                .chain(self.bulk.iter())
                .map(|(_, d)| d.len())
                .sum();
            if drained.is_err() {
                self.park_slots(metrics);
                return;
            }
        }
        let mut sent = 0;
        while sent < self.len {
            let batch = (sent..self.len).map(|i| (self.to[i].0, self.slots[i].as_slice()));
            match mmsg::send(socket.as_fd(), batch) {
                Ok(0) => break,
                Ok(n) => {
                    metrics.add(&metrics.datagrams_out, n as u64);
                    sent += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The first datagram of the batch was refused (an
                    // unreachable peer, a bad address): it concerns that
                    // peer only; the rest go on.
                    metrics.count_drop(DropReason::SendFailed);
                    sent += 1;
                }
            }
        }
        if sent == self.len {
            self.to.clear();
            self.len = 0;
            return;
        }
        // Keep the unsent slots, in order, in the backlog.
        self.rotate_out(sent);
        self.park_slots(metrics);
    }

    /// Moves slots `..sent` out of the way (they are sent), so the unsent
    /// ones start at 0.
    fn rotate_out(&mut self, sent: usize) {
        self.slots[..self.len].rotate_left(sent);
        self.to.drain(..sent);
        self.len -= sent;
    }

    /// Moves the filled slots into the backlog, replacing their buffers.
    fn park_slots(&mut self, metrics: &Metrics) {
        for i in 0..self.len {
            let (to, class) = self.to[i];
            let data = std::mem::replace(
                &mut self.slots[i],
                self.spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(SLOT_CAPACITY)),
            );
            let limit = match class {
                Class::Bulk => MAX_BACKLOG_BYTES,
                Class::Priority => 2 * MAX_BACKLOG_BYTES,
            };
            if self.backlog_bytes + data.len() > limit {
                metrics.count_drop(DropReason::SendQueueFull);
                self.spare.push(data);
                continue;
            }
            self.backlog_bytes += data.len();
            match class {
                Class::Priority => self.priority.push_back((to, data)),
                Class::Bulk => self.bulk.push_back((to, data)),
            }
        }
        self.to.clear();
        self.len = 0;
    }

    /// Sends queue entries until the kernel pushes back (`Err`).
    fn drain(
        queue: &mut Waiting,
        spare: &mut Vec<Vec<u8>>,
        socket: &impl AsFd,
        metrics: &Metrics,
    ) -> Result<(), ()> {
        while !queue.is_empty() {
            let batch = queue.iter().map(|(to, d)| (*to, d.as_slice()));
            let sent = match mmsg::send(socket.as_fd(), batch) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    metrics.add(&metrics.datagrams_out, n as u64);
                    n
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(()),
                Err(_) => {
                    metrics.count_drop(DropReason::SendFailed);
                    1
                }
            };
            for (_, data) in queue.drain(..sent) {
                if spare.len() < MAX_BATCH {
                    spare.push(data);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn sockets() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        rx.set_nonblocking(true).unwrap();
        (rx, tx)
    }

    fn received(rx: &UdpSocket) -> Vec<u8> {
        let mut firsts = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            firsts.push(buf[..n][0]);
        }
        firsts
    }

    #[test]
    fn datagrams_leave_in_commit_order_in_batches() {
        let (rx, tx) = sockets();
        let metrics = Metrics::default();
        let mut egress = Egress::default();
        let to = rx.local_addr().unwrap();
        for i in 0..150u8 {
            egress.push(&tx, &metrics, to, &[i; 10], Class::Bulk);
        }
        egress.flush(&tx, &metrics);
        assert!(egress.is_empty());
        assert_eq!(received(&rx), (0..150u8).collect::<Vec<_>>());
        assert_eq!(
            metrics
                .datagrams_out
                .load(std::sync::atomic::Ordering::Relaxed),
            150
        );
    }

    #[test]
    fn a_backlog_sends_priority_datagrams_first() {
        let (rx, tx) = sockets();
        let metrics = Metrics::default();
        let mut egress = Egress::default();
        // Loopback rarely pushes back; park slots as a refused flush does.
        let to = rx.local_addr().unwrap();
        egress.push(&tx, &metrics, to, &[1; 100], Class::Bulk);
        egress.push(&tx, &metrics, to, &[2; 100], Class::Priority);
        egress.park_slots(&metrics);
        egress.push(&tx, &metrics, to, &[3; 100], Class::Bulk);
        egress.flush(&tx, &metrics);
        assert!(egress.is_empty());
        assert_eq!(
            received(&rx),
            vec![2, 1, 3],
            "priority backlog, bulk backlog, then new"
        );
    }

    #[test]
    fn the_backlog_is_bounded_with_room_kept_for_priority() {
        let (_rx, tx) = sockets();
        let metrics = Metrics::default();
        let mut egress = Egress::default();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let chunk = vec![0u8; 1400];
        let fits = MAX_BACKLOG_BYTES / chunk.len();
        for _ in 0..(fits + 10) {
            egress.slot(&tx, &metrics).extend_from_slice(&chunk);
            egress.commit(to, Class::Bulk);
            if egress.len == MAX_BATCH {
                egress.park_slots(&metrics);
            }
        }
        egress.park_slots(&metrics);
        assert!(egress.backlog_bytes() <= MAX_BACKLOG_BYTES);
        assert_eq!(metrics.drops(DropReason::SendQueueFull), 10);
        egress.push(&tx, &metrics, to, &chunk, Class::Priority);
        egress.park_slots(&metrics);
        assert_eq!(
            metrics.drops(DropReason::SendQueueFull),
            10,
            "audio still fits where video no longer does"
        );
    }
}
