//! Caps that keep hostile input from exhausting memory.

/// Upper bounds applied while reading input. The defaults suit real telemetry with a wide
/// margin; every cap produces a clear rejection, never an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (or JSON document in a line-oriented stream) accepted, in bytes.
    pub max_line_bytes: usize,
    /// Most bytes one compressed member may expand to.
    pub max_decompressed_bytes: u64,
    /// Highest ratio of expanded to compressed size accepted before a member is called a bomb.
    pub max_compression_ratio: u64,
    /// Most members read from one archive.
    pub max_archive_entries: usize,
    /// Largest EVTX file read into memory.
    pub max_evtx_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 1024 * 1024,
            max_decompressed_bytes: 4 * 1024 * 1024 * 1024,
            max_compression_ratio: 1000,
            max_archive_entries: 100_000,
            max_evtx_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}
