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

/// About how many bytes of whole lines a thread of [`decode_file_blocks`] takes at a time.
const LINE_BLOCK: usize = 1 << 20;

/// [`decode_file`] on up to `threads` threads, for a file of plain text whose lines decode on
/// their own (JSON lines, syslog, CEF, auditd): once the first lines have told the format,
/// blocks of whole lines go to the threads, the next block to the first thread free, and
/// each block's items are folded by `fold` into a `T` of its own. Returns the `T`s in the
/// file's order: folding them in turn gives what folding [`decode_file`]'s items gives, the
/// same items in the same order with the same line numbers. `None` for a file that is not
/// plain text (an archive, compressed, EVTX): [`decode_file`] reads those. A file whose
/// lines depend on each other (a multi-line JSON document, Zeek's TSV) or a line over the
/// length limit makes the rest be read on this thread.
pub fn decode_file_blocks<T: Default + Send>(
    path: &Path,
    opts: &DecodeOptions,
    now: Timestamp,
    threads: usize,
    fold: impl Fn(&mut T, Decoded) + Sync,
) -> Option<Vec<T>> {
    decode_blocks_sized(path, opts, now, threads, LINE_BLOCK, fold)
}

/// [`decode_file_blocks`] with blocks of about `block_size` bytes.
fn decode_blocks_sized<T: Default + Send>(
    path: &Path,
    opts: &DecodeOptions,
    now: Timestamp,
    threads: usize,
    block_size: usize,
    fold: impl Fn(&mut T, Decoded) + Sync,
) -> Option<Vec<T>> {
    let source = path.display().to_string();
    let mut file = File::open(path).ok()?;
    let magic = peek(&mut BufReader::new(&mut file)).ok()?;
    if Kind::of(&magic) != Kind::Text {
        return None;
    }
    let mut reader = BufReader::with_capacity(256 * 1024, Cursor::new(magic).chain(file));
    let max_line = opts.limits.max_line_bytes;
    let mut decoder = StreamDecoder::new(source.as_str(), opts, now);
    let mut head = T::default();
    // The first lines, on this thread, until they tell whether the rest may be shared out.
    let mut line = Vec::new();
    let fork = loop {
        if threads > 1
            && let Some(fork) = decoder.fork_at(decoder.lines_read())
        {
            break fork;
        }
        if !decoder.sniffing() {
            // A format whose lines depend on each other, or one thread: the rest as one stream.
            read_rest(&mut decoder, &source, reader, &mut |d| fold(&mut head, d));
            return Some(vec![head]);
        }
        line.clear();
        match read_line(&mut reader, max_line, &mut line) {
            Ok(Line::Whole) => decoder.line(&line, &mut |d| fold(&mut head, d)),
            Ok(Line::Eof) => {
                decoder.finish(&mut |d| fold(&mut head, d));
                return Some(vec![head]);
            }
            Ok(Line::TooLong) => {
                // The rest as one stream: the decoder rejects the long line as it always does.
                let rest = BufReader::new(Cursor::new(std::mem::take(&mut line)).chain(reader));
                read_rest(&mut decoder, &source, rest, &mut |d| fold(&mut head, d));
                return Some(vec![head]);
            }
            Err(e) => {
                decoder.finish(&mut |d| fold(&mut head, d));
                fold(&mut head, Decoded::Rejected(whole(&source, read_error(&e))));
                return Some(vec![head]);
            }
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, u64, Vec<u8>)>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok((seq, first_line, block)) = next else { break done };
                        let mut t = T::default();
                        // Reading memory cannot fail.
                        let _ = fork
                            .taken_up_at(first_line)
                            .read(&block[..], &mut |item| fold(&mut t, item));
                        done.push((seq, t));
                    }
                })
            })
            .collect();
        let mut done = vec![(0, head)];
        let mut seq = 1;
        let mut lines_before = decoder.lines_read();
        loop {
            let mut block = Vec::with_capacity(block_size + 4096);
            match read_block(&mut reader, block_size, max_line, &mut block) {
                Ok(Block::Lines) => {
                    let lines = memchr::memchr_iter(b'\n', &block).count() as u64
                        + u64::from(block.last().is_some_and(|b| *b != b'\n'));
                    // A send fails only if every worker is gone, which a panic reports below.
                    let _ = tx.send((seq, lines_before, block));
                    seq += 1;
                    lines_before += lines;
                }
                Ok(Block::Eof) => break,
                Ok(Block::TooLong) => {
                    // The rest on this thread, from the line that does not end in time.
                    let mut t = T::default();
                    let rest = BufReader::new(Cursor::new(block).chain(&mut reader));
                    read_rest(&mut fork.taken_up_at(lines_before), &source, rest, &mut |item| {
                        fold(&mut t, item);
                    });
                    done.push((seq, t));
                    break;
                }
                Err(e) => {
                    let mut t = T::default();
                    fold(&mut t, Decoded::Rejected(whole(&source, read_error(&e))));
                    done.push((seq, t));
                    break;
                }
            }
        }
        drop(tx);
        for w in workers {
            done.extend(w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        done
    });
    done.sort_unstable_by_key(|(seq, _)| *seq);
    Some(done.into_iter().map(|(_, t)| t).collect())
}

/// Reads the rest of a stream into `decoder`, a read error rejecting the rest.
fn read_rest(decoder: &mut StreamDecoder<'_>, source: &str, rest: impl io::BufRead, out: &mut impl FnMut(Decoded)) {
    if let Err(e) = decoder.read(rest, out) {
        out(Decoded::Rejected(whole(source, read_error(&e))));
    }
}

/// `reader.fill_buf()`, tried again when interrupted.
fn fill(reader: &mut impl io::BufRead) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // What the successful call buffered, not read again.
    reader.fill_buf()
}

/// What [`read_line`] found.
enum Line {
    /// A line, its newline left out (or the last line, without one).
    Whole,
    /// The end of the input.
    Eof,
    /// A line over the limit: what was read of it is kept.
    TooLong,
}

/// Reads one line into `line` (empty on entry), up to `max` bytes.
fn read_line(reader: &mut impl io::BufRead, max: usize, line: &mut Vec<u8>) -> io::Result<Line> {
    loop {
        let buf = fill(reader)?;
        if buf.is_empty() {
            return Ok(if line.is_empty() { Line::Eof } else { Line::Whole });
        }
        let (chunk, consumed, complete) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if line.len() + chunk.len() > max {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        reader.consume(consumed);
        if complete {
            return Ok(Line::Whole);
        }
    }
}

/// What [`read_block`] found.
enum Block {
    /// Whole lines, newlines included (the last line of the input may have none).
    Lines,
    Eof,
    /// Whole lines, then the beginning of a line over the limit.
    TooLong,
}

/// Reads about `size` bytes of whole lines into `block`: up to the first newline after that
/// many bytes, a line of at most `max` bytes.
fn read_block(reader: &mut impl io::BufRead, size: usize, max: usize, block: &mut Vec<u8>) -> io::Result<Block> {
    // Where the line being read began.
    let mut line_start = 0;
    loop {
        let buf = fill(reader)?;
        if buf.is_empty() {
            return Ok(if block.is_empty() { Block::Eof } else { Block::Lines });
        }
        if block.len() < size {
            // Take what fits, then go on to the end of its last line.
            let take = buf.len().min(size - block.len());
            if let Some(i) = memchr::memrchr(b'\n', &buf[..take]) {
                line_start = block.len() + i + 1;
            }
            block.extend_from_slice(&buf[..take]);
            reader.consume(take);
        } else {
            let (consumed, complete) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            block.extend_from_slice(&buf[..consumed]);
            reader.consume(consumed);
            if complete {
                return Ok(Block::Lines);
            }
        }
        if block.len() - line_start > max {
            return Ok(Block::TooLong);
        }
        if block.len() >= size && block.last() == Some(&b'\n') {
            return Ok(Block::Lines);
        }
    }
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

    /// One decoded item as a comparable line: an event without its random id, or a rejection.
    fn summary(d: Decoded) -> String {
        match d {
            Decoded::Event(e) => {
                let mut v = serde_json::to_value(&*e).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("id");
                }
                format!("event {v}")
            }
            Decoded::Rejected(r) => format!("rejected {:?} {} {:?}", r.origin, r.reason, r.raw),
        }
    }

    /// What [`decode_file`] gives, and what [`decode_blocks_sized`] gives with these threads
    /// and block size, folded in order (`None` for a file it leaves to `decode_file`).
    fn both(path: &Path, opts: &DecodeOptions, threads: usize, block: usize) -> (Vec<String>, Option<Vec<String>>) {
        let now = Timestamp::UNIX_EPOCH;
        let mut whole = Vec::new();
        decode_file(path, opts, now, &mut |d| whole.push(summary(d)));
        let blocks = decode_blocks_sized(path, opts, now, threads, block, |t: &mut Vec<String>, d| {
            t.push(summary(d));
        });
        (whole, blocks.map(|b| b.concat()))
    }

    /// One line of a generated stream, from templates with random values.
    fn line() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let word = "[a-zA-Z0-9 .\\\\:_-]{0,40}";
        prop_oneof![
            6 => (0u32..100_000, word, word, 1u8..28).prop_map(|(id, image, cmd, day)| format!(
                r#"{{"@timestamp":"2026-11-{day:02}T10:00:00Z","EventID":{id},"Image":{},"CommandLine":{}}}"#,
                serde_json::Value::from(image),
                serde_json::Value::from(cmd)
            )
            .into_bytes()),
            1 => Just(Vec::new()),
            1 => Just(b"   \t".to_vec()),
            1 => word.prop_map(|w| format!("{{\"a\":\"{}\"}}\r", w.replace(['"', '\\'], "")).into_bytes()),
            1 => (0u32..9).prop_map(|n| format!("[{{\"n\":{n}}},{{\"m\":\"x\"}},{n}]").into_bytes()),
            1 => (0u32..9).prop_map(|n| format!("{n}").into_bytes()),
            1 => Just(b"{\"truncated\": ".to_vec()),
            1 => Just(b"{\"bytes\":\"\xff\xfe\"}".to_vec()),
            1 => (200usize..900).prop_map(|n| format!("{{\"long\":\"{}\"}}", "x".repeat(n)).into_bytes()),
            1 => (0u32..255, word).prop_map(|(n, w)| format!("<13>Dec  7 10:00:{:02} host{n} app[{n}]: {w}", n % 60).into_bytes()),
            1 => (0u32..255).prop_map(|n| format!("CEF:0|Vendor|Product|1.0|100|Blocked|5|src=10.0.0.{n} dst=192.0.2.1").into_bytes()),
        ]
    }

    /// How a generated stream begins: its first lines decide whether it may be shared out.
    fn start() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            4 => Just(Vec::new()),
            1 => Just(b"{\n  \"pretty\": 1,\n  \"EventID\": 4624\n}\n".to_vec()),
            1 => Just(b"#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n1700000000.0\tC1\n".to_vec()),
            1 => Just(b"not a known format\nnor this\n".to_vec()),
            1 => Just(b"<13>Dec  7 10:00:00 host app: first\n".to_vec()),
            1 => Just(b"CEF:0|V|P|1|1|N|5|src=10.0.0.1\n".to_vec()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// A file of lines decoded in blocks on several threads gives what it gives on one,
        /// item by item (events, rejections, line numbers), whatever the lines, the size of the
        /// blocks, the line limit and the end of the file.
        #[test]
        fn a_file_decoded_in_blocks_is_the_file_decoded_whole(
            start in start(),
            lines in proptest::collection::vec(line(), 0..120),
            crlf in proptest::bool::ANY,
            last_newline in proptest::bool::ANY,
            threads in 1usize..4,
            block in proptest::sample::select(vec![1usize, 16, 100, 700, 1 << 20]),
            max_line in proptest::sample::select(vec![300usize, 1000, 1 << 20]),
        ) {
            let mut text = start;
            for (i, l) in lines.iter().enumerate() {
                text.extend_from_slice(l);
                if i + 1 < lines.len() || last_newline {
                    text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                }
            }
            let dir = tempfile::tempdir().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let path = dir.path().join("lines.log");
            std::fs::write(&path, &text).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let mut opts = DecodeOptions::default();
            opts.limits.max_line_bytes = max_line;
            let (whole, blocks) = both(&path, &opts, threads, block);
            let blocks = blocks.unwrap_or_default();
            let first = whole.iter().zip(&blocks).position(|(a, b)| a != b);
            proptest::prop_assert!(
                whole == blocks,
                "{} items whole, {} in blocks; first difference at {first:?}: {:?} / {:?}",
                whole.len(),
                blocks.len(),
                first.map(|i| &whole[i]),
                first.map(|i| &blocks[i])
            );
        }
    }

    /// Over a real recording (the OTRF Windows events of one intrusion, as JSON lines), in
    /// blocks of a few kilobytes on three threads: the same events in the same order; and a
    /// file that is not plain text is left to `decode_file`.
    #[test]
    fn a_real_recording_decoded_in_blocks_is_the_recording_decoded_whole() {
        let Some(data) = std::env::var_os("REMPART_DATA") else {
            panic!("REMPART_DATA names the shared test data");
        };
        let zip = PathBuf::from(data).join("otrf/atomic/windows/collection/host/msf_record_mic.zip");
        let mut archive = zip::ZipArchive::new(File::open(&zip).unwrap_or_else(|e| panic!("{}: {e}", zip.display())))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut text = Vec::new();
        let mut member = archive.by_index(0).unwrap_or_else(|e| panic!("{e}"));
        read_capped(&mut member, 64 << 20, &mut text).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("otrf.json");
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        let opts = DecodeOptions::default();
        let (whole, blocks) = both(&path, &opts, 3, 4096);
        assert!(whole.len() > 1_000, "{} items", whole.len());
        assert!(
            whole.iter().all(|s| s.starts_with("event ")),
            "{:?}",
            whole.iter().find(|s| !s.starts_with("event "))
        );
        assert_eq!(blocks, Some(whole));
        assert!(both(&zip, &opts, 3, 4096).1.is_none());
    }

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
