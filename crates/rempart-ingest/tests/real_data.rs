//! Decoding the real data in `../shared/data` (override with `REMPART_DATA`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files::{decode_file, walk};
use rempart_model::{Event, Format};

fn data() -> PathBuf {
    let dir = std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.is_dir(),
        "test data not found at {} (set REMPART_DATA)",
        dir.display()
    );
    dir
}

fn decode(path: &Path) -> (Vec<Event>, Vec<rempart_ingest::Rejection>) {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    decode_file(path, &DecodeOptions::default(), Timestamp::now(), &mut |d| match d {
        Decoded::Event(e) => events.push(*e),
        Decoded::Rejected(r) => rejected.push(r),
    });
    (events, rejected)
}

/// What the `evtx` crate itself reads from a file: records it parses, and errors.
fn crate_count(path: &Path) -> (usize, usize) {
    let mut parser = evtx::EvtxParser::from_path(path).unwrap();
    let (mut ok, mut err) = (0, 0);
    for r in parser.records_json_value() {
        match r {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    (ok, err)
}

#[test]
fn every_evtx_sample_ingests_exactly_what_the_crate_reads() {
    let root = data();
    let mut files = walk(&[root.join("evtx-attack-samples"), root.join("sigma/regression_data")]).unwrap();
    files.retain(|p| p.extension().is_some_and(|e| e == "evtx"));
    assert!(files.len() > 400, "expected the full sample set, found {}", files.len());
    let mut total = 0;
    for f in &files {
        let (events, rejected) = decode(f);
        let (ok, err) = crate_count(f);
        assert_eq!(
            events.len(),
            ok,
            "{}: events vs records the evtx crate parses",
            f.display()
        );
        assert_eq!(
            rejected.len(),
            err,
            "{}: rejections vs evtx crate errors: {rejected:?}",
            f.display()
        );
        assert!(
            events
                .iter()
                .all(|e| e.format == Format::Evtx && e.normalized.event_id.is_some() && e.normalized.host.is_some())
        );
        total += events.len();
    }
    assert!(total > 8_000, "only {total} records");
}

/// What decoding one file gives, every event reduced to what the file determines (an event's
/// id and ingest time are drawn anew on each run).
fn decoded_with(path: &Path, opts: &DecodeOptions) -> Vec<String> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    decode_file(path, opts, now, &mut |d| match d {
        Decoded::Event(e) => out.push(format!(
            "{:?} {} {:?} {:?} {:?}",
            e.origin,
            e.time,
            e.class,
            e.normalized,
            serde_json::Value::Object(e.fields.into_map())
        )),
        Decoded::Rejected(r) => out.push(format!("rejected {:?} {}", r.origin, r.reason)),
    });
    out
}

/// A file of many chunks decoded on several threads gives exactly what one thread gives, in the
/// same order: every such file of the samples.
#[test]
fn an_evtx_file_decoded_on_several_threads_gives_what_one_thread_gives() {
    let root = data();
    let mut files = walk(&[root.join("evtx-attack-samples")]).unwrap();
    // A header of 4 KiB, then 64 KiB chunks: a file this long declares at least 8 of them.
    files.retain(|p| {
        p.extension().is_some_and(|e| e == "evtx") && std::fs::metadata(p).is_ok_and(|m| m.len() >= 4096 + 8 * 65536)
    });
    assert!(files.len() >= 10, "expected the full sample set, found {}", files.len());
    let mut records = 0;
    for f in &files {
        let one = decoded_with(f, &DecodeOptions::default());
        let several = decoded_with(
            f,
            &DecodeOptions {
                threads: 3,
                ..DecodeOptions::default()
            },
        );
        assert_eq!(several.len(), one.len(), "{}", f.display());
        if let Some(i) = (0..one.len()).find(|&i| several[i] != one[i]) {
            panic!("{}: item {i} differs:\n{}\n{}", f.display(), one[i], several[i]);
        }
        records += one.len();
    }
    assert!(records > 5_000, "only {records} records");
}

#[test]
fn every_regression_json_ingests_as_windows_events_with_normalized_fields() {
    let root = data().join("sigma/regression_data");
    let mut files = walk(&[root]).unwrap();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    assert!(files.len() >= 200);
    let mut with_cmdline = 0;
    for f in &files {
        let (events, rejected) = decode(f);
        assert!(rejected.is_empty(), "{}: {rejected:?}", f.display());
        assert!(!events.is_empty(), "{}", f.display());
        for e in &events {
            assert_eq!(e.format, Format::WindowsJson, "{}", f.display());
            assert!(
                e.normalized.host.is_some() && e.normalized.event_id.is_some() && e.normalized.channel.is_some(),
                "{}",
                f.display()
            );
            with_cmdline += usize::from(e.normalized.command_line.is_some());
        }
        // The JSON and the EVTX beside it hold the same events.
        let evtx = f.with_extension("evtx");
        if evtx.exists() {
            let (from_evtx, _) = decode(&evtx);
            assert_eq!(from_evtx.len(), events.len(), "{}", f.display());
            let key = |e: &Event| {
                (
                    e.normalized.host.clone(),
                    e.normalized.event_id,
                    e.normalized.channel.clone(),
                    e.normalized.process_id,
                )
            };
            assert_eq!(key(&from_evtx[0]), key(&events[0]), "{}", f.display());
        }
    }
    assert!(
        with_cmdline > 50,
        "command lines normalized on only {with_cmdline} events"
    );
}

#[test]
fn otrf_archives_ingest_with_normalized_fields() {
    let root = data().join("otrf/atomic");
    let files = walk(&[root]).unwrap();
    let mut events_total = 0;
    let mut truncated = Vec::new();
    for f in &files {
        let (events, rejected) = decode(f);
        let name = f.to_string_lossy();
        if name.contains("_metadata") {
            // ATT&CK mappings in YAML, not telemetry: one rejection per file, nothing decoded.
            assert!(events.is_empty(), "{name}");
            assert_eq!(rejected.len(), 1, "{name}: {rejected:?}");
            assert!(
                rejected[0].reason.starts_with("unrecognized format: none of the first"),
                "{name}"
            );
            continue;
        }
        for r in &rejected {
            // The data set ships one truncated tar.gz; its rejection must say so and name it.
            assert!(
                r.reason.contains("truncated") || r.reason.contains("unexpected end"),
                "{}: {r:?}",
                f.display()
            );
            truncated.push(r.origin.source.clone());
        }
        if name.contains("/windows/") {
            for e in &events {
                assert_eq!(e.format, Format::WindowsJson, "{}", e.origin.source);
                assert!(
                    e.normalized.host.is_some() && e.normalized.event_id.is_some(),
                    "{}",
                    e.origin.source
                );
            }
        }
        events_total += events.len();
    }
    assert!(truncated.len() <= 2, "{truncated:?}");
    assert!(events_total > 100_000, "{events_total}");

    // Checked by hand: the mic-recording data set, a Sysmon process creation in it.
    let (events, rejected) = decode(&data().join("otrf/atomic/windows/collection/host/msf_record_mic.zip"));
    assert!(rejected.is_empty());
    let create = events
        .iter()
        .find(|e| {
            e.normalized.event_id == Some(1)
                && e.normalized.channel.as_deref() == Some("Microsoft-Windows-Sysmon/Operational")
        })
        .expect("a Sysmon process creation");
    assert_eq!(create.format, Format::WindowsJson);
    assert!(create.normalized.command_line.is_some());
    assert!(
        create
            .normalized
            .host
            .as_deref()
            .is_some_and(|h| h.ends_with("mordor.local"))
    );
    assert!(create.normalized.user.is_some());
    assert!(
        create
            .origin
            .source
            .ends_with(".zip!msf_record_mic_2020-06-09225055.json")
    );

    // The Linux data set is auditd.
    let (events, rejected) = decode(&data().join("otrf/atomic/linux/discovery/host/sh_arp_cache.zip"));
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(events.iter().all(|e| e.format == Format::Auditd));
    assert!(
        events
            .iter()
            .any(|e| e.normalized.command_line.as_deref() == Some("arp -a"))
    );
}

#[test]
fn zeek_logs_ingest_as_json_and_as_tsv() {
    let dir = data().join("otrf/compound/apt29/day1/zeek");
    let (json_events, rejected) = decode(&dir.join("individual_zeek_logs/NASHUA_conn.log"));
    assert!(rejected.is_empty());
    assert!(json_events.len() > 100, "{}", json_events.len());
    assert!(
        json_events
            .iter()
            .all(|e| e.format == Format::ZeekJson && e.normalized.src_ip.is_some())
    );

    // Write the same records in Zeek's TSV form and read them back.
    let fields = [
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "service",
        "duration",
        "orig_bytes",
    ];
    let types = [
        "time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count",
    ];
    let mut tsv = format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\t{}\n#types\t{}\n",
        fields.join("\t"),
        types.join("\t")
    );
    for e in &json_events {
        let row: Vec<String> = fields
            .iter()
            .map(|f| {
                let key = f.replace('.', "_");
                match e.fields.get(&key) {
                    None => "-".to_owned(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                }
            })
            .collect();
        tsv.push_str(&row.join("\t"));
        tsv.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("conn.log");
    std::fs::write(&path, tsv).unwrap();
    let (tsv_events, rejected) = decode(&path);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(tsv_events.len(), json_events.len());
    for (t, j) in tsv_events.iter().zip(&json_events) {
        assert_eq!(t.format, Format::ZeekTsv);
        assert_eq!(t.time, j.time);
        assert_eq!(
            (t.normalized.src_ip, t.normalized.dst_port),
            (j.normalized.src_ip, j.normalized.dst_port)
        );
    }

    // Every log in the folder, zipped ones included.
    for f in walk(&[dir]).unwrap() {
        let (events, rejected) = decode(&f);
        assert!(rejected.is_empty(), "{}: {rejected:?}", f.display());
        assert!(!events.is_empty(), "{}", f.display());
    }
}
