//! TLS on the API, gateway and console listener, end to end: `rempart serve` with a
//! certificate from a CA the test makes, `curl`, `openssl s_client` and the official OpenAI SDK
//! as clients, mutual TLS for a log forwarder (with a revocation list), a certificate replaced
//! on disk, and the refusal to serve plain HTTP on a network address.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the fakes run on the test's runtime"
)]

mod common;
mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use serde_json::{Value, json};

/// A CA, the server's certificate, and client certificates, as PEM files in `dir`.
struct Pki {
    dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Example Bank test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Pki {
            dir: dir.to_owned(),
            ca: Issuer::new(params, key),
        }
    }

    /// Writes `NAME.pem` and `NAME.key`, signed by the CA; returns the serial.
    fn issue(&self, name: &str, common_name: &str, sans: &[&str], serial: u64) -> PathBuf {
        let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        self.dir.join(format!("{name}.pem"))
    }

    /// A CRL revoking `serials`.
    fn revoke(&self, serials: &[u64]) {
        let now = time::OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.ca)
        .unwrap();
        std::fs::write(self.dir.join("crl.pem"), crl.pem().unwrap()).unwrap();
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn curl(args: &[&str]) -> Output {
    run(Command::new("curl").args(["-sS", "--max-time", "10"]).args(args))
}

/// `openssl s_client` against `addr` with extra arguments; its output and whether it connected.
fn s_client(addr: &str, args: &[&str]) -> (bool, String) {
    let out = run(Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost"])
        .args(args));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connected = out.status.success() && text.contains("-----BEGIN CERTIFICATE-----");
    (connected, text)
}

fn fingerprint_of_pem(pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn served_fingerprint(addr: &str) -> String {
    let (_, text) = s_client(addr, &[]);
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
    let end = text.find("-----END CERTIFICATE-----").map_or(text.len(), |e| e + 25);
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&text.as_bytes()[begin..end])
        .unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout)
        .trim()
        .to_owned()
}

const EVENT: &str = r#"{"@timestamp":"2026-12-05T08:00:00Z","EventID":4625,"Channel":"Security","Hostname":"WS-FIN-07.corp.example.eu","TargetUserName":"alice","IpAddress":"10.20.7.41"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_speaks_tls_and_a_forwarder_needs_no_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soc");
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(tmp.path());
    pki.issue("server", "rempart.test", &["localhost", "127.0.0.1"], 100);
    pki.issue("forwarder", "forwarder-01", &["forwarder-01.corp.example"], 201);
    pki.issue("revoked", "forwarder-02", &["forwarder-02.corp.example"], 202);
    pki.issue("unmapped", "someone-else", &[], 203);
    pki.revoke(&[202]);
    let fakes = upstream::Fakes::start().await;
    let config = dir.join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[privacy]\ninternal_suffixes = [\"corp.example.eu\"]\n\
             [server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\ncrl_files = [\"{}\"]\n\
             [[server.tls.clients]]\nsubject = \"forwarder-01.corp.example\"\nname = \"edr-forwarder\"\nrole = \"ingest\"\n\
             [[server.tls.clients]]\nsubject = \"forwarder-02\"\nname = \"old-forwarder\"\nrole = \"ingest\"\n\
             [gateway]\ndefault_class = \"TLP:GREEN\"\n\
             [[gateway.providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt\"\n\
             jurisdiction = \"us\"\nmax_class = \"TLP:GREEN\"\ntimeout_secs = 2\nmax_retries = 0\n\
             [[gateway.routes]]\nname = \"triage\"\npurpose = \"triage\"\nchain = [\"openai\"]\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem"),
            pki.path("crl.pem"),
            fakes.base_url("openai")
        ),
    )
    .unwrap();
    let client = common::token(&dir, "gateway-client", "soc-tool");
    let viewer = common::token(&dir, "viewer", "vic");
    let mut command = common::rempart(&dir);
    command.arg("--config").arg(&config);
    let (mut child, addr) = common::serve_with(command);
    let url = format!("https://localhost:{}", addr.rsplit(':').next().unwrap());
    let ca = pki.path("ca.pem");

    // curl trusts the institution's CA; plain HTTP on the same port gets nothing.
    let out = curl(&["--cacert", &ca, "-i", &format!("{url}/healthz")]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/1.1 200"),
        "{head} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(&[&format!("http://{addr}/healthz")]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ok"),
        "plain HTTP answered"
    );
    // Not trusted without the CA.
    assert!(!curl(&[&format!("{url}/healthz")]).status.success());

    // The console over TLS: HSTS, a `Secure` session cookie, nothing cached.
    let out = curl(&["--cacert", &ca, "-i", &format!("{url}/sign-in")]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("strict-transport-security: max-age="), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let out = curl(&[
        "--cacert",
        &ca,
        "-i",
        "-H",
        &format!("Origin: {url}"),
        "--data-urlencode",
        &format!("token={viewer}"),
        &format!("{url}/sign-in"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.contains("set-cookie: rempart_session=") && head.contains("; secure"),
        "{head}"
    );

    // A forwarder with its certificate ingests without any token on disk.
    let event_file = tmp.path().join("event.ndjson");
    std::fs::write(&event_file, EVENT).unwrap();
    let post = |cert: Option<&str>| {
        let mut args = vec![
            "--cacert".to_owned(),
            ca.clone(),
            "--data-binary".to_owned(),
            format!("@{}", event_file.display()),
            "-w".to_owned(),
            "\n%{http_code}".to_owned(),
        ];
        if let Some(c) = cert {
            args.extend([
                "--cert".to_owned(),
                pki.path(&format!("{c}.pem")),
                "--key".to_owned(),
                pki.path(&format!("{c}.key")),
            ]);
        }
        args.push(format!("{url}/api/v1/events"));
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = post(Some("forwarder"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("200"), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("\"accepted\":1"), "{text}");
    // No certificate and no token: unauthenticated. A certificate the mapping does not name:
    // the same. A revoked one: no handshake at all.
    assert!(String::from_utf8_lossy(&post(None).stdout).ends_with("401"));
    assert!(String::from_utf8_lossy(&post(Some("unmapped")).stdout).ends_with("401"));
    let revoked = post(Some("revoked"));
    assert!(!revoked.status.success(), "a revoked certificate was accepted");

    // The official OpenAI SDK through the gateway over TLS.
    let python = std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/clients.py"))
        .args(["openai", "plain"])
        .env("REMPART_URL", &url)
        .env("REMPART_TOKEN", &client)
        .env("REMPART_MODEL", "rempart/triage")
        .env("REMPART_PROMPT", "failed logons for alice@corp.example.eu")
        .env("REMPART_CA", &ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["content"],
        json!("You said: failed logons for alice@corp.example.eu")
    );
    assert!(!fakes.all_received().contains("alice@corp.example.eu"));

    // Protocols and suites: TLS 1.2 and 1.3 with forward secrecy and AEAD only.
    let (ok, text) = s_client(&addr, &["-tls1_3"]);
    assert!(ok, "{text}");
    let (ok, text) = s_client(&addr, &["-tls1_2"]);
    assert!(ok && text.contains("ECDHE"), "{text}");
    for weak in [
        vec!["-tls1_1"],
        vec!["-tls1"],
        vec!["-tls1_2", "-cipher", "AES128-SHA"],
        vec!["-tls1_2", "-cipher", "AES256-SHA256"],
        vec!["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"],
    ] {
        let (ok, text) = s_client(&addr, &weak);
        assert!(!ok, "{weak:?} was accepted: {text}");
    }

    // A renewed certificate is served within seconds, without a restart.
    let before = served_fingerprint(&addr);
    assert_eq!(before, fingerprint_of_pem(&pki.dir.join("server.pem")));
    let renewed = pki.issue("server", "rempart.test", &["localhost", "127.0.0.1"], 101);
    let want = fingerprint_of_pem(&renewed);
    assert_ne!(before, want);
    let deadline = Instant::now() + Duration::from_secs(15);
    while served_fingerprint(&addr) != want {
        assert!(Instant::now() < deadline, "the renewed certificate was not served");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = curl(&["--cacert", &ca, &format!("{url}/healthz")]);
    assert!(out.status.success());

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(child.wait().unwrap().success());
    let kinds = common::ledger_kinds({
        let mut c = common::rempart(&dir);
        c.arg("--config").arg(&config);
        c
    });
    assert!(kinds.contains(&"token.use".to_owned()), "{kinds:?}");
    let out = common::rempart(&dir)
        .args(["--json", "audit", "list", "--last", "200"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("\"cert:"),
        "the forwarder acts under its certificate: {listed}"
    );
}

#[test]
fn plain_http_on_a_network_address_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::rempart(tmp.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve plain HTTP") && err.contains("server.tls"),
        "{err}"
    );

    let config = tmp.path().join("rempart.toml");
    std::fs::write(&config, "version = 1\n[server]\nallow_plaintext = true\n").unwrap();
    let mut command = common::rempart(tmp.path());
    command.arg("--config").arg(&config);
    command.args(["serve", "--listen", "0.0.0.0:0"]);
    let mut child = command
        .env("REMPART_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut warned = false;
    for line in stderr.map_while(Result::ok) {
        warned |= line.contains("allow_plaintext");
        if line.contains("API listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "the risk is said at start");
}

/// With `require_client_cert`, a client without a certificate gets no connection at all, and
/// one with a mapped certificate is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_requires_client_certificates_refuses_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soc");
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(tmp.path());
    pki.issue("server", "rempart.test", &["localhost"], 100);
    pki.issue("forwarder", "forwarder-01", &[], 201);
    let config = dir.join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\nrequire_client_cert = true\n\
             [[server.tls.clients]]\nsubject = \"forwarder-01\"\nname = \"fw\"\nrole = \"viewer\"\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem"),
        ),
    )
    .unwrap();
    let mut command = common::rempart(&dir);
    command.arg("--config").arg(&config);
    let (mut child, addr) = common::serve_with(command);
    let url = format!("https://localhost:{}/api/v1/stats", addr.rsplit(':').next().unwrap());
    let ca = pki.path("ca.pem");
    let bare = curl(&["--cacert", &ca, "-w", "%{http_code}", &url]);
    assert!(
        !bare.status.success(),
        "served without a certificate: {}",
        String::from_utf8_lossy(&bare.stdout)
    );
    let with = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("forwarder.pem"),
        "--key",
        &pki.path("forwarder.key"),
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    assert!(
        String::from_utf8_lossy(&with.stdout).ends_with("200"),
        "{}",
        String::from_utf8_lossy(&with.stdout)
    );
    let _ = child.kill();
    let _ = child.wait();
}
