//! Connection-level limits of the HTTP server: a cap on open connections, a deadline for a
//! connection's first bytes (before hyper knows which HTTP version it speaks), and a deadline
//! for reading a request's body. hyper itself enforces the header-read timeout (which is also
//! the HTTP/1.1 keep-alive idle timeout) and HTTP/2 keep-alive pings; see [`crate::serve`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum_server::accept::Accept;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Length of the HTTP/2 preface: once that much has arrived hyper has picked a protocol and
/// its own timers take over.
const PRELUDE: usize = 24;

/// Admits a connection only while a slot is free (else closes it at once, before any TLS
/// work), then hands it to `inner` (e.g. the TLS acceptor).
#[derive(Clone)]
pub struct Admit<A> {
    inner: A,
    slots: Arc<Semaphore>,
    first_bytes: Duration,
}

impl<A> Admit<A> {
    /// At most `max` connections at once; each must send its first bytes within `first_bytes`.
    pub fn new(inner: A, max: usize, first_bytes: Duration) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
            first_bytes,
        }
    }
}

type AcceptFuture<T, S> = Pin<Box<dyn Future<Output = io::Result<(T, S)>> + Send>>;

impl<A, I, S> Accept<I, S> for Admit<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = AcceptFuture<Self::Stream, Self::Service>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            // Dropping the stream closes it: no task, no buffer, no handshake.
            drop(stream);
            tracing::debug!("connection limit reached: closing a new connection");
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        let first_bytes = self.first_bytes;
        let fut = self.inner.accept(stream, service);
        Box::pin(async move {
            let (io, service) = fut.await?;
            Ok((
                Guarded {
                    io,
                    _permit: permit,
                    deadline: Some(Box::pin(tokio::time::sleep(first_bytes))),
                    read: 0,
                },
                service,
            ))
        })
    }
}

/// A connection holding its slot until dropped; reading fails once the first-bytes deadline
/// passes with fewer than [`PRELUDE`] bytes received.
pub struct Guarded<S> {
    io: S,
    _permit: OwnedSemaphorePermit,
    deadline: Option<Pin<Box<Sleep>>>,
    read: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.read += buf.filled().len() - before;
                if this.read >= PRELUDE {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if let Some(d) = &mut this.deadline
                    && d.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the header-read timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A request body that must arrive in full before a deadline (a slow sender cannot keep a
/// handler, and its buffer, waiting: per-frame timeouts would let one byte every few seconds
/// through). The timer is only armed when the body is not already there: most bodies arrive
/// with the headers and cost no timer at all.
struct Deadline {
    inner: Body,
    until: tokio::time::Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The body was not received in time (axum answers 400).
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the body-read timeout")]
struct BodyTimeout;

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let until = this.until;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Put every request body under the body-read deadline, counted from when its headers were
/// read (for `tower::util::MapRequestLayer`: no clone of the router and no boxed future per
/// request).
pub fn body_deadline(timeout: Duration) -> impl Fn(Request) -> Request + Clone + Send + Sync {
    move |req: Request| {
        let (parts, body) = req.into_parts();
        let body = if hyper::body::Body::is_end_stream(&body) {
            body
        } else {
            Body::new(Deadline {
                inner: body,
                until: tokio::time::Instant::now() + timeout,
                sleep: None,
            })
        };
        Request::from_parts(parts, body)
    }
}
