//! ICE over TCP for networks that block UDP: every worker also listens on
//! TCP at its UDP port number, the answers carry a passive TCP candidate
//! after the UDP one (RFC 6544), and each connection carries RFC 4571
//! frames (a 2-byte length, then one STUN, DTLS, RTP or RTCP datagram).
//! The worker sees a connection only through [`TcpEvent`]s and reaches it
//! only through its [`TcpLink`]: the sessions, demux and forwarding are the
//! UDP ones, str0m told the datagram came over TCP.
//!
//! Each connection is two tasks on the worker's own runtime (a reader and
//! a writer); nothing here touches a session.
//!
//! Invariants:
//! - a slow TCP viewer never holds its worker: the worker only ever
//!   `try_send`s into a connection's bounded queue; what does not fit is
//!   dropped and counted (`tcp_send_queue_full`), as a congested UDP link
//!   would lose it, so the viewer's receiver reports and estimate move it
//!   down a layer like any congested viewer. The queue is short in bytes
//!   ([`BULK_QUEUE_BYTES`] for video, [`QUEUE_BYTES`] in all) and so is the
//!   kernel's send buffer ([`SOCKET_SEND_BUFFER`]): on a slow link a deep
//!   buffer would only turn loss into seconds of delay, which neither the
//!   estimator nor the viewer recovers from. Video never takes the room
//!   kept for audio, RTCP and the ICE consent checks' answers; video that
//!   waited [`STALE_AFTER`], and anything that waited
//!   [`STALE_PRIORITY_AFTER`] (audio, RTCP, padding, STUN answers: useless
//!   that late), is dropped by the writer (counted the same way) rather than
//!   sent late, so a backlog never grows past a second and what is sent is
//!   what the peer can still use;
//! - at most [`MAX_CONNECTIONS`] connections per worker; a connection is
//!   closed on a frame longer than [`MAX_FRAME`] or empty, on
//!   [`IDLE_TIMEOUT`] without a frame (ICE consent checks come every few
//!   seconds), and by the worker on its first frame no session claims;
//! - the reader waits when the worker's event queue is full (TCP flow
//!   control then slows that peer): it never drops what it read.
//!
//! A TCP viewer costs one copy and one allocation per datagram (into its
//! queue): the fallback path, not the fast one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Connections one worker holds at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// The longest frame accepted: any datagram a peer sends us fits.
pub const MAX_FRAME: usize = 2048;
/// Bytes of video one connection may have queued for its socket: the
/// writer runs between the worker's passes, so one pass's burst (a
/// keyframe of a 2.5 Mbit/s layer is up to ~150 KB) must fit.
pub const BULK_QUEUE_BYTES: usize = 256 * 1024;
/// Bytes of anything one connection may have queued.
pub const QUEUE_BYTES: usize = 384 * 1024;
/// Datagrams one connection's queue holds at most (the byte limits bind
/// first for media; this bounds a flood of tiny ones).
const QUEUE_FRAMES: usize = 1024;
/// Video that waited this long in a connection's queue is dropped.
pub const STALE_AFTER: Duration = Duration::from_millis(300);
/// Anything that waited this long in a connection's queue is dropped.
pub const STALE_PRIORITY_AFTER: Duration = Duration::from_secs(1);
/// The kernel's send buffer for a connection (in flight and unsent).
pub const SOCKET_SEND_BUFFER: usize = 64 * 1024;
/// Unsent bytes the kernel may hold before the socket stops being
/// writable (`TCP_NOTSENT_LOWAT`): the rest waits in our queue, where
/// stale video is dropped and the ICE answers are not behind it, while the
/// send buffer keeps a long path's bytes in flight.
pub const UNSENT_LOW_WATER: usize = 16 * 1024;
/// A connection with no frame for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection events waiting for the worker.
pub const EVENT_QUEUE: usize = 4096;
/// The most one write gathers from a connection's queue.
const WRITE_BATCH: usize = 16 * 1024;

/// What the worker hears of its TCP connections, in order per connection.
pub enum TcpEvent {
    Opened(SocketAddr, TcpLink),
    Frame(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// One queued datagram, framed.
#[derive(Debug)]
struct Frame {
    at: Instant,
    /// Video: dropped when stale.
    bulk: bool,
    bytes: Vec<u8>,
}

/// The worker's end of one connection: dropping it closes the connection.
#[derive(Clone, Debug)]
pub struct TcpLink {
    tx: mpsc::Sender<Frame>,
    /// Bytes queued and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    /// Queued datagrams the writer dropped as stale.
    stale: Arc<AtomicU64>,
    /// Datagrams queued and refused so far: the worker's own measure of
    /// the link's loss ([`TcpLink::counts`]).
    sent: u64,
    refused: u64,
}

impl TcpLink {
    /// Queues one datagram, framed; `false` when its class's share of the
    /// queue is full or the connection gone. `bulk`: video, which leaves
    /// room for the rest.
    pub fn try_send(&mut self, datagram: &[u8], bulk: bool) -> bool {
        let queued = self.queue(datagram, bulk);
        if queued {
            self.sent += 1;
        } else {
            self.refused += 1;
        }
        queued
    }

    /// Datagrams queued and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        let stale = self.stale.load(Relaxed);
        (self.sent.saturating_sub(stale), self.refused + stale)
    }

    fn queue(&self, datagram: &[u8], bulk: bool) -> bool {
        let Ok(len) = u16::try_from(datagram.len()) else {
            return false;
        };
        let limit = if bulk { BULK_QUEUE_BYTES } else { QUEUE_BYTES };
        let frame_len = datagram.len() + 2;
        if self.queued.load(Relaxed) + frame_len > limit {
            return false;
        }
        let mut bytes = Vec::with_capacity(frame_len);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(datagram);
        let frame = Frame {
            at: Instant::now(),
            bulk,
            bytes,
        };
        if self.tx.try_send(frame).is_err() {
            return false;
        }
        self.queued.fetch_add(frame_len, Relaxed);
        true
    }
}

/// Accepts connections for one worker until its event queue closes.
pub async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: concerns one
                // attempt; do not spin on it.
                tracing::debug!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%from, "ICE-TCP connection refused: at the per-worker maximum");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SOCKET_SEND_BUFFER);
        set_unsent_low_water(&stream);
        let events = events.clone();
        tokio::spawn(async move {
            connection(stream, from, &events).await;
            let _ = events.send(TcpEvent::Closed(from)).await;
            drop(permit);
        });
    }
}

fn set_unsent_low_water(stream: &TcpStream) {
    #[cfg(any(target_os = "android", target_os = "linux"))]
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER as u32);
    #[cfg(not(any(target_os = "android", target_os = "linux")))]
    let _ = stream;
}

async fn connection(stream: TcpStream, from: SocketAddr, events: &mpsc::Sender<TcpEvent>) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE_FRAMES);
    let queued = Arc::new(AtomicUsize::new(0));
    let stale = Arc::new(AtomicU64::new(0));
    let link = TcpLink {
        tx,
        queued: queued.clone(),
        stale: stale.clone(),
        sent: 0,
        refused: 0,
    };
    if events.send(TcpEvent::Opened(from, link)).await.is_err() {
        return;
    }
    let writer = async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(first) = rx.recv().await {
            batch.clear();
            let mut next = Some(first);
            while let Some(frame) = next.take() {
                queued.fetch_sub(frame.bytes.len(), Relaxed);
                let limit = if frame.bulk {
                    STALE_AFTER
                } else {
                    STALE_PRIORITY_AFTER
                };
                if frame.at.elapsed() >= limit {
                    stale.fetch_add(1, Relaxed);
                } else {
                    batch.extend_from_slice(&frame.bytes);
                }
                if batch.len() < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if batch.is_empty() {
                continue;
            }
            if wr.write_all(&batch).await.is_err() {
                return;
            }
        }
        // The worker dropped its link: the session ended.
        let _ = wr.shutdown().await;
    };
    let reader = async move {
        let mut len = [0u8; 2];
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, rd.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                return;
            }
            let mut frame = vec![0u8; n];
            match tokio::time::timeout(IDLE_TIMEOUT, rd.read_exact(&mut frame)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            if events.send(TcpEvent::Frame(from, frame)).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, mpsc::Receiver<TcpEvent>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(accept_loop(listener, tx));
        let client = TcpStream::connect(addr).await.unwrap();
        let local = client.local_addr().unwrap();
        (client, rx, local)
    }

    #[tokio::test]
    async fn frames_go_both_ways_and_a_dropped_link_closes_the_connection() {
        let (mut client, mut events, local) = pair().await;
        let Some(TcpEvent::Opened(from, mut link)) = events.recv().await else {
            panic!("opened first");
        };
        assert_eq!(from, local);
        client.write_all(&[0, 3, 1, 2, 3, 0, 1, 9]).await.unwrap();
        for want in [vec![1u8, 2, 3], vec![9]] {
            match events.recv().await {
                Some(TcpEvent::Frame(f, data)) => {
                    assert_eq!(f, local);
                    assert_eq!(data, want);
                }
                _ => panic!("a frame"),
            }
        }
        assert!(link.try_send(&[7, 7], false));
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 2, 7, 7]);
        drop(link);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut rest))
            .await
            .expect("closed promptly")
            .unwrap();
        assert_eq!(n, 0);
        assert!(matches!(events.recv().await, Some(TcpEvent::Closed(_))));
    }

    #[tokio::test]
    async fn an_oversized_or_empty_frame_closes_the_connection() {
        for header in [[0xff, 0xff], [0, 0]] {
            let (mut client, mut events, _) = pair().await;
            assert!(matches!(events.recv().await, Some(TcpEvent::Opened(..))));
            client.write_all(&header).await.unwrap();
            assert!(matches!(events.recv().await, Some(TcpEvent::Closed(_))));
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_waiting() {
        let (_client, mut events, _) = pair().await;
        let Some(TcpEvent::Opened(_, mut link)) = events.recv().await else {
            panic!("opened first");
        };
        // Nothing drains while the test does not yield: video fills its
        // share, then is refused while audio and RTCP still fit.
        let datagram = [0u8; 1200];
        let video = (0..300).filter(|_| link.try_send(&datagram, true)).count();
        assert_eq!(video, BULK_QUEUE_BYTES / 1202, "video takes only its share");
        let rest = (0..300).filter(|_| link.try_send(&datagram, false)).count();
        assert_eq!(
            rest,
            (QUEUE_BYTES - video * 1202) / 1202,
            "the rest fills the queue"
        );
        assert!(!link.try_send(&datagram, false), "then nothing more fits");
        assert_eq!(
            link.counts(),
            ((video + rest) as u64, 600 - (video + rest) as u64 + 1)
        );
    }
}
