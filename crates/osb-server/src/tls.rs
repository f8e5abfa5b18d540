//! HTTPS for [`Server`](crate::Server): rustls with the ring provider, the certificate pair
//! reloaded on `SIGHUP`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::Error;

/// Where the PEM files are.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client_ca: Option<PathBuf>,
}

/// The files and the configuration last loaded from them.
#[derive(Debug)]
pub(crate) struct TlsState {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    pub(crate) fn load(files: TlsFiles) -> Result<Self, Error> {
        let config = read(&files)?;
        Ok(TlsState {
            files,
            config: RwLock::new(config),
        })
    }

    /// An acceptor with the current configuration.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Reads the files again; on failure the current configuration stays.
    pub(crate) fn reload(&self) -> Result<(), Error> {
        let config = read(&self.files)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }
}

/// On Unix, reloads the pair on each `SIGHUP`; the task runs until aborted.
pub(crate) fn reload_on_hangup(
    state: Arc<TlsState>,
) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).map_err(|source| Error::Io {
            context: "cannot listen for SIGHUP".into(),
            source,
        })?;
        Ok(Some(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match state.reload() {
                    Ok(()) => tracing::info!(
                        cert = %state.files.cert.display(),
                        "SIGHUP: reloaded the TLS certificate and key"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: the TLS certificate and key did not load; serving the previous pair"
                    ),
                }
            }
        })))
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        Ok(None)
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidConfig { reason }
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let unreadable = |e: &dyn std::fmt::Display| invalid(format!("{what} {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn read(files: &TlsFiles) -> Result<Arc<ServerConfig>, Error> {
    if files.cert.as_os_str().is_empty() || files.key.as_os_str().is_empty() {
        return Err(invalid(
            "a TLS client CA is set without a certificate and key".into(),
        ));
    }
    let chain = certificates(&files.cert, "TLS certificate")?;
    // The error of a key file never quotes its content.
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| invalid(format!("TLS private key {}: {e}", files.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(format!(
            "TLS certificate {} and key {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    ca: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca, "TLS client CA")? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("TLS client CA {}: {e}", ca.display())))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(format!("TLS client CA {}: {e}", ca.display())))
}
