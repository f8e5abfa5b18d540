//! `osb check`: a conformance checker for any broker.
//!
//! The engine sends raw HTTP (so it can send what a client must not: bad JSON, no version
//! header, wrong credentials) and records each exchange with credentials redacted. Everything
//! it creates goes into a ledger; whatever is still there at the end (a check failed, or
//! Ctrl-C) is deleted with osb-client's orphan mitigation, and what cannot be deleted is printed.

mod defs;
mod engine;
mod http;
mod report;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use osb_client::{CleanupPolicy, OrphanTarget, PollPolicy};

use crate::cli::CheckArgs;
use crate::commands::Ctx;
use crate::error::{CliError, Result, usage};
use crate::output::{clean, stderr_line, stdout_json, stdout_text};
use crate::record::normalize_url;

use defs::{GROUPS, Level, Status};
use engine::{Abort, Engine, Ledger, Options, Resource, Results};
use http::Http;

pub(crate) use http::Credentials;

/// Which groups run, from `--only` and `--skip`.
fn groups(only: &[String], skip: &[String]) -> Result<Vec<&'static str>> {
    for name in only.iter().chain(skip) {
        if !GROUPS.contains(&name.as_str()) {
            return Err(usage(format!(
                "unknown check group {name:?}; the groups are {}",
                GROUPS.join(", ")
            )));
        }
    }
    Ok(GROUPS
        .iter()
        .copied()
        .filter(|g| only.is_empty() || only.iter().any(|o| o == g))
        .filter(|g| !skip.iter().any(|s| s == g))
        .collect())
}

/// Deletes what the checks left, bindings first; returns what could not be deleted.
async fn cleanup(
    ctx: &Ctx,
    url: &str,
    ledger: &Ledger,
    max_wait: Duration,
) -> Vec<(Resource, String)> {
    let mut left: Vec<Resource> = ledger
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if left.is_empty() {
        return Vec::new();
    }
    left.sort_by_key(|r| matches!(r, Resource::Instance { .. }));
    let client = match ctx.target.client(url) {
        Ok(client) => client,
        Err(e) => return left.into_iter().map(|r| (r, e.to_string())).collect(),
    };
    let policy = CleanupPolicy::new()
        .attempts(3)
        .poll(PollPolicy::new().max_duration(max_wait));
    let mut failed = Vec::new();
    for resource in left {
        let target = match &resource {
            Resource::Instance {
                instance_id,
                service_id,
                plan_id,
            } => {
                OrphanTarget::instance(instance_id.as_str(), service_id.as_str(), plan_id.as_str())
            }
            Resource::Binding {
                instance_id,
                binding_id,
                service_id,
                plan_id,
            } => OrphanTarget::binding(
                instance_id.as_str(),
                binding_id.as_str(),
                service_id.as_str(),
                plan_id.as_str(),
            ),
        };
        if let Err(e) = client.cleanup_orphan(&target, &policy).await {
            failed.push((resource, e.to_string()));
        }
    }
    failed
}

/// `osb check --list`: every check with its group, level and spec section.
fn list(json: bool) -> Result<()> {
    if json {
        let all: Vec<serde_json::Value> = defs::ALL
            .iter()
            .map(|d| {
                serde_json::json!({"id": d.id, "group": d.group, "level": d.level,
                    "section": d.section, "title": d.title})
            })
            .collect();
        return stdout_json(&all);
    }
    let width = defs::ALL.iter().map(|d| d.id.len()).max().unwrap_or(0);
    let lines: Vec<String> = defs::ALL
        .iter()
        .map(|d| {
            format!(
                "{:<6}  {:<11}  {:<width$}  {}",
                d.level.as_str(),
                d.group,
                d.id,
                d.title
            )
        })
        .collect();
    stdout_text(&lines.join("\n"))
}

/// Runs `osb check`.
pub(crate) async fn check(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    if args.list {
        return list(ctx.json);
    }
    let url = match (&args.url, ctx.target.url()) {
        (Some(url), _) if !url.is_empty() => normalize_url(url),
        (_, Some(url)) => url.to_string(),
        _ => ctx.target.require_url()?,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(format!(
            "the broker URL {url:?} must start with http:// or https://"
        )));
    }
    let groups = groups(&args.only, &args.skip)?;
    let version = ctx.target.version();
    let http = Http::new(
        &url,
        ctx.target.credentials(),
        version.to_string(),
        ctx.target.timeout(),
        ctx.target.ca_pem(),
    )
    .map_err(|e| CliError::Local { message: e })?;
    let results: Results = Arc::new(Mutex::new(Vec::new()));
    let ledger: Ledger = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::new(
        http,
        Options {
            groups,
            offerings: args.offering.clone(),
            plans: args.plan.clone(),
            max_wait: args.max_wait,
            version,
        },
        results.clone(),
        ledger.clone(),
    );
    let start = Instant::now();
    let outcome = tokio::select! {
        outcome = engine.run() => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    drop(engine);
    let interrupted = outcome.is_none();
    if interrupted {
        stderr_line("osb check: interrupted; deleting what the checks created…");
    }
    let leftovers = tokio::select! {
        left = cleanup(ctx, &url, &ledger, args.max_wait) => left,
        _ = tokio::signal::ctrl_c() => ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| (r.clone(), "interrupted during cleanup".to_string()))
            .collect(),
    };
    let elapsed = start.elapsed();
    match outcome {
        Some(Err(Abort::Unreachable(message))) if leftovers.is_empty() => {
            return Err(CliError::Unreachable(format!(
                "the broker could not be reached: {message}"
            )));
        }
        Some(Err(Abort::Usage(message))) if leftovers.is_empty() => return Err(usage(message)),
        _ => {}
    }
    let results = results
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let version_text = version.to_string();
    if ctx.json {
        let report = report::json_report(
            &url,
            &version_text,
            &results,
            &leftovers,
            elapsed,
            args.strict,
            interrupted,
        );
        stdout_json(&report)?;
    } else {
        let text = report::text_report(&url, &version_text, &results, elapsed, args.strict);
        let lines: Vec<String> = text.lines().map(clean).collect();
        stdout_text(&lines.join("\n"))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit_report(&results, elapsed, args.strict)).map_err(
            |e| CliError::Local {
                message: format!("cannot write {}: {e}", path.display()),
            },
        )?;
    }
    if !leftovers.is_empty() {
        stderr_line("osb check: could not delete what it created:");
        for (resource, error) in &leftovers {
            stderr_line(&format!("  {}: {error}", report::resource_line(resource)));
        }
    }
    if interrupted {
        return Err(CliError::Interrupted("osb check was interrupted".into()));
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.status == Status::Fail && (r.level == Level::Must || args.strict))
        .map(|r| r.name())
        .collect();
    if !failed.is_empty() {
        let what = if args.strict { "checks" } else { "MUST checks" };
        return Err(CliError::ChecksFailed(format!(
            "{} {what} failed: {}",
            failed.len(),
            failed.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_from_only_and_skip() {
        assert_eq!(groups(&[], &[]).unwrap().len(), GROUPS.len());
        assert_eq!(groups(&["auth".into()], &[]).unwrap(), ["auth"]);
        let g = groups(&[], &["auth".into(), "version".into()]).unwrap();
        assert!(!g.contains(&"auth") && g.contains(&"catalog"));
        assert_eq!(groups(&["nope".into()], &[]).unwrap_err().exit_code(), 2);
    }
}
