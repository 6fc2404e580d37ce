//! `serve`'s connections: HTTP/1.1 driven by hyper with the limits `axum::serve` does not set,
//! so a slow or silent client cannot hold `serve` (`proxy.*_timeout_secs`, [`ServeTimeouts`]):
//!
//! - **header**: a complete request head within `header` of the connection (or of the end of
//!   the previous response); otherwise the connection is closed (slow-loris);
//! - **body**: the whole request body within `body` of its head, else `408`
//!   ([`body_deadline`]);
//! - **stall**: a write the client has not made room for within `stall` fails the connection
//!   ([`StallGuard`]), which cuts a response in flight — the pulling INSERT fails, nothing is
//!   lost — and frees the entity's load slot.
//!
//! Only HTTP/1.1 is spoken (ClickHouse's `url()` and HTTP dictionary source use it; the TLS
//! listener offers only `http/1.1` by ALPN), so no protocol sniffing waits for bytes before
//! the header timer runs.
use super::listener::PeerAddr;
use crate::config::ServeTimeouts;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Accepts connections from `listener` and serves `app` on each, in its own task, until the
/// returned future is dropped (connections already open run on, as with `axum::serve`).
pub async fn serve<L>(mut listener: L, app: Router, timeouts: ServeTimeouts)
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let app = app.layer(axum::middleware::from_fn(move |req, next| {
        body_deadline(timeouts.body, req, next)
    }));
    loop {
        let (io, peer) = listener.accept().await;
        let app = app.clone();
        tokio::spawn(connection(io, peer, app, timeouts));
    }
}

async fn connection<I>(io: I, peer: std::net::SocketAddr, app: Router, timeouts: ServeTimeouts)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The peer address feeds the status page's login rate limit.
    let app = app.layer(axum::Extension(ConnectInfo(PeerAddr(peer))));
    let io = TokioIo::new(StallGuard::new(io, timeouts.stall));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    if let Err(e) = http
        .serve_connection(io, TowerToHyperService::new(app))
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Why a request body stopped: it did not arrive within `proxy.body_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s (proxy.body_timeout_secs)")]
struct BodyTimedOut(u64);

/// The request's body ends with an error once `limit` has passed since its head; a handler
/// that failed reading it then answers `408` with the reason.
async fn body_deadline(limit: Duration, req: Request, next: Next) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let (parts, body) = req.into_parts();
    let mut data = body.into_data_stream();
    let body = async_stream::stream! {
        loop {
            match tokio::time::timeout_at(deadline, data.next()).await {
                Ok(Some(chunk)) => yield chunk,
                Ok(None) => return,
                Err(_) => {
                    flag.store(true, Ordering::Relaxed);
                    yield Err(axum::Error::new(BodyTimedOut(limit.as_secs())));
                    return;
                }
            }
        }
    };
    let req = Request::from_parts(parts, axum::body::Body::from_stream(body));
    let resp = next.run(req).await;
    if timed_out.load(Ordering::Relaxed) {
        return (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "b24ch: {}; send the whole body at once, or raise the setting",
                BodyTimedOut(limit.as_secs())
            ),
        )
            .into_response();
    }
    resp
}

/// A connection whose writes fail once the peer has not made room for one during `limit`
/// (it stopped reading); reads pass through (their limits are hyper's header timeout and
/// [`body_deadline`]).
pub struct StallGuard<I> {
    io: I,
    limit: Duration,
    /// Runs while a write is pending.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> StallGuard<I> {
    pub fn new(io: I, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// Pending writes start (or keep) the clock; a write that makes progress stops it.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s (proxy.stall_timeout_secs)",
                    limit.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallGuard<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallGuard<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A peer that stops reading: the write that finds no room fails after the limit (on
    /// tokio's paused clock, so the machine's speed plays no part).
    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(ours, Duration::from_secs(300));
        guarded.write_all(&[1u8; 64]).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = guarded.write_all(&[2u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            err.to_string().contains("proxy.stall_timeout_secs"),
            "{err}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(300));
        // A peer that keeps reading, however slowly, is never cut.
        let (ours, mut theirs2) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(ours, Duration::from_secs(300));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 64 * 20 {
                tokio::time::sleep(Duration::from_secs(299)).await;
                total += theirs2.read(&mut buf).await.unwrap();
            }
            total
        });
        guarded.write_all(&[3u8; 64 * 20]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 64 * 20);
        drop(theirs.read(&mut [0u8; 1]).await);
    }
}
