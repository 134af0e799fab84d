//! Hostile and broken input: clear errors, bounded memory, nothing else lost.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rempart_ingest::Rejection;
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files::decode_file;
use rempart_model::Event;

fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

fn decode_with(path: &Path, opts: &DecodeOptions) -> (Vec<Event>, Vec<Rejection>) {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    decode_file(path, opts, Timestamp::now(), &mut |d| match d {
        Decoded::Event(e) => events.push(*e),
        Decoded::Rejected(r) => rejected.push(r),
    });
    (events, rejected)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_zip_bomb_member_hits_the_cap_and_its_neighbours_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("good.ndjson", deflate).unwrap();
    zip.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
    zip.start_file("bomb.ndjson", deflate).unwrap();
    // 200 MB of one JSON string: compresses about 1000:1.
    zip.write_all(b"{\"a\":\"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        zip.write_all(&chunk).unwrap();
    }
    zip.write_all(b"\"}\n").unwrap();
    zip.start_file("after.ndjson", deflate).unwrap();
    zip.write_all(b"{\"a\":3}\n").unwrap();
    zip.finish().unwrap();

    let mut opts = DecodeOptions::default();
    opts.limits.max_decompressed_bytes = 16 << 20;
    let (events, rejected) = decode_with(&path, &opts);
    assert_eq!(events.len(), 3, "the members around the bomb are kept");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].origin.source.ends_with("bomb.zip!bomb.ndjson"));
    assert!(
        rejected[0].reason.contains("exceeds the decompression cap"),
        "{}",
        rejected[0].reason
    );
}

#[test]
fn an_endless_gzip_stream_stops_at_the_cap_keeping_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endless.log.gz");
    // Good lines, then 64 MB of newlines-free garbage standing in for an endless stream.
    let mut plain = b"{\"a\":1}\n{\"a\":2}\n".to_vec();
    plain.extend(std::iter::repeat_n(b'z', 64 << 20));
    std::fs::write(&path, gzip(&plain)).unwrap();
    let mut opts = DecodeOptions::default();
    opts.limits.max_decompressed_bytes = 8 << 20;
    let (events, rejected) = decode_with(&path, &opts);
    assert_eq!(events.len(), 2);
    let reasons: Vec<&str> = rejected.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("possible decompression bomb")),
        "{reasons:?}"
    );
    // The over-long "line" was never buffered whole.
    assert!(rejected.iter().all(|r| r.raw.len() <= 4096));
}

#[test]
fn a_truncated_evtx_keeps_the_intact_chunks_and_names_the_damage() {
    let source = data().join("evtx-attack-samples/Command and Control/bits_openvpn.evtx");
    let bytes = std::fs::read(&source).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.evtx");
    std::fs::write(&whole, &bytes).unwrap();
    let (all, _) = decode_with(&whole, &DecodeOptions::default());
    assert!(all.len() > 10);

    // Cut in the middle of the second chunk (header 4 KiB, chunks 64 KiB).
    let cut = dir.path().join("cut.evtx");
    std::fs::write(&cut, &bytes[..4096 + 65536 + 30_000]).unwrap();
    let (events, rejected) = decode_with(&cut, &DecodeOptions::default());
    assert!(!events.is_empty(), "records of the intact first chunk are kept");
    assert!(events.len() < all.len());
    for e in &events {
        assert!(
            all.iter().any(|a| a.fields == e.fields),
            "a kept record is one of the originals"
        );
    }
    let truncation: Vec<_> = rejected
        .iter()
        .filter(|r| r.reason.starts_with("truncated EVTX file"))
        .collect();
    assert_eq!(truncation.len(), 1, "{rejected:?}");
    assert!(
        truncation[0]
            .reason
            .contains("records of the 1 complete chunks are kept"),
        "{}",
        truncation[0].reason
    );

    // Corrupt a chunk's records: flip bytes inside the first chunk's record area.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[4096 + 1024..4096 + 1200] {
        *b ^= 0xA5;
    }
    let flipped = dir.path().join("flipped.evtx");
    std::fs::write(&flipped, &corrupt).unwrap();
    let (events, rejected) = decode_with(&flipped, &DecodeOptions::default());
    assert!(!events.is_empty() || !rejected.is_empty());
    for r in &rejected {
        assert!(r.origin.source.ends_with("flipped.evtx"));
        assert!(
            r.reason.starts_with("unreadable EVTX record") || r.reason.starts_with("not a readable EVTX"),
            "{}",
            r.reason
        );
    }
    // Every other chunk still yields its records.
    assert!(
        events.len() + rejected.len() >= all.len() / 2,
        "{} events, {} rejected of {}",
        events.len(),
        rejected.len(),
        all.len()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]

    /// Damage in a file decoded on several threads is reported as one thread reports it: the
    /// same rejections, at the same places, between the same kept records, whichever chunks are
    /// hit and however.
    #[test]
    fn a_damaged_evtx_on_several_threads_is_reported_as_on_one(
        damage in proptest::collection::vec((0usize..4, 512usize..60_000, 8usize..200, 1u8..), 1..3),
    ) {
        let source = data().join("evtx-attack-samples/Command and Control/bits_openvpn.evtx");
        let mut bytes = std::fs::read(&source).unwrap();
        // Flip a run of bytes inside a chunk's record area (a header of 4 KiB, chunks of 64 KiB).
        for (chunk, offset, len, mask) in damage {
            let at = 4096 + chunk * 65536 + offset;
            for b in &mut bytes[at..at + len] {
                *b ^= mask;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.evtx");
        std::fs::write(&path, &bytes).unwrap();
        let summary = |(events, rejected): (Vec<Event>, Vec<Rejection>)| {
            let events: Vec<_> = events.into_iter().map(|e| (e.origin, e.fields)).collect();
            let rejected: Vec<_> = rejected.into_iter().map(|r| (r.origin, r.reason)).collect();
            (events, rejected)
        };
        let one = summary(decode_with(&path, &DecodeOptions::default()));
        let threads = DecodeOptions { threads: 3, ..DecodeOptions::default() };
        proptest::prop_assert_eq!(summary(decode_with(&path, &threads)), one);
    }
}

#[test]
fn a_corrupt_archive_is_one_clear_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("broken.zip");
    std::fs::write(&zip, b"PK\x03\x04 this is not really a zip").unwrap();
    let (events, rejected) = decode_with(&zip, &DecodeOptions::default());
    assert!(events.is_empty());
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].reason.starts_with("unreadable zip archive"),
        "{}",
        rejected[0].reason
    );

    let gz = dir.path().join("cut.json.gz");
    let full = gzip(&b"{\"a\":1}\n".repeat(10_000));
    std::fs::write(&gz, &full[..full.len() / 2]).unwrap();
    let (events, rejected) = decode_with(&gz, &DecodeOptions::default());
    assert!(!events.is_empty(), "lines before the cut are kept");
    assert!(
        rejected
            .iter()
            .any(|r| r.reason.contains("truncated") || r.reason.contains("unexpected end")),
        "{rejected:?}"
    );
}

#[test]
fn nested_archives_are_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let inner = gzip(b"{\"nested\":true}\n");
    let path = dir.path().join("outer.tar.gz");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(inner.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "logs/inner.json.gz", &inner[..]).unwrap();
    std::fs::write(&path, gzip(&tar.into_inner().unwrap())).unwrap();
    let (events, rejected) = decode_with(&path, &DecodeOptions::default());
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(events.len(), 1);
    assert!(events[0].origin.source.ends_with("outer.tar.gz!logs/inner.json.gz"));
}
