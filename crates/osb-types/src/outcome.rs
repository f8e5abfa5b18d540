//! Typed outcomes of every operation: the status code follows from the variant.
//!
//! Brokers built on osb-server return these; osb-client decodes replies into the same types, so
//! `decode(encode(x)) == x` holds for every outcome.
//!
//! Decoding is lenient where the platform can do without a field. A field it needs to act on
//! the reply must match the spec, or the reply fails with [`Error::Decode`]: `credentials` of a
//! bind or a fetched binding (an object), `operation` of a `202` (a string; it may be absent, and
//! `""` counts as absent, see [`Accepted::operation`]), `state` of a last operation (present, a
//! string). So must the body itself: JSON, and an object (an empty body counts as `{}`). Any
//! other field that does not match its model is set aside: its raw value goes to the `extra` map
//! of the object that held it, under its original key, and a [`DecodeWarning`] names it. Each
//! outcome's `decode` drops the warnings; its `decode_with_warnings` returns them.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::lenient::{DecodeWarning, Lenient, decode_lenient};
use crate::{
    AsyncOperation, Error, LastOperationResource, OperationId, ServiceBindingResource,
    ServiceBindingResponse, ServiceInstanceAsyncOperation, ServiceInstanceProvisionResponse,
    ServiceInstanceResource, ServiceInstanceUpdateResponse,
};

/// Proof that the platform accepts an asynchronous answer (`accepts_incomplete=true`).
///
/// An [`Accepted`] outcome can only be built from a permit, so a broker cannot answer
/// `202 Accepted` to a platform that did not opt in. The server hands one to the broker only when
/// the request carried `accepts_incomplete=true`; the client holds one only when it sent it.
///
/// [`from_accepts_incomplete`](Self::from_accepts_incomplete) is public because both of those
/// crates build on this one, so the type makes the rule visible rather than unbreakable: a broker
/// could mint a permit of its own. osb-server therefore also checks every `202` against the
/// request and answers `422 AsyncRequired` instead when the platform did not opt in.
///
/// ```
/// use osb_types::AsyncPermit;
/// assert!(AsyncPermit::from_accepts_incomplete(Some(true)).is_some());
/// assert!(AsyncPermit::from_accepts_incomplete(Some(false)).is_none());
/// assert!(AsyncPermit::from_accepts_incomplete(None).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncPermit {
    _private: (),
}

impl AsyncPermit {
    /// A permit if and only if `accepts_incomplete` is `Some(true)`.
    pub fn from_accepts_incomplete(accepts_incomplete: Option<bool>) -> Option<AsyncPermit> {
        (accepts_incomplete == Some(true)).then_some(AsyncPermit { _private: () })
    }
}

/// An asynchronous answer (`202 Accepted`) with its body; needs an [`AsyncPermit`].
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted<T> {
    body: T,
    permit: AsyncPermit,
}

impl<T> Accepted<T> {
    /// An accepted answer with `body`.
    pub fn new(permit: AsyncPermit, body: T) -> Self {
        Accepted { body, permit }
    }

    /// The reply body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The reply body, mutably.
    pub fn body_mut(&mut self) -> &mut T {
        &mut self.body
    }

    /// Unwraps the reply body.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The permit this answer was built from.
    pub fn permit(&self) -> AsyncPermit {
        self.permit
    }
}

impl Accepted<ServiceInstanceAsyncOperation> {
    /// The operation token, if the broker gave one: `None` when `operation` is absent, `null`
    /// or `""` (an empty token is no token; polling goes on without the `operation` parameter).
    ///
    /// The body keeps the value as received ([`body`](Self::body)).
    ///
    /// ```
    /// use osb_types::{AsyncPermit, ProvisionOutcome};
    /// let permit = AsyncPermit::from_accepts_incomplete(Some(true));
    /// let outcome = ProvisionOutcome::decode(202, br#"{"operation": ""}"#, permit).unwrap();
    /// let ProvisionOutcome::Accepted(accepted) = outcome else { panic!() };
    /// assert_eq!(accepted.operation(), None);
    /// ```
    pub fn operation(&self) -> Option<&OperationId> {
        self.body
            .operation
            .as_ref()
            .and_then(Option::as_ref)
            .filter(|op| !op.as_str().is_empty())
    }
}

impl Accepted<AsyncOperation> {
    /// The operation token, if the broker gave one: `None` when `operation` is absent or `""`
    /// (an empty token is no token; polling goes on without the `operation` parameter).
    ///
    /// The body keeps the value as received ([`body`](Self::body)).
    pub fn operation(&self) -> Option<&OperationId> {
        self.body
            .operation
            .as_ref()
            .filter(|op| !op.as_str().is_empty())
    }
}

/// Decodes a reply body leniently (see [`DecodeWarning`]), treating an empty body as `{}`.
fn decode<T: Lenient>(status: u16, body: &[u8]) -> Result<(T, Vec<DecodeWarning>), Error> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    decode_lenient(body).map_err(|reason| Error::Decode { status, reason })
}

/// A decoded outcome with no warnings (a reply whose body is not read).
fn clean<T>(outcome: T) -> Result<(T, Vec<DecodeWarning>), Error> {
    Ok((outcome, Vec::new()))
}

/// Parses JSON into `T`; on failure, the reason names the JSON path of the offending value
/// (``at `services[0].plans[1]`: missing field `id` at line 1 column 109``).
///
/// Bodies that parse take the plain serde_json path; only a failing one is parsed again with
/// path tracking.
///
/// ```
/// use osb_types::{Catalog, decode_json};
/// let body = br#"{"services": [{"id": "s", "name": "db", "description": "d", "bindable": true,
///     "plans": [{"name": "small", "description": "d"}]}]}"#;
/// let reason = decode_json::<Catalog>(body).unwrap_err();
/// assert!(reason.starts_with("at `services[0].plans[0]`: missing field `id`"), "{reason}");
/// ```
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|plain| {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(tracked) if tracked.path().iter().next().is_some() => {
                format!("at `{}`: {}", tracked.path(), tracked.inner())
            }
            _ => plain.to_string(),
        }
    })
}

fn permit_for(permit: Option<AsyncPermit>) -> Result<AsyncPermit, Error> {
    permit.ok_or(Error::AsyncNotPermitted)
}

/// The empty JSON object `{}` that several replies carry.
#[derive(Serialize)]
struct Empty {}

/// Outcome of provisioning (`PUT /v2/service_instances/{instance_id}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProvisionOutcome {
    /// `201 Created`: provisioned synchronously by this request.
    Created(ServiceInstanceProvisionResponse),
    /// `200 OK`: the instance already exists with identical attributes.
    AlreadyExists(ServiceInstanceProvisionResponse),
    /// `202 Accepted`: provisioning continues asynchronously; poll the last operation.
    Accepted(Accepted<ServiceInstanceAsyncOperation>),
}

/// Outcome of updating (`PATCH /v2/service_instances/{instance_id}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum UpdateOutcome {
    /// `200 OK`: the update was applied (or changed nothing).
    Updated(ServiceInstanceUpdateResponse),
    /// `202 Accepted`: the update continues asynchronously.
    Accepted(Accepted<ServiceInstanceAsyncOperation>),
}

/// Outcome of deprovisioning or unbinding (`DELETE`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// `200 OK`: deleted.
    Deleted,
    /// `202 Accepted`: the delete continues asynchronously.
    Accepted(Accepted<AsyncOperation>),
    /// `410 Gone`: the resource does not exist (platforms treat this as deleted).
    Gone,
}

/// Outcome of deprovisioning (`DELETE /v2/service_instances/{instance_id}`).
pub type DeprovisionOutcome = DeleteOutcome;
/// Outcome of unbinding (`DELETE .../service_bindings/{binding_id}`).
pub type UnbindOutcome = DeleteOutcome;

/// Outcome of binding (`PUT .../service_bindings/{binding_id}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BindOutcome {
    /// `201 Created`: the binding was created by this request.
    Created(ServiceBindingResponse),
    /// `200 OK`: the binding already exists with identical parameters.
    AlreadyExists(ServiceBindingResponse),
    /// `202 Accepted`: binding continues asynchronously (the body carries no credentials).
    Accepted(Accepted<AsyncOperation>),
}

/// Outcome of fetching an instance (`GET /v2/service_instances/{instance_id}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // `NotFound` is rare; boxing `Found` would cost every hit.
pub enum FetchInstanceOutcome {
    /// `200 OK`.
    Found(ServiceInstanceResource),
    /// `404 Not Found`: no such instance, or it is still being provisioned.
    NotFound,
}

/// Outcome of fetching a binding (`GET .../service_bindings/{binding_id}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // `NotFound` is rare; boxing `Found` would cost every hit.
pub enum FetchBindingOutcome {
    /// `200 OK`.
    Found(ServiceBindingResource),
    /// `404 Not Found`: no such binding, or it is still being created.
    NotFound,
}

/// When to poll again, from the `Retry-After` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// A delay in whole seconds (the form the spec recommends).
    Delay(Duration),
    /// A point in time (an HTTP date).
    At(SystemTime),
}

impl RetryAfter {
    /// A delay of `seconds`.
    pub fn seconds(seconds: u64) -> Self {
        RetryAfter::Delay(Duration::from_secs(seconds))
    }

    /// Parses a header value: delay seconds or an HTTP date.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse::<u64>().map(RetryAfter::seconds).map_err(|_| {
                Error::InvalidRetryAfter {
                    input: value.to_string(),
                }
            });
        }
        httpdate::parse_http_date(value)
            .map(RetryAfter::At)
            .map_err(|_| Error::InvalidRetryAfter {
                input: value.to_string(),
            })
    }

    /// The header value: whole seconds (rounded up, so a poll never comes early) or an HTTP
    /// date (clamped to the years 1970–9999 that HTTP dates can express).
    pub fn to_header_value(&self) -> String {
        match self {
            RetryAfter::Delay(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                secs.to_string()
            }
            RetryAfter::At(t) => {
                // 9999-12-31T23:59:59Z, the last instant an HTTP date can name.
                let last = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
                httpdate::fmt_http_date((*t).clamp(SystemTime::UNIX_EPOCH, last))
            }
        }
    }

    /// How long to wait from `now`.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Delay(d) => *d,
            RetryAfter::At(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// A `200 OK` answer to a last-operation poll.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LastOperation {
    /// The reply body.
    pub resource: LastOperationResource,
    /// The `Retry-After` header, if the broker sent one.
    pub retry_after: Option<RetryAfter>,
}

impl LastOperation {
    /// A reply without `Retry-After`.
    pub fn new(resource: LastOperationResource) -> Self {
        LastOperation {
            resource,
            retry_after: None,
        }
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: RetryAfter) -> Self {
        self.retry_after = Some(retry_after);
        self
    }
}

/// Outcome of polling a last operation (instance or binding).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LastOperationOutcome {
    /// `200 OK` with the operation's state.
    State(LastOperation),
    /// `410 Gone`: while polling a delete, the resource is gone (the delete succeeded).
    Gone,
    /// `404 Not Found`: the instance or binding does not exist.
    NotFound,
}

macro_rules! outcome_status {
    ($ty:ident { $($pat:pat => $status:ident),* $(,)? }) => {
        impl $ty {
            /// The HTTP status of this outcome.
            pub fn status(&self) -> StatusCode {
                match self {
                    $($pat => StatusCode::$status,)*
                }
            }
        }
    };
}

outcome_status!(ProvisionOutcome {
    ProvisionOutcome::Created(_) => CREATED,
    ProvisionOutcome::AlreadyExists(_) => OK,
    ProvisionOutcome::Accepted(_) => ACCEPTED,
});
outcome_status!(UpdateOutcome { UpdateOutcome::Updated(_) => OK, UpdateOutcome::Accepted(_) => ACCEPTED });
outcome_status!(DeleteOutcome {
    DeleteOutcome::Deleted => OK,
    DeleteOutcome::Accepted(_) => ACCEPTED,
    DeleteOutcome::Gone => GONE,
});
outcome_status!(BindOutcome {
    BindOutcome::Created(_) => CREATED,
    BindOutcome::AlreadyExists(_) => OK,
    BindOutcome::Accepted(_) => ACCEPTED,
});
outcome_status!(FetchInstanceOutcome {
    FetchInstanceOutcome::Found(_) => OK,
    FetchInstanceOutcome::NotFound => NOT_FOUND,
});
outcome_status!(FetchBindingOutcome {
    FetchBindingOutcome::Found(_) => OK,
    FetchBindingOutcome::NotFound => NOT_FOUND,
});
outcome_status!(LastOperationOutcome {
    LastOperationOutcome::State(_) => OK,
    LastOperationOutcome::Gone => GONE,
    LastOperationOutcome::NotFound => NOT_FOUND,
});

/// The body of each outcome serialises as the reply body (`{}` where the spec says so).
impl Serialize for ProvisionOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ProvisionOutcome::Created(b) | ProvisionOutcome::AlreadyExists(b) => b.serialize(s),
            ProvisionOutcome::Accepted(a) => a.body.serialize(s),
        }
    }
}

impl Serialize for UpdateOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UpdateOutcome::Updated(b) => b.serialize(s),
            UpdateOutcome::Accepted(a) => a.body.serialize(s),
        }
    }
}

impl Serialize for DeleteOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeleteOutcome::Accepted(a) => a.body.serialize(s),
            DeleteOutcome::Deleted | DeleteOutcome::Gone => Empty {}.serialize(s),
        }
    }
}

impl Serialize for BindOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => b.serialize(s),
            BindOutcome::Accepted(a) => a.body.serialize(s),
        }
    }
}

impl Serialize for FetchInstanceOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FetchInstanceOutcome::Found(b) => b.serialize(s),
            FetchInstanceOutcome::NotFound => Empty {}.serialize(s),
        }
    }
}

impl Serialize for FetchBindingOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FetchBindingOutcome::Found(b) => b.serialize(s),
            FetchBindingOutcome::NotFound => Empty {}.serialize(s),
        }
    }
}

impl Serialize for LastOperationOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LastOperationOutcome::State(op) => op.resource.serialize(s),
            LastOperationOutcome::Gone | LastOperationOutcome::NotFound => Empty {}.serialize(s),
        }
    }
}

impl ProvisionOutcome {
    /// Decodes a reply. `permit` is `Some` when the request set `accepts_incomplete=true`.
    ///
    /// A field the platform does not need that does not match the spec is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)); a needed one fails with
    /// [`Error::Decode`].
    pub fn decode(status: u16, body: &[u8], permit: Option<AsyncPermit>) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body, permit).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object; for `202`, `operation` a string (or `null`) when present.
    /// Set aside when mistyped: everything else (`dashboard_url`, `metadata`, …).
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
        permit: Option<AsyncPermit>,
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            201 => decode(status, body).map(|(b, w)| (ProvisionOutcome::Created(b), w)),
            200 => decode(status, body).map(|(b, w)| (ProvisionOutcome::AlreadyExists(b), w)),
            202 => accepted(status, body, permit, ProvisionOutcome::Accepted),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

impl UpdateOutcome {
    /// Decodes a reply. `permit` is `Some` when the request set `accepts_incomplete=true`.
    ///
    /// A field the platform does not need that does not match the spec is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)); a needed one fails with
    /// [`Error::Decode`].
    pub fn decode(status: u16, body: &[u8], permit: Option<AsyncPermit>) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body, permit).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object; for `202`, `operation` a string (or `null`) when present.
    /// Set aside when mistyped: everything else (`dashboard_url`, `metadata`, …).
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
        permit: Option<AsyncPermit>,
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            200 => decode(status, body).map(|(b, w)| (UpdateOutcome::Updated(b), w)),
            202 => accepted(status, body, permit, UpdateOutcome::Accepted),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

impl DeleteOutcome {
    /// Decodes a reply. `permit` is `Some` when the request set `accepts_incomplete=true`.
    ///
    /// A field the platform does not need that does not match the spec is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)); a needed one fails with
    /// [`Error::Decode`].
    pub fn decode(status: u16, body: &[u8], permit: Option<AsyncPermit>) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body, permit).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// The bodies of `200` and `410` are not read. For `202`, needed: a JSON object whose
    /// `operation`, when present, is a string.
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
        permit: Option<AsyncPermit>,
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            200 => clean(DeleteOutcome::Deleted),
            410 => clean(DeleteOutcome::Gone),
            202 => accepted(status, body, permit, DeleteOutcome::Accepted),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

impl BindOutcome {
    /// Decodes a reply. `permit` is `Some` when the request set `accepts_incomplete=true`.
    ///
    /// A field the platform does not need that does not match the spec is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)); a needed one fails with
    /// [`Error::Decode`].
    pub fn decode(status: u16, body: &[u8], permit: Option<AsyncPermit>) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body, permit).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object; for `200`/`201`, `credentials` an object when present; for `202`,
    /// `operation` a string when present. Set aside when mistyped: everything else
    /// (`endpoints`, `volume_mounts`, `syslog_drain_url`, `route_service_url`, `metadata`, …),
    /// as deep down as possible (a mistyped port sets aside that endpoint's `ports`, not the
    /// endpoint).
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
        permit: Option<AsyncPermit>,
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            201 => binding(status, body).map(|(b, w)| (BindOutcome::Created(b), w)),
            200 => binding(status, body).map(|(b, w)| (BindOutcome::AlreadyExists(b), w)),
            202 => accepted(status, body, permit, BindOutcome::Accepted),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

/// A `202` reply: allowed only with the request's permit.
fn accepted<B: Lenient, T>(
    status: u16,
    body: &[u8],
    permit: Option<AsyncPermit>,
    wrap: impl FnOnce(Accepted<B>) -> T,
) -> Result<(T, Vec<DecodeWarning>), Error> {
    let permit = permit_for(permit)?;
    decode(status, body).map(|(b, w)| (wrap(Accepted::new(permit, b)), w))
}

/// A bind reply's body, with a binding expiry that breaks the spec set aside.
fn binding(
    status: u16,
    body: &[u8],
) -> Result<(ServiceBindingResponse, Vec<DecodeWarning>), Error> {
    decode(status, body)
        .map(|(b, w)| binding_expiry(b, w, |m: &mut ServiceBindingResponse| &mut m.metadata))
}

/// Sets aside a binding expiry that breaks the spec (see `ServiceBindingMetadata::validate`).
fn binding_expiry<T>(
    mut body: T,
    mut warnings: Vec<DecodeWarning>,
    metadata: impl FnOnce(&mut T) -> &mut Option<crate::ServiceBindingMetadata>,
) -> (T, Vec<DecodeWarning>) {
    if let Some(metadata) = metadata(&mut body) {
        metadata.set_aside_bad_expiry(&mut warnings);
    }
    (body, warnings)
}

impl FetchInstanceOutcome {
    /// Decodes a reply; a mistyped field is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)).
    pub fn decode(status: u16, body: &[u8]) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object. Set aside when mistyped: every field.
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            200 => decode(status, body).map(|(b, w)| (FetchInstanceOutcome::Found(b), w)),
            404 => clean(FetchInstanceOutcome::NotFound),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

impl FetchBindingOutcome {
    /// Decodes a reply; a mistyped field other than `credentials` is set aside (see
    /// [`decode_with_warnings`](Self::decode_with_warnings)).
    pub fn decode(status: u16, body: &[u8]) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object whose `credentials`, when present, is an object. Set aside when
    /// mistyped: everything else.
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            200 => decode(status, body)
                .map(|(b, w)| {
                    binding_expiry(b, w, |m: &mut ServiceBindingResource| &mut m.metadata)
                })
                .map(|(b, w)| (FetchBindingOutcome::Found(b), w)),
            404 => clean(FetchBindingOutcome::NotFound),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

impl LastOperationOutcome {
    /// Decodes a reply; `retry_after` is the raw `Retry-After` header, if any.
    ///
    /// An unparsable `Retry-After` is ignored rather than failing the poll, and so is a mistyped
    /// optional field (see [`decode_with_warnings`](Self::decode_with_warnings)).
    pub fn decode(status: u16, body: &[u8], retry_after: Option<&str>) -> Result<Self, Error> {
        Self::decode_with_warnings(status, body, retry_after).map(|(outcome, _)| outcome)
    }

    /// Decodes a reply, with a warning for each field set aside.
    ///
    /// Needed: a JSON object with `state`, a string. Set aside when mistyped: `description`,
    /// `instance_usable`, `update_repeatable`.
    pub fn decode_with_warnings(
        status: u16,
        body: &[u8],
        retry_after: Option<&str>,
    ) -> Result<(Self, Vec<DecodeWarning>), Error> {
        match status {
            200 => {
                let (resource, warnings): (LastOperationResource, _) = decode(status, body)?;
                let retry_after = retry_after.and_then(|v| RetryAfter::parse(v).ok());
                let outcome = LastOperationOutcome::State(LastOperation {
                    resource,
                    retry_after,
                });
                Ok((outcome, warnings))
            }
            410 => clean(LastOperationOutcome::Gone),
            404 => clean(LastOperationOutcome::NotFound),
            _ => Err(Error::UnexpectedStatus { status }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LastOperationState;

    #[test]
    fn provision_round_trips_through_status_and_body() {
        let permit = AsyncPermit::from_accepts_incomplete(Some(true));
        let outcomes = [
            ProvisionOutcome::Created(
                ServiceInstanceProvisionResponse::new().with_dashboard_url("https://d"),
            ),
            ProvisionOutcome::AlreadyExists(
                ServiceInstanceProvisionResponse::new().with_dashboard_url_null(),
            ),
            ProvisionOutcome::Accepted(Accepted::new(
                permit.unwrap(),
                ServiceInstanceAsyncOperation::new().with_operation("op-1"),
            )),
        ];
        for outcome in outcomes {
            let body = serde_json::to_vec(&outcome).unwrap();
            let back = ProvisionOutcome::decode(outcome.status().as_u16(), &body, permit).unwrap();
            assert_eq!(back, outcome);
        }
    }

    #[test]
    fn accepted_without_permit_is_refused() {
        assert_eq!(
            ProvisionOutcome::decode(202, b"{}", None).unwrap_err(),
            Error::AsyncNotPermitted
        );
        assert_eq!(
            DeleteOutcome::decode(202, b"{}", None).unwrap_err(),
            Error::AsyncNotPermitted
        );
    }

    #[test]
    fn delete_bodies_are_empty_objects() {
        assert_eq!(
            serde_json::to_string(&DeleteOutcome::Deleted).unwrap(),
            "{}"
        );
        assert_eq!(DeleteOutcome::Gone.status(), StatusCode::GONE);
        assert_eq!(
            DeleteOutcome::decode(200, b"", None).unwrap(),
            DeleteOutcome::Deleted
        );
        assert!(matches!(
            DeleteOutcome::decode(201, b"{}", None),
            Err(Error::UnexpectedStatus { status: 201 })
        ));
    }

    #[test]
    fn malformed_bodies_are_decode_errors() {
        assert!(matches!(
            BindOutcome::decode(201, b"{\"credentials\": 5}", None),
            Err(Error::Decode { status: 201, .. })
        ));
        assert!(matches!(
            LastOperationOutcome::decode(200, b"{}", None),
            Err(Error::Decode { status: 200, .. })
        ));
    }

    #[test]
    fn last_operation_keeps_retry_after() {
        let body = br#"{"state":"in progress","description":"half way"}"#;
        let LastOperationOutcome::State(op) =
            LastOperationOutcome::decode(200, body, Some("7")).unwrap()
        else {
            panic!("expected a state")
        };
        assert_eq!(op.resource.state, LastOperationState::InProgress);
        assert_eq!(op.retry_after, Some(RetryAfter::seconds(7)));
    }

    #[test]
    fn retry_after_parses_both_forms() {
        assert_eq!(RetryAfter::parse("10").unwrap(), RetryAfter::seconds(10));
        let at = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(at.to_header_value(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at.delay_from(SystemTime::now()), Duration::ZERO);
        assert!(RetryAfter::parse("soon").is_err());
        assert!(RetryAfter::parse("-5").is_err());
    }

    #[test]
    fn retry_after_never_panics_when_formatting() {
        let early = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            RetryAfter::At(early).to_header_value(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let late = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(
            RetryAfter::At(late).to_header_value(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            RetryAfter::Delay(Duration::from_millis(500)).to_header_value(),
            "1"
        );
        assert_eq!(
            RetryAfter::Delay(Duration::from_secs(3)).to_header_value(),
            "3"
        );
    }
}
