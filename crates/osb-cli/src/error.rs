//! The one error type of the CLI, its exit codes and how it is printed.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::output::{clean, stderr_line};

/// Exit code: the command line or its input is wrong (also clap's code for usage errors).
pub(crate) const EXIT_USAGE: i32 = 2;
/// Exit code: the broker refused the request or the operation failed.
pub(crate) const EXIT_BROKER: i32 = 3;
/// Exit code: the broker could not be reached or did not answer in time.
pub(crate) const EXIT_TRANSPORT: i32 = 4;
/// Exit code: `osb lint` found errors.
pub(crate) const EXIT_LINT: i32 = 5;
/// Exit code: the local record could not be read or written.
pub(crate) const EXIT_LOCAL: i32 = 1;
/// Exit code: `osb check` found a failed MUST check (or any failed check with `--strict`).
pub(crate) const EXIT_CHECKS: i32 = 6;
/// Exit code: waiting was interrupted with Ctrl-C (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Everything that ends a command with a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or input: unknown names, invalid JSON, missing settings.
    #[error("{0}")]
    Usage(String),
    /// A call to the broker failed; `context` says which.
    #[error("{context}: {source}")]
    Client {
        /// What the CLI was doing, e.g. `provisioning "my-db"`.
        context: String,
        /// The client's error (boxed: it is large).
        #[source]
        source: Box<osb_client::Error>,
        /// What the user can do about it, beyond the generic hints.
        hint: Option<String>,
    },
    /// The broker reports the operation as failed, or polling reached its deadline.
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// The broker's description, if it gave one.
        description: Option<String>,
    },
    /// `osb lint` found errors (the report is already printed).
    #[error("the catalog has {0} error(s)")]
    Lint(usize),
    /// The local record could not be read or written.
    #[error("{message}")]
    Local {
        /// What went wrong, with the path.
        message: String,
    },
    /// Ctrl-C while waiting; the message says what is still running.
    #[error("{0}")]
    Interrupted(String),
    /// `osb check` could not reach the broker.
    #[error("{0}")]
    Unreachable(String),
    /// `osb check` found failures (the report is already printed).
    #[error("{0}")]
    ChecksFailed(String),
}

/// `Result` with [`CliError`].
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

/// Shorthand for a usage error.
pub(crate) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Wraps a client error with what the CLI was doing.
pub(crate) fn call_error(context: impl Into<String>, source: osb_client::Error) -> CliError {
    CliError::Client {
        context: context.into(),
        source: Box::new(source),
        hint: None,
    }
}

impl CliError {
    /// Adds a hint to a client error (other errors are returned unchanged).
    pub(crate) fn with_hint(self, text: impl Into<String>) -> Self {
        match self {
            CliError::Client {
                context, source, ..
            } => CliError::Client {
                context,
                source,
                hint: Some(text.into()),
            },
            other => other,
        }
    }
}

/// How a client error is classified for the exit code.
fn client_exit_code(e: &osb_client::Error) -> i32 {
    use osb_client::Error as E;
    match e {
        E::Timeout { .. } | E::Transport { .. } => EXIT_TRANSPORT,
        e if e.is_refused_locally() => EXIT_USAGE,
        _ => EXIT_BROKER,
    }
}

/// The causes of an error, outermost first, joined with `": "`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

impl CliError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Client { source, .. } => client_exit_code(source),
            CliError::Failed { .. } => EXIT_BROKER,
            CliError::Lint(_) => EXIT_LINT,
            CliError::Local { .. } => EXIT_LOCAL,
            CliError::Interrupted(_) => EXIT_INTERRUPTED,
            CliError::Unreachable(_) => EXIT_TRANSPORT,
            CliError::ChecksFailed(_) => EXIT_CHECKS,
        }
    }

    /// A short name of the error class (`kind` in `--json` error objects).
    fn kind(&self) -> &'static str {
        match self.exit_code() {
            EXIT_USAGE => "usage",
            EXIT_BROKER => "broker",
            EXIT_TRANSPORT => "transport",
            EXIT_LINT => "lint",
            EXIT_CHECKS => "check",
            EXIT_INTERRUPTED => "interrupted",
            _ => "local",
        }
    }

    /// The main message, the broker's `error` / `description` and hints, for people.
    fn lines(&self) -> (String, Vec<(&'static str, String)>) {
        let mut details = Vec::new();
        let message = match self {
            CliError::Client {
                context,
                source,
                hint,
            } => {
                let message = match source.as_ref() {
                    osb_client::Error::Broker { status, body, .. } => {
                        if let Some(code) = &body.error {
                            details.push(("error", code.clone()));
                        }
                        if let Some(description) = &body.description {
                            details.push(("description", description.clone()));
                        }
                        if body.instance_usable == Some(false) {
                            details.push(("instance usable", "no".to_string()));
                        }
                        if body.update_repeatable == Some(false) {
                            details.push(("update repeatable", "no".to_string()));
                        }
                        format!("{context}: the broker answered {status}")
                    }
                    osb_client::Error::UnexpectedStatus { status, body } => {
                        let text = body.as_str().trim();
                        if !text.is_empty() && !status.is_success() {
                            let mut snippet: String = text.chars().take(300).collect();
                            if snippet.len() < text.len() {
                                snippet.push('…');
                            }
                            details.push(("body", snippet));
                        }
                        format!("{context}: {}", chain(source.as_ref()))
                    }
                    osb_client::Error::InvalidParameters { violations } => {
                        for v in violations {
                            details.push(("parameters", v.to_string()));
                        }
                        format!("{context}: the parameters do not match the plan's schema")
                    }
                    other => format!("{context}: {}", chain(other)),
                };
                if let Some(hint) = hint {
                    details.push(("hint", hint.clone()));
                } else if source.is_unauthorized() {
                    details.push((
                        "hint",
                        "check OSB_BROKER_USERNAME / OSB_BROKER_PASSWORD or OSB_BROKER_TOKEN"
                            .to_string(),
                    ));
                } else if source.is_concurrency_error() {
                    details.push((
                        "hint",
                        "another operation on the instance (or binding) is still running; \
                         `osb last-operation NAME --wait` waits for it, then retry"
                            .to_string(),
                    ));
                } else if source.is_connect() {
                    details.push((
                        "hint",
                        "is the broker running? check OSB_BROKER_URL / --broker-url".to_string(),
                    ));
                }
                message
            }
            CliError::Failed {
                message,
                description,
            } => {
                if let Some(description) = description {
                    details.push(("description", description.clone()));
                }
                message.clone()
            }
            other => other.to_string(),
        };
        (message, details)
    }

    /// Prints the error on stderr: text, or a JSON object with `--json`.
    pub(crate) fn report(&self, json: bool) {
        let (message, details) = self.lines();
        if json {
            let mut object = Map::new();
            object.insert("kind".into(), json!(self.kind()));
            object.insert("exit_code".into(), json!(self.exit_code()));
            object.insert("message".into(), json!(message));
            if let CliError::Client { source, .. } = self {
                if let Some(status) = source.status() {
                    object.insert("status".into(), json!(status.as_u16()));
                }
                if let Some(body) = source.error_response()
                    && let Ok(value) = serde_json::to_value(body)
                {
                    object.insert("broker".into(), value);
                }
            }
            let details: Vec<Value> = details
                .iter()
                .map(|(key, value)| json!({"field": key, "value": value}))
                .collect();
            if !details.is_empty() {
                object.insert("details".into(), Value::Array(details));
            }
            stderr_line(&json!({ "error": object }).to_string());
            return;
        }
        stderr_line(&format!("osb: {}", clean(&message)));
        let width = details.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in details {
            stderr_line(&format!("  {key:<width$}  {}", clean(&value)));
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Local {
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [
            CliError::Usage("x".into()).exit_code(),
            CliError::Failed {
                message: "x".into(),
                description: None,
            }
            .exit_code(),
            CliError::Lint(1).exit_code(),
            CliError::Local {
                message: "x".into(),
            }
            .exit_code(),
            CliError::Interrupted(String::new()).exit_code(),
        ];
        assert_eq!(codes, [2, 3, 5, 1, 130]);
    }

    #[test]
    fn broker_errors_show_error_and_description() {
        let body = osb_types::ErrorResponse::coded(
            osb_types::ErrorCode::ConcurrencyError,
            "Another operation is running",
        );
        let err = call_error(
            "provisioning \"db\"",
            osb_client::Error::Broker {
                status: http::StatusCode::UNPROCESSABLE_ENTITY,
                code: body.code(),
                body: Box::new(body),
            },
        );
        assert_eq!(err.exit_code(), EXIT_BROKER);
        let (message, details) = err.lines();
        assert_eq!(
            message,
            "provisioning \"db\": the broker answered 422 Unprocessable Entity"
        );
        assert_eq!(
            details[..2],
            [
                ("error", "ConcurrencyError".to_string()),
                ("description", "Another operation is running".to_string())
            ]
        );
        assert_eq!(details[2].0, "hint");
        assert!(details[2].1.contains("osb last-operation NAME --wait"));
    }
}
