//! [`Server`]: serves a router over TCP (or TLS) with limits on slow, idle and too many
//! connections.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::Service;

use crate::{BoxError, Error};

/// Default time a client has to send a request's headers: 10 seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a kept-alive connection may wait for its next request: 60 seconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default limit on connections served at once: 512, well below the usual limit of 1,024 open
/// files, leaving room for the database and logs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The longest timeout taken: a year (longer ones would overflow a clock's deadline).
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Serves a router (or any tower service) over HTTP/1.1, or HTTPS with the `tls` feature, with
/// limits that keep slow and idle clients from exhausting the broker:
///
/// - **header-read timeout**: a connection whose request headers are not complete in time is
///   closed (the first request's time counts from the connection's start, later requests' from
///   their first byte);
/// - **idle timeout**: a kept-alive connection with no new request in time is closed;
/// - **maximum connections**: beyond it, new connections wait in the listen backlog until one
///   closes.
///
/// Each setting has a default, a builder method and an environment variable
/// ([`Server::from_env`]): `OSB_HEADER_READ_TIMEOUT_MS`, `OSB_IDLE_TIMEOUT_MS`,
/// `OSB_MAX_CONNECTIONS`, and with the `tls` feature `OSB_TLS_CERT`, `OSB_TLS_KEY` and
/// `OSB_TLS_CLIENT_CA`.
///
/// ```no_run
/// # async fn demo(app: axum::Router) -> Result<(), osb_server::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// osb_server::Server::from_env()?
///     .max_connections(256)
///     .serve(listener, app, std::future::pending())
///     .await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Server {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsFiles>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// The defaults: [`DEFAULT_HEADER_READ_TIMEOUT`], [`DEFAULT_IDLE_TIMEOUT`],
    /// [`DEFAULT_MAX_CONNECTIONS`], plain HTTP.
    pub fn new() -> Self {
        Server {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The defaults, overridden by the environment:
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `OSB_HEADER_READ_TIMEOUT_MS` | [`header_read_timeout`](Self::header_read_timeout) in milliseconds |
    /// | `OSB_IDLE_TIMEOUT_MS` | [`idle_timeout`](Self::idle_timeout) in milliseconds |
    /// | `OSB_MAX_CONNECTIONS` | [`max_connections`](Self::max_connections) |
    /// | `OSB_TLS_CERT`, `OSB_TLS_KEY` | PEM files of the certificate chain and private key: serve HTTPS (`tls` feature) |
    /// | `OSB_TLS_CLIENT_CA` | PEM file of the CAs whose client certificates are required (`tls` feature) |
    ///
    /// An unparsable or zero value, or only one of `OSB_TLS_CERT` and `OSB_TLS_KEY`, is an
    /// [`InvalidConfig`](Error::InvalidConfig) error, as is a TLS variable when the `tls`
    /// feature is off (rather than serving plain HTTP by surprise).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var`.
    pub(crate) fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |name: &str| -> Result<Option<u64>, Error> {
            match var(name) {
                None => Ok(None),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(invalid(format!(
                        "{name} must be a positive whole number, not {value:?}"
                    ))),
                },
            }
        };
        let mut server = Server::new();
        if let Some(ms) = number("OSB_HEADER_READ_TIMEOUT_MS")? {
            server = server.header_read_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = number("OSB_IDLE_TIMEOUT_MS")? {
            server = server.idle_timeout(Duration::from_millis(ms));
        }
        if let Some(n) = number("OSB_MAX_CONNECTIONS")? {
            server = server.max_connections(usize::try_from(n).unwrap_or(usize::MAX));
        }
        let (cert, key, client_ca) = (
            var("OSB_TLS_CERT"),
            var("OSB_TLS_KEY"),
            var("OSB_TLS_CLIENT_CA"),
        );
        #[cfg(feature = "tls")]
        {
            match (cert, key) {
                (Some(cert), Some(key)) => server = server.tls(cert, key),
                (None, None) => {}
                _ => return Err(invalid("set both OSB_TLS_CERT and OSB_TLS_KEY, or neither")),
            }
            if let Some(ca) = client_ca {
                if server.tls.is_none() {
                    return Err(invalid(
                        "OSB_TLS_CLIENT_CA needs OSB_TLS_CERT and OSB_TLS_KEY",
                    ));
                }
                server = server.tls_client_ca(ca);
            }
        }
        #[cfg(not(feature = "tls"))]
        if cert.is_some() || key.is_some() || client_ca.is_some() {
            return Err(invalid(
                "OSB_TLS_* is set but this binary was built without TLS (osb-server's `tls` feature)",
            ));
        }
        Ok(server)
    }

    /// How long a client has to send a request's headers (1 ms to a year). For the first request of a
    /// connection the time counts from the connection's start (after the TLS handshake, which
    /// has the same limit); for later requests, from their first byte.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// How long a kept-alive connection may wait for its next request before it is closed (1 ms
    /// to a year).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// How many connections are served at once (at least 1). Further connections wait in the
    /// listen backlog until one closes.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Serves HTTPS with the PEM certificate chain and private key in these files, read when
    /// serving starts and again on each `SIGHUP` (a pair that fails to load is logged and the
    /// previous one kept).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn tls(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        let client_ca = self.tls.take().and_then(|t| t.client_ca);
        self.tls = Some(crate::tls::TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca,
        });
        self
    }

    /// Requires a client certificate issued by one of the CAs in this PEM file (mutual TLS).
    /// Has an effect only with [`tls`](Self::tls); [`serve`](Self::serve) refuses it otherwise.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn tls_client_ca(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        match &mut self.tls {
            Some(tls) => tls.client_ca = Some(ca.into()),
            None => {
                self.tls = Some(crate::tls::TlsFiles {
                    cert: std::path::PathBuf::new(),
                    key: std::path::PathBuf::new(),
                    client_ca: Some(ca.into()),
                });
            }
        }
        self
    }

    /// `https` when serving TLS, else `http`: for the URL a binary prints.
    pub fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// Serves `service` on `listener` until `shutdown` resolves, then stops accepting, lets
    /// each connection finish its request in progress, and returns once all are closed.
    ///
    /// Errors only before serving starts: a TLS pair that does not load, or (on Unix) a
    /// `SIGHUP` handler that cannot be installed. Failures of single connections are logged at
    /// `debug`.
    pub async fn serve<S, B, F>(
        self,
        listener: TcpListener,
        service: S,
        shutdown: F,
    ) -> Result<(), Error>
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        F: Future<Output = ()> + Send,
    {
        #[cfg(feature = "tls")]
        let (tls, reloader) = match &self.tls {
            Some(files) => {
                let state = Arc::new(crate::tls::TlsState::load(files.clone())?);
                let reloader = crate::tls::reload_on_hangup(state.clone())?;
                (Some(state), reloader)
            }
            None => (None, None),
        };
        let limits = Limits {
            header_read: self.header_read_timeout,
            idle: self.idle_timeout,
        };
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopped) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
            };
            // Answers are small; waiting for more to send only delays them.
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                service: service.clone(),
                limits,
                stop: stopped.clone(),
                _permit: permit,
            };
            #[cfg(feature = "tls")]
            let acceptor = tls.as_ref().map(|t| t.acceptor());
            tokio::spawn(async move {
                #[cfg(feature = "tls")]
                if let Some(acceptor) = acceptor {
                    return connection.serve_tls(stream, acceptor).await;
                }
                connection.serve(stream).await;
            });
        }
        drop(listener);
        #[cfg(feature = "tls")]
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        drop(stopped);
        let _ = stop.send(true);
        // Each connection holds a receiver: this resolves when the last one has closed.
        stop.closed().await;
        Ok(())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        reason: reason.into(),
    }
}

/// A failed `accept`: a connection reset before it was accepted is skipped; anything else
/// (such as running out of file descriptors) is logged and retried after a pause, as the
/// condition usually clears when connections close.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    header_read: Duration,
    idle: Duration,
}

/// One accepted connection, holding its slot until it closes.
struct Connection<S> {
    service: S,
    limits: Limits,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl<S, B> Connection<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    #[cfg(feature = "tls")]
    async fn serve_tls(mut self, stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor) {
        let handshake = tokio::time::timeout(self.limits.header_read, acceptor.accept(stream));
        let stream = tokio::select! {
            _ = self.stop.wait_for(|stop| *stop) => return,
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            },
        };
        self.serve_io(stream).await;
    }

    async fn serve(self, stream: TcpStream) {
        self.serve_io(stream).await;
    }

    async fn serve_io<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let reads = Arc::new(AtomicU64::new(0));
        let timer = HeadTimer {
            reads: reads.clone(),
            waits: AtomicU64::new(0),
            limits: self.limits,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(timer)
            .header_read_timeout(self.limits.header_read);
        let service = self.service.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut service = service.clone();
            async move {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request.map(Body::new)).await
            }
        });
        let connection = builder.serve_connection(TokioIo::new(Counted { io, reads }), service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed");
                }
                return;
            }
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
        // Shutting down: an idle connection closes now, a busy one after its answer.
        connection.as_mut().graceful_shutdown();
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection closed");
        }
    }
}

/// Counts the reads that returned data, so the timer of the next request's headers knows
/// when its first byte came.
struct Counted<I> {
    io: I,
    reads: Arc<AtomicU64>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// hyper's HTTP/1 server asks its timer for one deadline per request head it waits for,
/// starting as soon as it waits (so, for a kept-alive connection, while it is idle). This
/// timer turns that single deadline into two: idle until the head's first byte, then the
/// header-read timeout from that byte. The first request's head has the header-read timeout
/// from the start. hyper polls the deadline whenever the connection is readable, so the switch
/// happens when the first byte arrives.
struct HeadTimer {
    reads: Arc<AtomicU64>,
    waits: AtomicU64,
    limits: Limits,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(PlainSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let first = self.waits.fetch_add(1, Ordering::Relaxed) == 0;
        let started = Instant::now();
        let deadline = if first {
            started + self.limits.header_read
        } else {
            started + self.limits.idle
        };
        Box::pin(HeadDeadline {
            reads: self.reads.clone(),
            reads_at_start: self.reads.load(Ordering::Relaxed),
            first,
            started,
            head_started: None,
            limits: self.limits,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        })
    }
}

struct PlainSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for PlainSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for PlainSleep {}

struct HeadDeadline {
    reads: Arc<AtomicU64>,
    reads_at_start: u64,
    first: bool,
    started: Instant,
    head_started: Option<Instant>,
    limits: Limits,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadDeadline {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.head_started.is_none() && this.reads.load(Ordering::Relaxed) != this.reads_at_start
        {
            this.head_started = Some(Instant::now());
        }
        let deadline = match (this.first, this.head_started) {
            (true, _) => this.started + this.limits.header_read,
            (false, Some(head)) => head + this.limits.header_read,
            (false, None) => this.started + this.limits.idle,
        };
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadDeadline {}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: the usual `shutdown` for [`Server::serve`] in a
/// binary.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> Result<Server, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Server::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn environment() {
        let server = lookup(&[]).unwrap();
        assert_eq!(server.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(server.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(server.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(server.scheme(), "http");
        let server = lookup(&[
            ("OSB_HEADER_READ_TIMEOUT_MS", "1500"),
            ("OSB_IDLE_TIMEOUT_MS", "20000"),
            ("OSB_MAX_CONNECTIONS", "64"),
        ])
        .unwrap();
        assert_eq!(server.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(server.idle_timeout, Duration::from_secs(20));
        assert_eq!(server.max_connections, 64);
        let huge = lookup(&[("OSB_MAX_CONNECTIONS", "18446744073709551615")]).unwrap();
        assert_eq!(huge.max_connections, Semaphore::MAX_PERMITS);
        let server = Server::new().idle_timeout(Duration::MAX);
        assert_eq!(server.idle_timeout, MAX_TIMEOUT);
        for bad in ["0", "-1", "ten", "1.5", "18446744073709551616"] {
            let err = lookup(&[("OSB_MAX_CONNECTIONS", bad)]).unwrap_err();
            assert!(err.to_string().contains("OSB_MAX_CONNECTIONS"), "{err}");
        }
        let err = lookup(&[("OSB_TLS_CERT", "cert.pem")]).unwrap_err();
        assert!(err.to_string().contains("OSB_TLS"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_environment() {
        let server = lookup(&[("OSB_TLS_CERT", "c.pem"), ("OSB_TLS_KEY", "k.pem")]).unwrap();
        assert_eq!(server.scheme(), "https");
        let err = lookup(&[("OSB_TLS_CLIENT_CA", "ca.pem")]).unwrap_err();
        assert!(err.to_string().contains("OSB_TLS_CLIENT_CA"), "{err}");
    }
}
