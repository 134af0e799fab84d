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
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the fake provider's server lives as long as the test"
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

/// Whether `text` holds `value`. An address counts only whole: pseudonyms keep private
/// ranges' prefixes (Crypto-PAn keeps 192.168/16, 10/8, ...), so another address's pseudonym
/// may begin with an original's text (`192.168.5.21` holds `192.168.5.2`), and that is not the
/// original in clear.
fn holds(text: &str, value: &str) -> bool {
    let v6 = match value.parse::<std::net::IpAddr>() {
        Ok(address) => address.is_ipv6(),
        Err(_) => return text.contains(value),
    };
    let part_of_address = |c: Option<char>| {
        c.is_some_and(|c| c.is_ascii_digit() || c == '.' || (v6 && (c.is_ascii_hexdigit() || c == ':')))
    };
    text.match_indices(value).any(|(at, _)| {
        !part_of_address(text[..at].chars().next_back()) && !part_of_address(text[at + value.len()..].chars().next())
    })
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
    // A file that holds no intelligence is named with why, and loses nothing else.
    let broken = tmp.path().join("truncated-bundle.json");
    std::fs::write(&broken, r#"{"type": "bundle", "objects": [{"type": "indicator""#).unwrap();
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
            "--intel",
            broken.to_str().unwrap(),
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
    let skipped = card["pseudonymization"]["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["unit"] == broken.display().to_string() && s["reason"].as_str().unwrap().starts_with("not JSON")),
        "{skipped:?}"
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
            assert!(!holds(&text, v), "`{file}` holds `{v}` in clear");
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

    // To a provider's fine-tuning API: refused for a third country (the data set is
    // TLP:AMBER, a US provider's ceiling TLP:GREEN) before anything is sent; to an EU provider,
    // the files exactly as prepared, then a job, every step in the ledger.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FineTuning::start());
    assert_eq!(card["class"], "TLP:AMBER", "{card}");
    let config = tmp.path().join("rempart.toml");
    let provider = |name: &str, jurisdiction: &str, ceiling: &str| {
        format!(
            "[[gateway.providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"http://{}/{name}/v1\"\n\
             model = \"{name}-base\"\njurisdiction = \"{jurisdiction}\"\nmax_class = \"{ceiling}\"\napi_key_env = \"REMPART_TEST_TUNING_KEY\"\n",
            fake.addr
        )
    };
    // A runner that trains nothing: it reads the job as the real script does and leaves a
    // LoRA adapter's files behind (no model weights are at hand here).
    let trainer = tmp.path().join("fake_trainer.py");
    std::fs::write(&trainer, FAKE_TRAINER).unwrap();
    let python = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("python3"))
        .find(|p| p.is_file())
        .expect("python3 on PATH");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[gateway]\n{}{}[tuning]\nrunner = [\"{}\", \"{}\"]\nadapter_server = \"http://{}/vllm\"\n",
            provider("abroad", "us", "TLP:AMBER"),
            provider("union", "eu", "TLP:AMBER"),
            python.display(),
            trainer.display(),
            fake.addr
        ),
    )
    .unwrap();
    let tuning = |args: &[&str]| {
        rempart(&dir)
            .arg("--config")
            .arg(&config)
            .env("REMPART_TEST_TUNING_KEY", "sk-test-tuning")
            .arg("--json")
            .arg("tuning")
            .args(args)
            .output()
            .unwrap()
    };
    let refused = tuning(&["submit", "--job", job.to_str().unwrap(), "--provider", "abroad"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("TLP:AMBER may not go to jurisdiction `us`"), "{why}");
    assert!(
        fake.received().is_empty(),
        "nothing reaches a provider the policy refuses"
    );
    let sent = tuning(&["submit", "--job", job.to_str().unwrap(), "--provider", "union"]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let sent: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let job_id = sent["job"]["id"].as_str().unwrap().to_owned();
    let received = fake.received();
    let uploads: Vec<&(String, Vec<u8>)> = received.iter().filter(|(path, _)| path.ends_with("/files")).collect();
    assert_eq!(uploads.len(), 2, "train and validation");
    for (split, (_, body)) in ["train", "validation"].iter().zip(&uploads) {
        let file = std::fs::read(job.join(format!("data/sft/{split}.jsonl"))).unwrap();
        assert!(
            contains(body, &file),
            "the {split} upload is the prepared file, byte for byte"
        );
        let text = String::from_utf8_lossy(body).to_lowercase();
        for v in &held {
            assert!(!text.contains(v.as_str()), "`{v}` reached the provider");
        }
    }
    let created: Value = serde_json::from_slice(
        &received
            .iter()
            .find(|(path, _)| path.ends_with("/fine_tuning/jobs"))
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(created["model"], "union-base");
    assert_eq!(created["training_file"], sent["files"]["train"]);
    assert_eq!(created["validation_file"], sent["files"]["validation"]);
    assert_eq!(created["metadata"]["dataset_sha256"], card["sha256"]);
    assert_eq!(created["method"]["type"], "supervised");
    // The job runs, then succeeds: its end and the tuned model are recorded.
    let status = |id: &str| -> Value {
        let out = tuning(&["status", "--provider", "union", id]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(status(&job_id)["status"], "running");
    let done = status(&job_id);
    assert_eq!(done["status"], "succeeded");
    // A job that failed, and one that was cancelled: each end recorded with the data set's
    // hash, the failure with the provider's reason; no tuned model comes of either.
    let failed = status("ftjob-abc123-failed");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "invalid_training_file");
    assert!(failed["fine_tuned_model"].is_null());
    assert_eq!(status("ftjob-abc123-cancelled")["status"], "cancelled");
    // The job Rempart created, and every file and job object the fake answered, follow
    // OpenAI's own description of the API.
    assert!(fake.check_wire() >= 6);
    let failed = tuning(&["status", "--provider", "union", "../files"]);
    assert!(
        !failed.status.success(),
        "a job id that would leave the path is refused"
    );
    let kinds: Vec<String> = run(&dir, &["audit", "list", "--last", "40"])
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    for (kind, n) in [("tuning.submit", 2), ("tuning.upload", 2), ("tuning.job", 4)] {
        assert_eq!(kinds.iter().filter(|k| *k == kind).count(), n, "{kind}: {kinds:?}");
    }

    // Inside the boundary: a runner that fails is reported, and nothing is loaded; one that
    // succeeds leaves an adapter, which the adapter server loads under the job's name.
    let failed = rempart(&dir)
        .arg("--config")
        .arg(&config)
        .env("FAKE_TRAINER_FAIL", "1")
        .args(["tuning", "run", "--job", job.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let why = String::from_utf8_lossy(&failed.stderr);
    assert!(
        why.contains("runner: training on") && why.contains("the runner failed"),
        "{why}"
    );
    assert!(!fake.received().iter().any(|(p, _)| p.contains("load_lora_adapter")));
    let trained = tuning(&["run", "--job", job.to_str().unwrap(), "--name", "soc-triage-v1"]);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let trained: Value = serde_json::from_slice(&trained.stdout).unwrap();
    let adapter = std::fs::canonicalize(job.join("adapter/sft")).unwrap();
    assert_eq!(trained["adapter"], adapter.display().to_string());
    assert!(
        trained["provider"]
            .as_str()
            .unwrap()
            .contains("model = \"soc-triage-v1\""),
        "{trained}"
    );
    let loaded: Vec<Value> = fake
        .received()
        .iter()
        .filter(|(p, _)| p == "/vllm/v1/load_lora_adapter")
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(
        loaded,
        [serde_json::json!({"lora_name": "soc-triage-v1", "lora_path": adapter.display().to_string()})]
    );
    let kinds: Vec<String> = run(&dir, &["audit", "list", "--last", "40"])
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "tuning.run").count(), 4, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "tuning.adapter").count(), 1, "{kinds:?}");
    let fake_addr = fake.addr;
    drop(rt);

    // An access request for one of the people in the data set lists the data set and what
    // was made from it; their erasure lists them too.
    let subject = held
        .iter()
        .flat_map(|v| [format!("user:{v}"), format!("host:{v}")])
        .find(|s| {
            let out = rempart(&dir)
                .args(["privacy", "export", "--subject", s])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["tuning"]
                .as_array()
                .is_some_and(|t| !t.is_empty())
        })
        .expect("someone of the recordings is in the data set");
    let export = rempart(&dir)
        .args(["privacy", "export", "--subject", &subject])
        .output()
        .unwrap();
    let export: Value = serde_json::from_slice(&export.stdout).unwrap();
    let tokens: Vec<String> = export["pseudonyms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["domain"] == "tuning")
        .map(|p| p["pseudonym"].as_str().unwrap().to_owned())
        .collect();
    let all_data = |job: &Path| -> String {
        ["sft", "preference", "preference-trl"]
            .iter()
            .flat_map(|k| ["train", "validation", "test"].map(|s| job.join(format!("data/{k}/{s}.jsonl"))))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    assert!(tokens.iter().any(|t| all_data(&job).contains(t.as_str())), "{tokens:?}");
    let [erased] = run(&dir, &["privacy", "erase", "--subject", &subject])
        .try_into()
        .unwrap();
    let [set] = erased["tuning"].as_array().unwrap().clone().try_into().unwrap();
    assert_eq!(set["sha256"], card["sha256"]);
    assert_eq!(set["out"], std::fs::canonicalize(&job).unwrap().display().to_string());
    let made: Vec<&str> = set["made"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "tuning.submit",
        "tuning.upload",
        "tuning.job",
        "tuning.run",
        "tuning.adapter",
    ] {
        assert!(made.contains(&kind), "{kind}: {made:?}");
    }
    assert!(set.get("record").is_none(), "other subjects' digests are not shown");
    // The data set's files no longer hold the subject's pseudonyms; the card holds the new
    // hashes, and the ledger the data set as it is now.
    assert!(!set["rewritten"].as_array().unwrap().is_empty(), "{set}");
    let data = all_data(&job);
    for t in &tokens {
        assert!(!data.contains(t.as_str()), "`{t}` is still in the data set");
    }
    assert!(data.contains(erased["replaced_by"].as_str().unwrap()));
    let now: Value = serde_json::from_str(&std::fs::read_to_string(job.join("data_card.json")).unwrap()).unwrap();
    assert_ne!(now["sha256"], card["sha256"]);
    assert_eq!(now["sha256"], set["sha256_now"]);
    let mut sums = String::new();
    for (file, hash) in now["files"].as_object().unwrap() {
        let got = hex_sha256(&std::fs::read(job.join(file)).unwrap());
        assert_eq!(got, hash.as_str().unwrap(), "{file}");
        sums.push_str(&format!("{got}  {file}\n"));
    }
    assert_eq!(hex_sha256(sums.as_bytes()), now["sha256"].as_str().unwrap());
    let again = rempart(&dir)
        .args(["privacy", "export", "--subject", &subject])
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["tuning"],
        serde_json::json!([]),
        "the data set as it is now no longer holds them"
    );

    // The registry: both versions of the data set (before and after the erasure), and the
    // models made from the first, each with its provenance.
    let [sets] = run(&dir, &["tuning", "list"]).try_into().unwrap();
    let sets = sets.as_array().unwrap();
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[0]["sha256"], card["sha256"]);
    assert_eq!(sets[1]["previous_sha256"], card["sha256"]);
    let models: Vec<(&str, &str)> = sets[0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["made_by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        models,
        [
            ("ft:union-base:rempart:abc123", "job ftjob-abc123 at union"),
            (
                "soc-triage-v1",
                format!("adapter on http://{}/vllm", fake_addr).as_str()
            ),
        ],
        "{sets:?}"
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

/// The runner of the test: it reads the job as `train_lora.py` would (it is given the
/// script's path, in the job directory), and writes a LoRA adapter's files.
const FAKE_TRAINER: &str = r#"import json, os, sys
script = sys.argv[1]
job = os.path.dirname(script)
assert os.path.samefile(os.getcwd(), job), (os.getcwd(), job)
with open(os.path.join(job, "data", "sft", "train.jsonl")) as f:
    n = sum(1 for line in f if json.loads(line)["messages"])
print(f"training on {n} examples", flush=True)
if os.environ.get("FAKE_TRAINER_FAIL"):
    sys.exit(3)
out = os.path.join(job, "adapter", "sft")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "adapter_config.json"), "w") as f:
    json.dump({"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": "all-linear"}, f)
with open(os.path.join(out, "adapter_model.safetensors"), "wb") as f:
    f.write(bytes(16))
"#;

/// Whether `haystack` holds `needle` whole.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A provider's OpenAI-compatible files and fine-tuning jobs API on loopback, answering with
/// the objects OpenAI's API reference describes (`file`, `fine_tuning.job`) and keeping what
/// it receives. A job is `running` when first asked about, then `succeeded`.
struct FineTuning {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    received: Vec<(String, Vec<u8>)>,
    asked: std::collections::HashMap<String, u32>,
    /// The request the job was created with: the job object gives its fields back.
    request: Value,
    /// What the fake answered, with the schema of OpenAI's description it must follow.
    answered: Vec<(&'static str, Value)>,
}

/// A fine-tuning job object as the API gives it (`FineTuningJob`: every required field).
fn job_object(id: &str, request: &Value, status: &str, model: Value, error: Value) -> Value {
    let ended = matches!(status, "succeeded" | "failed" | "cancelled");
    serde_json::json!({
        "object": "fine_tuning.job", "id": id, "model": request["model"].as_str().unwrap_or("union-base"),
        "created_at": 1_765_000_000, "finished_at": if ended { Value::from(1_765_003_600) } else { Value::Null },
        "status": status, "fine_tuned_model": model, "error": error,
        "organization_id": "org-union", "result_files": if status == "succeeded" { serde_json::json!(["file-result"]) } else { serde_json::json!([]) },
        "trained_tokens": if status == "succeeded" { Value::from(48_210) } else { Value::Null },
        "training_file": request["training_file"].as_str().unwrap_or("file-1"),
        "validation_file": request["validation_file"],
        "hyperparameters": {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"},
        "seed": 42, "metadata": request["metadata"], "method": request["method"],
    })
}

impl FineTuning {
    async fn start() -> FineTuning {
        use axum::extract::{Path as UrlPath, State};
        use axum::routing::{get, post};
        type S = std::sync::Arc<std::sync::Mutex<Shared>>;
        let state: S = S::default();
        let keep = |state: &S, path: String, body: &[u8], key: Option<&axum::http::HeaderValue>| {
            assert_eq!(key.and_then(|k| k.to_str().ok()), Some("Bearer sk-test-tuning"));
            state.lock().unwrap().received.push((path, body.to_vec()));
        };
        let app = axum::Router::new()
            .route(
                "/{provider}/v1/files",
                post(
                    move |State(state): State<S>,
                          UrlPath(provider): UrlPath<String>,
                          headers: axum::http::HeaderMap,
                          body: axum::body::Bytes| async move {
                        assert!(
                            headers["content-type"]
                                .to_str()
                                .unwrap()
                                .starts_with("multipart/form-data; boundary=")
                        );
                        keep(
                            &state,
                            format!("/{provider}/v1/files"),
                            &body,
                            headers.get("authorization"),
                        );
                        let mut s = state.lock().unwrap();
                        let n = s.received.len();
                        let file = serde_json::json!({"object": "file", "id": format!("file-{n}"), "bytes": body.len(),
                            "created_at": 1_765_000_000, "filename": "train.jsonl", "purpose": "fine-tune",
                            "status": "processed"});
                        s.answered.push(("OpenAIFile", file.clone()));
                        axum::Json(file)
                    },
                ),
            )
            .route(
                "/{provider}/v1/fine_tuning/jobs",
                post(
                    move |State(state): State<S>,
                          UrlPath(provider): UrlPath<String>,
                          headers: axum::http::HeaderMap,
                          body: axum::body::Bytes| async move {
                        keep(
                            &state,
                            format!("/{provider}/v1/fine_tuning/jobs"),
                            &body,
                            headers.get("authorization"),
                        );
                        let req: Value = serde_json::from_slice(&body).unwrap();
                        let job = job_object("ftjob-abc123", &req, "validating_files", Value::Null, Value::Null);
                        let mut s = state.lock().unwrap();
                        s.answered.push(("CreateFineTuningJobRequest", req.clone()));
                        s.answered.push(("FineTuningJob", job.clone()));
                        s.request = req;
                        axum::Json(job)
                    },
                ),
            )
            .route(
                "/vllm/v1/load_lora_adapter",
                post(move |State(state): State<S>, body: axum::body::Bytes| async move {
                    state
                        .lock()
                        .unwrap()
                        .received
                        .push(("/vllm/v1/load_lora_adapter".to_owned(), body.to_vec()));
                    let req: Value = serde_json::from_slice(&body).unwrap();
                    format!(
                        "Success: LoRA adapter '{}' added successfully.",
                        req["lora_name"].as_str().unwrap()
                    )
                }),
            )
            .route(
                "/{provider}/v1/fine_tuning/jobs/{id}",
                get(
                    move |State(state): State<S>, UrlPath((_, id)): UrlPath<(String, String)>| async move {
                        let (n, request) = {
                            let mut s = state.lock().unwrap();
                            let n = s.asked.entry(id.clone()).or_insert(0);
                            *n += 1;
                            (*n, s.request.clone())
                        };
                        let (status, model, error) = if id.ends_with("-failed") {
                            (
                                "failed",
                                Value::Null,
                                serde_json::json!({"code": "invalid_training_file", "param": "training_file",
                                    "message": "The job failed due to an invalid training file."}),
                            )
                        } else if id.ends_with("-cancelled") {
                            ("cancelled", Value::Null, Value::Null)
                        } else if n == 1 {
                            ("running", Value::Null, Value::Null)
                        } else {
                            ("succeeded", Value::from("ft:union-base:rempart:abc123"), Value::Null)
                        };
                        let job = job_object(&id, &request, status, model, error);
                        state.lock().unwrap().answered.push(("FineTuningJob", job.clone()));
                        axum::Json(job)
                    },
                ),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FineTuning { addr, state }
    }

    fn received(&self) -> Vec<(String, Vec<u8>)> {
        self.state.lock().unwrap().received.clone()
    }

    /// What Rempart sent and what the fake answered, each against its schema in OpenAI's
    /// description (`../shared/data/openai/openapi.yaml.gz`).
    fn check_wire(&self) -> usize {
        let checks: Vec<Value> = self
            .state
            .lock()
            .unwrap()
            .answered
            .iter()
            .map(|(schema, instance)| serde_json::json!({"schema": schema, "instance": instance, "what": schema}))
            .collect();
        common::check_against_openai_s_description(&checks);
        checks.len()
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
