//! What the recording broker answers: every success variant and every error, as plain data that
//! serializes to JSON (so a failing case can be pasted into a regression test), with the
//! strategies that generate them and the reply the platform should see.

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use osb_server::BrokerError;
use osb_types::testing::{
    arb_async_operation, arb_error_response, arb_last_operation_resource,
    arb_service_binding_resource, arb_service_binding_response,
    arb_service_instance_async_operation, arb_service_instance_provision_response,
    arb_service_instance_resource, arb_service_instance_update_response, arb_text,
    arb_unknown_enum,
};
use osb_types::{
    Accepted, ApiVersion, AsyncOperation, AsyncPermit, BindOutcome, DeleteOutcome, ErrorCode,
    ErrorResponse, FetchBindingOutcome, FetchInstanceOutcome, LastOperation, LastOperationOutcome,
    LastOperationResource, Operation, OperationId, ProvisionOutcome, RetryAfter,
    ServiceBindingResource, ServiceBindingResponse, ServiceInstanceAsyncOperation,
    ServiceInstanceProvisionResponse, ServiceInstanceResource, ServiceInstanceUpdateResponse,
    ShapeForVersion, UpdateOutcome,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The broker's answer: a success outcome or an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    /// A success outcome.
    Reply(T),
    /// A [`BrokerError`].
    Error(ErrorScript),
}

/// A [`BrokerError`] as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorScript {
    /// [`BrokerError::bad_request`].
    BadRequest {
        /// The description.
        description: String,
    },
    /// [`BrokerError::not_found`].
    NotFound {
        /// The description.
        description: String,
    },
    /// [`BrokerError::conflict`].
    Conflict {
        /// The description.
        description: String,
    },
    /// [`BrokerError::gone`].
    Gone,
    /// [`BrokerError::UnprocessableEntity`].
    Unprocessable {
        /// The `error` code, as written on the wire.
        code: Option<String>,
        /// The description.
        description: String,
        /// `instance_usable`.
        instance_usable: Option<bool>,
        /// `update_repeatable`.
        update_repeatable: Option<bool>,
    },
    /// [`BrokerError::Failed`]: any 4xx or 5xx status with any error body.
    Failed {
        /// The status.
        status: u16,
        /// The body.
        body: ErrorResponse,
    },
    /// [`BrokerError::not_supported`] for the endpoint called.
    NotSupported,
    /// [`BrokerError::internal`] with a message that must never reach the platform.
    Internal {
        /// The message, logged by the server only.
        message: String,
    },
}

/// Reply of provision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionReply {
    /// `201`.
    Created(ServiceInstanceProvisionResponse),
    /// `200`.
    AlreadyExists(ServiceInstanceProvisionResponse),
    /// `202`.
    Accepted(ServiceInstanceAsyncOperation),
}

/// Reply of update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateReply {
    /// `200`.
    Updated(ServiceInstanceUpdateResponse),
    /// `202`.
    Accepted(ServiceInstanceAsyncOperation),
}

/// Reply of deprovision and unbind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReply {
    /// `200`.
    Deleted,
    /// `202`.
    Accepted(AsyncOperation),
    /// `410`.
    Gone,
}

/// Reply of bind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindReply {
    /// `201`.
    Created(ServiceBindingResponse),
    /// `200`.
    AlreadyExists(ServiceBindingResponse),
    /// `202`.
    Accepted(AsyncOperation),
}

/// Reply of fetching an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // test data
pub enum FetchInstanceReply {
    /// `200`.
    Found(ServiceInstanceResource),
    /// `404`.
    NotFound,
}

/// Reply of fetching a binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // test data
pub enum FetchBindingReply {
    /// `200`.
    Found(ServiceBindingResource),
    /// `404`.
    NotFound,
}

/// Reply of a last-operation poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastOperationReply {
    /// `200` with a state and maybe `Retry-After`.
    State {
        /// The body.
        resource: LastOperationResource,
        /// The `Retry-After` header.
        retry_after: Option<RetryAfterScript>,
    },
    /// `410`.
    Gone,
    /// `404`.
    NotFound,
}

/// A `Retry-After` value as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterScript {
    /// Delay in seconds.
    Seconds(u64),
    /// An HTTP date, as seconds since the Unix epoch.
    At(u64),
}

impl RetryAfterScript {
    /// The typed value.
    pub fn to_retry_after(self) -> RetryAfter {
        match self {
            RetryAfterScript::Seconds(s) => RetryAfter::seconds(s),
            RetryAfterScript::At(s) => RetryAfter::At(UNIX_EPOCH + Duration::from_secs(s)),
        }
    }
}

/// A permit for `Accepted`: the request's own, or — when the request carried none — a forged
/// one, so the server's refusal (`422 AsyncRequired`) is exercised too.
fn permit_or_forged(permit: Option<AsyncPermit>) -> AsyncPermit {
    permit.unwrap_or_else(|| {
        AsyncPermit::from_accepts_incomplete(Some(true))
            .expect("accepts_incomplete=true always yields a permit")
    })
}

impl ProvisionReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self, permit: Option<AsyncPermit>) -> ProvisionOutcome {
        match self.clone() {
            ProvisionReply::Created(b) => ProvisionOutcome::Created(b),
            ProvisionReply::AlreadyExists(b) => ProvisionOutcome::AlreadyExists(b),
            ProvisionReply::Accepted(b) => {
                ProvisionOutcome::Accepted(Accepted::new(permit_or_forged(permit), b))
            }
        }
    }
}

impl UpdateReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self, permit: Option<AsyncPermit>) -> UpdateOutcome {
        match self.clone() {
            UpdateReply::Updated(b) => UpdateOutcome::Updated(b),
            UpdateReply::Accepted(b) => {
                UpdateOutcome::Accepted(Accepted::new(permit_or_forged(permit), b))
            }
        }
    }
}

impl DeleteReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self, permit: Option<AsyncPermit>) -> DeleteOutcome {
        match self.clone() {
            DeleteReply::Deleted => DeleteOutcome::Deleted,
            DeleteReply::Gone => DeleteOutcome::Gone,
            DeleteReply::Accepted(b) => {
                DeleteOutcome::Accepted(Accepted::new(permit_or_forged(permit), b))
            }
        }
    }
}

impl BindReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self, permit: Option<AsyncPermit>) -> BindOutcome {
        match self.clone() {
            BindReply::Created(b) => BindOutcome::Created(b),
            BindReply::AlreadyExists(b) => BindOutcome::AlreadyExists(b),
            BindReply::Accepted(b) => {
                BindOutcome::Accepted(Accepted::new(permit_or_forged(permit), b))
            }
        }
    }
}

impl FetchInstanceReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self) -> FetchInstanceOutcome {
        match self.clone() {
            FetchInstanceReply::Found(r) => FetchInstanceOutcome::Found(r),
            FetchInstanceReply::NotFound => FetchInstanceOutcome::NotFound,
        }
    }
}

impl FetchBindingReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self) -> FetchBindingOutcome {
        match self.clone() {
            FetchBindingReply::Found(r) => FetchBindingOutcome::Found(r),
            FetchBindingReply::NotFound => FetchBindingOutcome::NotFound,
        }
    }
}

impl LastOperationReply {
    /// The outcome the broker returns.
    pub fn to_outcome(&self) -> LastOperationOutcome {
        match self.clone() {
            LastOperationReply::State {
                resource,
                retry_after,
            } => {
                let state = LastOperation::new(resource);
                LastOperationOutcome::State(match retry_after {
                    Some(r) => state.with_retry_after(r.to_retry_after()),
                    None => state,
                })
            }
            LastOperationReply::Gone => LastOperationOutcome::Gone,
            LastOperationReply::NotFound => LastOperationOutcome::NotFound,
        }
    }
}

impl ErrorScript {
    /// The error the broker returns from `operation`.
    pub fn to_error(&self, operation: Operation) -> BrokerError {
        match self.clone() {
            ErrorScript::BadRequest { description } => BrokerError::bad_request(description),
            ErrorScript::NotFound { description } => BrokerError::not_found(description),
            ErrorScript::Conflict { description } => BrokerError::conflict(description),
            ErrorScript::Gone => BrokerError::gone(),
            ErrorScript::Unprocessable {
                code,
                description,
                instance_usable,
                update_repeatable,
            } => BrokerError::UnprocessableEntity {
                code: code.as_deref().map(ErrorCode::from),
                description,
                instance_usable,
                update_repeatable,
            },
            ErrorScript::Failed { status, body } => BrokerError::Failed {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body: Box::new(body),
            },
            ErrorScript::NotSupported => BrokerError::not_supported(operation),
            ErrorScript::Internal { message } => BrokerError::internal(message),
        }
    }

    /// The reply the platform must see for this error from `operation` at `version`.
    pub fn expected_reply(&self, operation: Operation, version: ApiVersion) -> ErrorReply {
        let described = |status: u16, description: &str| ErrorReply {
            status,
            body: ExpectedBody::Exact(ErrorResponse::described(description)),
        };
        let mut reply = match self {
            ErrorScript::BadRequest { description } => described(400, description),
            ErrorScript::NotFound { description } => described(404, description),
            ErrorScript::Conflict { description } => described(409, description),
            ErrorScript::Gone => ErrorReply {
                status: 410,
                body: ExpectedBody::Exact(ErrorResponse::new()),
            },
            ErrorScript::Unprocessable {
                code,
                description,
                instance_usable,
                update_repeatable,
            } => {
                let mut body = ErrorResponse::described(description);
                body.error = code.clone();
                body.instance_usable = *instance_usable;
                body.update_repeatable = *update_repeatable;
                ErrorReply {
                    status: 422,
                    body: ExpectedBody::Exact(body),
                }
            }
            ErrorScript::Failed { status, body } => ErrorReply {
                status: if *status >= 400 { *status } else { 500 },
                body: ExpectedBody::Exact(body.clone()),
            },
            ErrorScript::NotSupported => ErrorReply {
                status: if operation == Operation::Update {
                    422
                } else {
                    400
                },
                body: ExpectedBody::Mentions(operation.path().to_string()),
            },
            ErrorScript::Internal { message } => ErrorReply {
                status: 500,
                body: ExpectedBody::Hides(message.clone()),
            },
        };
        if let ExpectedBody::Exact(body) = &mut reply.body {
            keep_usability(body, operation, version);
        }
        reply
    }
}

/// `instance_usable` (update and deprovision) and `update_repeatable` (update) appeared in 2.16;
/// the server leaves them out everywhere else.
pub fn keep_usability(body: &mut ErrorResponse, operation: Operation, version: ApiVersion) {
    let (usable, repeatable) = match operation {
        _ if version < ApiVersion::V2_16 => (false, false),
        Operation::Update => (true, true),
        Operation::Deprovision => (true, false),
        _ => (false, false),
    };
    if !usable {
        body.instance_usable = None;
    }
    if !repeatable {
        body.update_repeatable = None;
    }
}

/// An error reply the platform must see.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorReply {
    /// The status.
    pub status: u16,
    /// What the body must be.
    pub body: ExpectedBody,
}

/// What an error body must be.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectedBody {
    /// Exactly this.
    Exact(ErrorResponse),
    /// A description, no code, mentioning this text (the server words it).
    Mentions(String),
    /// A description, no code, that does not contain this text (an internal error's message).
    Hides(String),
    /// The server's guard rejection: this code (or none) and a description.
    Guard(Option<ErrorCode>),
}

impl ExpectedBody {
    /// Whether `body` matches.
    pub fn matches(&self, body: &ErrorResponse) -> bool {
        let described = body.description.as_deref().is_some_and(|d| !d.is_empty());
        match self {
            ExpectedBody::Exact(expected) => expected == body,
            ExpectedBody::Mentions(text) => {
                described
                    && body.error.is_none()
                    && body
                        .description
                        .as_deref()
                        .is_some_and(|d| d.contains(text))
            }
            ExpectedBody::Hides(text) => {
                described
                    && body.error.is_none()
                    && !serde_json::to_string(body).is_ok_and(|b| b.contains(text.as_str()))
            }
            ExpectedBody::Guard(code) => described && body.code() == *code,
        }
    }
}

/// `null` for `dashboard_url` and `operation` appeared in 2.15; older peers get them left out.
fn drop_null<T>(field: &mut Option<Option<T>>, version: ApiVersion) {
    if version < ApiVersion::V2_15 && matches!(field, Some(None)) {
        *field = None;
    }
}

fn shaped_instance_async(
    mut body: ServiceInstanceAsyncOperation,
    version: ApiVersion,
) -> ServiceInstanceAsyncOperation {
    body.shape_for_version(version);
    drop_null(&mut body.dashboard_url, version);
    drop_null(&mut body.operation, version);
    body
}

/// An update's `dashboard_url` must be a non-empty string when present: the server leaves out a
/// `null` or `""`.
fn drop_unset_url(field: &mut Option<Option<String>>) {
    if matches!(field, Some(None)) || matches!(field, Some(Some(url)) if url.is_empty()) {
        *field = None;
    }
}

/// What the server answers when the broker's reply breaks the spec (a binding's expiry).
fn broken_reply() -> ErrorReply {
    ErrorReply {
        status: 500,
        body: ExpectedBody::Guard(None),
    }
}

fn shaped<T: ShapeForVersion>(mut value: T, version: ApiVersion) -> T {
    value.shape_for_version(version);
    value
}

/// Whether the server refuses to send a broker's operation token: empty or longer than 10,000
/// characters (answered `500`).
fn bad_token(token: Option<&OperationId>) -> bool {
    token.is_some_and(|t| t.is_empty() || t.chars().count() > osb_types::MAX_OPERATION_LEN)
}

/// What the server answers when the broker's operation token breaks the spec.
fn bad_token_reply() -> ErrorReply {
    ErrorReply {
        status: 500,
        body: ExpectedBody::Guard(None),
    }
}

/// What the server answers when a broker returns `Accepted` to a request without a permit.
pub fn async_required() -> ErrorReply {
    match BrokerError::async_required() {
        BrokerError::UnprocessableEntity {
            code, description, ..
        } => {
            let mut body = ErrorResponse::described(description);
            body.error = code.map(|c| c.as_str().to_string());
            ErrorReply {
                status: 422,
                body: ExpectedBody::Exact(body),
            }
        }
        other => ErrorReply {
            status: other.status_for(Operation::Provision).as_u16(),
            body: ExpectedBody::Guard(Some(ErrorCode::AsyncRequired)),
        },
    }
}

/// What the platform must see: an outcome or an error reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected<T> {
    /// This outcome.
    Outcome(T),
    /// This error reply.
    Error(ErrorReply),
}

impl ProvisionReply {
    /// What the platform sees at `version`, given whether the request carried a permit.
    pub fn expected(&self, permit: bool, version: ApiVersion) -> Expected<ProvisionOutcome> {
        let p = AsyncPermit::from_accepts_incomplete(Some(true));
        Expected::Outcome(match self.clone() {
            ProvisionReply::Created(mut b) => {
                b.shape_for_version(version);
                drop_null(&mut b.dashboard_url, version);
                ProvisionOutcome::Created(b)
            }
            ProvisionReply::AlreadyExists(mut b) => {
                b.shape_for_version(version);
                drop_null(&mut b.dashboard_url, version);
                ProvisionOutcome::AlreadyExists(b)
            }
            ProvisionReply::Accepted(_) if !permit => return Expected::Error(async_required()),
            ProvisionReply::Accepted(b) if bad_token(b.operation.clone().flatten().as_ref()) => {
                return Expected::Error(bad_token_reply());
            }
            ProvisionReply::Accepted(b) => ProvisionOutcome::Accepted(Accepted::new(
                permit_or_forged(p),
                shaped_instance_async(b, version),
            )),
        })
    }
}

impl UpdateReply {
    /// What the platform sees at `version`, given whether the request carried a permit.
    pub fn expected(&self, permit: bool, version: ApiVersion) -> Expected<UpdateOutcome> {
        let p = AsyncPermit::from_accepts_incomplete(Some(true));
        Expected::Outcome(match self.clone() {
            UpdateReply::Updated(b) => {
                let mut b = shaped(b, version);
                drop_unset_url(&mut b.dashboard_url);
                UpdateOutcome::Updated(b)
            }
            UpdateReply::Accepted(_) if !permit => return Expected::Error(async_required()),
            UpdateReply::Accepted(b) if bad_token(b.operation.clone().flatten().as_ref()) => {
                return Expected::Error(bad_token_reply());
            }
            UpdateReply::Accepted(b) => {
                let mut b = shaped_instance_async(b, version);
                drop_unset_url(&mut b.dashboard_url);
                if matches!(b.operation, Some(None)) {
                    b.operation = None;
                }
                UpdateOutcome::Accepted(Accepted::new(permit_or_forged(p), b))
            }
        })
    }
}

impl DeleteReply {
    /// What the platform sees at `version`, given whether the request carried a permit.
    pub fn expected(&self, permit: bool, version: ApiVersion) -> Expected<DeleteOutcome> {
        let p = AsyncPermit::from_accepts_incomplete(Some(true));
        Expected::Outcome(match self.clone() {
            DeleteReply::Deleted => DeleteOutcome::Deleted,
            DeleteReply::Gone => DeleteOutcome::Gone,
            DeleteReply::Accepted(_) if !permit => return Expected::Error(async_required()),
            DeleteReply::Accepted(b) if bad_token(b.operation.as_ref()) => {
                return Expected::Error(bad_token_reply());
            }
            DeleteReply::Accepted(b) => {
                DeleteOutcome::Accepted(Accepted::new(permit_or_forged(p), shaped(b, version)))
            }
        })
    }
}

impl BindReply {
    /// What the platform sees at `version`, given whether the request carried a permit.
    pub fn expected(&self, permit: bool, version: ApiVersion) -> Expected<BindOutcome> {
        let p = AsyncPermit::from_accepts_incomplete(Some(true));
        Expected::Outcome(match self.clone() {
            BindReply::Created(b) | BindReply::AlreadyExists(b)
                if shaped(b.clone(), version).validate().is_err() =>
            {
                return Expected::Error(broken_reply());
            }
            BindReply::Created(b) => BindOutcome::Created(shaped(b, version)),
            BindReply::AlreadyExists(b) => BindOutcome::AlreadyExists(shaped(b, version)),
            BindReply::Accepted(_) if !permit => return Expected::Error(async_required()),
            BindReply::Accepted(b) if bad_token(b.operation.as_ref()) => {
                return Expected::Error(bad_token_reply());
            }
            BindReply::Accepted(b) => {
                BindOutcome::Accepted(Accepted::new(permit_or_forged(p), shaped(b, version)))
            }
        })
    }
}

impl FetchInstanceReply {
    /// What the platform sees at `version`.
    pub fn expected(&self, version: ApiVersion) -> FetchInstanceOutcome {
        match self.clone() {
            FetchInstanceReply::Found(r) => FetchInstanceOutcome::Found(shaped(r, version)),
            FetchInstanceReply::NotFound => FetchInstanceOutcome::NotFound,
        }
    }
}

impl FetchBindingReply {
    /// What the platform sees at `version`.
    pub fn expected(&self, version: ApiVersion) -> Expected<FetchBindingOutcome> {
        Expected::Outcome(match self.clone() {
            FetchBindingReply::Found(r) => {
                let r = shaped(r, version);
                if r.validate().is_err() {
                    return Expected::Error(broken_reply());
                }
                FetchBindingOutcome::Found(r)
            }
            FetchBindingReply::NotFound => FetchBindingOutcome::NotFound,
        })
    }
}

impl LastOperationReply {
    /// What the platform sees at `version`; binding polls carry no usability flags.
    pub fn expected(&self, version: ApiVersion, binding: bool) -> LastOperationOutcome {
        match self.clone() {
            LastOperationReply::State {
                mut resource,
                retry_after,
            } => {
                resource.shape_for_version(version);
                if binding {
                    resource.instance_usable = None;
                    resource.update_repeatable = None;
                }
                let state = LastOperation::new(resource);
                LastOperationOutcome::State(match retry_after {
                    Some(r) => state.with_retry_after(r.to_retry_after()),
                    None => state,
                })
            }
            LastOperationReply::Gone => LastOperationOutcome::Gone,
            LastOperationReply::NotFound => LastOperationOutcome::NotFound,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn arb_code() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some("AsyncRequired".to_string())),
        1 => Just(Some("ConcurrencyError".to_string())),
        1 => Just(Some("RequiresApp".to_string())),
        1 => Just(Some("MaintenanceInfoConflict".to_string())),
        1 => arb_unknown_enum(&["AsyncRequired", "ConcurrencyError", "RequiresApp", "MaintenanceInfoConflict"]).prop_map(Some),
    ]
}

/// Every error a broker may return from `operation`: the statuses the spec lists for it (4xx
/// besides 401 and 412, which the framework answers), other failures (5xx, 403, 429), `410` and
/// `404` bodies, usability flags, unknown codes and extension fields.
pub fn arb_error_script(operation: Operation) -> impl Strategy<Value = ErrorScript> {
    let mut statuses: Vec<u16> = operation
        .status_codes()
        .iter()
        .copied()
        .filter(|s| *s >= 400 && *s != 401 && *s != 412)
        .collect();
    statuses.extend([403, 404, 410, 429, 500, 501, 503]);
    statuses.sort_unstable();
    statuses.dedup();
    // Any other status the HTTP crate accepts; below 400 the server answers 500.
    let status = prop_oneof![4 => proptest::sample::select(statuses), 1 => 100u16..=999];
    let o = proptest::option::of;
    prop_oneof![
        1 => arb_text().prop_map(|description| ErrorScript::BadRequest { description }),
        1 => arb_text().prop_map(|description| ErrorScript::NotFound { description }),
        1 => arb_text().prop_map(|description| ErrorScript::Conflict { description }),
        1 => Just(ErrorScript::Gone),
        2 => (arb_code(), arb_text(), o(any::<bool>()), o(any::<bool>())).prop_map(
            |(code, description, instance_usable, update_repeatable)| {
                ErrorScript::Unprocessable {
                    code,
                    description,
                    instance_usable,
                    update_repeatable,
                }
            }
        ),
        2 => (status, arb_error_response())
            .prop_map(|(status, body)| ErrorScript::Failed { status, body }),
        1 => Just(ErrorScript::NotSupported),
        1 => "[A-Za-z]{4,12} secret [0-9]{4}"
            .prop_map(|message| ErrorScript::Internal { message }),
    ]
}

/// A broker's operation token: as generated, or (rarely) one the spec does not allow — empty or
/// longer than 10,000 characters.
fn arb_token_override() -> impl Strategy<Value = Option<OperationId>> {
    prop_oneof![
        12 => Just(None),
        1 => Just(Some(OperationId::from(""))),
        1 => (10_001usize..10_005).prop_map(|n| Some(OperationId::from("t".repeat(n)))),
    ]
}

fn arb_instance_async() -> impl Strategy<Value = ServiceInstanceAsyncOperation> {
    (arb_service_instance_async_operation(), arb_token_override()).prop_map(|(mut body, token)| {
        if let Some(token) = token {
            body.operation = Some(Some(token));
        }
        body
    })
}

fn arb_async() -> impl Strategy<Value = AsyncOperation> {
    (arb_async_operation(), arb_token_override()).prop_map(|(mut body, token)| {
        if token.is_some() {
            body.operation = token;
        }
        body
    })
}

fn answer<T: std::fmt::Debug + Clone>(
    operation: Operation,
    reply: impl Strategy<Value = T>,
) -> impl Strategy<Value = Answer<T>> {
    prop_oneof![
        3 => reply.prop_map(Answer::Reply),
        1 => arb_error_script(operation).prop_map(Answer::Error),
    ]
}

/// Answers to provision.
pub fn arb_provision_answer() -> impl Strategy<Value = Answer<ProvisionReply>> {
    answer(
        Operation::Provision,
        prop_oneof![
            arb_provision_response().prop_map(ProvisionReply::Created),
            arb_provision_response().prop_map(ProvisionReply::AlreadyExists),
            arb_instance_async().prop_map(ProvisionReply::Accepted),
        ],
    )
}

/// Answers to update.
pub fn arb_update_answer() -> impl Strategy<Value = Answer<UpdateReply>> {
    answer(
        Operation::Update,
        prop_oneof![
            (arb_service_instance_update_response(), any::<u8>()).prop_map(|(mut b, n)| {
                slip(
                    &mut b.extra,
                    n,
                    b.dashboard_url.is_none(),
                    "dashboard_url",
                    json!(5),
                );
                UpdateReply::Updated(b)
            }),
            arb_instance_async().prop_map(UpdateReply::Accepted),
        ],
    )
}

/// Answers to deprovision or unbind.
pub fn arb_delete_answer(operation: Operation) -> impl Strategy<Value = Answer<DeleteReply>> {
    answer(
        operation,
        prop_oneof![
            Just(DeleteReply::Deleted),
            Just(DeleteReply::Gone),
            arb_async().prop_map(DeleteReply::Accepted),
        ],
    )
}

/// A binding's `expires_at` and `renew_before`: mostly well-formed and ordered (either absent),
/// sometimes out of order or not timestamps at all, which the server answers with `500`.
fn arb_expiry() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    let stamp = (0u64..253_402_300_799, 0u32..1000).prop_map(|(secs, millis)| {
        let days = secs / 86_400;
        let (y, m, d) = civil_from_days(days);
        let rem = secs % 86_400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    });
    let any_text = proptest::string::string_regex("[0-9TZ:.-]{0,24}").expect("a valid regex");
    prop_oneof![
        6 => (proptest::option::of(stamp.clone()), proptest::option::of(stamp.clone()))
            .prop_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) if b > a => (Some(b), Some(a)),
                pair => pair,
            }),
        1 => (proptest::option::of(stamp), proptest::option::of(any_text)),
    ]
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A broker's slip, one reply in five: a spec field the body leaves out is sent anyway, with a
/// value of the wrong type (it rides in `extra`, which the server writes out as it is). The
/// client must set it aside into `extra` under the same key, and so decode the body unchanged,
/// instead of failing the call.
fn slip(extra: &mut Map<String, Value>, n: u8, absent: bool, field: &str, wrong: Value) {
    if absent && n.is_multiple_of(5) {
        extra.insert(field.to_string(), wrong);
    }
}

/// A provision reply body, sometimes with a slip in `dashboard_url`.
fn arb_provision_response() -> impl Strategy<Value = ServiceInstanceProvisionResponse> {
    (arb_service_instance_provision_response(), any::<u8>()).prop_map(|(mut body, n)| {
        let absent = body.dashboard_url.is_none();
        slip(&mut body.extra, n, absent, "dashboard_url", json!(5));
        body
    })
}

/// A bind reply body whose expiry is mostly well-formed, sometimes with a slip in
/// `syslog_drain_url`.
fn arb_binding_response() -> impl Strategy<Value = ServiceBindingResponse> {
    (arb_service_binding_response(), arb_expiry(), any::<u8>()).prop_map(|(mut body, expiry, n)| {
        if let Some(metadata) = &mut body.metadata {
            (metadata.expires_at, metadata.renew_before) = expiry;
        }
        let absent = body.syslog_drain_url.is_none();
        slip(&mut body.extra, n, absent, "syslog_drain_url", json!(true));
        body
    })
}

/// Answers to bind.
pub fn arb_bind_answer() -> impl Strategy<Value = Answer<BindReply>> {
    answer(
        Operation::Bind,
        prop_oneof![
            arb_binding_response().prop_map(BindReply::Created),
            arb_binding_response().prop_map(BindReply::AlreadyExists),
            arb_async().prop_map(BindReply::Accepted),
        ],
    )
}

/// Answers to fetching an instance.
pub fn arb_fetch_instance_answer() -> impl Strategy<Value = Answer<FetchInstanceReply>> {
    answer(
        Operation::FetchInstance,
        prop_oneof![
            3 => arb_service_instance_resource().prop_map(FetchInstanceReply::Found),
            1 => Just(FetchInstanceReply::NotFound),
        ],
    )
}

/// Answers to fetching a binding.
pub fn arb_fetch_binding_answer() -> impl Strategy<Value = Answer<FetchBindingReply>> {
    answer(
        Operation::FetchBinding,
        prop_oneof![
            3 => (arb_service_binding_resource(), arb_expiry())
                .prop_map(|(mut r, expiry)| {
                    if let Some(metadata) = &mut r.metadata {
                        (metadata.expires_at, metadata.renew_before) = expiry;
                    }
                    FetchBindingReply::Found(r)
                }),
            1 => Just(FetchBindingReply::NotFound),
        ],
    )
}

/// A `Retry-After` that survives the header: seconds, or a whole-second date in 1970–9999.
pub fn arb_retry_after_script() -> impl Strategy<Value = RetryAfterScript> {
    prop_oneof![
        (0u64..=86_400).prop_map(RetryAfterScript::Seconds),
        any::<u64>().prop_map(RetryAfterScript::Seconds),
        (0u64..253_402_300_800).prop_map(RetryAfterScript::At),
    ]
}

/// Answers to a last-operation poll.
pub fn arb_last_operation_answer(
    operation: Operation,
) -> impl Strategy<Value = Answer<LastOperationReply>> {
    answer(
        operation,
        prop_oneof![
            4 => (
                arb_last_operation_resource(),
                proptest::option::of(arb_retry_after_script()),
                any::<u8>(),
            )
                .prop_map(|(mut resource, retry_after, n)| {
                    let absent = resource.instance_usable.is_none();
                    slip(&mut resource.extra, n, absent, "instance_usable", json!("false"));
                    LastOperationReply::State {
                        resource,
                        retry_after,
                    }
                }),
            1 => Just(LastOperationReply::Gone),
            1 => Just(LastOperationReply::NotFound),
        ],
    )
}
