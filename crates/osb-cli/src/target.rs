//! Which broker to talk to and how: URL, credentials, API version, originating identity.

use std::time::Duration;

use osb_client::Client;
use osb_types::{ApiVersion, CloudFoundryIdentity, KubernetesIdentity, OriginatingIdentity};

use crate::cli::GlobalArgs;
use crate::error::{Result, call_error, usage};
use crate::record::normalize_url;

/// How to authenticate.
enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

/// The connection settings from flags and environment, checked.
#[derive(Debug)]
pub(crate) struct Target {
    url: Option<String>,
    auth: Auth,
    version: ApiVersion,
    identity: Option<OriginatingIdentity>,
    timeout: Duration,
    /// PEM of extra CA certificates to trust.
    ca_pem: Option<Vec<u8>>,
}

impl Target {
    /// Checks the global options.
    pub(crate) fn from_args(args: &GlobalArgs) -> Result<Target> {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let auth = match (
            nonempty(&args.username),
            nonempty(&args.password),
            nonempty(&args.token),
        ) {
            (None, None, None) => Auth::None,
            (Some(user), Some(password), None) => Auth::Basic { user, password },
            (None, None, Some(token)) => Auth::Bearer(token),
            (Some(_), None, None) => {
                return Err(usage(
                    "a user name is set but no password: set OSB_BROKER_PASSWORD (or --password)",
                ));
            }
            (None, Some(_), None) => {
                return Err(usage(
                    "a password is set but no user name: set OSB_BROKER_USERNAME (or --username)",
                ));
            }
            (_, _, Some(_)) => {
                return Err(usage(
                    "both Basic credentials and a bearer token are set; use one \
                     (OSB_BROKER_USERNAME/OSB_BROKER_PASSWORD or OSB_BROKER_TOKEN)",
                ));
            }
        };
        let identity = match (&args.as_user, &args.originating_identity) {
            (Some(user), _) => Some(parse_as(user)?),
            (None, Some(header)) if !header.is_empty() => {
                Some(OriginatingIdentity::parse(header).map_err(|e| {
                    usage(format!(
                        "--originating-identity: {e} (or use --as cloudfoundry:USER_ID)"
                    ))
                })?)
            }
            _ => None,
        };
        let ca_pem = match &args.ca_cert {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| usage(format!("--ca-cert {}: {e}", path.display())))?,
            ),
            None => None,
        };
        Ok(Target {
            url: nonempty(&args.broker_url).map(|u| normalize_url(&u)),
            auth,
            version: args.api_version.unwrap_or(ApiVersion::LATEST),
            identity,
            timeout: Duration::from_secs(args.timeout),
            ca_pem,
        })
    }

    /// The broker URL given by flag or environment.
    pub(crate) fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The broker URL given by flag or environment, required.
    pub(crate) fn require_url(&self) -> Result<String> {
        self.url.clone().ok_or_else(|| {
            usage("no broker: set OSB_BROKER_URL or pass --broker-url, e.g. http://127.0.0.1:8080")
        })
    }

    /// The URL to use for an entry recorded with `recorded`: the given one, else the recorded.
    pub(crate) fn url_or(&self, recorded: &str) -> String {
        self.url.clone().unwrap_or_else(|| recorded.to_string())
    }

    /// The configured OSB version.
    pub(crate) fn version(&self) -> ApiVersion {
        self.version
    }

    /// The configured credentials, for `osb check`'s raw requests.
    pub(crate) fn credentials(&self) -> crate::check::Credentials {
        use crate::check::Credentials;
        match &self.auth {
            Auth::None => Credentials::None,
            Auth::Basic { user, password } => Credentials::Basic(user.clone(), password.clone()),
            Auth::Bearer(token) => Credentials::Bearer(token.clone()),
        }
    }

    /// The timeout of each request.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The PEM of the extra CA certificates to trust, if any.
    pub(crate) fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// A client for the broker at `url`.
    pub(crate) fn client(&self, url: &str) -> Result<Client> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(usage(format!(
                "the broker URL {url:?} must start with http:// or https://"
            )));
        }
        let mut builder = Client::builder(url)
            .api_version(self.version)
            .timeout(self.timeout);
        builder = match &self.auth {
            Auth::None => builder,
            Auth::Basic { user, password } => builder.basic_auth(user, password),
            Auth::Bearer(token) => builder.bearer_auth(token),
        };
        if let Some(identity) = &self.identity {
            builder = builder.originating_identity(identity.clone());
        }
        if let Some(pem) = &self.ca_pem {
            builder = builder.root_certificate_pem(pem);
        }
        builder
            .build()
            .map_err(|e| call_error(format!("cannot use the broker at {url}"), e))
    }
}

/// `cloudfoundry:USER_ID` or `kubernetes:USERNAME[:UID]`.
fn parse_as(text: &str) -> Result<OriginatingIdentity> {
    let bad = || {
        usage(format!(
            "--as {text:?}: expected cloudfoundry:USER_ID or kubernetes:USERNAME[:UID]"
        ))
    };
    let (platform, user) = text.split_once(':').ok_or_else(bad)?;
    if user.is_empty() {
        return Err(bad());
    }
    match platform {
        "cloudfoundry" | "cf" => Ok(CloudFoundryIdentity::new(user).into()),
        "kubernetes" | "k8s" => {
            let (name, uid) = user.split_once(':').unwrap_or((user, ""));
            if name.is_empty() {
                return Err(bad());
            }
            Ok(KubernetesIdentity::new(name, uid).into())
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn target(args: &[&str]) -> Result<Target> {
        let mut argv = vec!["osb"];
        argv.extend_from_slice(args);
        argv.push("catalog");
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        Target::from_args(&cli.global)
    }

    #[test]
    fn debug_redacts_passwords_and_tokens() {
        let cli = crate::cli::Cli::try_parse_from([
            "osb",
            "-u",
            "admin",
            "--password",
            "hunter2-pw",
            "--broker-url",
            "http://h/",
            "catalog",
        ])
        .unwrap();
        let text = format!("{cli:?} {:?}", Target::from_args(&cli.global).unwrap());
        assert!(text.contains("admin"), "{text}");
        assert!(!text.contains("hunter2-pw"), "{text}");
        let cli = crate::cli::Cli::try_parse_from([
            "osb",
            "--token",
            "tok-secret-9",
            "--broker-url",
            "http://h/",
            "catalog",
        ])
        .unwrap();
        let text = format!("{cli:?} {:?}", Target::from_args(&cli.global).unwrap());
        assert!(!text.contains("tok-secret-9"), "{text}");
    }

    #[test]
    fn ca_certificates_are_read_and_checked() {
        let err = target(&[
            "--ca-cert",
            "/nonexistent/ca.pem",
            "--broker-url",
            "http://h/",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let target = target(&[
            "--ca-cert",
            path.to_str().unwrap(),
            "--broker-url",
            "https://h/",
        ])
        .unwrap();
        assert!(
            target.client("https://h/").is_err(),
            "a file without a CA was taken"
        );
    }

    #[test]
    fn identities_from_as() {
        let id = parse_as("cloudfoundry:user-1").unwrap();
        assert_eq!(id.platform(), "cloudfoundry");
        assert_eq!(id.value()["user_id"], "user-1");
        let id = parse_as("kubernetes:duke:c2dd").unwrap();
        assert_eq!(id.value()["username"], "duke");
        assert_eq!(id.value()["uid"], "c2dd");
        for bad in ["nobody", "cloudfoundry:", "mesos:x", "kubernetes::1"] {
            assert_eq!(parse_as(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn credentials_must_be_complete_and_unambiguous() {
        assert!(
            target(&[
                "-u",
                "admin",
                "--password",
                "x",
                "--broker-url",
                "http://h/"
            ])
            .is_ok()
        );
        let err = target(&["-u", "admin"]).unwrap_err().to_string();
        assert!(err.contains("no password"), "{err}");
        let err = target(&["-u", "a", "--password", "b", "--token", "t"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("use one"), "{err}");
        let err = target(&["--originating-identity", "garbage"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--originating-identity"), "{err}");
    }

    #[test]
    fn urls_are_normalized_and_checked() {
        let t = target(&["--broker-url", "http://h:1/"]).unwrap();
        assert_eq!(t.url(), Some("http://h:1"));
        assert_eq!(
            t.client("ftp://x").unwrap_err().exit_code(),
            2,
            "bad scheme"
        );
        assert!(t.client("http://h:1").is_ok());
    }
}
