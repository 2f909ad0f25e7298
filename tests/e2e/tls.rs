//! TLS against a real TLS endpoint on 127.0.0.1: a certificate from a private CA made in the
//! test (as on-premise BlueKing deployments use), terminating in front of `jobsim`.
//! Verification is on by default: `apply` cannot start (exit 4) and says the certificate is
//! not trusted and how to trust it. `--ca-cert` (or `BK_JOB_CA_CERT`) trusts the private CA;
//! `--insecure-skip-tls-verify` works and warns on every run, even with `-q`.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::apply::{Fixture, TWO_STAGES, code, text};
use crate::server::SimServer;

/// A CA certificate (PEM) and a server certificate it signed for `127.0.0.1`.
struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "jobsim.test");
    let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key).expect("leaf cert");
    Pki {
        ca_pem: ca_cert.pem(),
        leaf: leaf_cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// `jobsim` behind a TLS terminator on loopback, both in one runtime.
struct TlsSim {
    sim: SimServer,
    addr: SocketAddr,
}

impl TlsSim {
    fn start(f: &Fixture, pki: &Pki) -> TlsSim {
        let sim = SimServer::start(&f.path("sandbox"));
        let runtime = sim.runtime();
        let backend = sim.running().addr();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.key.clone_key())
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsSim { sim, addr }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.sim.requests().len()
    }
}

const SECRET: &str = "CANARY-tls-secret-0d15ea5e";

fn apply(f: &Fixture, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = f.apply_endpoint(url);
    cmd.args(args)
        .env("BK_APP_CODE", "plan-app")
        .env("BK_APP_SECRET", SECRET)
        .env("BK_USERNAME", "admin")
        .env_remove("BK_JOB_CA_CERT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run plan")
}

fn fixture() -> Fixture {
    let f = Fixture::new(TWO_STAGES, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"over tls");
    f
}

fn delivered(f: &Fixture) -> bool {
    ["10.0.2.1", "10.0.2.2"]
        .iter()
        .all(|ip| f.read(ip, "/opt/app/app.tar.gz").as_deref() == Some(&b"over tls"[..]))
}

const WARNING: &str = "warning: TLS certificate verification is OFF";

/// The `run_started` line of the one journal under the fixture's state dir.
fn run_started(f: &Fixture) -> serde_json::Value {
    let mut dirs = vec![f.path("state/runs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("state/runs").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read_to_string(&path).expect("journal");
                let first = text.lines().next().expect("a first line");
                return serde_json::from_str(first).expect("json");
            }
        }
    }
    panic!("no journal under {}", f.path("state/runs").display());
}

#[test]
fn an_untrusted_certificate_cannot_start_and_names_ca_cert() {
    let pki = pki("plan test CA");
    let f = fixture();
    let server = TlsSim::start(&f, &pki);
    for rust_log in [None, Some("trace")] {
        let env: Vec<(&str, &str)> = rust_log.map(|l| ("RUST_LOG", l)).into_iter().collect();
        let out = apply(&f, &server.url(), &[], &env);
        assert_eq!(code(&out), 4, "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("is not trusted"), "{stderr}");
        assert!(stderr.contains("--ca-cert"), "{stderr}");
        assert!(stderr.contains("BK_JOB_CA_CERT"), "{stderr}");
        assert!(!stderr.contains(WARNING), "{stderr}");
        assert!(!stderr.contains(SECRET) && !text(&out.stdout).contains(SECRET));
    }
    // Nothing got through the handshake, nothing was started.
    assert_eq!(server.requests(), 0);
    assert!(!delivered(&f));
    assert!(!f.path("state/runs").exists());
}

#[test]
fn ca_cert_trusts_the_private_ca_by_flag_and_by_environment() {
    let pki = pki("plan test CA");
    let f = fixture();
    let server = TlsSim::start(&f, &pki);
    let ca = f.path("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("ca.pem");
    let ca = ca.display().to_string();
    // With every library's trace on: the TLS session and the requests inside it are logged,
    // the credentials are not.
    let out = apply(
        &f,
        &server.url(),
        &["--ca-cert", &ca],
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(delivered(&f));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains(WARNING));
    assert!(stderr.contains("TRACE"), "{stderr}");
    assert!(!stderr.contains(SECRET) && !text(&out.stdout).contains(SECRET));
    let calls = server.requests();
    assert!(calls >= 4, "{calls}");
    // A verified run says nothing about TLS in its journal.
    let started = run_started(&f);
    assert_eq!(started["type"], "run_started", "{started}");
    assert!(
        started.get("insecure_skip_tls_verify").is_none(),
        "{started}"
    );

    let f = fixture();
    let server = TlsSim::start(&f, &pki);
    std::fs::write(f.path("ca.pem"), &pki.ca_pem).expect("ca.pem");
    let out = apply(&f, &server.url(), &[], &[("BK_JOB_CA_CERT", "ca.pem")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(delivered(&f));
}

#[test]
fn another_ca_or_a_file_that_is_no_certificate_is_refused() {
    let pki = pki("plan test CA");
    let f = fixture();
    let server = TlsSim::start(&f, &pki);
    let other = self::pki("some other CA");
    std::fs::write(f.path("other.pem"), &other.ca_pem).expect("other.pem");
    let out = apply(&f, &server.url(), &["--ca-cert", "other.pem"], &[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not trusted"));

    std::fs::write(f.path("junk.pem"), "not a certificate\n").expect("junk");
    let out = apply(&f, &server.url(), &["--ca-cert", "junk.pem"], &[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot use the CA certificate"), "{stderr}");
    assert!(stderr.contains("junk.pem"), "{stderr}");

    let out = apply(&f, &server.url(), &["--ca-cert", "missing.pem"], &[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("missing.pem"));
    assert_eq!(server.requests(), 0);
}

#[test]
fn insecure_skip_tls_verify_works_and_warns_on_every_run() {
    let pki = pki("plan test CA");
    for quiet in [false, true] {
        let f = fixture();
        let server = TlsSim::start(&f, &pki);
        let mut args = vec!["--insecure-skip-tls-verify"];
        if quiet {
            args.push("-q");
        }
        let out = apply(&f, &server.url(), &args, &[]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert!(delivered(&f));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(WARNING), "quiet={quiet}: {stderr}");
        assert!(stderr.contains("--ca-cert"), "{stderr}");
        assert!(server.requests() >= 4);
        // Whoever reads the journal later learns that the endpoint went unchecked.
        let started = run_started(&f);
        assert_eq!(started["insecure_skip_tls_verify"], true, "{started}");
    }

    // NDJSON: the version line first, then the warning as an event.
    let f = fixture();
    let server = TlsSim::start(&f, &pki);
    let out = apply(
        &f,
        &server.url(),
        &["--insecure-skip-tls-verify", "--format", "json"],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(events[0]["event"], "apply_started");
    assert_eq!(events[1]["event"], "warning");
    assert!(
        events[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TLS certificate verification is OFF"))
    );
    assert!(text(&out.stderr).contains(WARNING));
}
