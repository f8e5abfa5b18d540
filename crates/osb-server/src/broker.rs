//! The [`ServiceBroker`] trait a broker implements, and the [`RequestContext`] each call gets.

use std::sync::Arc;

use async_trait::async_trait;
use osb_types::{
    ApiVersion, AsyncPermit, BindOutcome, BindingId, BindingLastOperationQuery, Catalog,
    CatalogIndex, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery,
    FetchInstanceOutcome, FetchInstanceQuery, InstanceId, InstanceLastOperationQuery,
    LastOperationOutcome, Operation, OriginatingIdentity, Plan, PlanId, ProvisionOutcome, Service,
    ServiceBindingRequest, ServiceId, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome,
};

use crate::BrokerError;

/// A service broker: one method per OSB operation.
///
/// The router calls a method only after the request passed authentication, the version check,
/// parsing and the enabled [`Guards`](crate::Guards), so a method sees well-formed input. Ids
/// are checked against the catalog where a plan is chosen (provision, a plan change); requests
/// on existing resources may name a plan the catalog has since retired, and the broker answers
/// them from its own records. Each method returns the typed outcome from osb-types (the status
/// follows from the variant) or a [`BrokerError`].
///
/// `catalog`, `provision` and `deprovision` are required. The other methods have defaults for
/// brokers that do not offer them: [`update`](Self::update) answers `422` ("does not support
/// updating"; the spec's answer for an unsupported change), and the fetch, bind, unbind and
/// last-operation methods answer `400` naming the unsupported operation. A broker whose
/// operations all finish synchronously never needs the last-operation methods, since platforms
/// poll only after a `202`.
///
/// Asynchronous answers need the [`AsyncPermit`] in [`RequestContext::async_permit`], present only
/// when the request carried `accepts_incomplete=true` (and, for bind and unbind, declared OSB
/// 2.14 or later). A broker that can only work asynchronously and got no permit returns
/// [`BrokerError::async_required`].
#[async_trait]
pub trait ServiceBroker: Send + Sync + 'static {
    /// The catalog. Called once, when the router is built; its bytes and `ETag` are prepared then
    /// for every OSB version.
    async fn catalog(&self) -> Result<Catalog, BrokerError>;

    /// `PUT /v2/service_instances/{instance_id}`: creates a service instance.
    async fn provision(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError>;

    /// `PATCH /v2/service_instances/{instance_id}`: changes a service instance.
    async fn update(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceUpdateRequest,
        ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        let _ = (instance_id, request, ctx);
        Err(BrokerError::not_supported(Operation::Update))
    }

    /// `DELETE /v2/service_instances/{instance_id}`: deletes a service instance.
    async fn deprovision(
        &self,
        instance_id: InstanceId,
        query: DeprovisionQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError>;

    /// `GET /v2/service_instances/{instance_id}/last_operation`: the state of the last
    /// asynchronous operation on an instance.
    async fn instance_last_operation(
        &self,
        instance_id: InstanceId,
        query: InstanceLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        let _ = (instance_id, query, ctx);
        Err(BrokerError::not_supported(Operation::InstanceLastOperation))
    }

    /// `GET /v2/service_instances/{instance_id}`: reads a service instance back.
    async fn fetch_instance(
        &self,
        instance_id: InstanceId,
        query: FetchInstanceQuery,
        ctx: RequestContext,
    ) -> Result<FetchInstanceOutcome, BrokerError> {
        let _ = (instance_id, query, ctx);
        Err(BrokerError::not_supported(Operation::FetchInstance))
    }

    /// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`: creates a binding.
    async fn bind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        request: ServiceBindingRequest,
        ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        let _ = (instance_id, binding_id, request, ctx);
        Err(BrokerError::not_supported(Operation::Bind))
    }

    /// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`: deletes a
    /// binding.
    async fn unbind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: UnbindQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        let _ = (instance_id, binding_id, query, ctx);
        Err(BrokerError::not_supported(Operation::Unbind))
    }

    /// `GET …/service_bindings/{binding_id}/last_operation`: the state of the last asynchronous
    /// operation on a binding.
    async fn binding_last_operation(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: BindingLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        let _ = (instance_id, binding_id, query, ctx);
        Err(BrokerError::not_supported(Operation::BindingLastOperation))
    }

    /// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`: reads a binding
    /// back.
    async fn fetch_binding(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: FetchBindingQuery,
        ctx: RequestContext,
    ) -> Result<FetchBindingOutcome, BrokerError> {
        let _ = (instance_id, binding_id, query, ctx);
        Err(BrokerError::not_supported(Operation::FetchBinding))
    }
}

/// Implements [`ServiceBroker`] for `Arc<B>` by forwarding every method to `B`.
macro_rules! forward_to_inner {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $outcome:ty;)*) => {
        #[async_trait]
        impl<B: ServiceBroker + ?Sized> ServiceBroker for Arc<B> {
            $(
                async fn $method(&self, $($arg: $ty),*) -> Result<$outcome, BrokerError> {
                    (**self).$method($($arg),*).await
                }
            )*
        }
    };
}

forward_to_inner! {
    catalog() -> Catalog;
    provision(id: InstanceId, request: ServiceInstanceProvisionRequest, ctx: RequestContext)
        -> ProvisionOutcome;
    update(id: InstanceId, request: ServiceInstanceUpdateRequest, ctx: RequestContext)
        -> UpdateOutcome;
    deprovision(id: InstanceId, query: DeprovisionQuery, ctx: RequestContext) -> DeleteOutcome;
    instance_last_operation(id: InstanceId, query: InstanceLastOperationQuery, ctx: RequestContext)
        -> LastOperationOutcome;
    fetch_instance(id: InstanceId, query: FetchInstanceQuery, ctx: RequestContext)
        -> FetchInstanceOutcome;
    bind(id: InstanceId, binding: BindingId, request: ServiceBindingRequest, ctx: RequestContext)
        -> BindOutcome;
    unbind(id: InstanceId, binding: BindingId, query: UnbindQuery, ctx: RequestContext)
        -> DeleteOutcome;
    binding_last_operation(
        id: InstanceId, binding: BindingId, query: BindingLastOperationQuery, ctx: RequestContext
    ) -> LastOperationOutcome;
    fetch_binding(id: InstanceId, binding: BindingId, query: FetchBindingQuery, ctx: RequestContext)
        -> FetchBindingOutcome;
}

/// What the server knows about a request besides its body: the OSB version it declared, who
/// sent it, and the catalog offering and plan it concerns.
///
/// Cloning is cheap (the catalog is shared).
#[derive(Clone, Debug)]
pub struct RequestContext {
    api_version: ApiVersion,
    declared_api_version: ApiVersion,
    originating_identity: Option<OriginatingIdentity>,
    request_identity: Option<String>,
    api_info_location: Option<String>,
    catalog: Arc<CatalogIndex>,
    service_id: Option<ServiceId>,
    plan_id: Option<PlanId>,
    async_permit: Option<AsyncPermit>,
}

impl RequestContext {
    /// A context for calling a broker directly (in its unit tests): OSB 2.17, no identities, no
    /// offering or plan, no permit. The router builds its own contexts.
    pub fn new(catalog: Catalog) -> Self {
        Self::with_index(Arc::new(CatalogIndex::from(catalog)))
    }

    pub(crate) fn with_index(catalog: Arc<CatalogIndex>) -> Self {
        RequestContext {
            api_version: ApiVersion::LATEST,
            declared_api_version: ApiVersion::LATEST,
            originating_identity: None,
            request_identity: None,
            api_info_location: None,
            catalog,
            service_id: None,
            plan_id: None,
            async_permit: None,
        }
    }

    /// The OSB version the reply is shaped for: the declared version, or the newest version
    /// osb-rs knows when the platform declared a newer 2.x minor.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// The version exactly as the `X-Broker-API-Version` header declared it.
    pub fn declared_api_version(&self) -> ApiVersion {
        self.declared_api_version
    }

    /// The user behind the request (`X-Broker-API-Originating-Identity`), if the platform sent one.
    pub fn originating_identity(&self) -> Option<&OriginatingIdentity> {
        self.originating_identity.as_ref()
    }

    /// The platform's id of this request (`X-Broker-API-Request-Identity`), if it sent one.
    pub fn request_identity(&self) -> Option<&str> {
        self.request_identity.as_deref()
    }

    /// The platform's `X-Api-Info-Location` header, if it sent one.
    pub fn api_info_location(&self) -> Option<&str> {
        self.api_info_location.as_deref()
    }

    /// The broker's catalog.
    pub fn catalog(&self) -> &Catalog {
        self.catalog.catalog()
    }

    /// The `service_id` the request names, whether or not the catalog still has it.
    ///
    /// Provision, update, deprovision and unbind always name one; a bind does unless it rotates
    /// a binding without naming it; fetch and last-operation requests only when the platform
    /// sent the `service_id` hint.
    pub fn service_id(&self) -> Option<&ServiceId> {
        self.service_id.as_ref()
    }

    /// The `plan_id` the request names, whether or not the catalog still has it (a delete names
    /// the resource's plan, which may have been retired). For an update, as
    /// [`plan`](Self::plan).
    pub fn plan_id(&self) -> Option<&PlanId> {
        self.plan_id.as_ref()
    }

    /// The offering the request concerns, when it names one that is in the catalog.
    ///
    /// `None` when the request names no offering ([`service_id`](Self::service_id)) or one the
    /// catalog no longer has: only where a plan is chosen (provision, a plan change) does the
    /// known-ids guard refuse unknown ids.
    pub fn service(&self) -> Option<&Service> {
        self.catalog.service(self.service_id.as_deref()?)
    }

    /// The plan the request concerns, when it names one of [`service`](Self::service)'s plans.
    ///
    /// For an update this is the new plan when the request changes the plan, and otherwise the
    /// current plan from `previous_values.plan_id` when the platform sent it.
    pub fn plan(&self) -> Option<&Plan> {
        self.catalog
            .plan(self.service_id.as_deref()?, self.plan_id.as_deref()?)
    }

    /// Permission to answer `202 Accepted`: present only when the request carried
    /// `accepts_incomplete=true` (bind and unbind: and declared OSB 2.14 or later).
    pub fn async_permit(&self) -> Option<AsyncPermit> {
        self.async_permit
    }

    /// The [`async_permit`](Self::async_permit), or [`BrokerError::async_required`]
    /// (`422 AsyncRequired`) for a broker that can only answer this request asynchronously.
    ///
    /// ```
    /// use osb_server::RequestContext;
    /// use osb_types::{AsyncPermit, Catalog};
    /// let ctx = RequestContext::new(Catalog::new([]));
    /// let err = ctx.require_async_permit().unwrap_err();
    /// assert_eq!(err.to_string(), "unprocessable (AsyncRequired): This operation can only be \
    ///     completed asynchronously; retry with accepts_incomplete=true.");
    /// let ctx = ctx.with_async_permit(AsyncPermit::from_accepts_incomplete(Some(true)));
    /// assert!(ctx.require_async_permit().is_ok());
    /// ```
    pub fn require_async_permit(&self) -> Result<AsyncPermit, BrokerError> {
        self.async_permit.ok_or_else(|| {
            if self.declared_api_version < osb_types::BindQuery::ACCEPTS_INCOMPLETE_SINCE {
                BrokerError::async_required_before_2_14()
            } else {
                BrokerError::async_required()
            }
        })
    }

    /// Sets the declared version (and the effective one, capped at the newest known version).
    #[must_use]
    pub fn with_api_version(mut self, declared: ApiVersion) -> Self {
        self.declared_api_version = declared;
        self.api_version = declared.clamp(ApiVersion::OLDEST, ApiVersion::LATEST);
        self
    }

    /// Sets the originating identity.
    #[must_use]
    pub fn with_originating_identity(mut self, identity: OriginatingIdentity) -> Self {
        self.originating_identity = Some(identity);
        self
    }

    /// Sets the request identity.
    #[must_use]
    pub fn with_request_identity(mut self, identity: impl Into<String>) -> Self {
        self.request_identity = Some(identity.into());
        self
    }

    /// Sets the `X-Api-Info-Location` value.
    #[must_use]
    pub fn with_api_info_location(mut self, location: impl Into<String>) -> Self {
        self.api_info_location = Some(location.into());
        self
    }

    /// Sets the offering and plan the request concerns.
    #[must_use]
    pub fn with_plan(
        mut self,
        service_id: impl Into<ServiceId>,
        plan_id: impl Into<PlanId>,
    ) -> Self {
        self.service_id = Some(service_id.into());
        self.plan_id = Some(plan_id.into());
        self
    }

    /// Sets the offering the request concerns.
    #[must_use]
    pub fn with_service(mut self, service_id: impl Into<ServiceId>) -> Self {
        self.service_id = Some(service_id.into());
        self
    }

    /// Sets the async permit.
    #[must_use]
    pub fn with_async_permit(mut self, permit: Option<AsyncPermit>) -> Self {
        self.async_permit = permit;
        self
    }

    pub(crate) fn set_versions(&mut self, declared: ApiVersion, effective: ApiVersion) {
        self.declared_api_version = declared;
        self.api_version = effective;
    }

    pub(crate) fn set_headers(
        &mut self,
        originating_identity: Option<OriginatingIdentity>,
        request_identity: Option<String>,
        api_info_location: Option<String>,
    ) {
        self.originating_identity = originating_identity;
        self.request_identity = request_identity;
        self.api_info_location = api_info_location;
    }

    /// Sets the offering and plan the request concerns, and the async permit.
    pub(crate) fn set_scope(
        &mut self,
        service_id: impl Into<Option<ServiceId>>,
        plan_id: impl Into<Option<PlanId>>,
        permit: Option<AsyncPermit>,
    ) {
        self.service_id = service_id.into();
        self.plan_id = plan_id.into();
        self.async_permit = permit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_async_permit_explains_what_to_send() {
        let ctx = RequestContext::new(Catalog::new([]));
        let status = |e: &BrokerError| e.status_for(osb_types::Operation::Provision).as_u16();
        let err = ctx.require_async_permit().unwrap_err();
        assert_eq!(status(&err), 422);
        assert!(err.to_string().contains("(AsyncRequired)"), "{err}");
        assert!(!err.to_string().contains("2.14"), "{err}");
        let old = ctx.clone().with_api_version(ApiVersion::V2_13);
        let err = old.require_async_permit().unwrap_err();
        assert_eq!(status(&err), 422);
        assert!(
            err.to_string()
                .contains("retry with accepts_incomplete=true (asynchronous bindings also need X-Broker-API-Version 2.14 or later)"),
            "{err}"
        );
        let permit = AsyncPermit::from_accepts_incomplete(Some(true));
        assert_eq!(
            ctx.with_async_permit(permit).require_async_permit().ok(),
            permit
        );
    }
}
