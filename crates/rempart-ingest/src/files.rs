//! Files and folders as sources: recursive walks, archives read in place, capped
//! decompression.
//!
//! Every problem with a file (unreadable, corrupt archive, a member that expands past its cap)
//! becomes a [`Rejection`] naming the file and member, and the walk goes on with the next one.
//! Everything decoded from a file before a problem was met is kept.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rempart_model::Origin;

use crate::capped::{Capped, read_capped};
use crate::decode::{DecodeOptions, Decoded, Rejection, StreamDecoder, decode_evtx, is_evtx};

/// Archives within archives are followed this deep, no deeper.
const MAX_NESTING: usize = 3;

/// Lists the files under `paths`, recursively, in a stable order. Symbolic links to folders
/// are not followed (no cycles); a path that does not exist is an error naming it.
pub fn walk(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", p.display())))?;
        if meta.is_dir() {
            walk_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", dir.display())))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() {
            walk_dir(&path, out)?;
        } else if ty.is_file() || (ty.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `each` over `files` on up to `threads` threads, a whole file per call, the next file
/// going to the first thread free; returns what each call gave, in the files' order. A folder
/// of many files keeps every thread busy from the first file on, and a result never depends on
/// how the files were shared out.
pub fn map_files<T: Send>(files: &[PathBuf], threads: usize, each: impl Fn(&Path) -> T + Sync) -> Vec<T> {
    rempart_model::parallel::map_ordered(files, threads, |f| each(f))
}

/// Decodes one file, whatever it holds: plain text or JSON, EVTX, gzip, zip, tar, tar.gz.
pub fn decode_file(path: &Path, opts: &DecodeOptions, now: Timestamp, out: &mut impl FnMut(Decoded)) {
    let source = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return out(Decoded::Rejected(whole(&source, format!("cannot open: {e}")))),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let magic = match peek(&mut reader) {
        Ok(m) => m,
        Err(e) => return out(Decoded::Rejected(whole(&source, format!("cannot read: {e}")))),
    };
    if Kind::of(&magic) == Kind::Zip {
        // Zip needs to seek to its central directory: read it from the file itself.
        let mut file = reader.into_inner();
        if let Err(e) = file.rewind() {
            return out(Decoded::Rejected(whole(&source, format!("cannot read: {e}"))));
        }
        decode_zip(&source, file, opts, now, 0, out);
        return;
    }
    decode_reader(
        &source,
        Box::new(Cursor::new(magic).chain(reader)),
        len,
        opts,
        now,
        0,
        out,
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zip,
    Tar,
    Evtx,
    Text,
}

impl Kind {
    fn of(head: &[u8]) -> Kind {
        if head.starts_with(&[0x1f, 0x8b]) {
            Kind::Gzip
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Kind::Zip
        } else if is_evtx(head) {
            Kind::Evtx
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Kind::Tar
        } else {
            Kind::Text
        }
    }
}

/// Fills the buffer with at least the 262 bytes that tell the kinds apart (fewer at EOF).
fn peek<R: Read>(reader: &mut BufReader<R>) -> io::Result<Vec<u8>> {
    // BufReader's fill_buf returns what one read gave; loop to get enough for the tar magic.
    let mut head = Vec::with_capacity(512);
    let inner = reader.get_mut();
    let mut chunk = [0u8; 512];
    while head.len() < 512 {
        let n = match inner.read(&mut chunk[..512 - head.len()]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// Decodes whatever `reader` holds. Readers are boxed: archives nest, and a generic reader
/// type would grow with every level.
fn decode_reader(
    source: &str,
    reader: Box<dyn Read + '_>,
    compressed_len: u64,
    opts: &DecodeOptions,
    now: Timestamp,
    depth: usize,
    out: &mut impl FnMut(Decoded),
) {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let head = match peek(&mut reader) {
        Ok(h) => h,
        Err(e) => return out(Decoded::Rejected(whole(source, format!("cannot read: {e}")))),
    };
    let kind = Kind::of(&head);
    let rest = Cursor::new(head).chain(reader);
    if depth > MAX_NESTING && kind != Kind::Text && kind != Kind::Evtx {
        return out(Decoded::Rejected(whole(
            source,
            format!("archives nested more than {MAX_NESTING} deep"),
        )));
    }
    match kind {
        Kind::Gzip => {
            let capped = Capped::new(flate2::read::MultiGzDecoder::new(rest), cap_for(compressed_len, opts));
            decode_reader(source, Box::new(capped), compressed_len, opts, now, depth + 1, out);
        }
        Kind::Tar => decode_tar(source, rest, opts, now, depth, out),
        Kind::Zip => {
            // A zip inside a stream: buffer it (capped) to get the seeking it needs.
            let mut bytes = Vec::new();
            let cap = opts.limits.max_decompressed_bytes;
            match read_capped(rest, cap, &mut bytes) {
                Ok(_) if bytes.len() as u64 > cap => out(Decoded::Rejected(whole(
                    source,
                    format!("zip archive exceeds {cap} bytes"),
                ))),
                Ok(_) => decode_zip(source, Cursor::new(bytes), opts, now, depth, out),
                Err(e) => out(Decoded::Rejected(whole(source, read_error(&e)))),
            }
        }
        Kind::Evtx => {
            let cap = opts.limits.max_evtx_bytes;
            let mut bytes = Vec::new();
            match read_capped(rest, cap, &mut bytes) {
                Ok(_) => decode_evtx(source, bytes, opts, now, out),
                Err(e) => out(Decoded::Rejected(whole(source, read_error(&e)))),
            }
        }
        Kind::Text => {
            let mut decoder = StreamDecoder::new(source, opts, now);
            if let Err(e) = decoder.read(BufReader::with_capacity(64 * 1024, rest), out) {
                out(Decoded::Rejected(whole(source, read_error(&e))));
            }
        }
    }
}

fn decode_tar(
    source: &str,
    reader: impl Read,
    opts: &DecodeOptions,
    now: Timestamp,
    depth: usize,
    out: &mut impl FnMut(Decoded),
) {
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return out(Decoded::Rejected(whole(source, format!("unreadable tar archive: {e}")))),
    };
    for (count, entry) in entries.enumerate() {
        if count >= opts.limits.max_archive_entries {
            return out(Decoded::Rejected(whole(
                source,
                format!("tar archive has more than {} members", opts.limits.max_archive_entries),
            )));
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                return out(Decoded::Rejected(whole(
                    source,
                    format!("unreadable tar archive after {count} members: {}", read_error(&e)),
                )));
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| format!("member {count}"));
        if is_apple_double(&name) {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        let member = format!("{source}!{name}");
        let capped = Capped::new(
            entry,
            opts.limits
                .max_decompressed_bytes
                .max(size.min(opts.limits.max_decompressed_bytes)),
        );
        decode_reader(&member, Box::new(capped), size, opts, now, depth + 1, out);
    }
}

fn decode_zip<R: Read + Seek>(
    source: &str,
    reader: R,
    opts: &DecodeOptions,
    now: Timestamp,
    depth: usize,
    out: &mut impl FnMut(Decoded),
) {
    let mut archive = match zip::ZipArchive::new(reader) {
        Ok(a) => a,
        Err(e) => return out(Decoded::Rejected(whole(source, format!("unreadable zip archive: {e}")))),
    };
    if archive.len() > opts.limits.max_archive_entries {
        return out(Decoded::Rejected(whole(
            source,
            format!(
                "zip archive has {} members, more than the limit of {}",
                archive.len(),
                opts.limits.max_archive_entries
            ),
        )));
    }
    for i in 0..archive.len() {
        let entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                out(Decoded::Rejected(whole(
                    &format!("{source}!#{i}"),
                    format!("unreadable zip member: {e}"),
                )));
                continue;
            }
        };
        if !entry.is_file() || is_apple_double(entry.name()) {
            continue;
        }
        let member = format!("{source}!{}", entry.name());
        let cap = cap_for(entry.compressed_size(), opts);
        if entry.size() > cap {
            out(Decoded::Rejected(whole(
                &member,
                format!(
                    "declared size {} bytes from {} compressed exceeds the decompression cap of {cap} bytes",
                    entry.size(),
                    entry.compressed_size()
                ),
            )));
            continue;
        }
        let compressed = entry.compressed_size();
        let capped = Capped::new(entry, cap);
        decode_reader(&member, Box::new(capped), compressed, opts, now, depth + 1, out);
    }
}

/// macOS archivers add `__MACOSX/._name` resource forks beside every file: file-system
/// metadata, not telemetry.
fn is_apple_double(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.rsplit('/').next().is_some_and(|base| base.starts_with("._"))
}

/// How much a member of `compressed` bytes may expand to: the ratio cap, never below 64 MiB
/// (small members of real exports compress very well), never above the absolute cap.
fn cap_for(compressed: u64, opts: &DecodeOptions) -> u64 {
    let by_ratio = compressed
        .saturating_mul(opts.limits.max_compression_ratio)
        .max(64 * 1024 * 1024);
    by_ratio.min(opts.limits.max_decompressed_bytes)
}

fn read_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "truncated input: unexpected end of file".to_owned(),
        _ => e.to_string(),
    }
}

fn whole(source: &str, reason: String) -> Rejection {
    Rejection {
        origin: Origin {
            source: source.to_owned(),
            location: None,
        },
        reason,
        raw: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Files shared out to several threads come back in the files' order, each file handled
    /// once, and the threads really ran side by side.
    #[test]
    fn map_files_keeps_the_files_order_whatever_thread_took_each() {
        let files: Vec<PathBuf> = (0..40).map(|i| PathBuf::from(format!("f{i:02}"))).collect();
        let threads = Mutex::new(HashSet::new());
        let out = map_files(&files, 3, |f| {
            threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(std::thread::current().id());
            // Early files take longest, so a later file finishes first.
            let n: u64 = f.to_string_lossy()[1..].parse().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(40u64.saturating_sub(n)));
            f.to_path_buf()
        });
        assert_eq!(out, files);
        assert!(threads.into_inner().unwrap_or_else(|e| e.into_inner()).len() > 1);
        assert_eq!(map_files(&files, 1, |f| f.to_path_buf()), files);
        assert!(map_files(&[], 4, |f| f.to_path_buf()).is_empty());
    }
}
