//! The memory broker's binary as served: the header-read timeout from the environment, HTTPS
//! with a certificate generated here, the pair reloaded on SIGHUP, and mutual TLS, all driven
//! through osb-client.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osb_client::Client;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate authority made for the test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for these names and its key, both PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "test");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The broker binary, killed on drop.
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn start(env: &[(&str, &str)]) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-memory-broker"))
            .env("OSB_LISTEN", "127.0.0.1:0")
            .env("OSB_BROKER_PASSWORD", "pw")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.trim().to_string());
                break;
            }
        }
        let url = url.expect("the broker printed where it listens");
        Broker { child, url }
    }

    fn addr(&self) -> String {
        self.url.rsplit("://").next().unwrap().to_string()
    }

    fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A fresh client (no pooled connection) trusting only `ca`.
fn client(url: &str, ca: &Ca) -> osb_client::ClientBuilder {
    Client::builder(url)
        .basic_auth("admin", "pw")
        .root_certificate_pem(ca.pem())
        .only_custom_roots()
}

async fn catalog_ok(builder: osb_client::ClientBuilder) -> Result<(), osb_client::Error> {
    let catalog = builder
        .build()
        .unwrap()
        .catalog(&osb_client::CallOptions::new())
        .await?;
    assert_eq!(catalog.services.len(), 1);
    Ok(())
}

#[tokio::test]
async fn partial_headers_are_closed_by_the_configured_timeout() {
    let broker = Broker::start(&[("OSB_HEADER_READ_TIMEOUT_MS", "300")]);
    assert!(broker.url.starts_with("http://"), "{}", broker.url);
    let mut stream = tokio::net::TcpStream::connect(broker.addr()).await.unwrap();
    stream
        .write_all(b"GET /v2/catalog HTTP/1.1\r\nHost: b\r\nX-Bro")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    // Without the timeout the connection would stay open; 20 s is slack for a busy machine.
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let catalog = Client::builder(&broker.url)
        .basic_auth("admin", "pw")
        .build()
        .unwrap()
        .catalog(&osb_client::CallOptions::new())
        .await
        .unwrap();
    assert_eq!(catalog.services.len(), 1);
}

#[tokio::test]
async fn https_with_a_pair_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Ca::new("first CA"), Ca::new("second CA"));
    let (cert, key) = first.issue(&["127.0.0.1", "localhost"]);
    let cert_path = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);
    let broker = Broker::start(&[("OSB_TLS_CERT", &cert_path), ("OSB_TLS_KEY", &key_path)]);
    assert!(broker.url.starts_with("https://"), "{}", broker.url);

    catalog_ok(client(&broker.url, &first)).await.unwrap();
    // Neither the built-in roots nor another CA trust it.
    let plain = Client::builder(&broker.url).basic_auth("admin", "pw");
    assert!(catalog_ok(plain).await.is_err());
    assert!(catalog_ok(client(&broker.url, &second)).await.is_err());

    // A new pair from the second CA, picked up on SIGHUP.
    let (cert, key) = second.issue(&["127.0.0.1", "localhost"]);
    write(dir.path(), "cert.pem", &cert);
    write(dir.path(), "key.pem", &key);
    broker.hang_up();
    let deadline = Instant::now() + Duration::from_secs(30);
    while catalog_ok(client(&broker.url, &second)).await.is_err() {
        assert!(Instant::now() < deadline, "the new pair was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(catalog_ok(client(&broker.url, &first)).await.is_err());

    // A broken pair is refused on reload; the current one stays.
    write(dir.path(), "key.pem", "not a key");
    broker.hang_up();
    tokio::time::sleep(Duration::from_millis(300)).await;
    catalog_ok(client(&broker.url, &second)).await.unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (servers, clients) = (Ca::new("server CA"), Ca::new("client CA"));
    let (cert, key) = servers.issue(&["127.0.0.1"]);
    let cert_path = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);
    let ca_path = write(dir.path(), "clients.pem", &clients.pem());
    let broker = Broker::start(&[
        ("OSB_TLS_CERT", &cert_path),
        ("OSB_TLS_KEY", &key_path),
        ("OSB_TLS_CLIENT_CA", &ca_path),
    ]);

    let (client_cert, client_key) = clients.issue(&["platform"]);
    let with_identity =
        client(&broker.url, &servers).client_identity_pem(&client_cert, &client_key);
    catalog_ok(with_identity).await.unwrap();
    assert!(catalog_ok(client(&broker.url, &servers)).await.is_err());
    // A certificate from another CA is refused too.
    let (other_cert, other_key) = servers.issue(&["platform"]);
    let wrong = client(&broker.url, &servers).client_identity_pem(&other_cert, &other_key);
    assert!(catalog_ok(wrong).await.is_err());
}

#[test]
fn half_a_tls_pair_is_refused_at_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_example-memory-broker"))
        .env("OSB_LISTEN", "127.0.0.1:0")
        .env("OSB_TLS_CERT", "/nonexistent/cert.pem")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OSB_TLS_KEY"), "{stderr}");
}
