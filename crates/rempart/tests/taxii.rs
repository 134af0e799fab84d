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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taxii_collection_is_polled_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("data.json"),
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
        dir.path().join("config.json"),
        json!({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": dir.path().join("data.json")},
            "users": {"reader": "s3cret"},
            // Two objects per page: the client must follow `next`.
            "taxii": {"max_page_size": 2}
        })
        .to_string(),
    )
    .unwrap();
    let bin = medallion_bin();
    let _server = Medallion(
        Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(dir.path().join("config.json"))
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
