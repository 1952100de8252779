//! The HTTP/1.1 server: an accept loop over hyper with the limits axum's
//! `serve` does not offer. Every connection needs a [`Permit`] from the
//! [`ConnectionGate`] (a cap in total and per client address, held for the
//! socket's whole life, websockets included); a request head must arrive
//! within `header_read_secs`, which also closes keep-alive connections
//! idle that long. A refused connection gets a 503 with a JSON body, then
//! is closed.
//!
//! Written here rather than taken from a crate because the permit has to
//! ride inside the socket through hyper's upgrade (a tower layer sees
//! requests, not sockets), and the refusal must be an answer, not a reset.
//!
//! Invariants: the loop never waits on a client; refusals in flight are
//! bounded ([`MAX_LINGERING`]); accept errors (e.g. out of file
//! descriptors) back off instead of spinning; on stop, no new connection is
//! accepted and open ones finish their request within [`DRAIN`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use relaycast_signaling::guard::connections::{ConnectionGate, GateRefusal, Permit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Refused connections being answered at once, at most; beyond it they
/// are closed without an answer.
const MAX_LINGERING: usize = 256;
/// How long a refused connection may take to be answered.
const LINGER: Duration = Duration::from_secs(1);
/// How long a refused connection's request head is waited for.
const HEAD_WAIT: Duration = Duration::from_millis(500);
/// How long open connections get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// What the accept loop enforces (from `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub header_read: Duration,
}

/// A socket that holds its connection's place in the gate.
struct Gated {
    stream: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `stop` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let gate = ConnectionGate::new(limits.max_connections, limits.max_connections_per_client);
    let lingering = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let builder = Arc::new(builder);
    // Each connection task holds a receiver: `closed()` on the sender
    // resolves when all are gone.
    let (draining, drain_signal) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: waiting lets connections close.
                    tracing::warn!(error = %e, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let permit = match gate.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                refuse(stream, refusal, &lingering);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Gated {
            stream,
            _permit: permit,
        });
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // The credential throttles and the gate count by address.
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let builder = builder.clone();
        let mut drain_signal = drain_signal.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = async { let _ = drain_signal.wait_for(|draining| *draining).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(drain_signal);
        });
    }
    drop(listener);
    let _ = draining.send(true);
    drop(drain_signal);
    if tokio::time::timeout(DRAIN, draining.closed())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after {DRAIN:?}; leaving them");
    }
}

/// Answers a refused connection with a 503 (bounded in time and number),
/// then closes it.
fn refuse(stream: TcpStream, refusal: GateRefusal, lingering: &Arc<AtomicUsize>) {
    if lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING {
        lingering.fetch_sub(1, Ordering::Relaxed);
        return; // dropped: closed at once
    }
    let lingering = lingering.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(LINGER, answer_refused(stream, refusal)).await;
        lingering.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn answer_refused(mut stream: TcpStream, refusal: GateRefusal) -> io::Result<()> {
    // Read the request head first (briefly): HTTP clients take an answer
    // that comes before their request for a broken connection.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(HEAD_WAIT, async {
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let body =
        serde_json::json!({ "error": "unavailable", "message": refusal.message() }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await?;
    // Read what else the client sends until it closes, so closing does not
    // reset the connection before the client read the answer.
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}
