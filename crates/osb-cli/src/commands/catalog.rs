//! `osb catalog` and `osb lint`.

use osb_types::{Catalog, Severity, has_errors};
use serde_json::json;

use super::{Ctx, fetch_catalog};
use crate::error::{CliError, Result};
use crate::output::{Table, stdout_json, stdout_text, yes_no};

/// The catalog as a table: one row per plan.
pub(crate) fn catalog_table(catalog: &Catalog) -> Table {
    let mut table = Table::new(&[
        "OFFERING",
        "PLAN",
        "FREE",
        "BINDABLE",
        "UPDATEABLE",
        "MAINTENANCE",
        "OFFERING ID",
        "PLAN ID",
    ]);
    for service in &catalog.services {
        for plan in &service.plans {
            table.row(vec![
                service.name.clone(),
                plan.name.clone(),
                yes_no(plan.effective_free()),
                yes_no(plan.effective_bindable(service)),
                yes_no(plan.effective_plan_updateable(service)),
                plan.maintenance_info
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |m| m.version.clone()),
                service.id.to_string(),
                plan.id.to_string(),
            ]);
        }
        if service.plans.is_empty() {
            table.row(vec![
                service.name.clone(),
                "(no plans)".into(),
                String::new(),
                yes_no(service.bindable),
                String::new(),
                String::new(),
                service.id.to_string(),
            ]);
        }
    }
    table
}

/// `osb catalog`.
pub(crate) async fn catalog(ctx: &Ctx) -> Result<()> {
    let url = ctx.target.require_url()?;
    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    if ctx.json {
        return stdout_json(&catalog);
    }
    if catalog.services.is_empty() {
        return stdout_text("The broker offers nothing (its catalog is empty).");
    }
    stdout_text(&catalog_table(&catalog).render())
}

/// `osb lint`.
pub(crate) async fn lint(ctx: &Ctx) -> Result<()> {
    let url = ctx.target.require_url()?;
    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    let problems = client.check_catalog(&catalog);
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .count();
    if ctx.json {
        stdout_json(&json!({
            "problems": problems,
            "errors": errors,
            "warnings": warnings,
        }))?;
    } else {
        let mut text = String::new();
        for problem in &problems {
            text.push_str(&crate::output::clean(&problem.to_string()));
            text.push('\n');
        }
        let plans: usize = catalog.services.iter().map(|s| s.plans.len()).sum();
        text.push_str(&format!(
            "{} offering(s), {plans} plan(s): {errors} error(s), {warnings} warning(s)",
            catalog.services.len()
        ));
        stdout_text(&text)?;
    }
    if has_errors(&problems) {
        return Err(CliError::Lint(errors));
    }
    Ok(())
}
