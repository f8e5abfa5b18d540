//! The notes broker: offering `notes` with a `free` plan that is ready at once and a `slow` plan
//! that provisions asynchronously; bindings carry credentials.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use osb_server::prelude::*;
use serde_json::json;
use tokio::sync::Mutex;

/// The `slow` plan: provisioning takes [`NotesBroker::delay`].
pub const SLOW_PLAN: &str = "e3a9b1c7-2d4f-4a6e-b8c0-1f3e5d7a9b2c";

/// The broker; per notebook, its plan and when it is ready.
#[derive(Debug, Default)]
pub struct NotesBroker {
    /// How long provisioning on the slow plan takes.
    pub delay: Duration,
    notebooks: Mutex<HashMap<InstanceId, (PlanId, Instant)>>,
}

#[async_trait]
impl ServiceBroker for NotesBroker {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        let id = ServiceId::new("6b1e7a52-3c0d-4f4e-9a57-2d8c1b0e9f31");
        let free = PlanId::new("0c8f4d2e-5b7a-4e19-8d36-9a1f2b3c4d5e");
        let free = Plan::new(free, "free", "Ready at once");
        let slow = Plan::new(PlanId::new(SLOW_PLAN), "slow", "Ready in a moment").with_free(false);
        let notes = Service::new("notes", id, "Notebooks", true, [free, slow]);
        Ok(Catalog::new([notes]))
    }

    async fn provision(
        &self,
        id: InstanceId,
        req: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let slow = req.plan_id == SLOW_PLAN;
        // Without `accepts_incomplete=true`, the slow plan answers 422 AsyncRequired.
        let permit = slow.then(|| ctx.require_async_permit()).transpose()?;
        let ready = Instant::now() + if slow { self.delay } else { Duration::ZERO };
        let mut notebooks = self.notebooks.lock().await;
        let existed = notebooks.contains_key(&id);
        let (plan, ready) = notebooks.entry(id).or_insert((req.plan_id.clone(), ready));
        Ok(match permit {
            _ if *plan != req.plan_id => return Err(BrokerError::conflict("On another plan.")),
            Some(permit) if *ready > Instant::now() => ProvisionOutcome::accepted(permit, "create"),
            _ if existed => ProvisionOutcome::AlreadyExists(Default::default()),
            _ => ProvisionOutcome::created(),
        })
    }

    async fn instance_last_operation(
        &self,
        id: InstanceId,
        _query: InstanceLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        Ok(match self.notebooks.lock().await.get(&id) {
            None => LastOperationOutcome::NotFound,
            Some((_, ready)) if *ready > Instant::now() => {
                LastOperationOutcome::in_progress().retry_after(1)
            }
            Some(_) => LastOperationOutcome::succeeded(),
        })
    }

    async fn bind(
        &self,
        id: InstanceId,
        binding: BindingId,
        _req: ServiceBindingRequest,
        _ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        match self.notebooks.lock().await.get(&id) {
            Some((_, ready)) if *ready <= Instant::now() => {}
            _ => return Err(BrokerError::concurrency_error("The notebook is not ready.")),
        }
        let url = format!("https://notes.example.com/{id}");
        let token = uuid::Uuid::new_v4().to_string();
        let credentials = json!({"url": url, "user": binding, "token": token});
        Ok(BindOutcome::created_with_credentials(credentials)?)
    }

    async fn unbind(
        &self,
        _id: InstanceId,
        _binding: BindingId,
        _query: UnbindQuery,
        _ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        Ok(DeleteOutcome::Deleted)
    }

    async fn deprovision(
        &self,
        id: InstanceId,
        _query: DeprovisionQuery,
        _ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        Ok(match self.notebooks.lock().await.remove(&id) {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::Gone,
        })
    }
}
