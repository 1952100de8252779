//! [`SendQueue`]: what the worker could not hand to the kernel at once.
//! A GOP served to a joining viewer is a burst of hundreds of datagrams; a
//! full socket buffer must delay them, not lose them. Bounded: past
//! [`MAX_QUEUED_BYTES`] datagrams are dropped and counted, as the network
//! would, so a stuck socket never grows memory without limit.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use crate::metrics::{DropReason, Metrics};

pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SendQueue {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    bytes: usize,
}

impl SendQueue {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sends now if nothing is waiting and the kernel takes it; else queues.
    pub fn send(
        &mut self,
        socket: &tokio::net::UdpSocket,
        metrics: &Metrics,
        to: SocketAddr,
        datagram: &[u8],
    ) {
        if self.queue.is_empty() {
            match socket.try_send_to(datagram, to) {
                Ok(_) => {
                    metrics.datagrams_out.fetch_add(1, Relaxed);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // An unreachable peer (ICMP) or a bad address concerns that
                // peer only.
                Err(_) => {
                    metrics.count_drop(DropReason::SendFailed);
                    return;
                }
            }
        }
        if self.bytes + datagram.len() > MAX_QUEUED_BYTES {
            metrics.count_drop(DropReason::SendQueueFull);
            return;
        }
        self.bytes += datagram.len();
        self.queue.push_back((to, datagram.to_vec()));
    }

    /// Hands queued datagrams to the kernel until it pushes back.
    pub fn flush(&mut self, socket: &tokio::net::UdpSocket, metrics: &Metrics) {
        while let Some((to, datagram)) = self.queue.front() {
            match socket.try_send_to(datagram, *to) {
                Ok(_) => metrics.datagrams_out.fetch_add(1, Relaxed),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    metrics.count_drop(DropReason::SendFailed);
                    0
                }
            };
            self.bytes -= datagram.len();
            self.queue.pop_front();
        }
    }
}
