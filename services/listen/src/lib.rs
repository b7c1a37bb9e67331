//! Accepting connections for both front doors (gRPC and HTTP): at most `max_connections` open
//! at once per listener, and a connection on which nothing moves is closed.
//!
//! "Nothing moves" has two shapes. A client that sends nothing (it opened the connection and
//! waits, or sent half a request) leaves the server waiting to read: closed after
//! `idle_timeout_secs`. A client that stops reading leaves the server's writes pending: closed
//! after `write_timeout_secs` without progress, which drops the response in flight and with it
//! the call's permit and its generation. HTTP/2 keepalive pings and the SSE keep-alive comments
//! keep live connections moving, so neither timeout ends a healthy connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Gauge: connections open, by `door`.
pub const OPEN: &str = "rag_connections_open";
/// Counter: connections the server closed, by `door` and `reason` ("idle": the client sent
/// nothing; "stalled": the client stopped reading).
pub const CLOSED: &str = "rag_connections_closed_total";

/// How long connections may sit, and how many there may be (`[connections]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections open at once on each listener; past it, new ones wait in the kernel's
    /// backlog until one closes.
    pub max_connections: usize,
    /// HTTP/1: the whole request head must arrive within this many seconds of its first byte.
    pub header_timeout_secs: u64,
    /// A connection on which the client sends nothing for this long (and the server has
    /// nothing to write) is closed.
    pub idle_timeout_secs: u64,
    /// A response whose client stops reading is ended after this long without progress.
    pub write_timeout_secs: u64,
    /// HTTP/2 (gRPC): a ping after this long without traffic; a connection whose client does
    /// not answer within the same time again is closed.
    pub keepalive_secs: u64,
    /// HTTP/2 (gRPC): calls under way at once on one connection.
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout_secs: 10,
            // Over the HTTP/2 keepalive and the SSE keep-alive (15 s), so that both keep a
            // live connection moving.
            idle_timeout_secs: 120,
            write_timeout_secs: 30,
            keepalive_secs: 60,
            max_concurrent_streams: 128,
        }
    }
}

impl Limits {
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        secs(self.idle_timeout_secs)
    }
    pub fn write_timeout(&self) -> Duration {
        secs(self.write_timeout_secs)
    }
    pub fn keepalive(&self) -> Duration {
        secs(self.keepalive_secs)
    }
}

/// Zero would close every connection at once: read as one second.
fn secs(n: u64) -> Duration {
    Duration::from_secs(n.max(1))
}

/// Describes the connection metrics to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(OPEN, "connections open, by door");
    metrics::describe_counter!(
        CLOSED,
        "connections the server closed, by door and reason (idle: the client sent nothing; \
         stalled: the client stopped reading)"
    );
}

/// A listener that hands out [`Guarded`] connections, at most `max_connections` at once.
pub struct Listener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
    write: Duration,
    door: &'static str,
}

impl Listener {
    pub fn new(inner: TcpListener, limits: &Limits, door: &'static str) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            idle: limits.idle_timeout(),
            write: limits.write_timeout(),
            door,
        }
    }

    /// The next connection, once there is room for one. Accept errors (a client that reset
    /// before it was taken, or no file descriptors left) are returned; the caller goes on.
    pub async fn accept(&self) -> io::Result<(Guarded, SocketAddr)> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let (stream, peer) = self.inner.accept().await?;
        // Without TCP_NODELAY small responses wait on delayed ACKs (~40 ms a call).
        stream.set_nodelay(true)?;
        Ok((Guarded::new(stream, slot, self), peer))
    }

    /// Connections as a stream, for servers that take one (tonic). Accept errors are logged
    /// and skipped, after a pause when they come from running out of descriptors.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = io::Result<Guarded>> + Send {
        futures_util::stream::unfold(self, |listener| async move {
            loop {
                match listener.accept().await {
                    Ok((conn, _)) => return Some((Ok(conn), listener)),
                    Err(e) => accept_failed(&e).await,
                }
            }
        })
    }
}

/// What the accept loops do with an accept error: log it, and pause when the process is out of
/// file descriptors so that the loop does not spin.
pub async fn accept_failed(e: &io::Error) {
    tracing::debug!(error = %e, "accept failed");
    if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection holding its slot until closed, which fails its pending read after `idle` with
/// nothing read or written, and its pending write after `write` without progress.
pub struct Guarded {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    door: &'static str,
    idle: Duration,
    write: Duration,
    /// The last time bytes moved either way.
    moved: Instant,
    idle_timer: Pin<Box<Sleep>>,
    /// Since when a write has been waiting without progress.
    write_waiting: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, listener: &Listener) -> Self {
        let now = Instant::now();
        metrics::gauge!(OPEN, "door" => listener.door).increment(1.0);
        Self {
            stream,
            _slot: slot,
            door: listener.door,
            idle: listener.idle,
            write: listener.write,
            moved: now,
            idle_timer: Box::pin(tokio::time::sleep_until(now + listener.idle)),
            write_waiting: None,
            write_timer: Box::pin(tokio::time::sleep_until(now + listener.write)),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    fn moved(&mut self) {
        self.moved = Instant::now();
        self.write_waiting = None;
    }

    fn close(&self, reason: &'static str) -> io::Error {
        metrics::counter!(CLOSED, "door" => self.door, "reason" => reason).increment(1);
        tracing::debug!(door = self.door, reason, "closing a connection");
        io::Error::new(io::ErrorKind::TimedOut, format!("connection {reason}"))
    }

    /// Pending until `deadline`; then an error, unless `deadline()` has moved on meanwhile.
    fn poll_deadline(
        timer: &mut Pin<Box<Sleep>>,
        cx: &mut Context<'_>,
        deadline: impl Fn() -> Instant,
    ) -> Poll<()> {
        loop {
            let at = deadline();
            if Instant::now() >= at {
                return Poll::Ready(());
            }
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            ready!(timer.as_mut().poll(cx));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        metrics::gauge!(OPEN, "door" => self.door).decrement(1.0);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let (moved, idle) = (this.moved, this.idle);
                ready!(Self::poll_deadline(&mut this.idle_timer, cx, || moved + idle));
                Poll::Ready(Err(this.close("idle")))
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, data);
        this.wrote(written, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(written, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.poll_stalled(cx).map_ok(|_| ()),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Guarded {
    /// After a write: progress counts as movement; a write the socket cannot take waits, until
    /// the write timeout.
    fn wrote(
        &mut self,
        written: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_stalled(cx),
        }
    }

    /// A write the socket cannot take: pending, until `write` has passed without progress.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let since = *self.write_waiting.get_or_insert_with(Instant::now);
        let write = self.write;
        ready!(Self::poll_deadline(&mut self.write_timer, cx, || since + write));
        Poll::Ready(Err(self.close("stalled")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn listener(limits: Limits) -> (Listener, SocketAddr) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        (Listener::new(tcp, &limits, "test"), addr)
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let limits = Limits {
            idle_timeout_secs: 1,
            ..Limits::default()
        };
        let (listener, addr) = listener(limits).await;
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn bytes_that_move_keep_a_connection_open() {
        let limits = Limits {
            idle_timeout_secs: 1,
            ..Limits::default()
        };
        let (listener, addr) = listener(limits).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            client.write_all(b"x").await.unwrap();
            conn.read_exact(&mut buf).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
        let limits = Limits {
            write_timeout_secs: 1,
            ..Limits::default()
        };
        let (listener, addr) = listener(limits).await;
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let started = std::time::Instant::now();
        let chunk = vec![0u8; 64 * 1024];
        let err = loop {
            if let Err(e) = conn.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_for_a_slot() {
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let (listener, addr) = listener(limits).await;
        let _first = TcpStream::connect(addr).await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(
            waiting.is_err(),
            "a second connection was taken past the cap"
        );
        drop(conn);
        let taken = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        assert!(taken.is_ok(), "the freed slot was not used");
    }
}
