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
//!   `try_send`s into a connection's bounded queue ([`SEND_QUEUE_FRAMES`]);
//!   what does not fit is dropped and counted (`tcp_send_queue_full`), as a
//!   congested UDP link would lose it, so the viewer's receiver reports and
//!   estimate move it down a layer like any congested viewer;
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
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Connections one worker holds at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// The longest frame accepted: any datagram a peer sends us fits.
pub const MAX_FRAME: usize = 2048;
/// Datagrams waiting for one connection's socket: about 0.6 MB, two
/// seconds of a 2.5 Mbit/s layer.
pub const SEND_QUEUE_FRAMES: usize = 512;
/// A connection with no frame for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection events waiting for the worker.
pub const EVENT_QUEUE: usize = 4096;
/// The most one write gathers from a connection's queue.
const WRITE_BATCH: usize = 64 * 1024;

/// What the worker hears of its TCP connections, in order per connection.
pub enum TcpEvent {
    Opened(SocketAddr, TcpLink),
    Frame(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// The worker's end of one connection: dropping it closes the connection.
#[derive(Clone, Debug)]
pub struct TcpLink(mpsc::Sender<Vec<u8>>);

impl TcpLink {
    /// Queues one datagram, framed; `false` when the queue is full or the
    /// connection gone.
    pub fn try_send(&self, datagram: &[u8]) -> bool {
        let Ok(len) = u16::try_from(datagram.len()) else {
            return false;
        };
        let mut frame = Vec::with_capacity(datagram.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(datagram);
        self.0.try_send(frame).is_ok()
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
        let events = events.clone();
        tokio::spawn(async move {
            connection(stream, from, &events).await;
            let _ = events.send(TcpEvent::Closed(from)).await;
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, from: SocketAddr, events: &mpsc::Sender<TcpEvent>) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SEND_QUEUE_FRAMES);
    if events
        .send(TcpEvent::Opened(from, TcpLink(tx)))
        .await
        .is_err()
    {
        return;
    }
    let writer = async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(frame) = rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&frame);
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(_) => break,
                }
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
        let Some(TcpEvent::Opened(from, link)) = events.recv().await else {
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
        assert!(link.try_send(&[7, 7]));
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
        let Some(TcpEvent::Opened(_, link)) = events.recv().await else {
            panic!("opened first");
        };
        // The client never reads: the kernel buffers fill, then the queue.
        let datagram = [0u8; 1200];
        let refused = (0..20_000).filter(|_| !link.try_send(&datagram)).count();
        assert!(refused > 0, "a bounded queue refuses at some point");
    }
}
