//! `rempart tuning prepare` on real data: incidents from the OTRF recordings with SigmaHQ's
//! process-creation rules, triaged and judged by an analyst (some verdicts overridden), and
//! the STIX and MISP files of the shared data. The job directory exposes no account, host or
//! address of the recordings, splits by time with each incident whole, records its hash in the
//! ledger, and the training tools' own readers (Hugging Face `datasets`, TRL's data checks)
//! accept its data.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{data, rempart};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = rempart(dir).arg("--json").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_tuning_job_from_judged_incidents_and_intelligence_exposes_no_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("instance");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/otrf-ndjson");
    let otrf = Command::new("python3")
        .arg(script)
        .arg("6")
        .env("REMPART_DATA", data())
        .output()
        .unwrap();
    assert!(otrf.status.success(), "{}", String::from_utf8_lossy(&otrf.stderr));
    // With SigmaHQ's process-creation regression records, each an attack of its own host and
    // time: incidents spread over years, for the split by time.
    let mut lines = String::from_utf8(otrf.stdout).unwrap();
    let root = data().join("sigma/regression_data/rules/windows/process_creation");
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().map(|d| d.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|f| f.unwrap().path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let bytes = std::fs::read(&path).unwrap();
            for v in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
                lines.push_str(&v.unwrap().to_string());
                lines.push('\n');
            }
        }
    }
    let recordings = tmp.path().join("recordings.ndjson");
    std::fs::write(&recordings, lines).unwrap();
    let rules = data().join("sigma/rules/windows/process_creation");
    run(
        &dir,
        &[
            "ingest",
            "--no-progress",
            "--rules",
            rules.to_str().unwrap(),
            recordings.to_str().unwrap(),
        ],
    );

    // An analyst triages every incident and judges the verdict: every third one overridden.
    let incidents = run(&dir, &["incidents", "list"]);
    assert!(incidents.len() >= 10, "{} incidents", incidents.len());
    let mut overridden = BTreeSet::new();
    for (n, i) in incidents.iter().enumerate() {
        let id = i["id"].as_str().unwrap();
        let [verdict] = run(&dir, &["incidents", "triage", id]).try_into().unwrap();
        let vid = verdict["id"].as_str().unwrap();
        if n % 3 == 0 {
            let other = if verdict["classification"] == "true_positive" {
                "false_positive"
            } else {
                "true_positive"
            };
            run(
                &dir,
                &[
                    "incidents",
                    "feedback",
                    vid,
                    "--disagree",
                    "--classification",
                    other,
                    "--reason",
                    "checked with the owner",
                ],
            );
            overridden.insert(id.to_owned());
        } else {
            run(
                &dir,
                &["incidents", "feedback", vid, "--agree", "--reason", "confirmed"],
            );
        }
    }

    let job = tmp.path().join("job");
    let stix = data().join("stix/examples");
    let misp = data().join("misp");
    let [card] = run(
        &dir,
        &[
            "tuning",
            "prepare",
            "--out",
            job.to_str().unwrap(),
            "--intel",
            stix.to_str().unwrap(),
            "--intel",
            misp.to_str().unwrap(),
            "--validation",
            "15",
            "--test",
            "15",
        ],
    )
    .try_into()
    .unwrap();

    // What the card says is what was written.
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(job.join("data_card.json")).unwrap()).unwrap();
    assert_eq!(from_file["sha256"], card["sha256"]);
    let mut sums = String::new();
    for (file, hash) in card["files"].as_object().unwrap() {
        let bytes = std::fs::read(job.join(file)).unwrap();
        let got = hex_sha256(&bytes);
        assert_eq!(got, hash.as_str().unwrap(), "{file}");
        sums.push_str(&format!("{got}  {file}\n"));
    }
    assert_eq!(hex_sha256(sums.as_bytes()), card["sha256"].as_str().unwrap());
    let sft: Vec<Vec<Value>> = ["train", "validation", "test"]
        .iter()
        .map(|s| jsonl(&job.join(format!("data/sft/{s}.jsonl"))))
        .collect();
    let all: usize = sft.iter().map(Vec::len).sum();
    assert_eq!(
        card["sources"]["incidents"].as_u64().unwrap() + card["sources"]["intelligence"].as_u64().unwrap(),
        all as u64
    );
    // An incident with a recognized value that would stay in clear is left out, named.
    let ids: BTreeSet<String> = incidents.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    let left_out: BTreeSet<String> = card["pseudonymization"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["unit"].as_str().unwrap().to_owned())
        .filter(|u| ids.contains(u))
        .collect();
    assert!(left_out.len() * 4 <= ids.len(), "{left_out:?}");
    assert_eq!(
        card["sources"]["incidents"].as_u64().unwrap() as usize,
        ids.len() - left_out.len(),
        "{card}"
    );
    assert!(card["sources"]["intelligence"].as_u64().unwrap() >= 20, "{card}");
    for s in &sft {
        assert!(!s.is_empty(), "every split holds examples: {card}");
    }
    let pairs: usize = ["train", "validation", "test"]
        .iter()
        .map(|s| jsonl(&job.join(format!("data/preference/{s}.jsonl"))).len())
        .sum();
    assert_eq!(
        pairs,
        overridden.difference(&left_out).count(),
        "each overridden verdict is one preference pair"
    );

    // By time, for incidents and intelligence apart: no split's examples begin before the
    // previous split's end.
    for source in ["incidents", "intelligence"] {
        let span = |s: &str, end: &str| -> jiff::Timestamp {
            card["splits"][s]["time"][source][end]
                .as_str()
                .unwrap_or_else(|| panic!("{source} in every split: {card}"))
                .parse()
                .unwrap()
        };
        assert!(
            span("train", "to") <= span("validation", "from") && span("validation", "to") <= span("test", "from"),
            "{source}: {card}"
        );
    }

    // No account, host or address of the recordings, nor any C2 address of the intelligence,
    // is in clear anywhere in the job.
    let mut held: BTreeSet<String> = BTreeSet::new();
    for e in run(&dir, &["events", "--limit", "100000"]) {
        for key in ["host", "user", "src_ip", "dst_ip"] {
            if let Some(v) = e["normalized"][key].as_str() {
                let v = v.rsplit('\\').next().unwrap_or(v).to_lowercase();
                if v.len() >= 4 && !["system", "local service", "network service"].contains(&v.as_str()) {
                    held.insert(v);
                }
            }
        }
    }
    held.insert("219.76.208.163".to_owned());
    assert!(held.len() > 10, "{held:?}");
    for file in card["files"].as_object().unwrap().keys() {
        let text = std::fs::read_to_string(job.join(file)).unwrap().to_lowercase();
        for v in &held {
            assert!(!text.contains(v.as_str()), "`{file}` holds `{v}` in clear");
        }
    }

    // The ledger holds the data set's hash.
    let listed = run(&dir, &["audit", "list", "--last", "5"]);
    let record = listed
        .iter()
        .find(|r| r["kind"] == "tuning.dataset")
        .unwrap_or_else(|| panic!("no tuning.dataset record: {listed:?}"));
    let shown = rempart(&dir)
        .args(["--json", "audit", "show", &record["seq"].to_string()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(card["sha256"].as_str().unwrap()),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    // The training tools' own readers accept the data: Hugging Face `datasets` loads every
    // file, TRL reads the chat examples as conversational and the pairs as conversational
    // preference data.
    let Some(python) = std::env::var_os("REMPART_TUNING_PYTHON") else {
        panic!("REMPART_TUNING_PYTHON names a Python with `datasets` and `trl` (scripts/test installs them)");
    };
    let checked = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/check_tuning_job.py"))
        .arg(&job)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A second job into the same directory is refused, and leaves it as it was.
    let out = rempart(&dir)
        .args(["tuning", "prepare", "--out"])
        .arg(&job)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an empty directory"));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
