//! Writes the events of files as Sigma sees them (one flat JSON object per line), `--repeat N`
//! times: the common input for comparing hunt throughput with other Sigma engines.
//!
//! `cargo run --release -p rempart-detect --example sigma_views -- --repeat 10 PATH… > events.ndjson`

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "a benchmark helper")]

use std::io::Write;

use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1;
    if args.first().map(String::as_str) == Some("--repeat") {
        repeat = args[1].parse().unwrap();
        args.drain(..2);
    }
    let paths: Vec<std::path::PathBuf> = args.into_iter().map(Into::into).collect();
    let mut lines = Vec::new();
    for f in files::walk(&paths).unwrap() {
        files::decode_file(&f, &DecodeOptions::default(), jiff::Timestamp::now(), &mut |d| {
            if let Decoded::Event(e) = d {
                lines.push(rempart_detect::sigma_view(&e).to_string());
            }
        });
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..repeat {
        for l in &lines {
            writeln!(out, "{l}").unwrap();
        }
    }
}
