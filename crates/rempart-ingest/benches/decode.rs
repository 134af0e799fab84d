//! Decode + normalize throughput on one core.
//!
//! `evtx/bare-crate` is the `evtx` crate alone rendering records to JSON values;
//! `evtx/decode+normalize` is Rempart's EVTX path on the same file, so the difference is the
//! cost of normalization. `ndjson/…` decodes typical 500-byte events. `otrf-windows/…` decodes
//! real exported Windows events, and `bus/…` writes them out and reads them back as the
//! cluster's nodes do.
//!
//! Run: `cargo bench -p rempart-ingest --bench decode`

use std::borrow::Cow;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use rempart_ingest::decode::{DecodeOptions, Decoded, decode_bytes, decode_evtx};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The allocator the `rempart` binary uses, so figures match the product.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
        PathBuf::from,
    )
}

/// Every EVTX file of the attack samples, in memory: real logs of every size.
fn evtx_samples() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = walk(&data().join("evtx-attack-samples"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "evtx"))
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn count_records(bytes: &[u8]) -> u64 {
    let mut n = 0;
    decode_evtx(
        "bench",
        bytes.to_vec(),
        &DecodeOptions::default(),
        Timestamp::UNIX_EPOCH,
        &mut |d| {
            if matches!(d, Decoded::Event(_)) {
                n += 1;
            }
        },
    );
    n
}

/// Decodes one file, dropping its events; how many there were.
fn decode_counting(bytes: &[u8], opts: &DecodeOptions) -> u64 {
    let mut n = 0u64;
    decode_evtx("bench", bytes.to_vec(), opts, Timestamp::UNIX_EPOCH, &mut |d| {
        n += u64::from(matches!(d, Decoded::Event(_)));
        black_box(d);
    });
    n
}

fn evtx(c: &mut Criterion) {
    let samples = evtx_samples();
    let records: u64 = samples.iter().map(|b| count_records(b)).sum();
    let bytes: usize = samples.iter().map(Vec::len).sum();
    eprintln!("evtx: {} files, {bytes} bytes, {records} records", samples.len());
    let mut g = c.benchmark_group("evtx");
    g.throughput(Throughput::Elements(records));
    g.sample_size(10);
    g.bench_function("bare-crate", |b| {
        b.iter(|| {
            let mut n = 0;
            for bytes in &samples {
                let mut parser = evtx::EvtxParser::from_buffer(bytes.clone())
                    .map(|p| p.with_configuration(evtx::ParserSettings::new().num_threads(1)))
                    .ok();
                n += parser
                    .as_mut()
                    .map_or(0, |p| p.records_json_value().filter(Result::is_ok).count());
            }
            black_box(n)
        })
    });
    g.bench_function("decode+normalize", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for bytes in &samples {
                n += decode_counting(bytes, &DecodeOptions::default());
            }
            n
        })
    });
    // Each of two threads takes the next file and decodes it whole: a folder as `rempart hunt`
    // reads it on this machine's two cores.
    g.bench_function("decode+normalize-2-threads", |b| {
        let opts = DecodeOptions::default();
        b.iter(|| {
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut n = 0u64;
                            while let Some(bytes) = samples.get(next.fetch_add(1, Ordering::Relaxed)) {
                                n += decode_counting(bytes, &opts);
                            }
                            n
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap_or(0)).sum::<u64>()
            })
        })
    });
    g.finish();

    // The files whose header declares four chunks or more (fewer are always decoded on the
    // calling thread), decoded one after the other, their chunks on one thread or side by side
    // on two.
    let declared = |b: &Vec<u8>| evtx::EvtxParser::from_buffer(b.clone()).map_or(0, |p| p.header().chunk_count);
    let large: Vec<&Vec<u8>> = samples.iter().filter(|b| declared(b) >= 4).collect();
    eprintln!("evtx-large-files: {} files of four chunks or more", large.len());
    let records: u64 = large.iter().map(|b| count_records(b)).sum();
    let mut g = c.benchmark_group("evtx-large-files");
    g.throughput(Throughput::Elements(records));
    g.sample_size(10);
    for threads in [1, 2] {
        let opts = DecodeOptions {
            threads,
            ..DecodeOptions::default()
        };
        g.bench_function(format!("decode+normalize-chunks-on-{threads}-threads"), |b| {
            b.iter(|| large.iter().map(|bytes| decode_counting(bytes, &opts)).sum::<u64>())
        });
    }
    g.finish();
}

/// Typical events of about 500 bytes: a Sysmon process creation in the flat shape of
/// collector exports, and a generic application event.
fn ndjson_input(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let line = if i % 2 == 0 {
            format!(
                r#"{{"@timestamp":"2026-11-22T10:{:02}:{:02}.123Z","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WS-FIN-{:02}.corp.example.eu","SourceName":"Microsoft-Windows-Sysmon","Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami /all","ParentImage":"C:\\Windows\\explorer.exe","User":"CORP\\user{}","ProcessId":{},"ParentProcessId":4112,"IntegrityLevel":"Medium","Hashes":"SHA256=9F1E3A5B7C9D1E3F5A7B9C1D3E5F7A9B1C3D5E7F9A1B3C5D7E9F1A3B5C7D9E1F"}}"#,
                i / 60 % 60,
                i % 60,
                i % 40,
                i % 300,
                4000 + i
            )
        } else {
            format!(
                r#"{{"timestamp":"2026-11-22T10:00:{:02}Z","host":{{"name":"web-{:02}"}},"user":{{"name":"svc{}"}},"source":{{"ip":"10.20.{}.{}","port":{}}},"destination":{{"ip":"192.0.2.10","port":443}},"event":{{"dataset":"nginx.access","action":"request"}},"http":{{"request":{{"method":"GET"}},"response":{{"status_code":200}}}},"url":{{"path":"/api/v2/orders/{}"}},"message":"GET /api/v2/orders/{} HTTP/1.1 200 512 - Mozilla/5.0 (X11; Linux x86_64)"}}"#,
                i % 60,
                i % 10,
                i % 50,
                i % 250,
                i % 200,
                40_000 + i % 20_000,
                i,
                i
            )
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn ndjson(c: &mut Criterion) {
    let n = 20_000;
    let input = ndjson_input(n);
    eprintln!("ndjson: {n} events, {} bytes per event on average", input.len() / n);
    let mut g = c.benchmark_group("ndjson");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function("decode+normalize", |b| {
        b.iter(|| {
            let mut events = 0u64;
            decode_bytes(
                "bench",
                &input,
                &DecodeOptions::default(),
                Timestamp::UNIX_EPOCH,
                &mut |d| {
                    events += u64::from(matches!(d, Decoded::Event(_)));
                    black_box(d);
                },
            );
            assert_eq!(events, n as u64);
        })
    });
    g.bench_function("serde_json-only", |b| {
        b.iter(|| {
            let mut count = 0;
            for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).unwrap_or_default();
                count += v.len();
            }
            black_box(count)
        })
    });
    g.bench_function("sonic-into-serde_json", |b| {
        b.iter(|| {
            let mut count = 0;
            for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Map<String, serde_json::Value> = sonic_rs::from_slice(line).unwrap_or_default();
                count += v.len();
            }
            black_box(count)
        })
    });
    g.bench_function("uuid-v7", |b| b.iter(|| black_box(uuid::Uuid::now_v7())));
    g.finish();
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    parsers(c, "ndjson", &lines);
}

/// The JSON lines inside the OTRF Security Datasets' Windows archives: real exported events
/// (Sysmon, Security, PowerShell … as Winlogbeat and NXLog wrote them), unpacked once.
fn otrf_input() -> Vec<Vec<u8>> {
    let mut files = walk(&data().join("otrf/atomic/windows"));
    files.retain(|p| p.extension().is_some_and(|e| e == "zip"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(file) = std::fs::File::open(&f) else { continue };
        let Ok(mut archive) = zip::ZipArchive::new(file) else {
            continue;
        };
        for i in 0..archive.len() {
            let Ok(mut member) = archive.by_index(i) else { continue };
            let member_is_file = member.is_file();
            let mut bytes = Vec::new();
            // The archives are the project's test data; a cap keeps a damaged one bounded.
            let mut capped = std::io::Read::take(&mut member, 1 << 30);
            if member_is_file && std::io::copy(&mut capped, &mut bytes).is_ok() {
                out.push(bytes);
            }
        }
    }
    out
}

fn otrf(c: &mut Criterion) {
    let input = otrf_input();
    let count = |opts: &DecodeOptions| {
        let mut events = 0u64;
        for bytes in &input {
            decode_bytes("bench", bytes, opts, Timestamp::UNIX_EPOCH, &mut |d| {
                events += u64::from(matches!(d, Decoded::Event(_)));
                black_box(d);
            });
        }
        events
    };
    let events = count(&DecodeOptions::default());
    let bytes: usize = input.iter().map(Vec::len).sum();
    eprintln!(
        "otrf: {} files, {events} events, {} bytes per event on average",
        input.len(),
        bytes / events.max(1) as usize
    );
    let mut g = c.benchmark_group("otrf-windows");
    g.throughput(Throughput::Elements(events));
    g.sample_size(10);
    g.bench_function("decode+normalize", |b| b.iter(|| count(&DecodeOptions::default())));
    g.finish();
    let lines: Vec<&[u8]> = input
        .iter()
        .flat_map(|member| member.split(|b| *b == b'\n'))
        .filter(|l| l.trim_ascii().starts_with(b"{"))
        .take(100_000)
        .collect();
    parsers(c, "otrf-windows", &lines);
    bus(c, &input);
}

/// What the cluster does with a decoded event besides detecting it: the ingest node writes it
/// out for the bus (`bus/encode`), and a detect worker reads it back and hands the store its
/// fields as JSON text (`bus/decode+store-text`). 40,000 real OTRF Windows events.
fn bus(c: &mut Criterion, input: &[Vec<u8>]) {
    const EVENTS: usize = 40_000;
    let mut events = Vec::new();
    for bytes in input {
        decode_bytes(
            "bench",
            bytes,
            &DecodeOptions::default(),
            Timestamp::UNIX_EPOCH,
            &mut |d| {
                if let Decoded::Event(e) = d
                    && events.len() < EVENTS
                {
                    events.push(*e);
                }
            },
        );
        if events.len() == EVENTS {
            break;
        }
    }
    let encoded: Vec<Vec<u8>> = events.iter().filter_map(|e| serde_json::to_vec(e).ok()).collect();
    assert_eq!(encoded.len(), events.len(), "every event is written out");
    assert!(
        encoded
            .iter()
            .all(|bytes| serde_json::from_slice::<rempart_model::Event>(bytes).is_ok()),
        "every event reads back"
    );
    let mut g = c.benchmark_group("bus");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("encode", |b| {
        b.iter(|| {
            for e in &events {
                black_box(serde_json::to_vec(e).ok());
            }
        })
    });
    g.bench_function("decode+store-text", |b| {
        b.iter(|| {
            for bytes in &encoded {
                if let Ok(event) = serde_json::from_slice::<rempart_model::Event>(bytes) {
                    black_box(event.fields.to_json().ok());
                }
            }
        })
    });
    g.finish();
}

/// A JSON value whose strings borrow from the input where they hold no escapes: what a
/// borrowed parse with `serde_json` builds (no owned map, no key copied).
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the bench builds values it does not read: building them is what it measures"
)]
enum Json<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// How many entries it holds at the top (what each parser's bench counts).
    fn len(&self) -> usize {
        match self {
            Json::Array(items) => items.len(),
            Json::Object(entries) => entries.len(),
            Json::Null | Json::Bool(_) | Json::I64(_) | Json::U64(_) | Json::F64(_) | Json::Str(_) => 0,
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(item) = access.next_element::<Json<'de>>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            entries.push((key, access.next_value::<Json<'de>>()?));
        }
        Ok(Json::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// An object's key, borrowed where it holds no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A parser under comparison: parses one line (with a scratch buffer, for parsers that work
/// in place) and gives the number of top-level entries, or `None` if it refused the line.
type Parse = fn(&[u8], &mut Vec<u8>) -> Option<usize>;

/// The parsers a borrowed decode could stand on, over the same lines: `serde_json` into owned
/// maps (what decoding does now), `serde_json` into a borrowed tree, `sonic-rs` into its own
/// value, `simd-json` into its borrowed value (on a copy of the line: it parses in place).
const PARSERS: [(&str, Parse); 4] = [
    ("serde_json-owned-map", |line, _| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
            .ok()
            .map(|v| v.len())
    }),
    ("serde_json-borrowed", |line, _| {
        serde_json::from_slice::<Json<'_>>(line).ok().map(|v| v.len())
    }),
    ("sonic-rs-value", |line, _| {
        use sonic_rs::JsonContainerTrait as _;
        let v = sonic_rs::from_slice::<sonic_rs::Value>(line).ok()?;
        Some(v.as_object().map_or(0, |o| o.len()))
    }),
    ("simd-json-borrowed", |line, buf| {
        buf.clear();
        buf.extend_from_slice(line);
        let v = simd_json::to_borrowed_value(buf).ok()?;
        Some(simd_json::prelude::ValueAsObject::as_object(&v).map_or(0, |o| o.len()))
    }),
];

/// Benches every parser of [`PARSERS`] over `lines`, after checking that each parses every line
/// and finds the entries `serde_json` finds (a parser refusing lines would look faster).
fn parsers(c: &mut Criterion, name: &str, lines: &[&[u8]]) {
    let mut buf = Vec::new();
    let (_, reference) = PARSERS[0];
    for &(parser, parse) in &PARSERS {
        for line in lines {
            assert_eq!(
                parse(line, &mut buf),
                reference(line, &mut buf),
                "{parser} on {}",
                String::from_utf8_lossy(line)
            );
        }
    }
    let mut g = c.benchmark_group(format!("parse-{name}"));
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    for (parser, parse) in PARSERS {
        g.bench_function(parser, |b| {
            b.iter(|| lines.iter().filter_map(|line| parse(line, &mut buf)).sum::<usize>())
        });
    }
    g.finish();
}

criterion_group!(benches, evtx, ndjson, otrf);
criterion_main!(benches);
