//! `rempart intel import` polling a TAXII 2.1 collection served by `medallion` (OASIS's reference
//! server, from PyPI) on loopback, page by page, with basic authentication.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{data, rempart};
use serde_json::{Value, json};

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

struct Medallion(Child);

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn medallion_bin() -> PathBuf {
    let python = std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = PathBuf::from(&python).parent().map(PathBuf::from).unwrap_or_default();
    dir.join("medallion")
}

/// Medallion on a free loopback port, its collection holding APT1's indicators (12, of which
/// 10 can be matched on one event); returns the server and the collection's URL.
async fn medallion_with_apt1(dir: &std::path::Path) -> (Medallion, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.join("data.json"),
        json!({
            "/discovery": {"title": "test", "default": format!("{base}/api1/"), "api_roots": [format!("{base}/api1/")]},
            "api1": {
                "information": {"title": "API root", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 10_485_760},
                "status": [],
                "collections": [{"id": COLLECTION, "title": "Indicators", "can_read": true, "can_write": true,
                    "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}]
            }
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": dir.join("data.json")},
            "users": {"reader": "s3cret"},
            // Two objects per page: the client must follow `next`.
            "taxii": {"max_page_size": 2}
        })
        .to_string(),
    )
    .unwrap();
    let bin = medallion_bin();
    let server = Medallion(
        Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(dir.join("config.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (scripts/test installs it): {e}", bin.display())),
    );
    let http = reqwest::Client::new();
    let collection = format!("{base}/api1/collections/{COLLECTION}/");
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("{base}/taxii2/"))
            .basic_auth("reader", Some("s3cret"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "medallion did not start");
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(data().join("stix/examples/threat-reports/apt1.json")).unwrap())
            .unwrap();
    let indicators: Vec<Value> = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "indicator")
        .cloned()
        .collect();
    let added: Value = http
        .post(format!("{collection}objects/"))
        .basic_auth("reader", Some("s3cret"))
        .header("content-type", "application/taxii+json;version=2.1")
        .header("accept", "application/taxii+json;version=2.1")
        .body(json!({"objects": indicators}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["success_count"], 12, "{added}");
    (server, collection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taxii_collection_is_polled_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, collection) = medallion_with_apt1(dir.path()).await;
    let out = rempart(dir.path())
        .env("REMPART_TAXII_PASSWORD", "s3cret")
        .args(["--json", "intel", "import", "--user", "reader", &collection])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 10, "{report}");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 2, "{report}");
    let listed = rempart(dir.path()).args(["--json", "intel", "list"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["sources"][format!("stix:taxii:{collection}")], 10, "{listed}");

    // A wrong password: the source is reported, nothing else is lost, the exit says so.
    let out = rempart(dir.path())
        .env("REMPART_TAXII_PASSWORD", "wrong")
        .args(["intel", "import", "--user", "reader", &collection])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("401"), "{text}");
}

/// `rempart serve` polls `[[intel.taxii]]` on its own: at start the collection's indicators are
/// in force, so a flow to APT1's address range alerts, and the poll is in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_polls_a_configured_collection_and_its_indicators_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, collection) = medallion_with_apt1(dir.path()).await;
    let instance = dir.path().join("instance");
    std::fs::create_dir_all(&instance).unwrap();
    let config = instance.join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[[intel.taxii]]\nurl = \"{collection}\"\nusername = \"reader\"\npassword_env = \"REMPART_TEST_TAXII\"\n"
        ),
    )
    .unwrap();
    let out = rempart(&instance)
        .args(["--json", "tokens", "create", "--role", "ingest", "--name", "feed"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = rempart(&instance);
    c.env("REMPART_TEST_TAXII", "s3cret").arg("--config").arg(&config);
    let (mut child, addr) = common::serve_with(c);
    // A Zeek connection to 223.166.12.9, inside APT1's 223.166.0.0/15.
    let event = json!({"_path": "conn", "ts": 1_763_625_600.0, "uid": "C1", "id.orig_h": "10.0.0.5",
        "id.orig_p": 50_000, "id.resp_h": "223.166.12.9", "id.resp_p": 443, "proto": "tcp"})
    .to_string();
    let alerted = tokio::task::spawn_blocking(move || common::post_until_alerted(&addr, &token, &event))
        .await
        .unwrap();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(child.wait().unwrap().success());
    assert!(alerted, "the polled indicators were not in force");
    let kinds = common::ledger_kinds(rempart(&instance));
    assert!(kinds.contains(&"intel.import".to_owned()), "{kinds:?}");
    let listed = rempart(&instance).args(["--json", "intel", "list"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["sources"][format!("stix:taxii:{collection}")], 10, "{listed}");
}
