//! The platform side of the notes example: provision (waiting for an asynchronous plan), bind,
//! read the credentials, unbind and deprovision.
use osb_client::prelude::*;
use serde_json::{Map, Value};

/// Any error of the lifecycle.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the lifecycle of an instance on the plan named `plan` of the `notes` offering and
/// returns its binding's credentials.
pub async fn lifecycle(client: &Client, plan: &str) -> Result<Map<String, Value>, BoxError> {
    let (opts, id) = (CallOptions::new(), InstanceId::new("notebook-1"));
    let catalog = client.catalog(&opts).await?;
    let service = catalog
        .service_by_name("notes")
        .ok_or("no notes offering")?;
    let plan = service.plan_by_name(plan).ok_or("no such plan")?;

    let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org", "space");
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client.provision(&id, &request, &query, &opts).await?;
    if let Some(accepted) = outcome.as_accepted() {
        let create = WaitOptions::create(service, plan);
        client.wait(&id, accepted, &create).await?.into_result()?;
    }

    let binding = BindingId::new("app-1");
    let request = ServiceBindingRequest::new(&service.id, &plan.id);
    let outcome = client
        .bind(&id, &binding, &request, &BindQuery::new(), &opts)
        .await?;
    let credentials = outcome.credentials().cloned().ok_or("no credentials")?;
    let query = UnbindQuery::new(&service.id, &plan.id);
    client.unbind(&id, &binding, &query, &opts).await?;

    let query = DeprovisionQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
    let outcome = client.deprovision(&id, &query, &opts).await?;
    if let Some(accepted) = outcome.as_accepted() {
        let delete = WaitOptions::delete(service, plan);
        client.wait(&id, accepted, &delete).await?.into_result()?;
    }
    Ok(credentials)
}
