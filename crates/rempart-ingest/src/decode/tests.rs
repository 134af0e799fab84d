//! Stream-level behaviour: detection, document mode, rejections that lose nothing else.

use super::*;
use rempart_model::Format;

fn run(input: &[u8], opts: &DecodeOptions) -> (Vec<Event>, Vec<Rejection>) {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    decode_bytes("test", input, opts, Timestamp::UNIX_EPOCH, &mut |d| match d {
        Decoded::Event(e) => events.push(*e),
        Decoded::Rejected(r) => rejected.push(r),
    });
    (events, rejected)
}

#[test]
fn ndjson_with_a_bad_line_keeps_the_good_ones() {
    let input = b"{\"a\":1}\n{\"a\":\n{\"a\":3}\n42\n";
    let (events, rejected) = run(input, &DecodeOptions::default());
    assert_eq!(events.len(), 2);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].origin.location.as_deref(), Some("line 2"));
    assert!(
        rejected[0].reason.starts_with("truncated JSON"),
        "{}",
        rejected[0].reason
    );
    assert_eq!(rejected[1].origin.location.as_deref(), Some("line 4"));
    assert!(rejected[1].reason.contains("found a number"));
    assert_eq!(events[1].origin.location.as_deref(), Some("line 3"));
}

#[test]
fn pretty_printed_documents_and_arrays_are_read_whole() {
    let input = b"{\n  \"Event\": {\n    \"System\": {\"EventID\": 1, \"Computer\": \"h\"}\n  }\n}\n";
    let (events, rejected) = run(input, &DecodeOptions::default());
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].format, Format::WindowsJson);
    assert_eq!(events[0].normalized.host.as_deref(), Some("h"));

    let input = b"[\n {\"x\": 1},\n {\"x\": 2},\n \"nope\"\n]";
    let (events, rejected) = run(input, &DecodeOptions::default());
    assert_eq!(events.len(), 2);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].origin.location.as_deref(), Some("line 1, element 2"));
}

#[test]
fn json_array_on_one_line() {
    let (events, rejected) = run(br#"[{"x":1},{"x":2}]"#, &DecodeOptions::default());
    assert_eq!((events.len(), rejected.len()), (2, 0));
}

#[test]
fn over_long_lines_are_rejected_without_losing_neighbours() {
    let mut opts = DecodeOptions::default();
    opts.limits.max_line_bytes = 64;
    let mut input = b"{\"a\":1}\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend_from_slice(b"\n{\"a\":2}\n");
    let mut events = 0;
    let mut rejected = Vec::new();
    let mut decoder = StreamDecoder::new("t", &opts, Timestamp::UNIX_EPOCH);
    // A tiny buffer forces the long line to arrive in many pieces.
    let reader = std::io::BufReader::with_capacity(16, &input[..]);
    decoder
        .read(reader, &mut |d| match d {
            Decoded::Event(_) => events += 1,
            Decoded::Rejected(r) => rejected.push(r),
        })
        .unwrap();
    assert_eq!(events, 2);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].origin.location.as_deref(), Some("line 2"));
    assert!(
        rejected[0].reason.contains("10000 bytes exceeds the limit of 64"),
        "{}",
        rejected[0].reason
    );
    assert!(rejected[0].raw.len() <= REJECTED_SAMPLE_BYTES);
}

#[test]
fn invalid_utf8_json_is_rejected_clearly() {
    let (events, rejected) = run(b"{\"a\":\"\xff\xfe\"}\n{\"a\":1}\n", &DecodeOptions::default());
    assert_eq!(events.len(), 1);
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].reason.contains("invalid"), "{}", rejected[0].reason);
    assert_eq!(rejected[0].raw, b"{\"a\":\"\xff\xfe\"}");
}

#[test]
fn syslog_streams_mix_5424_3164_and_cef() {
    let input = b"<13>1 2024-01-01T00:00:00Z h app 1 - - hello\n<13>Jan  1 00:00:00 h app: hi\nCEF:0|v|p|1|s|n|3|src=1.2.3.4\n<999>broken\n";
    let (events, rejected) = run(input, &DecodeOptions::default());
    let formats: Vec<Format> = events.iter().map(|e| e.format).collect();
    // A bare CEF line in a syslog stream is read as a headerless line whose message is CEF.
    assert_eq!(formats, [Format::Syslog5424, Format::Syslog3164, Format::Cef]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].reason.contains("out of range"));
}

#[test]
fn unknown_lines_are_rejected_until_a_format_is_recognized() {
    let input = b"garbage here\n{\"a\":1}\n";
    let (events, rejected) = run(input, &DecodeOptions::default());
    assert_eq!(events.len(), 1);
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].reason.starts_with("unrecognized format"));
}

#[test]
fn a_stream_with_no_known_format_is_rejected_once() {
    let yaml = "title: Empire Mimikatz\nid: SDWIN-1\ntags:\n  - LSASS\nreferences: [a, b]\n- [x]\n";
    let (events, rejected) = run(yaml.as_bytes(), &DecodeOptions::default());
    assert!(events.is_empty());
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]
            .reason
            .starts_with("unrecognized format: none of the first 6 lines"),
        "{}",
        rejected[0].reason
    );
    assert_eq!(rejected[0].raw, b"title: Empire Mimikatz");

    let long: String = (0..1000).map(|i| format!("key{i}: value\n")).collect();
    let (events, rejected) = run(long.as_bytes(), &DecodeOptions::default());
    assert!(events.is_empty());
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].reason.contains("first 16 lines"), "{}", rejected[0].reason);
}

#[test]
fn forced_format_overrides_detection() {
    let opts = DecodeOptions {
        format: Some(Format::Json),
        ..DecodeOptions::default()
    };
    let (events, _) = run(br#"{"EventID": 1, "Channel": "Security"}"#, &opts);
    assert_eq!(events[0].format, Format::Json);
    let (events, _) = run(br#"{"EventID": 1, "Channel": "Security"}"#, &DecodeOptions::default());
    assert_eq!(events[0].format, Format::WindowsJson);
}

#[test]
fn configurable_timestamp_field() {
    let opts = DecodeOptions {
        timestamp_field: Some("meta.when".to_owned()),
        ..DecodeOptions::default()
    };
    let (events, _) = run(
        br#"{"meta": {"when": "2024-02-03T04:05:06Z"}, "timestamp": "2000-01-01T00:00:00Z"}"#,
        &opts,
    );
    assert_eq!(events[0].time.to_string(), "2024-02-03T04:05:06Z");
}

#[test]
fn suricata_and_zeek_json_are_classified() {
    let input = br#"{"timestamp":"2021-03-04T10:00:00.123456+0000","flow_id":1,"event_type":"alert","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","alert":{"signature":"ET POLICY x","signature_id":2000001,"severity":1}}
{"ts":1588205199.82437,"uid":"C1","id.orig_h":"10.0.1.6","id.orig_p":1,"id.resp_h":"10.0.0.4","id.resp_p":53,"_path":"dns","query":"example.org"}"#;
    let (events, rejected) = run(input, &DecodeOptions::default());
    assert!(rejected.is_empty());
    assert_eq!(events[0].format, Format::SuricataEve);
    assert_eq!(events[0].normalized.severity, Some(rempart_model::Severity::High));
    assert_eq!(events[0].normalized.message.as_deref(), Some("ET POLICY x"));
    assert_eq!(events[0].time.to_string(), "2021-03-04T10:00:00.123456Z");
    assert_eq!(events[1].format, Format::ZeekJson);
    assert_eq!(events[1].normalized.channel.as_deref(), Some("dns"));
    assert_eq!(events[1].normalized.message.as_deref(), Some("example.org"));
}

#[test]
fn events_take_the_class_of_their_source_first_match_first() {
    let opts = DecodeOptions {
        classify: vec![
            ("*/hr/*".to_owned(), DataClass::Red),
            ("fw-*".to_owned(), DataClass::Green),
        ],
        ..DecodeOptions::default()
    };
    let line = br#"{"@timestamp":"2026-11-20T09:00:00Z","message":"x"}"#;
    let class = |source: &str| {
        let mut classes = Vec::new();
        decode_bytes(source, line, &opts, Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                classes.push(e.class);
            }
        });
        classes
    };
    assert_eq!(class("/var/log/HR/payroll.json"), [DataClass::Red]);
    assert_eq!(class("fw-dmz"), [DataClass::Green]);
    assert_eq!(
        class("http"),
        [DataClass::Amber],
        "unclassified sources keep the default"
    );
}
