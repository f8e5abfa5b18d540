//! The harness's one error type.

/// What stops a benchmark run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A process, file or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A broker did not answer as the harness needs to set a case up.
    #[error("{0}")]
    Setup(String),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// JSON that does not decode or encode.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// The harness's results.
pub(crate) type Result<T, E = BenchError> = std::result::Result<T, E>;
