//! `https://` in `HttpOkVerifier`: the original checked such URLs with the system's roots;
//! here too, plus the CA of a `ca_file` argument and the bundles that `REQUESTS_CA_BUNDLE`,
//! `SSL_CERT_FILE` or `CURL_CA_BUNDLE` name. A real TLS server on 127.0.0.1 with a
//! certificate from a CA made for the test.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Manager, config_dir};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A CA (its PEM) and a TLS server on 127.0.0.1 with a certificate it signed; counts the
/// requests it answered (each one completed a handshake).
struct TlsServer {
    port: u16,
    ca_pem: String,
    answered: Arc<AtomicUsize>,
}

impl TlsServer {
    /// Asserts that `m` starts up, its verifier having completed a request over TLS.
    fn assert_answered(&self, m: &Manager) {
        m.wait_status("running");
        assert!(
            self.answered.load(Ordering::SeqCst) >= 1,
            "the verifier never completed a request over TLS:\n{}",
            m.output()
        );
    }

    fn start() -> TlsServer {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        // Lives as long as the test binary; each connection is answered in turn.
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                if answer(&config, tcp).is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        TlsServer {
            port,
            ca_pem,
            answered,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/health", self.port)
    }
}

/// Reads one request's head over TLS and answers 200; an error when the client gave up on
/// the handshake (it did not trust the certificate).
fn answer(config: &Arc<rustls::ServerConfig>, tcp: TcpStream) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")?;
    tls.conn.send_close_notify();
    tls.flush()
}

/// `web` verified by HttpOkVerifier with `args`. The test serves HTTPS, not `web`: the
/// ownership check is off.
fn config(mut args: Value) -> Value {
    args["check_owner"] = json!(false);
    json!({
        "modules": {"pymutils.http_verifier": {"verifiers": ["HttpOkVerifier"]}},
        "http": {"enabled": true},
        "processes": {
            "web": {
                "executable": "sleep",
                "arguments": ["60"],
                "verifier": {"type": "pymutils.http_verifier.HttpOkVerifier", "arguments": args}
            }
        }
    })
}

#[test]
fn https_passes_with_the_ca_of_ca_file_beside_the_config() {
    let server = TlsServer::start();
    let dir = config_dir(&config(
        json!({"url": server.url(), "ca_file": "certs/ca.pem", "timeout": 25}),
    ));
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ca.pem"), &server.ca_pem).unwrap();
    let m = Manager::start_in(dir, &[]);
    server.assert_answered(&m);
}

#[test]
fn https_to_a_server_of_an_unknown_ca_fails_the_verification_naming_the_certificate() {
    let server = TlsServer::start();
    let mut m = Manager::start(config(json!({"url": server.url(), "timeout": 2})));
    assert_eq!(m.wait_exit(), 5, "{}", m.output());
    let out = m.output();
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    assert_eq!(server.answered.load(Ordering::SeqCst), 0, "{out}");
}

#[test]
fn a_ca_file_that_cannot_be_read_is_a_config_error_naming_the_argument() {
    let mut m = Manager::start(config(
        json!({"url": "https://127.0.0.1:9/", "ca_file": "missing.pem"}),
    ));
    assert_eq!(m.wait_exit(), 5, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains("processes.web.verifier.arguments.ca_file: cannot read"),
        "{out}"
    );
}

#[test]
fn https_passes_with_the_ca_bundle_that_requests_ca_bundle_names() {
    // What a Python user's environment says (as `requests` read it): no `ca_file` needed.
    let server = TlsServer::start();
    let dir = config_dir(&config(json!({"url": server.url(), "timeout": 25})));
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, &server.ca_pem).unwrap();
    let m = Manager::start_env(dir, &[], &[("REQUESTS_CA_BUNDLE", &bundle)]);
    server.assert_answered(&m);
}

#[test]
fn a_ca_bundle_variable_that_cannot_be_read_fails_https_naming_the_variable() {
    let server = TlsServer::start();
    let dir = config_dir(&config(json!({"url": server.url(), "timeout": 2})));
    let missing = dir.path().join("missing.pem");
    let mut m = Manager::start_env(dir, &[], &[("CURL_CA_BUNDLE", &missing)]);
    assert_eq!(m.wait_exit(), 5, "{}", m.output());
    let out = m.output();
    assert!(out.contains("CURL_CA_BUNDLE: cannot read"), "{out}");
    assert_eq!(server.answered.load(Ordering::SeqCst), 0, "{out}");
}
