//! Attacker-chosen names reaching connectors: account and host names come from telemetry an
//! attacker writes (a failed logon carries any `TargetUserName`). Generated hostile names,
//! each prepared for every connector that embeds a target: it lands exactly where it should
//! (one path segment, one argument) or it is refused; chat text never pings or links.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rempart_config::gateway::Secret;
use rempart_config::{ChatFormat, Connector, ConnectorKind};
use rempart_model::{ActionKind, EventId};
use rempart_respond::connectors::{ActionRequest, Connectors, Prepared};

fn connectors(command_args: Vec<&str>) -> Result<Connectors, String> {
    let mut map = BTreeMap::new();
    let mut add = |name: &str, kind: ConnectorKind| {
        map.insert(
            name.to_owned(),
            Connector {
                name: name.to_owned(),
                kind,
                dry_run: true,
                timeout_secs: 5,
            },
        );
    };
    add(
        "directory",
        ConnectorKind::Directory {
            url: "https://directory.example.eu/api".into(),
            token: Secret::None,
        },
    );
    add(
        "edr",
        ConnectorKind::Edr {
            url: "https://edr.example.eu/api".into(),
            token: Secret::None,
        },
    );
    add(
        "fw",
        ConnectorKind::Command {
            program: "/usr/bin/true".into(),
            actions: BTreeMap::from([(
                "disable_account".to_owned(),
                command_args.iter().map(|s| (*s).to_owned()).collect(),
            )]),
        },
    );
    for (name, format) in [
        ("slack", ChatFormat::Slack),
        ("teams", ChatFormat::Teams),
        ("matrix", ChatFormat::Matrix),
    ] {
        add(
            name,
            ConnectorKind::Chat {
                url: format!("https://chat.example.eu/{name}"),
                format,
            },
        );
    }
    Connectors::new(&map)
}

fn request<'a>(action: ActionKind, target: Option<&'a str>, params: &'a BTreeMap<String, String>) -> ActionRequest<'a> {
    ActionRequest {
        key: "run:step:target",
        action,
        undo: false,
        target,
        params,
        incident: EventId::generate(),
        run: EventId::generate(),
        playbook: "contain",
    }
}

/// Names as attackers write them: dot segments (plain and encoded), separators, spaces that
/// would become arguments, quotes, shell syntax, controls, mentions.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = proptest::sample::select(vec![
        ".",
        "..",
        "%2e",
        "%2E%2e",
        "/",
        "\\",
        " ",
        "-Server",
        "evil.example.com",
        "'",
        "\"",
        ";",
        "|",
        "&",
        "$(id)",
        "`id`",
        "\r\n",
        "\t",
        "\u{0}",
        "?",
        "#",
        "alice",
        "svc",
        "<!channel>",
        "@here",
        "[x](http://evil)",
        "*",
        "{",
        "}",
    ]);
    proptest::collection::vec(pieces, 1..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A name lands as exactly one path segment of the intended path, or is refused.
    #[test]
    fn a_target_is_one_path_segment_or_refused(name in hostile()) {
        let c = connectors(vec!["disable", "{{ target }}"]).unwrap();
        let params = BTreeMap::new();
        for (connector, action, suffix) in [
            ("directory", ActionKind::DisableAccount, "disable"),
            ("edr", ActionKind::IsolateHost, "isolate"),
        ] {
            match c.prepare(connector, &request(action, Some(&name), &params)) {
                Ok(Prepared::Http { url, .. }) => {
                    // What an HTTP client sends: the URL as the URL standard parses it.
                    let parsed = reqwest::Url::parse(&url).unwrap();
                    let segments: Vec<&str> = parsed.path_segments().unwrap().collect();
                    prop_assert_eq!(segments.len(), 4, "{} -> {}", name, parsed);
                    prop_assert_eq!(segments[0], "api");
                    prop_assert_eq!(segments[3], suffix);
                    let decoded: String = form_urlencoded::parse(format!("x={}", segments[2].replace('+', "%2B")).as_bytes())
                        .next().unwrap().1.into_owned();
                    prop_assert_eq!(decoded, name.clone());
                    prop_assert!(parsed.query().is_none() && parsed.fragment().is_none());
                }
                Ok(other) => prop_assert!(false, "{:?}", other),
                Err(_) => {}
            }
        }
    }

    /// A command receives the name as one argument with no syntax in it, or refuses it.
    #[test]
    fn a_command_gets_one_plain_argument_or_refuses(name in hostile()) {
        let c = connectors(vec!["disable", "--user={{ target }}"]).unwrap();
        let params = BTreeMap::new();
        if let Ok(Prepared::Command { args, .. }) = c.prepare("fw", &request(ActionKind::DisableAccount, Some(&name), &params)) {
            prop_assert_eq!(args.len(), 2);
            prop_assert_eq!(&args[1], &format!("--user={name}"));
            prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-:\\".contains(&b)), "{:?}", name);
        }
    }

    /// Chat text from telemetry never pings anyone, never links, never breaks lines.
    #[test]
    fn chat_text_stays_text(name in hostile()) {
        let c = connectors(vec!["{{ target }}"]).unwrap();
        let params = BTreeMap::from([("message".to_owned(), format!("disable {name} now"))]);
        for chat in ["slack", "teams", "matrix"] {
            let Ok(Prepared::Http { body, .. }) = c.prepare(chat, &request(ActionKind::Notify, None, &params)) else {
                panic!("{chat}: not prepared");
            };
            let all = match chat {
                "teams" => body["attachments"][0]["content"]["body"][0]["text"].to_string(),
                _ => body["text"].to_string(),
            };
            prop_assert!(!all.contains("<!channel>") && !all.contains("@here"), "{}: {}", chat, all);
            prop_assert!(!all.to_ascii_lowercase().contains("http://"), "{}: a live address in {}", chat, all);
            prop_assert!(!all.contains("\\r") && !all.contains("\\n") && !all.contains("\\u0000"), "{}: {}", chat, all);
        }
    }
}

#[test]
fn the_reported_names_are_refused() {
    let c = connectors(vec!["disable", "{{ target }}"]).unwrap();
    let params = BTreeMap::new();
    for name in ["..", ".", " .. ", "svc -Server evil.example.com", "a\r\nb"] {
        assert!(
            c.prepare("directory", &request(ActionKind::DisableAccount, Some(name), &params))
                .is_err()
                || name.contains("-Server"),
            "{name:?}"
        );
        assert!(
            c.prepare("fw", &request(ActionKind::DisableAccount, Some(name), &params))
                .is_err(),
            "{name:?}"
        );
    }
}

/// Programs re-parse what a template builds (ssh joins its arguments into a remote command
/// line, PowerShell reads `-Identity 'x'`): wherever the target lands, a hostile one is refused
/// and a plain one passes.
#[test]
fn a_target_spliced_into_a_larger_argument_is_still_inert() {
    let c = connectors(vec!["dc01", "Disable-ADAccount -Identity '{{ target }}'"]).unwrap();
    let params = BTreeMap::new();
    for hostile in [
        "x' ; Remove-ADUser -Identity admin ; '",
        "svc -Server evil.example.com",
        "$(whoami)",
    ] {
        assert!(
            c.prepare("fw", &request(ActionKind::DisableAccount, Some(hostile), &params))
                .is_err(),
            "{hostile}"
        );
    }
    let Ok(Prepared::Command { args, .. }) =
        c.prepare("fw", &request(ActionKind::DisableAccount, Some("CORP\\alice"), &params))
    else {
        panic!("a plain account was refused");
    };
    assert_eq!(args[1], "Disable-ADAccount -Identity 'CORP\\alice'");
}
