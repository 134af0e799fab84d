//! Property tests for the decoders of hostile input: syslog, CEF, Zeek, JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use jiff::Timestamp;
use proptest::prelude::*;
use rempart_ingest::decode::{DecodeOptions, Decoded, decode_bytes};
use rempart_model::{Event, Format};
use serde_json::{Map, Value};

fn decode(input: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut rejected = 0;
    decode_bytes(
        "prop",
        input,
        &DecodeOptions::default(),
        Timestamp::UNIX_EPOCH,
        &mut |d| match d {
            Decoded::Event(e) => events.push(*e),
            Decoded::Rejected(_) => rejected += 1,
        },
    );
    (events, rejected)
}

/// Printable text without the characters the test builds structure from.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.:/=|\\\\\"\\]\\[-]{0,40}"
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,20}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_@.]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the bytes, decoding returns; it never panics, and it never yields more items
    /// than there are lines (plus elements of JSON arrays).
    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&input);
    }

    /// Arbitrary text lines in any of the detected families never panic either.
    #[test]
    fn arbitrary_lines_never_panic(prefix in prop_oneof![Just("<13>"), Just("<13>1 "), Just("CEF:0|"), Just("#fields\t"), Just("type=X msg=audit("), Just("{"), Just("Oct 11 ")], rest in "\\PC{0,200}") {
        let _ = decode(format!("{prefix}{rest}\n{prefix}{rest}").as_bytes());
    }

    /// Any JSON object survives verbatim in `fields`.
    #[test]
    fn json_objects_are_kept_verbatim(fields in prop::collection::btree_map("[a-zA-Z_@.]{1,12}", json_value(), 0..8)) {
        let object: Map<String, Value> = fields.into_iter().collect();
        let line = serde_json::to_string(&object).unwrap();
        let (events, rejected) = decode(line.as_bytes());
        prop_assert_eq!(rejected, 0);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].fields, &object);
    }

    /// Good and bad NDJSON lines mixed: every good line is an event, every bad one a rejection,
    /// in order.
    #[test]
    fn bad_json_lines_lose_nothing_else(kinds in prop::collection::vec(any::<bool>(), 1..40)) {
        let mut input = String::from("{\"first\":true}\n");
        for (i, good) in kinds.iter().enumerate() {
            if *good { input.push_str(&format!("{{\"i\":{i}}}\n")); } else { input.push_str(&format!("{{\"i\":{i},\n")); }
        }
        let (events, rejected) = decode(input.as_bytes());
        prop_assert_eq!(events.len(), 1 + kinds.iter().filter(|g| **g).count());
        prop_assert_eq!(rejected, kinds.iter().filter(|g| !**g).count());
    }

    /// RFC 5424 messages built from parts decode back to the same parts, with structured data
    /// values escaped as the RFC requires.
    #[test]
    fn rfc5424_round_trips(pri in 0u16..=191, host in token(), app in token(), procid in token(), msgid in token(),
                           sd_id in "[a-z]{1,8}@[0-9]{1,5}", params in prop::collection::btree_map("[a-z]{1,8}", text(), 0..4),
                           msg in "[^\\n\\r]{0,80}") {
        let escaped: Vec<String> = params.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]"))).collect();
        let sd = if params.is_empty() { "-".to_owned() } else { format!("[{sd_id} {}]", escaped.join(" ")) };
        let line = format!("<{pri}>1 2026-01-02T03:04:05.678Z {host} {app} {procid} {msgid} {sd} {msg}");
        let (events, rejected) = decode(line.as_bytes());
        prop_assert_eq!(rejected, 0, "{}", line);
        let e = &events[0];
        if msg.trim_start().starts_with("CEF:") { return Ok(()); }
        prop_assert_eq!(e.format, Format::Syslog5424);
        prop_assert_eq!(e.fields["facility"].as_u64(), Some(u64::from(pri >> 3)));
        prop_assert_eq!(e.normalized.host.as_deref(), Some(host.as_str()).filter(|h| *h != "-"));
        prop_assert_eq!(e.fields.get("app_name").and_then(Value::as_str), Some(app.as_str()).filter(|a| *a != "-"));
        for (k, v) in &params {
            prop_assert_eq!(e.fields["structured_data"][&sd_id][k].as_str(), Some(v.as_str()));
        }
        prop_assert_eq!(e.fields["message"].as_str(), Some(msg.trim_start_matches('\u{feff}')));
        prop_assert_eq!(e.time.to_string(), "2026-01-02T03:04:05.678Z");
    }

    /// CEF header and extension values with every character that needs escaping round-trip.
    #[test]
    fn cef_round_trips(vendor in text(), product in text(), name in text(), sev in 0u8..=10,
                       ext in prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9]{0,10}", "[a-zA-Z0-9 =\\\\/:?&\\n]{0,30}", 0..5)) {
        let h = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|");
        let e = |s: &str| s.replace('\\', "\\\\").replace('=', "\\=").replace('\n', "\\n");
        let extension: Vec<String> = ext.iter().map(|(k, v)| format!("{k}={}", e(v))).collect();
        let line = format!("CEF:0|{}|{}|1.0|100|{}|{sev}|{}", h(&vendor), h(&product), h(&name), extension.join(" "));
        let (events, rejected) = decode(line.as_bytes());
        prop_assert_eq!(rejected, 0, "{}", line);
        let ev = &events[0];
        prop_assert_eq!(ev.format, Format::Cef);
        prop_assert_eq!(ev.fields["device_vendor"].as_str(), Some(vendor.as_str()));
        prop_assert_eq!(ev.fields["device_product"].as_str(), Some(product.as_str()));
        prop_assert_eq!(ev.fields["name"].as_str(), Some(name.as_str()));
        for (k, v) in &ext {
            // Values are trimmed of trailing spaces before the next key.
            prop_assert_eq!(ev.fields[k].as_str(), Some(v.trim_end_matches(' ')), "{}", line);
        }
    }

    /// Zeek TSV records with escaped separators read back to the values written.
    #[test]
    fn zeek_tsv_round_trips(rows in prop::collection::vec(("[a-zA-Z0-9 \\t,]{1,20}", 0u64..1_000_000, prop::collection::vec("[a-z]{1,5}", 0..3)), 1..20)) {
        let mut log = String::from("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\ttest\n#fields\tts\tname\tcount\ttags\n#types\ttime\tstring\tcount\tset[string]\n");
        for (i, (name, count, tags)) in rows.iter().enumerate() {
            let escaped = name.replace('\t', "\\x09");
            let tags = if tags.is_empty() { "(empty)".to_owned() } else { tags.join(",") };
            log.push_str(&format!("{}.5\t{escaped}\t{count}\t{tags}\n", 1_600_000_000 + i));
        }
        let (events, rejected) = decode(log.as_bytes());
        prop_assert_eq!(rejected, 0);
        prop_assert_eq!(events.len(), rows.len());
        for (e, (name, count, tags)) in events.iter().zip(&rows) {
            prop_assert_eq!(e.format, Format::ZeekTsv);
            if name != "-" && name != "(empty)" {
                prop_assert_eq!(e.fields["name"].as_str(), Some(name.as_str()));
            }
            prop_assert_eq!(e.fields["count"].as_u64(), Some(*count));
            prop_assert_eq!(e.fields["tags"].as_array().map(Vec::len), Some(tags.len()));
        }
    }
}
