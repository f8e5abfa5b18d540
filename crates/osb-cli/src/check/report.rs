//! Printing the results: a table for people, JSON for scripts, JUnit XML for CI.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::defs::{CheckResult, Level, Status};
use super::engine::Resource;
use super::http::snippet;

/// Counts over the results.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Summary {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) skipped: usize,
    pub(crate) must_failed: usize,
    pub(crate) should_failed: usize,
}

impl Summary {
    pub(crate) fn of(results: &[CheckResult]) -> Self {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Pass => s.passed += 1,
                Status::Skip => s.skipped += 1,
                Status::Fail => {
                    s.failed += 1;
                    match r.level {
                        Level::Must => s.must_failed += 1,
                        Level::Should => s.should_failed += 1,
                        Level::May => {}
                    }
                }
            }
        }
        s
    }
}

fn resource_json(r: &Resource) -> Value {
    match r {
        Resource::Instance {
            instance_id,
            service_id,
            plan_id,
        } => json!({"kind": "instance", "instance_id": instance_id,
                    "service_id": service_id, "plan_id": plan_id}),
        Resource::Binding {
            instance_id,
            binding_id,
            service_id,
            plan_id,
        } => json!({"kind": "binding", "instance_id": instance_id, "binding_id": binding_id,
                    "service_id": service_id, "plan_id": plan_id}),
    }
}

/// One line naming a resource that could not be deleted.
pub(crate) fn resource_line(r: &Resource) -> String {
    match r {
        Resource::Instance {
            instance_id,
            service_id,
            plan_id,
        } => format!("instance {instance_id} (service_id {service_id}, plan_id {plan_id})"),
        Resource::Binding {
            instance_id,
            binding_id,
            service_id,
            plan_id,
        } => format!(
            "binding {binding_id} of instance {instance_id} (service_id {service_id}, plan_id {plan_id})"
        ),
    }
}

/// The run as one JSON document (see `schemas/check-report.schema.json`).
pub(crate) fn json_report(
    broker: &str,
    version: &str,
    results: &[CheckResult],
    leftovers: &[(Resource, String)],
    elapsed: Duration,
    strict: bool,
    interrupted: bool,
) -> Value {
    let s = Summary::of(results);
    json!({
        "broker": broker,
        "api_version": version,
        "strict": strict,
        "interrupted": interrupted,
        "duration_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "summary": {
            "total": results.len(),
            "passed": s.passed,
            "failed": s.failed,
            "skipped": s.skipped,
            "must_failed": s.must_failed,
            "should_failed": s.should_failed,
        },
        "checks": results,
        "leftovers": leftovers.iter().map(|(r, error)| {
            let mut v = resource_json(r);
            v["error"] = json!(error);
            v
        }).collect::<Vec<_>>(),
    })
}

/// The run as a table for people.
pub(crate) fn text_report(
    broker: &str,
    version: &str,
    results: &[CheckResult],
    elapsed: Duration,
    strict: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "osb check: {broker} (OSB {version})");
    let width = results.iter().map(|r| r.name().len()).max().unwrap_or(0);
    for r in results {
        let status = match r.status {
            Status::Pass => "PASS",
            Status::Fail if r.level == Level::Must || strict => "FAIL",
            Status::Fail => "WARN",
            Status::Skip => "SKIP",
        };
        let _ = writeln!(
            out,
            "{status}  {:<6}  {:<width$}  {}",
            r.level.as_str(),
            r.name(),
            r.title
        );
        match r.status {
            Status::Skip => {
                let _ = writeln!(out, "      skipped: {}", r.message);
            }
            Status::Fail => {
                for line in r.message.lines() {
                    let _ = writeln!(out, "      {line}");
                }
                let _ = writeln!(out, "      spec: {}", r.section);
                if let Some(rule) = r.rule {
                    let _ = writeln!(out, "      rule: {rule}");
                }
                for ex in r.exchanges.iter().take(3) {
                    let _ = writeln!(out, "      > {} {}", ex.request.method, ex.request.url);
                    if let Some(body) = &ex.request.body {
                        let _ = writeln!(out, "      > {}", snippet(body));
                    }
                    match &ex.response {
                        Some(reply) => {
                            let _ =
                                writeln!(out, "      < {} {}", reply.status, snippet(&reply.body));
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "      < {}",
                                ex.error.as_deref().unwrap_or("no reply")
                            );
                        }
                    }
                }
            }
            Status::Pass => {}
        }
    }
    let s = Summary::of(results);
    let _ = writeln!(
        out,
        "\n{} checks: {} passed, {} failed ({} MUST, {} SHOULD), {} skipped in {:.2} s",
        results.len(),
        s.passed,
        s.failed,
        s.must_failed,
        s.should_failed,
        s.skipped,
        elapsed.as_secs_f64()
    );
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The run as JUnit XML: one `testsuite` per group, one `testcase` per check.
pub(crate) fn junit_report(results: &[CheckResult], elapsed: Duration, strict: bool) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    let counts = |rs: &[&CheckResult]| {
        let failures = rs.iter().filter(|r| r.status == Status::Fail).count();
        let skipped = rs.iter().filter(|r| r.status == Status::Skip).count();
        (rs.len(), failures, skipped)
    };
    let all: Vec<&CheckResult> = results.iter().collect();
    let (tests, failures, skipped) = counts(&all);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"osb check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
        elapsed.as_secs_f64()
    );
    for group in groups {
        let members: Vec<&CheckResult> = results.iter().filter(|r| r.group == group).collect();
        let (tests, failures, skipped) = counts(&members);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
            xml_escape(group)
        );
        for r in members {
            let _ = write!(
                out,
                "    <testcase classname=\"osb.check.{}\" name=\"{}\"",
                xml_escape(r.group),
                xml_escape(&r.name())
            );
            match r.status {
                Status::Pass => out.push_str("/>\n"),
                Status::Skip => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(&r.message)
                    );
                }
                Status::Fail => {
                    let kind = if r.level == Level::Must || strict {
                        r.level.as_str().to_string()
                    } else {
                        format!("{} (warning)", r.level.as_str())
                    };
                    let mut detail = format!("{}\nspec: {}\n", r.message, r.section);
                    for ex in &r.exchanges {
                        detail.push_str(&format!("> {} {}\n", ex.request.method, ex.request.url));
                        if let Some(reply) = &ex.response {
                            detail.push_str(&format!(
                                "< {} {}\n",
                                reply.status,
                                snippet(&reply.body)
                            ));
                        }
                    }
                    let first = r.message.lines().next().unwrap_or_default();
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(first),
                        xml_escape(&kind),
                        xml_escape(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml_escape("x\u{1}y\nz"), "x\u{FFFD}y\nz");
    }
}
