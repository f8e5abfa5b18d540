//! One case per endpoint: what the platform sends and what the broker answers, as JSON-friendly
//! data; its strategy; and the check that runs it through a [`Harness`] and compares what the
//! broker received and what the platform got with what the spec says.

use std::fmt;

use osb_client::{CallOptions, Error as ClientError};
use osb_types::testing::{
    arb_bind_query, arb_binding_last_operation_query, arb_deprovision_query, arb_id,
    arb_instance_last_operation_query, arb_provision_query, arb_unbind_query, arb_update_query,
};
use osb_types::{
    ApiVersion, BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, Catalog,
    DeleteOutcome, DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome,
    FetchInstanceQuery, InstanceId, InstanceLastOperationQuery, LastOperationOutcome, Operation,
    OriginatingIdentity, PlanId, ProvisionOutcome, ProvisionQuery, ServiceBindingRequest,
    ServiceId, ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, ShapeForVersion,
    UnbindQuery, UpdateOutcome, UpdateQuery,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use crate::answers::{
    Answer, BindReply, DeleteReply, ErrorReply, Expected, ExpectedBody, FetchBindingReply,
    FetchInstanceReply, LastOperationReply, ProvisionReply, UpdateReply, arb_bind_answer,
    arb_delete_answer, arb_fetch_binding_answer, arb_fetch_instance_answer,
    arb_last_operation_answer, arb_provision_answer, arb_update_answer,
};
use crate::broker::{Call, Received, ReceivedContext, Script};
use crate::catalog::{PLANS, arb_servable_catalog};
use crate::harness::Harness;
use crate::oracle;
use crate::requests::{
    arb_bind_request, arb_hints, arb_identity, arb_operation, arb_plan_ids, arb_provision_request,
    arb_request_identity, arb_update_request, arb_version,
};

/// The headers of a request: the client's configured version, the originating identity and the
/// request identity (absent: the client makes one up).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Headers {
    /// `X-Broker-API-Version`, the version the client is configured for.
    pub version: ApiVersion,
    /// `X-Broker-API-Originating-Identity`.
    #[serde(default, with = "identity_serde")]
    pub originating_identity: Option<OriginatingIdentity>,
    /// `X-Broker-API-Request-Identity`.
    #[serde(default)]
    pub request_identity: Option<String>,
}

impl Headers {
    fn options(&self) -> CallOptions {
        let mut opts = match &self.originating_identity {
            Some(identity) => CallOptions::new().originating_identity(identity.clone()),
            None => CallOptions::new().without_originating_identity(),
        };
        if let Some(id) = &self.request_identity {
            opts = opts.request_identity(id);
        }
        opts
    }
}

/// An originating identity as `{"platform": …, "value": {…}}`.
mod identity_serde {
    use osb_types::OriginatingIdentity;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    #[derive(Serialize, Deserialize)]
    struct Parts {
        platform: String,
        value: Map<String, Value>,
    }

    pub(super) fn serialize<S: Serializer>(
        identity: &Option<OriginatingIdentity>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        identity
            .as_ref()
            .map(|i| Parts {
                platform: i.platform().to_string(),
                value: i.value(),
            })
            .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OriginatingIdentity>, D::Error> {
        Option::<Parts>::deserialize(deserializer)?
            .map(|p| {
                OriginatingIdentity::from_parts(&p.platform, p.value)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// `GET /v2/catalog` against a broker serving `catalog`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CatalogCase {
    pub headers: Headers,
    pub catalog: Catalog,
}

/// Provision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ProvisionCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub query: ProvisionQuery,
    pub request: ServiceInstanceProvisionRequest,
    pub answer: Answer<ProvisionReply>,
}

/// Update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UpdateCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub query: UpdateQuery,
    pub request: ServiceInstanceUpdateRequest,
    pub answer: Answer<UpdateReply>,
}

/// Deprovision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct DeprovisionCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub query: DeprovisionQuery,
    pub answer: Answer<DeleteReply>,
}

/// Last operation on an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct InstanceLastOperationCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub query: InstanceLastOperationQuery,
    pub answer: Answer<LastOperationReply>,
}

/// Fetch an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FetchInstanceCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub query: FetchInstanceQuery,
    pub answer: Answer<FetchInstanceReply>,
}

/// Bind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct BindCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub binding_id: BindingId,
    pub query: BindQuery,
    pub request: ServiceBindingRequest,
    pub answer: Answer<BindReply>,
}

/// Unbind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UnbindCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub binding_id: BindingId,
    pub query: UnbindQuery,
    pub answer: Answer<DeleteReply>,
}

/// Last operation on a binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct BindingLastOperationCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub binding_id: BindingId,
    pub query: BindingLastOperationQuery,
    pub answer: Answer<LastOperationReply>,
}

/// Fetch a binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FetchBindingCase {
    pub headers: Headers,
    pub instance_id: InstanceId,
    pub binding_id: BindingId,
    pub query: FetchBindingQuery,
    pub answer: Answer<FetchBindingReply>,
}

/// One round trip through one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, clippy::large_enum_variant)]
pub enum Case {
    Catalog(CatalogCase),
    Provision(ProvisionCase),
    Update(UpdateCase),
    Deprovision(DeprovisionCase),
    InstanceLastOperation(InstanceLastOperationCase),
    FetchInstance(FetchInstanceCase),
    Bind(BindCase),
    Unbind(UnbindCase),
    BindingLastOperation(BindingLastOperationCase),
    FetchBinding(FetchBindingCase),
}

impl Case {
    /// The endpoint.
    pub fn operation(&self) -> Operation {
        match self {
            Case::Catalog(_) => Operation::Catalog,
            Case::Provision(_) => Operation::Provision,
            Case::Update(_) => Operation::Update,
            Case::Deprovision(_) => Operation::Deprovision,
            Case::InstanceLastOperation(_) => Operation::InstanceLastOperation,
            Case::FetchInstance(_) => Operation::FetchInstance,
            Case::Bind(_) => Operation::Bind,
            Case::Unbind(_) => Operation::Unbind,
            Case::BindingLastOperation(_) => Operation::BindingLastOperation,
            Case::FetchBinding(_) => Operation::FetchBinding,
        }
    }

    /// The case as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("<unserializable case: {e}>"))
    }

    /// The case as a Rust raw string literal of its JSON, ready to paste into a regression test.
    pub fn to_literal(&self) -> String {
        raw_string_literal(&self.to_json())
    }

    /// Reads a case from its JSON.
    pub fn from_json(json: &str) -> Result<Case, String> {
        serde_json::from_str(json).map_err(|e| format!("the case does not parse: {e}"))
    }

    /// Runs the case and checks every property; `Err` describes each difference.
    pub async fn check(&self, harness: &Harness) -> Result<(), String> {
        match self {
            Case::Catalog(c) => check_catalog(harness, c).await,
            Case::Provision(c) => check_provision(harness, c).await,
            Case::Update(c) => check_update(harness, c).await,
            Case::Deprovision(c) => check_deprovision(harness, c).await,
            Case::InstanceLastOperation(c) => check_instance_last_operation(harness, c).await,
            Case::FetchInstance(c) => check_fetch_instance(harness, c).await,
            Case::Bind(c) => check_bind(harness, c).await,
            Case::Unbind(c) => check_unbind(harness, c).await,
            Case::BindingLastOperation(c) => check_binding_last_operation(harness, c).await,
            Case::FetchBinding(c) => check_fetch_binding(harness, c).await,
        }
    }
}

/// `r#"…"#` with as many `#` as needed.
fn raw_string_literal(text: &str) -> String {
    let mut hashes = 1;
    while text.contains(&format!("\"{}", "#".repeat(hashes))) {
        hashes += 1;
    }
    let h = "#".repeat(hashes);
    format!("r{h}\"{text}\"{h}")
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn headers(
    operation: Operation,
    identity: impl Strategy<Value = Option<OriginatingIdentity>>,
) -> impl Strategy<Value = Headers> {
    (arb_version(operation), identity, arb_request_identity()).prop_map(
        |(version, originating_identity, request_identity)| Headers {
            version,
            originating_identity,
            request_identity,
        },
    )
}

fn any_identity() -> impl Strategy<Value = Option<OriginatingIdentity>> {
    proptest::option::of(arb_identity())
}

/// Catalog cases: arbitrary catalogs that pass the linter.
pub fn arb_catalog_case() -> impl Strategy<Value = Case> {
    (
        headers(Operation::Catalog, any_identity()),
        arb_servable_catalog(),
    )
        .prop_map(|(headers, catalog)| Case::Catalog(CatalogCase { headers, catalog }))
}

/// Provision cases.
pub fn arb_provision_case() -> impl Strategy<Value = Case> {
    (
        arb_version(Operation::Provision),
        arb_request_identity(),
        arb_id::<InstanceId>(),
        arb_provision_query(),
        arb_provision_request(),
        arb_provision_answer(),
    )
        .prop_map(
            |(version, request_identity, instance_id, query, (request, identity), answer)| {
                Case::Provision(ProvisionCase {
                    headers: Headers {
                        version,
                        originating_identity: identity,
                        request_identity,
                    },
                    instance_id,
                    query,
                    request,
                    answer,
                })
            },
        )
}

/// Update cases.
pub fn arb_update_case() -> impl Strategy<Value = Case> {
    (
        arb_version(Operation::Update),
        arb_request_identity(),
        arb_id::<InstanceId>(),
        arb_update_query(),
        arb_update_request(),
        arb_update_answer(),
    )
        .prop_map(
            |(version, request_identity, instance_id, query, (request, identity), answer)| {
                Case::Update(UpdateCase {
                    headers: Headers {
                        version,
                        originating_identity: identity,
                        request_identity,
                    },
                    instance_id,
                    query,
                    request,
                    answer,
                })
            },
        )
}

/// Deprovision cases.
pub fn arb_deprovision_case() -> impl Strategy<Value = Case> {
    let op = Operation::Deprovision;
    (
        headers(op, any_identity()),
        arb_id::<InstanceId>(),
        arb_deprovision_query(),
        arb_plan_ids(PLANS),
        arb_delete_answer(op),
    )
        .prop_map(
            |(headers, instance_id, mut query, (service_id, plan_id), answer)| {
                query.service_id = service_id;
                query.plan_id = plan_id;
                Case::Deprovision(DeprovisionCase {
                    headers,
                    instance_id,
                    query,
                    answer,
                })
            },
        )
}

/// Instance last-operation cases.
pub fn arb_instance_last_operation_case() -> impl Strategy<Value = Case> {
    let op = Operation::InstanceLastOperation;
    (
        headers(op, any_identity()),
        arb_id::<InstanceId>(),
        arb_instance_last_operation_query(),
        arb_hints(),
        arb_operation(),
        arb_last_operation_answer(op),
    )
        .prop_map(
            |(headers, instance_id, mut query, (service_id, plan_id), operation, answer)| {
                query.service_id = service_id;
                query.plan_id = plan_id;
                query.operation = operation;
                Case::InstanceLastOperation(InstanceLastOperationCase {
                    headers,
                    instance_id,
                    query,
                    answer,
                })
            },
        )
}

/// Fetch-instance cases.
pub fn arb_fetch_instance_case() -> impl Strategy<Value = Case> {
    let op = Operation::FetchInstance;
    (
        headers(op, any_identity()),
        arb_id::<InstanceId>(),
        arb_hints(),
        arb_fetch_instance_answer(),
    )
        .prop_map(|(headers, instance_id, (service_id, plan_id), answer)| {
            let mut query = FetchInstanceQuery::new();
            query.service_id = service_id;
            query.plan_id = plan_id;
            Case::FetchInstance(FetchInstanceCase {
                headers,
                instance_id,
                query,
                answer,
            })
        })
}

/// Bind cases.
pub fn arb_bind_case() -> impl Strategy<Value = Case> {
    (
        arb_version(Operation::Bind),
        arb_request_identity(),
        (arb_id::<InstanceId>(), arb_id::<BindingId>()),
        arb_bind_query(),
        arb_bind_request(),
        arb_bind_answer(),
    )
        .prop_map(
            |(
                version,
                request_identity,
                (instance_id, binding_id),
                query,
                (request, identity),
                answer,
            )| {
                Case::Bind(BindCase {
                    headers: Headers {
                        version,
                        originating_identity: identity,
                        request_identity,
                    },
                    instance_id,
                    binding_id,
                    query,
                    request,
                    answer,
                })
            },
        )
}

/// Unbind cases.
pub fn arb_unbind_case() -> impl Strategy<Value = Case> {
    let op = Operation::Unbind;
    (
        headers(op, any_identity()),
        (arb_id::<InstanceId>(), arb_id::<BindingId>()),
        arb_unbind_query(),
        arb_plan_ids(PLANS),
        arb_delete_answer(op),
    )
        .prop_map(
            |(headers, (instance_id, binding_id), mut query, (service_id, plan_id), answer)| {
                query.service_id = service_id;
                query.plan_id = plan_id;
                Case::Unbind(UnbindCase {
                    headers,
                    instance_id,
                    binding_id,
                    query,
                    answer,
                })
            },
        )
}

/// Binding last-operation cases.
pub fn arb_binding_last_operation_case() -> impl Strategy<Value = Case> {
    let op = Operation::BindingLastOperation;
    (
        headers(op, any_identity()),
        (arb_id::<InstanceId>(), arb_id::<BindingId>()),
        arb_binding_last_operation_query(),
        arb_hints(),
        arb_operation(),
        arb_last_operation_answer(op),
    )
        .prop_map(
            |(
                headers,
                (instance_id, binding_id),
                mut query,
                (service_id, plan_id),
                operation,
                answer,
            )| {
                query.service_id = service_id;
                query.plan_id = plan_id;
                query.operation = operation;
                Case::BindingLastOperation(BindingLastOperationCase {
                    headers,
                    instance_id,
                    binding_id,
                    query,
                    answer,
                })
            },
        )
}

/// Fetch-binding cases.
pub fn arb_fetch_binding_case() -> impl Strategy<Value = Case> {
    let op = Operation::FetchBinding;
    (
        headers(op, any_identity()),
        (arb_id::<InstanceId>(), arb_id::<BindingId>()),
        arb_hints(),
        arb_fetch_binding_answer(),
    )
        .prop_map(
            |(headers, (instance_id, binding_id), (service_id, plan_id), answer)| {
                let mut query = FetchBindingQuery::new();
                query.service_id = service_id;
                query.plan_id = plan_id;
                Case::FetchBinding(FetchBindingCase {
                    headers,
                    instance_id,
                    binding_id,
                    query,
                    answer,
                })
            },
        )
}

/// The cases of one endpoint.
pub fn arb_case(operation: Operation) -> BoxedStrategy<Case> {
    match operation {
        Operation::Catalog => arb_catalog_case().boxed(),
        Operation::Provision => arb_provision_case().boxed(),
        Operation::Update => arb_update_case().boxed(),
        Operation::Deprovision => arb_deprovision_case().boxed(),
        Operation::InstanceLastOperation => arb_instance_last_operation_case().boxed(),
        Operation::FetchInstance => arb_fetch_instance_case().boxed(),
        Operation::Bind => arb_bind_case().boxed(),
        Operation::Unbind => arb_unbind_case().boxed(),
        Operation::BindingLastOperation => arb_binding_last_operation_case().boxed(),
        Operation::FetchBinding => arb_fetch_binding_case().boxed(),
    }
}

/// Cases of any endpoint.
pub fn arb_any_case() -> BoxedStrategy<Case> {
    proptest::strategy::Union::new(Operation::ALL.map(arb_case)).boxed()
}

// ---------------------------------------------------------------------------------------------
// Expectations

/// Why the client refuses to send a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// `Error::UnsupportedVersion`.
    UnsupportedVersion,
    /// `Error::Validation`.
    Validation,
}

/// What the platform must see.
#[derive(Clone, Debug, PartialEq)]
enum Want<T> {
    Outcome(T),
    Error(ErrorReply),
    Refused(Refusal),
}

/// What must happen: the platform's result, and the one call the broker receives (if any).
#[derive(Debug)]
struct Expectation<T> {
    want: Want<T>,
    call: Option<Received>,
}

/// The reply to a request whose version header went missing in transit.
fn version_missing() -> ErrorReply {
    ErrorReply {
        status: 412,
        body: ExpectedBody::Mentions("X-Broker-API-Version".to_string()),
    }
}

/// The client refuses a request identity a header cannot carry as given: empty, with characters
/// other than visible ASCII, spaces and tabs, or with spaces or tabs at either end (HTTP trims
/// those in transit).
fn request_identity_refusal(headers: &Headers) -> Option<Refusal> {
    let id = headers.request_identity.as_deref()?;
    let allowed = |c: char| c == '\t' || (' '..='~').contains(&c);
    let padded = id.trim_matches([' ', '\t']) != id;
    (id.is_empty() || padded || !id.chars().all(allowed)).then_some(Refusal::Validation)
}

/// The client refuses an originating identity whose platform name the header cannot carry:
/// empty, or anything but visible ASCII without spaces.
fn identity_refusal(headers: &Headers) -> Option<Refusal> {
    let platform = headers.originating_identity.as_ref()?.platform();
    let sendable = !platform.is_empty() && platform.bytes().all(|b| b.is_ascii_graphic());
    (!sendable).then_some(Refusal::Validation)
}

fn expect<T>(
    harness: &Harness,
    headers: &Headers,
    refusal: Option<Refusal>,
    guard: impl FnOnce() -> Option<ErrorReply>,
    success: impl FnOnce() -> (Want<T>, Option<Received>),
) -> Expectation<T> {
    let refusal = refusal
        .or_else(|| request_identity_refusal(headers))
        .or_else(|| identity_refusal(headers));
    if let Some(refusal) = refusal {
        return Expectation {
            want: Want::Refused(refusal),
            call: None,
        };
    }
    if harness.drops_version_header() {
        return Expectation {
            want: Want::Error(version_missing()),
            call: None,
        };
    }
    if let Some(refusal) = guard() {
        return Expectation {
            want: Want::Error(refusal),
            call: None,
        };
    }
    let (want, call) = success();
    Expectation { want, call }
}

/// What the platform sees for a scripted answer: the reply for a success, the error reply for an
/// error unless its status is one of the endpoint's outcomes (`410` on delete, …).
fn want_of<R, T>(
    answer: &Answer<R>,
    operation: Operation,
    version: ApiVersion,
    reply: impl FnOnce(&R) -> Expected<T>,
    outcome_for_status: impl FnOnce(u16) -> Option<T>,
) -> Want<T> {
    match answer {
        Answer::Reply(r) => match reply(r) {
            Expected::Outcome(o) => Want::Outcome(o),
            Expected::Error(e) => Want::Error(e),
        },
        Answer::Error(script) => {
            let reply = script.expected_reply(operation, version);
            match outcome_for_status(reply.status) {
                Some(outcome) => Want::Outcome(outcome),
                None => Want::Error(reply),
            }
        }
    }
}

fn no_outcome<T>(_: u16) -> Option<T> {
    None
}

fn delete_outcome(status: u16) -> Option<DeleteOutcome> {
    (status == 410).then_some(DeleteOutcome::Gone)
}

fn last_operation_outcome(status: u16) -> Option<LastOperationOutcome> {
    match status {
        410 => Some(LastOperationOutcome::Gone),
        404 => Some(LastOperationOutcome::NotFound),
        _ => None,
    }
}

fn context(
    catalog: &Catalog,
    headers: &Headers,
    permit: bool,
    service_id: Option<&ServiceId>,
    plan_id: Option<&PlanId>,
) -> ReceivedContext {
    let service = service_id.and_then(|s| catalog.service(s));
    let plan = service.and_then(|s| s.plan(plan_id?.as_str()));
    ReceivedContext {
        api_version: headers.version,
        declared_api_version: headers.version,
        originating_identity: headers.originating_identity.clone(),
        request_identity: headers.request_identity.clone(),
        async_permit: permit,
        service: service.map(|s| s.id.clone()),
        plan: plan.map(|p| p.id.clone()),
    }
}

fn shaped<T: ShapeForVersion + Clone>(value: &T, version: ApiVersion) -> T {
    let mut value = value.clone();
    value.shape_for_version(version);
    value
}

fn since(operation: Operation, version: ApiVersion) -> Option<Refusal> {
    (version < operation.since()).then_some(Refusal::UnsupportedVersion)
}

/// A request field that changes what the request asks for is refused when the client's version
/// predates it (a maintenance upgrade before 2.15, a rotation before 2.17), as osb-client's docs
/// say; other newer fields are left out by shaping.
fn newer_field(present: bool, introduced: ApiVersion, version: ApiVersion) -> Option<Refusal> {
    (present && version < introduced).then_some(Refusal::UnsupportedVersion)
}

fn validation(result: Result<(), osb_types::Invalid>) -> Option<Refusal> {
    result.err().map(|_| Refusal::Validation)
}

/// `accepts_incomplete` on bind and unbind appeared in 2.14: the client refuses `true` for 2.13
/// and leaves `false` out.
fn binding_async(
    version: ApiVersion,
    accepts_incomplete: Option<bool>,
) -> Result<Option<bool>, Refusal> {
    if version >= ApiVersion::V2_14 {
        Ok(accepts_incomplete)
    } else if accepts_incomplete == Some(true) {
        Err(Refusal::UnsupportedVersion)
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Compares what happened with what must happen.
fn judge<T: PartialEq + fmt::Debug>(
    result: Result<T, ClientError>,
    expectation: Expectation<T>,
    received: Vec<Received>,
    headers: &Headers,
) -> Result<(), String> {
    let mut problems = Vec::new();
    match expectation.call {
        None if received.is_empty() => {}
        None => problems.push(format!(
            "the broker must not be called, but it received:\n{received:#?}"
        )),
        Some(mut expected) => match received.as_slice() {
            [got] => {
                if headers.request_identity.is_none() {
                    // The client made one up: any non-empty value.
                    expected.context.request_identity = got
                        .context
                        .request_identity
                        .clone()
                        .filter(|id| !id.is_empty());
                }
                if *got != expected {
                    problems.push(format!(
                        "the broker received:\n{got:#?}\nbut should have received:\n{expected:#?}"
                    ));
                }
            }
            _ => problems.push(format!(
                "the broker must be called once, but it received:\n{received:#?}"
            )),
        },
    }
    let ok = match (&expectation.want, &result) {
        (Want::Outcome(want), Ok(got)) => want == got,
        (Want::Error(reply), Err(ClientError::Broker { status, body, code })) => {
            status.as_u16() == reply.status && reply.body.matches(body) && *code == body.code()
        }
        (
            Want::Refused(Refusal::UnsupportedVersion),
            Err(ClientError::UnsupportedVersion { .. }),
        ) => true,
        (Want::Refused(Refusal::Validation), Err(ClientError::Validation(_))) => true,
        _ => false,
    };
    if !ok {
        problems.push(format!(
            "the platform got:\n{}\nbut should have got:\n{:#?}",
            describe(&result),
            expectation.want
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn describe<T: fmt::Debug>(result: &Result<T, ClientError>) -> String {
    match result {
        Ok(outcome) => format!("Ok({outcome:#?})"),
        Err(e) => {
            let mut text = format!("Err({e:#?})\n  = {e}");
            if let Some(body) = e.raw_body() {
                text.push_str(&format!("\n  body: {body}"));
            }
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            text
        }
    }
}

async fn check_catalog(harness: &Harness, case: &CatalogCase) -> Result<(), String> {
    let version = case.headers.version;
    let own = Harness::start_with(
        harness.mode(),
        case.catalog.clone(),
        harness.drops_version_header(),
    )
    .await?;
    let client = own.client(version)?;
    // The second fetch revalidates with the ETag (304) and must give the same catalog.
    for attempt in ["first", "second"] {
        let expectation = expect(
            &own,
            &case.headers,
            None,
            || None,
            || (Want::Outcome(shaped(&case.catalog, version)), None),
        );
        let result = client.catalog(&case.headers.options()).await;
        judge(result, expectation, own.broker().received(), &case.headers)
            .map_err(|e| format!("{attempt} fetch: {e}"))?;
    }
    Ok(())
}

async fn check_provision(harness: &Harness, case: &ProvisionCase) -> Result<(), String> {
    let op = Operation::Provision;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let sent = shaped(&case.request, v);
    let permit = case.query.accepts_incomplete == Some(true);
    let refusal = newer_field(
        case.request.maintenance_info.is_some(),
        ApiVersion::V2_15,
        v,
    )
    .or_else(|| validation(case.request.validate()))
    .or(since(op, v));
    let expectation = expect(
        harness,
        h,
        refusal,
        || oracle::provision(catalog, &sent, h.originating_identity.as_ref()),
        || {
            let want = want_of(&case.answer, op, v, |r| r.expected(permit, v), no_outcome);
            let ctx = context(
                catalog,
                h,
                permit,
                Some(&sent.service_id),
                Some(&sent.plan_id),
            );
            let call = Call::Provision {
                instance_id: case.instance_id.clone(),
                request: sent.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness.broker().arm(Script::Provision(case.answer.clone()));
    let result: Result<ProvisionOutcome, _> = harness
        .client(v)?
        .provision(&case.instance_id, &case.request, &case.query, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_update(harness: &Harness, case: &UpdateCase) -> Result<(), String> {
    let op = Operation::Update;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let sent = shaped(&case.request, v);
    let permit = case.query.accepts_incomplete == Some(true);
    let refusal = newer_field(
        case.request.maintenance_info.is_some(),
        ApiVersion::V2_15,
        v,
    )
    .or_else(|| validation(case.request.validate()))
    .or(since(op, v));
    let expectation = expect(
        harness,
        h,
        refusal,
        || oracle::update(catalog, &sent, h.originating_identity.as_ref(), v),
        || {
            let want = want_of(&case.answer, op, v, |r| r.expected(permit, v), no_outcome);
            let target = sent
                .plan_id
                .as_ref()
                .or_else(|| sent.previous_values.as_ref()?.plan_id.as_ref());
            let ctx = context(catalog, h, permit, Some(&sent.service_id), target);
            let call = Call::Update {
                instance_id: case.instance_id.clone(),
                request: sent.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness.broker().arm(Script::Update(case.answer.clone()));
    let result: Result<UpdateOutcome, _> = harness
        .client(v)?
        .update(&case.instance_id, &case.request, &case.query, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_deprovision(harness: &Harness, case: &DeprovisionCase) -> Result<(), String> {
    let op = Operation::Deprovision;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let q = &case.query;
    let permit = q.accepts_incomplete == Some(true);
    let expectation = expect(
        harness,
        h,
        validation(q.validate()).or(since(op, v)),
        || oracle::delete(catalog, &q.service_id, &q.plan_id),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| r.expected(permit, v),
                delete_outcome,
            );
            let ctx = context(catalog, h, permit, Some(&q.service_id), Some(&q.plan_id));
            let call = Call::Deprovision {
                instance_id: case.instance_id.clone(),
                query: q.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness.broker().arm(Script::Delete(case.answer.clone()));
    let result: Result<DeleteOutcome, _> = harness
        .client(v)?
        .deprovision(&case.instance_id, q, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_instance_last_operation(
    harness: &Harness,
    case: &InstanceLastOperationCase,
) -> Result<(), String> {
    let op = Operation::InstanceLastOperation;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let q = &case.query;
    let expectation = expect(
        harness,
        h,
        validation(q.validate()).or(since(op, v)),
        || oracle::last_operation(q.operation.as_ref()),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| Expected::Outcome(r.expected(v, false)),
                last_operation_outcome,
            );
            let ctx = context(catalog, h, false, q.service_id.as_ref(), q.plan_id.as_ref());
            let call = Call::InstanceLastOperation {
                instance_id: case.instance_id.clone(),
                query: q.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness
        .broker()
        .arm(Script::LastOperation(case.answer.clone()));
    let result: Result<LastOperationOutcome, _> = harness
        .client(v)?
        .instance_last_operation(&case.instance_id, q, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

/// Fetch hints appeared in 2.16; the client leaves them out before.
fn fetch_hints(
    version: ApiVersion,
    service_id: &Option<ServiceId>,
    plan_id: &Option<PlanId>,
) -> (Option<ServiceId>, Option<PlanId>) {
    if version >= ApiVersion::V2_16 {
        (service_id.clone(), plan_id.clone())
    } else {
        (None, None)
    }
}

async fn check_fetch_instance(harness: &Harness, case: &FetchInstanceCase) -> Result<(), String> {
    let op = Operation::FetchInstance;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let (service_id, plan_id) = fetch_hints(v, &case.query.service_id, &case.query.plan_id);
    let expectation = expect(
        harness,
        h,
        validation(case.query.validate()).or(since(op, v)),
        || oracle::fetch_instance(catalog, service_id.as_deref()),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| Expected::Outcome(r.expected(v)),
                |status| (status == 404).then_some(FetchInstanceOutcome::NotFound),
            );
            let ctx = context(catalog, h, false, service_id.as_ref(), plan_id.as_ref());
            let mut query = FetchInstanceQuery::new();
            query.service_id = service_id.clone();
            query.plan_id = plan_id.clone();
            let call = Call::FetchInstance {
                instance_id: case.instance_id.clone(),
                query,
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness
        .broker()
        .arm(Script::FetchInstance(case.answer.clone()));
    let result: Result<FetchInstanceOutcome, _> = harness
        .client(v)?
        .fetch_instance(&case.instance_id, &case.query, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_bind(harness: &Harness, case: &BindCase) -> Result<(), String> {
    let op = Operation::Bind;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let sent = shaped(&case.request, v);
    let accepts = binding_async(v, case.query.accepts_incomplete);
    let permit = matches!(accepts, Ok(Some(true)));
    let refusal = accepts
        .err()
        .or_else(|| {
            newer_field(
                case.request.predecessor_binding_id.is_some(),
                ApiVersion::V2_17,
                v,
            )
        })
        .or_else(|| validation(case.request.validate()))
        .or(since(op, v));
    let expectation = expect(
        harness,
        h,
        refusal,
        || oracle::bind(catalog, &sent, h.originating_identity.as_ref()),
        || {
            let want = want_of(&case.answer, op, v, |r| r.expected(permit, v), no_outcome);
            let ctx = context(
                catalog,
                h,
                permit,
                sent.service_id.as_ref(),
                sent.plan_id.as_ref(),
            );
            let call = Call::Bind {
                instance_id: case.instance_id.clone(),
                binding_id: case.binding_id.clone(),
                request: sent.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness.broker().arm(Script::Bind(case.answer.clone()));
    let result: Result<BindOutcome, _> = harness
        .client(v)?
        .bind(
            &case.instance_id,
            &case.binding_id,
            &case.request,
            &case.query,
            &h.options(),
        )
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_unbind(harness: &Harness, case: &UnbindCase) -> Result<(), String> {
    let op = Operation::Unbind;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let q = &case.query;
    let accepts = binding_async(v, q.accepts_incomplete);
    let permit = matches!(accepts, Ok(Some(true)));
    let refusal = accepts
        .as_ref()
        .err()
        .copied()
        .or_else(|| validation(q.validate()))
        .or(since(op, v));
    let expectation = expect(
        harness,
        h,
        refusal,
        || oracle::delete(catalog, &q.service_id, &q.plan_id),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| r.expected(permit, v),
                delete_outcome,
            );
            let ctx = context(catalog, h, permit, Some(&q.service_id), Some(&q.plan_id));
            let mut query = q.clone();
            query.accepts_incomplete = accepts.ok().flatten();
            let call = Call::Unbind {
                instance_id: case.instance_id.clone(),
                binding_id: case.binding_id.clone(),
                query,
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness.broker().arm(Script::Delete(case.answer.clone()));
    let result: Result<DeleteOutcome, _> = harness
        .client(v)?
        .unbind(&case.instance_id, &case.binding_id, q, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_binding_last_operation(
    harness: &Harness,
    case: &BindingLastOperationCase,
) -> Result<(), String> {
    let op = Operation::BindingLastOperation;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let q = &case.query;
    let expectation = expect(
        harness,
        h,
        validation(q.validate()).or(since(op, v)),
        || oracle::last_operation(q.operation.as_ref()),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| Expected::Outcome(r.expected(v, true)),
                last_operation_outcome,
            );
            let ctx = context(catalog, h, false, q.service_id.as_ref(), q.plan_id.as_ref());
            let call = Call::BindingLastOperation {
                instance_id: case.instance_id.clone(),
                binding_id: case.binding_id.clone(),
                query: q.clone(),
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness
        .broker()
        .arm(Script::LastOperation(case.answer.clone()));
    let result: Result<LastOperationOutcome, _> = harness
        .client(v)?
        .binding_last_operation(&case.instance_id, &case.binding_id, q, &h.options())
        .await;
    judge(result, expectation, harness.broker().received(), h)
}

async fn check_fetch_binding(harness: &Harness, case: &FetchBindingCase) -> Result<(), String> {
    let op = Operation::FetchBinding;
    let h = &case.headers;
    let v = h.version;
    let catalog = harness.broker().catalog();
    let (service_id, plan_id) = fetch_hints(v, &case.query.service_id, &case.query.plan_id);
    let expectation = expect(
        harness,
        h,
        validation(case.query.validate()).or(since(op, v)),
        || oracle::fetch_binding(catalog, service_id.as_deref()),
        || {
            let want = want_of(
                &case.answer,
                op,
                v,
                |r| r.expected(v),
                |status| (status == 404).then_some(FetchBindingOutcome::NotFound),
            );
            let ctx = context(catalog, h, false, service_id.as_ref(), plan_id.as_ref());
            let mut query = FetchBindingQuery::new();
            query.service_id = service_id.clone();
            query.plan_id = plan_id.clone();
            let call = Call::FetchBinding {
                instance_id: case.instance_id.clone(),
                binding_id: case.binding_id.clone(),
                query,
            };
            (want, Some(Received::new(call, ctx)))
        },
    );
    harness
        .broker()
        .arm(Script::FetchBinding(case.answer.clone()));
    let result: Result<FetchBindingOutcome, _> = harness
        .client(v)?
        .fetch_binding(
            &case.instance_id,
            &case.binding_id,
            &case.query,
            &h.options(),
        )
        .await;
    judge(result, expectation, harness.broker().received(), h)
}
