//! Redaction throughput on realistic security events: Sysmon-style NDJSON (structured fields and
//! command lines), sshd/sudo syslog lines and firewall CEF, as `rempart redact` sees them (the
//! vault, which batches its writes, is measured end to end in BENCHMARKS.md), and real Windows
//! host events: the Sysmon, Security and PowerShell records of an OTRF Security-Datasets
//! recording (`$REMPART_DATA`, by default `../shared/data`), with their rendered messages.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rempart_privacy::recognize::{RecognizerConfig, Recognizers};
use rempart_privacy::redact::{Domain, Redactor};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sysmon(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-22T10:{:02}:{:02}.123Z","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WS-{:03}.corp.example.eu","Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c net use \\\\files.corp.example.eu\\share /user:CORP\\user{}","ParentImage":"C:\\Windows\\explorer.exe","User":"CORP\\user{}","SourceIp":"10.{}.{}.{}","DestinationIp":"203.0.113.{}","ProcessId":{},"Hashes":"SHA256=9F1E3A5B7C9D1E3F5A7B9C1D3E5F7A9B1C3D5E7F9A1B3C5D7E9F1A3B5C7D9E1F"}}"#,
        i / 60 % 60,
        i % 60,
        i % 500,
        i % 300,
        i % 300,
        i % 200,
        i % 250,
        i % 254 + 1,
        i % 254 + 1,
        4000 + i
    )
}

fn syslog(i: usize) -> String {
    match i % 3 {
        0 => format!(
            "Nov 22 10:01:02 bastion sshd[{}]: Failed password for invalid user admin{} from 198.51.100.{} port 5{:04} ssh2",
            800 + i,
            i % 50,
            i % 254 + 1,
            i % 10000
        ),
        1 => format!(
            "Nov 22 10:03:00 bastion sudo:    user{} : TTY=pts/0 ; PWD=/home/user{} ; USER=root ; COMMAND=/bin/systemctl restart nginx",
            i % 300,
            i % 300
        ),
        _ => format!(
            "CEF:0|Vendor|Firewall|1.0|100|Connection blocked|5|src=10.1.{}.{} dst=192.0.2.{} spt=5{:04} dpt=443 proto=TCP suser=user{}",
            i % 200,
            i % 250,
            i % 254 + 1,
            i % 10000,
            i % 300
        ),
    }
}

/// The JSON lines of one OTRF recording (Rubeus asktgt, 4.3 MB, 1,179 events).
fn otrf() -> Vec<String> {
    let data = std::env::var_os("REMPART_DATA").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        std::path::PathBuf::from,
    );
    let path = data.join("otrf/atomic/windows/credential_access/host/empire_shell_rubeus_asktgt_ptt.zip");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e} (set REMPART_DATA)", path.display()));
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_index(0).unwrap(), &mut text).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn bench(c: &mut Criterion) {
    let recognizers = Recognizers::new(&RecognizerConfig {
        internal_suffixes: vec!["corp.example.eu".into()],
        ..RecognizerConfig::default()
    })
    .unwrap();
    let recognizers = std::sync::Arc::new(recognizers);
    let domain = Domain::derive(&[7; 32], "bench", 0);
    for (name, lines) in [
        ("sysmon_ndjson", (0..5000).map(sysmon).collect::<Vec<_>>()),
        ("syslog_and_cef", (0..5000).map(syslog).collect::<Vec<_>>()),
        ("otrf_windows", otrf()),
    ] {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        let mut g = c.benchmark_group("redact");
        g.throughput(Throughput::Bytes(bytes as u64));
        g.sample_size(10);
        // Each pass starts with a new redactor, as `rempart redact` does: what it remembers
        // (pseudonyms, findings of repeated strings) comes from the input itself, never from an
        // earlier pass over the same lines.
        g.bench_function(name, |b| {
            b.iter_batched(
                || Redactor::new(recognizers.clone(), domain.clone()),
                |redactor| {
                    for l in &lines {
                        std::hint::black_box(redactor.redact_line(l).unwrap());
                    }
                },
                BatchSize::PerIteration,
            );
        });
        g.finish();
    }
}

/// What building the recognizers costs (every pattern compiled, the tables and the gazetteer
/// loaded): once per process, and once per reload of the configuration.
fn startup(c: &mut Criterion) {
    let config = RecognizerConfig::default();
    c.benchmark_group("recognizers")
        .sample_size(10)
        .bench_function("new", |b| b.iter(|| Recognizers::new(&config).unwrap()));
}

criterion_group!(benches, bench, startup);
criterion_main!(benches);
