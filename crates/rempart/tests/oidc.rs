//! People sign in to the console through a real OpenID provider (the certified `oidc-provider`
//! package, run by Node.js with a configuration of the test's own): through Debian's Chromium,
//! and through the HTTP flow step by step. A replayed `state`, a callback from another
//! browser, an account with no mapped role, an account disabled at the provider, a role changed
//! at the provider and a key rotation are each handled as the specifications say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::browser::{Browser, body_text, shot, wait_for};
use fantoccini::Locator;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// oidc-provider's entry point, installed by scripts/test.
fn module() -> PathBuf {
    let m = std::env::var_os("REMPART_OIDC_MODULES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/oidc-provider/node_modules"),
        PathBuf::from,
    );
    let entry = m.join("oidc-provider/lib/index.js");
    assert!(
        entry.exists(),
        "{} is missing: scripts/test installs oidc-provider from the npm registry",
        entry.display()
    );
    entry
}

/// The OpenID provider, on its own port.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(port: u16, rempart: u16, keys: &str) -> Provider {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let users = json!({
            "alice": ["soc-analysts"],
            "bob": ["soc-analysts"],
            "carol": ["soc-approvers", "soc-viewers"],
            "mallory": ["contractors"],
        });
        let mut child = Command::new("node")
            .arg(script)
            .env("OIDC_MODULE", module())
            .env("PORT", port.to_string())
            .env(
                "REDIRECT_URI",
                format!("http://127.0.0.1:{rempart}/sign-in/oidc/callback"),
            )
            .env("POST_LOGOUT", format!("http://127.0.0.1:{rempart}/sign-in"))
            .env("OIDC_KEYS", keys)
            .env("OIDC_USERS", users.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (the npm registry's oidc-provider runs on it)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(ready.starts_with("ready"), "the provider did not start: {ready}");
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Provider {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn hook(&self, path: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rempart serve` with `[oidc]` pointing at the provider.
fn rempart(dir: &Path, port: u16, issuer: &str) -> (Child, String) {
    let config = dir.join("rempart.toml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &config,
        format!(
            "version = 1\n[oidc]\nissuer = \"{issuer}\"\nclient_id = \"rempart\"\nclient_secret_env = \"REMPART_OIDC_SECRET\"\n\
             scopes = [\"openid\", \"profile\", \"offline_access\", \"groups\"]\nroles_claim = \"groups\"\nrefresh_secs = 10\n\
             [oidc.roles]\n\"soc-analysts\" = \"analyst\"\n\"soc-approvers\" = \"approver\"\n\"soc-viewers\" = \"viewer\"\n"
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_rempart"));
    c.arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(&config)
        .env("REMPART_OIDC_SECRET", "rempart-test-secret")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("REMPART_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("API listening") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("rempart did not start");
    (child, format!("http://127.0.0.1:{port}"))
}

/// A client that keeps cookies per host and port, and follows nothing on its own.
struct Http {
    client: reqwest::Client,
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

impl Http {
    fn new() -> Http {
        Http {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    fn origin(url: &str) -> String {
        let u = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(80))
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> reqwest::Response {
        let cookies = self
            .jar
            .get(&Self::origin(url))
            .map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
            .unwrap_or_default();
        let resp = req.header("cookie", cookies).send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, val)) = pair.split_once('=') {
                self.jar
                    .entry(Self::origin(url))
                    .or_default()
                    .insert(k.trim().to_owned(), val.to_owned());
            }
        }
        resp
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let req = self.client.get(url);
        self.send(req, url).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let req = self.client.post(url).form(form);
        self.send(req, url).await
    }
}

fn location(resp: &reqwest::Response, base: &str) -> String {
    let l = resp.headers()["location"].to_str().unwrap();
    if l.starts_with("http") {
        l.to_owned()
    } else {
        format!("{base}{l}")
    }
}

/// The HTTP flow up to the provider's redirect back: Rempart's `/sign-in/oidc`, the provider's
/// login and consent (its development interactions), as a browser would. Returns the callback
/// URL the provider sent.
async fn to_callback(http: &mut Http, base: &str, issuer: &str, user: &str) -> String {
    let r = http.get(&format!("{base}/sign-in/oidc")).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let mut url = location(&r, base);
    assert!(url.starts_with(issuer), "{url}");
    assert!(
        url.contains("code_challenge_method=S256") && url.contains("nonce="),
        "{url}"
    );
    for _ in 0..12 {
        if url.starts_with(base) {
            return url;
        }
        let r = http.get(&url).await;
        if r.status().is_redirection() {
            url = location(&r, issuer);
            continue;
        }
        let page = r.text().await.unwrap();
        let (form, fields): (&str, Vec<(&str, &str)>) = if page.contains("name=\"login\"") {
            ("login", vec![("prompt", "login"), ("login", user), ("password", "any")])
        } else {
            ("consent", vec![("prompt", "consent")])
        };
        let action = page
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let action = if action.starts_with("http") {
            action
        } else {
            format!("{issuer}{action}")
        };
        let r = http.post(&action, &fields).await;
        assert!(r.status().is_redirection(), "{form}: {}", r.status());
        url = location(&r, issuer);
    }
    panic!("the provider never sent the browser back");
}

fn ledger(dir: &Path) -> String {
    let out = common::rempart(dir)
        .args(["--json", "audit", "list", "--last", "500"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_through_the_institution_s_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soc");
    let (pport, rport) = (free_port(), free_port());
    let mut provider = Provider::start(pport, rport, "k1");
    let (mut server, base) = rempart(&dir, rport, &provider.issuer);

    // In a real browser: the sign-in page offers the provider; its login and consent; back in
    // the console as the analyst the groups claim says.
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for(c, "#oidc").await.click().await.unwrap();
    wait_for(c, "input[name=login]").await.send_keys("alice").await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any")
        .await
        .unwrap();
    shot(c, "oidc-provider-login").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The consent page: wait until the login form is gone (its own submit button would
    // otherwise be found, then replaced under the click), and click again if the page is
    // replaced under it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let on_login = c.find(Locator::Css("input[name=login]")).await.is_ok();
        if !on_login
            && let Ok(button) = c.find(Locator::Css("button[type=submit]")).await
            && button.click().await.is_ok()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the consent page never came");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_for(c, "#queue").await;
    assert!(body_text(c).await.contains("alice (analyst)"));
    shot(c, "oidc-signed-in").await;

    // Step by step over HTTP: bob signs in; the callback is spent by its first use.
    let mut http = Http::new();
    let callback = to_callback(&mut http, &base, &provider.issuer, "bob").await;
    let r = http.get(&callback).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("rempart_session="))
    );
    let r = http.get(&format!("{base}/")).await;
    assert!(r.text().await.unwrap().contains("bob (analyst)"));
    let r = http.get(&callback).await;
    assert_eq!(r.status(), 401, "a replayed state");
    assert!(r.text().await.unwrap().contains("unknown, used or expired"));

    // A callback arriving in another browser (without the binding cookie) is refused.
    let mut other = Http::new();
    let callback = to_callback(&mut other, &base, &provider.issuer, "bob").await;
    let r = Http::new().get(&callback).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("another browser"));

    // No mapped group: no role, no sign-in.
    let mut m = Http::new();
    let callback = to_callback(&mut m, &base, &provider.issuer, "mallory").await;
    let r = m.get(&callback).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("contractors"));

    // carol is an approver and a viewer: the stronger role holds.
    let mut carol = Http::new();
    let callback = to_callback(&mut carol, &base, &provider.issuer, "carol").await;
    carol.get(&callback).await;
    assert!(
        carol
            .get(&format!("{base}/"))
            .await
            .text()
            .await
            .unwrap()
            .contains("carol (approver)")
    );

    // At the provider, alice is disabled and bob becomes a viewer: at the next refresh alice's
    // session ends and bob's role follows.
    provider.hook("/test/disable/alice").await;
    provider.hook("/test/groups/bob?g=soc-viewers").await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for(c, "#oidc").await;
    let page = http.get(&format!("{base}/")).await.text().await.unwrap();
    assert!(page.contains("bob (viewer)"), "{page}");

    // A key rotation at the provider: new signing key, same issuer; sign-in still works (the
    // JWKS is fetched again for the unknown key id).
    drop(provider);
    provider = Provider::start(pport, rport, "k2");
    let mut late = Http::new();
    let callback = to_callback(&mut late, &base, &provider.issuer, "carol").await;
    let r = late.get(&callback).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    browser.stop().await;
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    assert!(server.wait().unwrap().success());
    let records = ledger(&dir);
    for kind in [
        "console.sign_in",
        "console.sign_in_failed",
        "console.session_end",
        "console.role_change",
    ] {
        assert!(records.contains(kind), "no {kind} in the ledger");
    }
    assert!(records.contains("oidc:alice") && records.contains("oidc:bob"));
}
