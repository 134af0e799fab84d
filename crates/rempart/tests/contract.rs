//! The API contract, tried as an integrator would: `schemathesis` (from PyPI, unmodified) fuzzes
//! every operation of the served `/openapi.json` against a server holding the demo's data and
//! running the model gateway (in front of providers on loopback that speak OpenAI's and
//! Anthropic's wire formats), with every check on and the examples, coverage, fuzzing and
//! stateful phases, once with each role's token; and a client generated from the document by
//! `openapi-python-client` lists incidents, approves an action and reads the ledger.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{rempart, serve_with, token};

/// The Python of the SDK environment `scripts/test` prepares.
fn python() -> String {
    std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A program installed beside that Python (a package's console script).
fn beside_python(name: &str) -> PathBuf {
    let python = PathBuf::from(python());
    match python.parent() {
        Some(dir) if python.is_absolute() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

fn sdk(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(file)
}

/// The demo's instance served with no request rate or sign-in failure limits: the fuzzer sends
/// thousands of requests, some with bad credentials on purpose, and each must reach the route.
struct Demo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    child: Child,
    addr: String,
    document: PathBuf,
    /// The providers the gateway forwards to, if any, and the runtime that serves them.
    providers: Option<(upstream::Fakes, tokio::runtime::Runtime)>,
}

/// The gateway's part of the configuration: a provider of each wire format, both allowed
/// every class (so that a request reaches one rather than stopping at the policy), each the
/// only provider of its route.
fn gateway_config(providers: &upstream::Fakes) -> String {
    let provider = |name: &str, kind: &str| {
        format!(
            "[[gateway.providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\n\
             model = \"{name}-model\"\njurisdiction = \"eu\"\nmax_class = \"TLP:RED\"\ntimeout_secs = 5\n",
            providers.base_url(name)
        )
    };
    format!(
        "\n[gateway]\ndefault_class = \"TLP:GREEN\"\n{}{}\
         [[gateway.routes]]\nname = \"triage\"\npurpose = \"triage\"\nchain = [\"openai\"]\n\
         [[gateway.routes]]\nname = \"claude\"\npurpose = \"triage\"\nchain = [\"anthropic\"]\n",
        provider("openai", "openai"),
        provider("anthropic", "anthropic"),
    )
}

impl Demo {
    /// The demo's instance, served without a gateway.
    fn start() -> Demo {
        Demo::start_with_gateway(false)
    }

    fn start_with_gateway(gateway: bool) -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("instance");
        let out = rempart(&dir).args(["demo", "--no-serve"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let config = dir.join("rempart.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("\n[server]\nrequests_per_minute = 0\nauth_failures_per_minute = 0\n");
        let providers = gateway.then(|| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let fakes = runtime.block_on(upstream::Fakes::start());
            text.push_str(&gateway_config(&fakes));
            (fakes, runtime)
        });
        std::fs::write(&config, text).unwrap();
        let mut c = rempart(&dir);
        c.arg("--config").arg(&config);
        let (child, addr) = serve_with(c);
        // The document is read with an administrator's token; each run then uses its role's.
        let admin = token(&dir, "admin", "contract-reader");
        let document = dir.join("openapi.json");
        let url = format!("http://{addr}/openapi.json");
        let body = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let resp = reqwest::Client::new().get(url).bearer_auth(&admin).send().await?;
                resp.error_for_status()?.bytes().await
            })
            .unwrap();
        std::fs::write(&document, body).unwrap();
        Demo {
            _tmp: tmp,
            dir,
            child,
            addr,
            document,
            providers,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn schemathesis_finds_no_failure_with_any_role() {
    let demo = Demo::start_with_gateway(true);
    let schemathesis = beside_python("schemathesis");
    // The administrator last: its run changes the most (tokens, incidents, approvals).
    let mut failed = Vec::new();
    for role in [
        "viewer",
        "analyst",
        "approver",
        "auditor",
        "ingest",
        "gateway-client",
        "admin",
    ] {
        let secret = token(&demo.dir, role, &format!("contract-{role}"));
        let out = Command::new(&schemathesis)
            .arg("--config-file")
            .arg(sdk("contract/schemathesis.toml"))
            .arg("run")
            .arg(&demo.document)
            .args(["--url", &format!("http://{}", demo.addr)])
            .args(["-H", &format!("Authorization: Bearer {secret}")])
            .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--max-examples", "10", "--seed", "24", "--no-color"])
            .current_dir(&demo.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (scripts/test installs it): {e}", schemathesis.display()));
        let report = String::from_utf8_lossy(&out.stdout);
        // Every phase ran and reached the operations (a run that tested nothing passes too).
        assert!(
            report.contains("passed"),
            "{role}: schemathesis tested nothing:\n{report}"
        );
        if !out.status.success() {
            failed.push(format!("== {role}\n{report}\n{}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // The gateway's operations were tried through to a provider, not only refused.
    let (providers, _) = demo.providers.as_ref().unwrap();
    for name in ["openai", "anthropic"] {
        assert!(!providers.received(name).is_empty(), "no request reached {name}");
    }
}

#[test]
fn a_client_generated_from_the_document_lists_incidents_approves_and_reads_the_ledger() {
    let demo = Demo::start();
    let analyst = token(&demo.dir, "analyst", "ana");
    let approver = token(&demo.dir, "approver", "paul");
    let auditor = token(&demo.dir, "auditor", "audrey");
    let out = Command::new(python())
        .arg(sdk("sdk/generated_client.py"))
        .arg(&demo.document)
        .arg(format!("http://{}", demo.addr))
        .args([&analyst, &approver, &auditor])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let did: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(did["incidents"].as_u64().unwrap_or(0) >= 1, "{did}");
    assert!(did["decision_seq"].is_u64(), "{did}");
}
