//! The in-process transport: the client talks to a tower [`Service`] (such as an axum `Router`)
//! directly, without a socket. Enabled by the `in-process` feature; see
//! [`ClientBuilder::service`](crate::ClientBuilder::service).

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tower::Service;

/// The error type of a service and of its reply bodies, boxed.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A reply read in full.
pub(crate) struct ServiceReply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Why a call through the service produced no reply.
pub(crate) enum ServiceFailure {
    /// The service, or the reply body, failed.
    Failed(BoxError),
    /// The reply body exceeded the limit.
    TooLarge { status: StatusCode },
}

type CallFn = dyn Fn(http::Request<Full<Bytes>>, usize) -> BoxFuture<Result<ServiceReply, ServiceFailure>>
    + Send
    + Sync;

/// A type-erased, cloneable service: every call clones the user's service, waits until it is
/// ready, calls it and reads the reply body up to the limit.
#[derive(Clone)]
pub(crate) struct ServiceTransport {
    call: Arc<CallFn>,
}

impl fmt::Debug for ServiceTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceTransport")
    }
}

impl ServiceTransport {
    pub(crate) fn new<S, B>(service: S) -> Self
    where
        S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let call = move |request: http::Request<Full<Bytes>>, limit: usize| {
            let mut service = service.clone();
            let future: BoxFuture<Result<ServiceReply, ServiceFailure>> = Box::pin(async move {
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(|e| ServiceFailure::Failed(e.into()))?;
                let response = service
                    .call(request)
                    .await
                    .map_err(|e| ServiceFailure::Failed(e.into()))?;
                let (parts, body) = response.into_parts();
                let status = parts.status;
                if http_body::Body::size_hint(&body)
                    .exact()
                    .is_some_and(|len| len > limit as u64)
                {
                    return Err(ServiceFailure::TooLarge { status });
                }
                let collected = Limited::new(body, limit).collect().await.map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        ServiceFailure::TooLarge { status }
                    } else {
                        ServiceFailure::Failed(e)
                    }
                })?;
                Ok(ServiceReply {
                    status,
                    headers: parts.headers,
                    body: collected.to_bytes().to_vec(),
                })
            });
            future
        };
        ServiceTransport {
            call: Arc::new(call),
        }
    }

    /// Sends one request and reads the reply, at most `limit` bytes of body.
    pub(crate) fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        limit: usize,
    ) -> BoxFuture<Result<ServiceReply, ServiceFailure>> {
        (self.call)(request, limit)
    }
}
