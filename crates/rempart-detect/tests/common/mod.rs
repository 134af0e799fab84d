//! What the detection tests share: the data directory and a sorted file walk.
#![allow(dead_code, clippy::unwrap_used, reason = "tests: each test uses part of this")]

use std::path::{Path, PathBuf};

/// `REMPART_DATA`, or `../shared/data` beside the repository.
pub fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

/// Every file under `dir`, in sorted order.
pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
