//! The sovereignty gateway end to end: `rempart serve` with a `[gateway]` configuration,
//! providers faked on loopback in their real wire formats, and the official OpenAI and
//! Anthropic Python SDKs as clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the fakes run on the test's runtime"
)]

mod common;
mod upstream;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::{ledger_kinds, rempart};
use serde_json::{Value, json};
use upstream::{Fakes, Mode};

/// Personal data a provider must never receive.
const PERSONAL: &[&str] = &["alice@corp.example", "10.1.2.3", "ws-042", "+33 6 12 34 56 78"];
const PROMPT: &str =
    "Failed logons for alice@corp.example from 10.1.2.3 on ws-042.corp.example; her phone is +33 6 12 34 56 78.";

fn config(dir: &Path, fakes: &Fakes, extra: &str) -> std::path::PathBuf {
    let provider = |name: &str, kind: &str, jurisdiction: &str, max_class: &str, more: &str| {
        format!(
            "[[gateway.providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"{name}-model\"\n\
             jurisdiction = \"{jurisdiction}\"\nmax_class = \"{max_class}\"\ntimeout_secs = 2\nmax_retries = 2\n\
             price_input_per_mtok = 2.0\nprice_output_per_mtok = 8.0\n{more}\n",
            fakes.base_url(name)
        )
    };
    let text = format!(
        "version = 1\n[privacy]\ninternal_suffixes = [\"corp.example\"]\n\
         [gateway]\ndefault_class = \"TLP:GREEN\"\n{extra}\n{}{}{}{}{}\
         [[gateway.routes]]\nname = \"responses\"\npurpose = \"triage\"\nchain = [\"responses\"]\n\
         [[gateway.routes]]\nname = \"triage\"\npurpose = \"triage\"\nchain = [\"openai\", \"mistral\", \"local\"]\n\
         [[gateway.routes]]\nname = \"claude\"\npurpose = \"triage\"\nchain = [\"anthropic\", \"mistral\", \"local\"]\n\
         [[gateway.routes]]\nname = \"abroad\"\npurpose = \"triage\"\nchain = [\"openai\", \"anthropic\"]\n",
        provider(
            "openai",
            "openai",
            "us",
            "TLP:GREEN",
            "breaker_threshold = 3\nbreaker_cool_down_secs = 1"
        ),
        provider("anthropic", "anthropic", "us", "TLP:GREEN", ""),
        provider("mistral", "mistral", "eu", "TLP:AMBER", ""),
        provider("local", "vllm", "on-prem", "TLP:RED", "pseudonymize = false"),
        provider("responses", "openai-responses", "us", "TLP:GREEN", ""),
    );
    let path = dir.join("rempart.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Gateway {
    child: Child,
    addr: String,
    /// What the server logged.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Taken by [`Gateway::stop`]; the server is ended when the value is dropped either way.
    dir: Option<tempfile::TempDir>,
    client: String,
    admin: String,
}

impl Gateway {
    fn start(fakes: &Fakes, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), fakes, extra);
        let token = |role: &str, name: &str| common::token(dir.path(), role, name);
        let client = token("gateway-client", "soc-tool");
        let admin = token("admin", "ops");
        let mut c = rempart(dir.path());
        c.arg("--config").arg(dir.path().join("rempart.toml"));
        let (child, addr, log) = common::serve_logged(c, &["serve", "--listen", "127.0.0.1:0"]);
        Gateway {
            child,
            addr,
            log,
            dir: Some(dir),
            client,
            admin,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The payload of the ledger's latest `gateway.call` record, read through the auditors'
    /// API: the server answers a call before its record is committed, and a read of the
    /// ledger there includes every record queued before it.
    async fn last_call_record(&self) -> Value {
        let client = reqwest::Client::new();
        let mut from = 0u64;
        let mut last = None;
        loop {
            let page: Value = client
                .get(self.url(&format!("/api/v1/audit/records?from={from}&limit=1000")))
                .bearer_auth(&self.admin)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let records = page["records"].as_array().unwrap();
            if let Some(r) = records.iter().rfind(|r| r["kind"] == "gateway.call") {
                last = Some(r["payload"].clone());
            }
            match page["next"].as_u64() {
                Some(next) => from = next,
                None => break,
            }
        }
        last.expect("a gateway.call record")
    }

    /// Runs the official SDK `sdk` on `scenario`; what it returned.
    fn sdk(&self, sdk: &str, scenario: &str, model: &str) -> Value {
        self.sdk_saying(sdk, scenario, model, PROMPT)
    }

    /// [`Gateway::sdk`] with a prompt of the test's own.
    fn sdk_saying(&self, sdk: &str, scenario: &str, model: &str, prompt: &str) -> Value {
        let python = std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/clients.py");
        let out = Command::new(&python)
            .arg(&script)
            .args([sdk, scenario])
            .env("REMPART_URL", format!("http://{}", self.addr))
            .env("REMPART_TOKEN", &self.client)
            .env("REMPART_MODEL", model)
            .env("REMPART_PROMPT", prompt)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (set REMPART_PYTHON; scripts/test installs the SDKs): {e}")
            });
        assert!(
            out.status.success(),
            "{sdk} {scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn post(&self, path: &str, body: Value, class: Option<&str>) -> (u16, Value) {
        let mut rb = reqwest::Client::new()
            .post(self.url(path))
            .bearer_auth(&self.client)
            .json(&body);
        if let Some(c) = class {
            rb = rb.header("x-rempart-data-class", c);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with the client's token; the whole body as text (a stream, read to its end).
    async fn post_text(&self, path: &str, body: &Value) -> String {
        reqwest::Client::new()
            .post(self.url(path))
            .bearer_auth(&self.client)
            .json(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn stop(mut self) -> tempfile::TempDir {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exit: {status}");
        self.dir.take().unwrap()
    }
}

/// A test that ends without [`Gateway::stop`] (or fails) leaves no server running.
impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// `text` with the hash of every pseudonym (the ten hex digits after an entity's `_`, as in
/// `host_8db0150d2f`) blanked: a personal value made of hex letters (`db01`) turns up inside
/// one by chance, which is no leak.
fn hashes_blanked(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).is_some_and(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if b[i] == b'_' && (i + 1..i + 11).all(hex) && !b.get(i + 11).is_some_and(u8::is_ascii_alphanumeric) {
            out.push_str("_##########");
            i += 11;
        } else {
            let c = text[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn hashes_are_blanked_and_nothing_else() {
    assert_eq!(
        hashes_blanked("on host host_8db0150d2f failed, user_db01 é x_0123456789abc"),
        "on host host_########## failed, user_db01 é x_0123456789abc"
    );
}

fn assert_no_personal_data(received: &str) {
    assert!(!received.is_empty(), "the provider received nothing");
    for p in PERSONAL {
        assert!(!received.contains(p), "a provider received `{p}`:\n{received}");
    }
    // What it received instead: the pseudonyms.
    for shape in ["email_", "host_", "phone_"] {
        assert!(received.contains(shape), "no `{shape}` pseudonym in:\n{received}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_work_through_the_gateway_and_providers_never_see_personal_data() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let said = format!("You said: {PROMPT}");

    let models = gw.sdk("openai", "models", "rempart/triage");
    assert_eq!(
        models["models"],
        json!([
            "rempart/responses",
            "rempart/triage",
            "rempart/claude",
            "rempart/abroad"
        ])
    );

    for (sdk, model, provider) in [
        ("openai", "rempart/triage", "openai"),
        ("anthropic", "rempart/claude", "anthropic"),
        ("openai", "rempart/responses", "responses"),
        // OpenAI's Responses API in, each provider format out.
        ("openai-responses", "rempart/triage", "openai"),
        ("openai-responses", "rempart/claude", "anthropic"),
    ] {
        let plain = gw.sdk(sdk, "plain", model);
        assert_eq!(plain["content"], said.as_str(), "{sdk} plain: {plain}");
        assert_eq!(plain["model"], model);
        let stream = gw.sdk(sdk, "stream", model);
        assert_eq!(stream["content"], said.as_str(), "{sdk} stream: {stream}");
        assert_eq!(
            stream["usage"]["output_tokens"]
                .as_u64()
                .or(stream["usage"]["completion_tokens"].as_u64()),
            Some(9),
            "{stream}"
        );
        let tools = gw.sdk(sdk, "tools", model);
        let args = if sdk.starts_with("openai") {
            &tools["calls"][0]["arguments"]
        } else {
            &tools["calls"][0]["input"]
        };
        assert_eq!(args["query"], PROMPT, "{sdk} tools: {tools}");
        assert_eq!(tools["answer"], "Tool said: known scanner");
        let tools_stream = gw.sdk(sdk, "tools_stream", model);
        assert_eq!(
            tools_stream["calls"]["lookup_ip"]["query"], PROMPT,
            "{sdk} tools_stream: {tools_stream}"
        );
        let structured = gw.sdk(sdk, "structured", model);
        assert_eq!(
            structured["parsed"],
            json!({"verdict": "benign", "summary": PROMPT}),
            "{sdk}: {structured}"
        );
        let received = fakes.received(provider);
        assert!(received.len() >= 6, "{provider} received {} requests", received.len());
        assert_no_personal_data(&received.join("\n"));
    }
    let structured = gw.sdk("openai", "structured_stream", "rempart/triage");
    assert_eq!(
        structured["parsed"],
        json!({"verdict": "benign", "summary": PROMPT}),
        "{structured}"
    );
    assert_no_personal_data(&fakes.all_received());

    let unknown = gw.sdk("openai", "plain", "rempart/nope");
    assert_eq!(unknown["error"]["status"], 404, "{unknown}");
    let unknown = gw.sdk("anthropic", "plain", "rempart/nope");
    assert_eq!(unknown["error"]["status"], 404, "{unknown}");
    assert_eq!(unknown["error"]["body"]["error"]["type"], "not_found_error");

    let dir = gw.stop();
    let mut c = rempart(dir.path());
    c.arg("--config").arg(dir.path().join("rempart.toml"));
    let kinds = ledger_kinds(c);
    let calls = kinds.iter().filter(|k| *k == "gateway.call").count();
    assert!(calls >= 19, "{calls} gateway calls recorded: {kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_api_keeps_nothing_and_is_recorded_like_the_others() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let plain = gw.sdk("openai-responses", "plain", "rempart/triage");
    assert_eq!(plain["status"], "completed", "{plain}");
    assert_eq!(plain["store"], false, "{plain}");
    assert!(plain["id"].as_str().unwrap().starts_with("resp_"), "{plain}");
    let record = gw.last_call_record().await;
    assert_eq!(record["format"], "responses", "{record}");
    assert_eq!(record["pseudonymized"], true, "{record}");

    // The events the API defines, in its order, from creation to completion.
    let stream = gw.sdk("openai-responses", "stream", "rempart/claude");
    assert_eq!(stream["final"], stream["content"], "{stream}");
    let kinds: Vec<&str> = stream["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        kinds[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ],
        "{kinds:?}"
    );
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ],
        "{kinds:?}"
    );

    // Whatever would keep the exchange somewhere is refused by name, before anything leaves.
    fakes.clear();
    for (scenario, parameter) in [("stored", "store"), ("previous", "previous_response_id")] {
        let refused = gw.sdk("openai-responses", scenario, "rempart/triage");
        assert_eq!(refused["error"]["status"], 400, "{refused}");
        let message = refused["error"]["body"]["message"]
            .as_str()
            .or(refused["error"]["body"]["error"]["message"].as_str())
            .unwrap_or_default();
        assert!(message.contains(&format!("`{parameter}`")), "{refused}");
    }
    assert!(fakes.all_received().is_empty(), "a refused request reached a provider");
}

/// What each inbound route of the gateway's OpenAPI document is probed with: a body in the
/// route's own format carrying personal data in every place a client may put it (system text,
/// the user's message, a tool call's arguments, a tool's result, the end-user id).
fn probe(path: &str, model: &str, stream: bool) -> Value {
    let system = "You assist the analyst Jan Kowalski (jan.kowalski@corp.example).";
    let text = CLASSES
        .iter()
        .map(|(line, _)| *line)
        .chain([PROMPT])
        .collect::<Vec<_>>()
        .join("\n");
    let args = json!({"query": "10.1.2.3", "account": "maria.rossi"}).to_string();
    let result = "ws-042.corp.example: last logon by alice@corp.example";
    match path {
        "/v1/chat/completions" => json!({"model": model, "stream": stream, "user": "alice@corp.example", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup_ip", "arguments": args}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": result}]}),
        "/v1/responses" => {
            json!({"model": model, "stream": stream, "user": "alice@corp.example", "instructions": system, "input": [
            {"role": "user", "content": [{"type": "input_text", "text": text}]},
            {"type": "function_call", "call_id": "call_1", "name": "lookup_ip", "arguments": args},
            {"type": "function_call_output", "call_id": "call_1", "output": result}]})
        }
        "/v1/messages" => json!({"model": model, "stream": stream, "max_tokens": 64, "system": system,
            "metadata": {"user_id": "alice@corp.example"}, "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "lookup_ip", "input": serde_json::from_str::<Value>(&args).unwrap()}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": result}]}]}),
        other => panic!("inbound route {other} has no probe here: every door of the gateway must be tested"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inbound_route_pseudonymizes_what_reaches_a_provider() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let doc: Value = serde_json::from_str(rempart_server::OPENAPI).unwrap();
    let inbound: Vec<&String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, ops)| path.starts_with("/v1/") && ops.get("post").is_some())
        .map(|(path, _)| path)
        .collect();
    assert!(inbound.len() >= 3, "{inbound:?}");
    let mut personal: Vec<&str> = CLASSES.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    personal.extend(PERSONAL);
    personal.extend(["jan.kowalski@corp.example", "maria.rossi"]);
    for path in inbound {
        for (model, provider) in [
            ("rempart/triage", "openai"),
            ("rempart/claude", "anthropic"),
            ("rempart/responses", "responses"),
        ] {
            for stream in [false, true] {
                fakes.clear();
                let body = probe(path, model, stream);
                let text = gw.post_text(path, &body).await;
                let received = fakes.received(provider).join("\n");
                assert!(!received.is_empty(), "{path} → {provider}: nothing sent: {text}");
                let blanked = hashes_blanked(&received);
                for p in &personal {
                    assert!(
                        !blanked.contains(p),
                        "{path} (stream {stream}) → {provider} received `{p}`:\n{received}"
                    );
                }
                assert!(
                    received.contains("email_"),
                    "{path} → {provider}: no pseudonym in {received}"
                );
            }
        }
    }
}

/// The provider each request was served by, from the fakes' logs: how many requests each got.
fn counts(fakes: &Fakes) -> [usize; 3] {
    [
        fakes.received("openai").len(),
        fakes.received("mistral").len(),
        fakes.received("local").len(),
    ]
}

/// Lines of each class the privacy engine recognizes beyond fields and formats (credentials on
/// command lines, accounts and hosts in prose, persons in prose, identifiers forced by their
/// label, the host of a syslog header), and the values that must not reach a provider.
const CLASSES: &[(&str, &[&str])] = &[
    (
        "curl -u anna.k:S3cr3t-99 https://intranet/api",
        &["anna.k", "S3cr3t-99"],
    ),
    (
        r"net use \\fs01\hr Winter2024! /user:CORP\pnowak",
        &["Winter2024!", "pnowak", "fs01"],
    ),
    ("mysql -u dbadmin -pHunter2x sales", &["dbadmin", "Hunter2x"]),
    (
        "Login by account maria.rossi on host PC-0042 failed",
        &["maria.rossi", "PC-0042"],
    ),
    ("The analyst Jan Kowalski reviewed the alert", &["Jan Kowalski"]),
    ("Pracownik: PESEL: 85139912345 (data nieprawidłowa)", &["85139912345"]),
    ("<13>Dec  5 10:00:01 db01 sshd[42]: Accepted publickey", &["db01"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_class_reaches_a_provider_pseudonymized_and_json_keeps_its_bytes() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    for (line, personal) in CLASSES {
        fakes.clear();
        let answer = gw.sdk_saying("openai", "plain", "rempart/triage", line);
        // Re-identified for the caller, but for secrets, which are removed and kept nowhere.
        let content = answer["content"].as_str().unwrap_or_default();
        let blanked = hashes_blanked(content);
        for p in *personal {
            let secret = ["S3cr3t-99", "Winter2024!", "Hunter2x"].contains(p);
            assert_eq!(blanked.contains(p), !secret, "{p} in the answer: {content}");
        }
        let received = fakes.received("openai").join("\n");
        assert!(!received.is_empty(), "{line}: nothing sent");
        let blanked = hashes_blanked(&received);
        for p in *personal {
            assert!(!blanked.contains(p), "{line}: the provider received `{p}`:\n{received}");
        }
    }
    // A message whose text is a JSON document: only its personal values change.
    let doc = "{\"event\" :  {\"CommandLine\": \"curl -u anna.k:S3cr3t-99 https://x\", \"n\": 1.50e3},\n \"note\": \"caf\\u00e9, user pnowak on host PC-0042\"}";
    fakes.clear();
    let answer = gw.sdk_saying("openai", "plain", "rempart/triage", doc);
    assert_eq!(
        answer["content"],
        format!("You said: {}", doc.replace("S3cr3t-99", "[secret removed]"))
    );
    let body: Value = serde_json::from_str(&fakes.received("openai")[0]).unwrap();
    let sent = body["messages"][0]["content"].as_str().unwrap_or_default();
    for kept in [
        "{\"event\" :  {\"CommandLine\": \"curl -u user_",
        "\", \"n\": 1.50e3},\n \"note\": \"caf\\u00e9, user user_",
        " on host host_",
    ] {
        assert!(sent.contains(kept), "`{kept}` respelled in what was sent: {sent}");
    }
    for p in ["anna.k", "S3cr3t-99", "pnowak", "PC-0042"] {
        assert!(!sent.contains(p), "sent `{p}`: {sent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_retries_revocation_and_circuit_breaking() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let ask = || chat("rempart/triage", PROMPT);

    // A rate limit with `Retry-After: 0` is retried on the same provider.
    fakes.set("openai", Mode::RateLimited(2));
    let (status, body) = gw.post("/v1/chat/completions", ask(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&fakes), [3, 0, 0], "two 429s then an answer from openai");
    assert_eq!(body["choices"][0]["message"]["content"], format!("You said: {PROMPT}"));
    fakes.clear();

    // A provider that is down: retried, then the next of the chain serves the same request.
    fakes.set("openai", Mode::Status(500));
    let (status, body) = gw.post("/v1/chat/completions", ask(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&fakes), [3, 1, 0]);
    assert_no_personal_data(&fakes.all_received());
    fakes.clear();

    // Anthropic's 529 (overloaded) is retried, then the next provider serves.
    fakes.set("anthropic", Mode::Status(529));
    let (status, body) = gw
        .post(
            "/v1/messages",
            json!({"model": "rempart/claude", "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["text"], format!("You said: {PROMPT}"));
    assert_eq!(fakes.received("anthropic").len(), 3, "one call and two retries");
    assert_eq!(fakes.received("mistral").len(), 1);
    fakes.clear();

    // Malformed answers and a slow provider fail over too; a 4xx is not retried.
    for mode in [Mode::Malformed, Mode::Slow(Duration::from_secs(3)), Mode::Status(400)] {
        fakes.set("openai", mode.clone());
        let (status, body) = gw.post("/v1/chat/completions", ask(), None).await;
        assert_eq!(status, 200, "{mode:?}: {body}");
        assert_eq!(fakes.received("mistral").len(), 1, "{mode:?}");
        fakes.clear();
    }

    // Consecutive failures open openai's circuit (threshold 3): it is then skipped...
    fakes.set("openai", Mode::Status(503));
    for _ in 0..2 {
        gw.post("/v1/chat/completions", ask(), None).await;
    }
    fakes.clear();
    let providers: Value = reqwest::Client::new()
        .get(gw.url("/api/v1/gateway/providers"))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers["providers"][0]["circuit"], "open", "{providers}");
    let (status, _) = gw.post("/v1/chat/completions", ask(), None).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&fakes), [0, 1, 0], "an open circuit sends nothing to openai");
    // ...and after the cool-down one probe closes it again.
    fakes.set("openai", Mode::Ok);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fakes.clear();
    let (status, _) = gw.post("/v1/chat/completions", ask(), None).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&fakes), [1, 0, 0], "the probe went to openai");

    // Streams: cut before any byte reached the client, the next provider serves; cut after,
    // the client gets what was sent and an error event.
    fakes.set("openai", Mode::CutBeforeAnything);
    let mut req = ask();
    req["stream"] = json!(true);
    let text = gw.post_text("/v1/chat/completions", &req).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"error\""), "{text}");
    fakes.set("openai", Mode::CutMidStream);
    let text = gw.post_text("/v1/chat/completions", &req).await;
    assert!(text.contains("stream_interrupted"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    fakes.set("openai", Mode::Ok);
    fakes.clear();

    // Revocation mid-load (the export-control case): every request is served, none by openai
    // once the revocation is acknowledged.
    let mut load = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = gw.url("/v1/chat/completions");
        let token = gw.client.clone();
        load.spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 5)).await;
            let resp = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&chat("rempart/triage", PROMPT))
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        });
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let revoked = reqwest::Client::new()
        .post(gw.url("/api/v1/gateway/providers/openai/revoke"))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after_revocation = fakes.received("openai").len();
    let mut served = 0;
    while let Some(status) = load.join_next().await {
        assert_eq!(status.unwrap(), 200);
        served += 1;
    }
    assert_eq!(served, 40);
    assert!(
        fakes.received("openai").len() <= after_revocation + 2,
        "requests in flight at most"
    );
    let [openai, mistral, _] = counts(&fakes);
    assert_eq!(
        openai + mistral,
        40,
        "each request served once: openai {openai}, mistral {mistral}"
    );
    assert!(mistral > 0);

    // Nothing available at all: an explicit degraded answer naming every attempt.
    fakes.set("mistral", Mode::Status(503));
    fakes.set("local", Mode::Status(503));
    let (status, body) = gw.post("/v1/chat/completions", ask(), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "rempart_degraded");
    let attempts: Vec<&str> = body["error"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["provider"].as_str().unwrap())
        .collect();
    assert_eq!(attempts, ["mistral", "local"], "{body}");
    assert_eq!(body["error"]["policy"][0]["reason"], "revoked", "{body}");

    let dir = gw.stop();
    let mut c = rempart(dir.path());
    c.arg("--config").arg(dir.path().join("rempart.toml"));
    let kinds = ledger_kinds(c);
    assert!(kinds.contains(&"gateway.revoke".to_owned()), "{kinds:?}");
}

/// Providers whose error answers quote the request: the client, the server's log, the provider
/// status page and the ledger get each error's type and code, never the quoted prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_that_quote_the_prompt_are_not_passed_on() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    for name in ["openai", "mistral", "local"] {
        fakes.set(name, Mode::Echo(400));
    }
    let quoted = "Quarterly review of the perimeter firewall exceptions";
    let (status, body) = gw
        .post("/v1/chat/completions", chat("rempart/triage", quoted), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        fakes.all_received().contains(quoted),
        "the providers did receive the prompt (and quoted it back)"
    );
    let errors: Vec<&str> = body["error"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 3, "{body}");
    assert!(errors[0].contains("code `context_length_exceeded`"), "{errors:?}");
    assert!(errors[1].contains("type `string_too_long`"), "{errors:?}");
    assert!(errors[2].contains("gives no type or code"), "{errors:?}");
    let providers = reqwest::Client::new()
        .get(gw.url("/api/v1/gateway/providers"))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The ledger keeps the request itself, sealed, by design; its attempts must not repeat it.
    let record = gw.last_call_record().await["attempts"].to_string();
    let log = gw.log.lock().unwrap().clone();
    assert!(log.contains("gateway request not served"), "{log}");
    for (what, text) in [
        ("the answer", &body.to_string()),
        ("the providers' status", &providers),
        ("the ledger's attempts", &record),
        ("the log", &log),
    ] {
        assert!(!text.contains("Quarterly review"), "{what} quotes the prompt: {text}");
    }
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_class_decides_where_a_request_may_go() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "[gateway.levels]\n\"RESTREINT UE\" = \"TLP:AMBER+STRICT\"\n");

    // The document states the routes its reader may use and the institution's levels.
    let doc: Value = reqwest::Client::new()
        .get(gw.url("/openapi.json"))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model = &doc["components"]["schemas"]["ChatCompletionsRequest"]["properties"]["model"]["enum"];
    for route in ["triage", "rempart/triage", "claude", "rempart/claude"] {
        assert!(model.as_array().unwrap().contains(&json!(route)), "{route} in {model}");
    }
    let header = &doc["paths"]["/v1/chat/completions"]["post"]["parameters"][0];
    assert_eq!(header["name"], "x-rempart-data-class");
    assert_eq!(
        header["schema"]["anyOf"][1]["enum"],
        json!(["RESTREINT UE"]),
        "{header}"
    );

    // TLP:GREEN (the default here) may go abroad.
    let (status, _) = gw
        .post("/v1/chat/completions", chat("rempart/triage", PROMPT), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&fakes), [1, 0, 0]);
    fakes.clear();

    // TLP:AMBER may not leave the EU: the EU provider serves, pseudonymized.
    let (status, body) = gw
        .post(
            "/v1/chat/completions",
            chat("rempart/triage", PROMPT),
            Some("TLP:AMBER"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&fakes), [0, 1, 0]);
    assert_no_personal_data(&fakes.all_received());
    fakes.clear();

    // The institution's own level above AMBER stays on the premises, where it goes in clear.
    let (status, body) = gw
        .post(
            "/v1/chat/completions",
            chat("rempart/triage", PROMPT),
            Some("RESTREINT UE"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&fakes), [0, 0, 1]);
    assert!(fakes.received("local")[0].contains("alice@corp.example"));
    assert_eq!(body["choices"][0]["message"]["content"], format!("You said: {PROMPT}"));
    fakes.clear();
    // The ledger keeps that call in pseudonyms all the same (request and answer), so that an
    // erasure reaches it: no stored prompt holds a subject in clear.
    let record = gw.last_call_record().await;
    assert_eq!(record["pseudonymized"], false, "{record}");
    assert_eq!(record["recorded_as"], "pseudonyms");
    assert_eq!(record["provider"], "local");
    let kept = record.to_string();
    for p in PERSONAL {
        assert!(!kept.contains(p), "`{p}` in the ledger record: {kept}");
    }
    assert!(kept.contains("email_"), "{kept}");

    // A header cannot lower the class below the client's: an unknown label is refused.
    let (status, body) = gw
        .post("/v1/chat/completions", chat("rempart/triage", PROMPT), Some("PUBLIC"))
        .await;
    assert_eq!(status, 400, "{body}");

    // A route with no provider allowed for the class: refused with each reason, nothing sent.
    let (status, body) = gw
        .post(
            "/v1/chat/completions",
            chat("rempart/abroad", PROMPT),
            Some("TLP:AMBER"),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "policy_refused");
    let reasons = body["error"]["policy"].to_string();
    assert!(
        reasons.contains("TLP:AMBER is above the provider's ceiling TLP:GREEN"),
        "{reasons}"
    );
    // The same refusal in Anthropic's format.
    let (status, body) = gw
        .post(
            "/v1/messages",
            json!({"model": "rempart/abroad", "max_tokens": 10, "messages": [{"role": "user", "content": PROMPT}]}),
            Some("TLP:RED"),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(counts(&fakes), [0, 0, 0]);
    assert!(fakes.received("anthropic").is_empty());

    // A schema the answer does not match is not passed on: the next provider's answer is.
    fakes.set("openai", Mode::WrongSchema);
    let mut req = chat("rempart/triage", PROMPT);
    req["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "v", "strict": true, "schema": {
        "type": "object", "required": ["verdict", "summary"], "additionalProperties": false,
        "properties": {"verdict": {"type": "string"}, "summary": {"type": "string"}}}}});
    let (status, body) = gw.post("/v1/chat/completions", req, None).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(answer, json!({"verdict": "benign", "summary": PROMPT}));
    assert_eq!(counts(&fakes), [1, 1, 0]);
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quotas_answer_429_with_retry_after() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "[gateway.clients.soc-tool]\nrequests_per_minute = 2\n");
    for _ in 0..2 {
        let (status, _) = gw
            .post("/v1/chat/completions", chat("rempart/triage", "hello"), None)
            .await;
        assert_eq!(status, 200);
    }
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&gw.client)
        .json(&chat("rempart/triage", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(fakes.received("openai").len(), 2, "the refused request was not sent");
    gw.stop();
}

/// What the gateway sends to an OpenAI provider and what it answers OpenAI clients, checked
/// against OpenAI's own OpenAPI description (`../shared/data/openai/openapi.yaml.gz`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_side_follows_openai_s_openapi_description() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let mut checks: Vec<Value> = Vec::new();
    let tools = json!([{"type": "function", "function": {"name": "lookup_ip", "description": "Reputation",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]);
    let schema = json!({"type": "json_schema", "json_schema": {"name": "verdict", "strict": true, "schema": {
        "type": "object", "required": ["verdict", "summary"], "additionalProperties": false,
        "properties": {"verdict": {"type": "string"}, "summary": {"type": "string"}}}}});
    let mut requests = [
        json!({"model": "rempart/triage", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
            "temperature": 0.2, "max_tokens": 200, "stop": ["\n\n"], "seed": 7}),
        json!({"model": "rempart/triage", "messages": [{"role": "user", "content": PROMPT}], "tools": tools, "tool_choice": "required"}),
        json!({"model": "rempart/triage", "messages": [{"role": "user", "content": PROMPT}], "response_format": schema}),
        json!({"model": "rempart/triage", "messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup_ip", "arguments": "{\"query\":\"10.1.2.3\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "known scanner"}], "tools": tools}),
    ];
    for (i, req) in requests.iter().enumerate() {
        let (status, body) = gw.post("/v1/chat/completions", req.clone(), None).await;
        assert_eq!(status, 200, "{body}");
        checks.push(json!({"schema": "CreateChatCompletionResponse", "instance": body, "what": format!("answer {i}")}));
    }
    for (i, req) in requests.iter_mut().enumerate() {
        req["stream"] = json!(true);
        req["stream_options"] = json!({"include_usage": true});
        let text = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&gw.client)
            .json(&req)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        for data in text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
        {
            let chunk: Value = serde_json::from_str(data).unwrap();
            checks.push(json!({"schema": "CreateChatCompletionStreamResponse", "instance": chunk, "what": format!("stream {i}")}));
        }
    }
    let models: Value = reqwest::Client::new()
        .get(gw.url("/v1/models"))
        .bearer_auth(&gw.client)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    checks.push(json!({"schema": "ListModelsResponse", "instance": models, "what": "models"}));
    let (_, error) = gw.post("/v1/chat/completions", chat("rempart/nope", "x"), None).await;
    checks.push(json!({"schema": "ErrorResponse", "instance": error, "what": "error"}));
    let sent = fakes.received("openai");
    assert_eq!(sent.len(), 8);
    for (i, body) in sent.iter().enumerate() {
        let v: Value = serde_json::from_str(body).unwrap();
        checks.push(
            json!({"schema": "CreateChatCompletionRequest", "instance": v, "what": format!("sent upstream {i}")}),
        );
    }
    gw.stop();
    common::check_against_openai_s_description(&checks);
}

/// The Responses API both ways: what clients send and get back from `POST /v1/responses`
/// (answers and every stream event) and what the gateway sends a Responses provider, checked
/// against OpenAI's OpenAPI description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_side_follows_openai_s_openapi_description() {
    let fakes = Fakes::start().await;
    let gw = Gateway::start(&fakes, "");
    let mut checks: Vec<Value> = Vec::new();
    let tools = json!([{"type": "function", "name": "lookup_ip", "description": "Reputation", "strict": false,
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]);
    let format = json!({"format": {"type": "json_schema", "name": "verdict", "strict": true, "schema": {
        "type": "object", "required": ["verdict", "summary"], "additionalProperties": false,
        "properties": {"verdict": {"type": "string"}, "summary": {"type": "string"}}}}});
    let mut requests = Vec::new();
    for model in ["rempart/triage", "rempart/responses"] {
        requests.extend([
            json!({"model": model, "instructions": "Be brief.", "input": PROMPT, "temperature": 0.2, "max_output_tokens": 200}),
            // A message's content as a string: as a list of parts it matches two of the
            // description's `oneOf` branches at once, which strict validation rejects.
            json!({"model": model, "input": [{"role": "user", "content": PROMPT}],
                "tools": tools, "tool_choice": "required"}),
            json!({"model": model, "input": PROMPT, "text": format, "store": false}),
            json!({"model": model, "tools": tools, "input": [
                {"role": "user", "content": PROMPT},
                {"type": "function_call", "call_id": "call_1", "name": "lookup_ip", "arguments": "{\"query\":\"10.1.2.3\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "known scanner"}]}),
        ]);
    }
    for (i, req) in requests.iter_mut().enumerate() {
        checks.push(json!({"schema": "CreateResponse", "instance": req.clone(), "what": format!("request {i}")}));
        let (status, body) = gw.post("/v1/responses", req.clone(), None).await;
        assert_eq!(status, 200, "{body}");
        checks.push(json!({"schema": "Response", "instance": body, "what": format!("answer {i}")}));
        req["stream"] = json!(true);
        let text = gw.post_text("/v1/responses", req).await;
        let mut events = 0;
        for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
            let event: Value = serde_json::from_str(data).unwrap();
            checks.push(json!({"schema": "ResponseStreamEvent", "instance": event, "what": format!("stream {i}")}));
            events += 1;
        }
        assert!(text.contains("event: response.completed\n"), "{text}");
        assert!(events >= 4, "{text}");
    }
    let sent = fakes.received("responses");
    assert_eq!(sent.len(), 8, "each request twice to the Responses provider");
    for (i, body) in sent.iter().enumerate() {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["store"], false, "{v}");
        checks.push(json!({"schema": "CreateResponse", "instance": v, "what": format!("sent upstream {i}")}));
    }
    let (_, error) = gw
        .post(
            "/v1/responses",
            json!({"model": "rempart/triage", "input": "x", "store": true}),
            None,
        )
        .await;
    checks.push(json!({"schema": "ErrorResponse", "instance": error, "what": "error"}));
    gw.stop();
    common::check_against_openai_s_description(&checks);
}

/// `rempart gateway policy`: the decision table from the configuration alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_table_is_printed_from_the_configuration() {
    let fakes = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fakes, "");
    let out = rempart(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--json", "gateway", "policy", "--route", "rempart/triage"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5, "one row per class");
    let allowed = |class: &str| -> Vec<String> {
        let row = rows.iter().find(|r| r["class"] == class).unwrap();
        row["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["allowed"] == true)
            .map(|v| v["provider"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(allowed("TLP:CLEAR"), ["openai", "mistral", "local"]);
    assert_eq!(allowed("TLP:GREEN"), ["openai", "mistral", "local"]);
    assert_eq!(allowed("TLP:AMBER"), ["mistral", "local"]);
    assert_eq!(allowed("TLP:AMBER+STRICT"), ["local"]);
    assert_eq!(allowed("TLP:RED"), ["local"]);
    let text = rempart(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["gateway", "policy", "--route", "abroad", "--class", "TLP:RED"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("→ refused: nothing is sent"), "{text}");
    let bad = rempart(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["gateway", "policy", "--class", "PURPLE"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`PURPLE`"));
}
