//! From bytes to [`Event`]s: format detection, the per-format decoders, and the line-oriented
//! stream decoder that ties them together.
//!
//! A stream (a file, an archive member, an HTTP body, a syslog connection) is decoded by one
//! [`StreamDecoder`]. It detects the format family from the first line it recognizes (or takes
//! the forced one), then decodes line by line. JSON that does not fit on one line (a
//! pretty-printed document, a JSON array) switches the stream to document mode. Whatever cannot
//! be decoded becomes a [`Rejection`] naming the source, the line or byte offset, and the
//! reason; the stream goes on.

mod auditd;
mod cef;
mod evtx;
mod fields;
mod json;
mod line;
mod syslog;
mod time;
mod windows;
mod zeek;

use std::io::{self, BufRead};

use jiff::Timestamp;
use rempart_model::{DataClass, Event, Fields, Format, Origin};
use serde_json::Value;

use crate::Limits;
use line::JsonLine;

pub use self::evtx::{decode_evtx, is_evtx};

/// How to decode a stream.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Decode everything as this format instead of detecting it.
    pub format: Option<Format>,
    /// For generic JSON: the field holding the event time (a dotted path), tried before the
    /// usual candidates (`@timestamp`, `timestamp`, `time`, …).
    pub timestamp_field: Option<String>,
    /// The data class given to every event decoded, unless `classify` names its source.
    pub class: DataClass,
    /// Per source, first match wins: a lower-case glob over the source's name (`http`, an HTTP
    /// `?source=`, `syslog`, a file's path) and the class of its events.
    pub classify: Vec<(String, DataClass)>,
    pub limits: Limits,
    /// Threads that decode an EVTX file, its chunks side by side (records still come out in
    /// the file's order). 0 and 1 both mean the calling thread alone.
    pub threads: usize,
}

impl DecodeOptions {
    /// The class of events from `source`.
    pub fn class_of(&self, source: &str) -> DataClass {
        self.classify
            .iter()
            .find(|(pattern, _)| rempart_model::glob(pattern, source))
            .map_or(self.class, |(_, class)| *class)
    }
}

/// Input that could not be decoded, kept so that nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where: the source and the line, record or byte offset.
    pub origin: Origin,
    /// Why, in one lowercase sentence.
    pub reason: String,
    /// The offending bytes (for an over-long line, only its beginning).
    pub raw: Vec<u8>,
}

/// What a decoder yields, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Event(Box<Event>),
    Rejected(Rejection),
}

/// Most bytes of an over-long line kept in its rejection.
const REJECTED_SAMPLE_BYTES: usize = 4096;

/// The format families a line-oriented stream can hold. Within a family the exact format is
/// decided per record (a syslog stream can carry both RFC 5424 and CEF; a JSON stream from a
/// collector can mix Windows, Zeek and Suricata records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Json,
    Syslog,
    Cef,
    ZeekTsv,
    Auditd,
}

impl Family {
    fn of_forced(format: Format) -> Option<Family> {
        match format {
            Format::Json | Format::WindowsJson | Format::SuricataEve | Format::ZeekJson => Some(Family::Json),
            Format::Syslog5424 | Format::Syslog3164 => Some(Family::Syslog),
            Format::Cef => Some(Family::Cef),
            Format::ZeekTsv => Some(Family::ZeekTsv),
            Format::Auditd => Some(Family::Auditd),
            Format::Evtx => None,
        }
    }

    /// Recognizes a family from one line, or says nothing.
    fn sniff(line: &[u8]) -> Option<Family> {
        let line = trim_ascii_start(line);
        match line.first()? {
            b'{' | b'[' => Some(Family::Json),
            b'#' if line.starts_with(b"#separator") || line.starts_with(b"#fields") => Some(Family::ZeekTsv),
            b'<' => Some(Family::Syslog),
            _ if line.starts_with(b"CEF:") => Some(Family::Cef),
            _ if line.starts_with(b"type=") && memchr::memmem::find(line, b"msg=audit(").is_some() => {
                Some(Family::Auditd)
            }
            _ if syslog::looks_like_headerless(line) => Some(Family::Syslog),
            _ => None,
        }
    }
}

/// Decodes one stream of telemetry, line by line.
#[derive(Debug)]
pub struct StreamDecoder<'o> {
    opts: &'o DecodeOptions,
    source: String,
    /// The class of the stream's events, from its source.
    class: DataClass,
    now: Timestamp,
    family: Option<Family>,
    zeek: zeek::TsvState,
    line_no: u64,
    /// Set when the stream turned out to hold multi-line JSON: the rest is buffered here.
    document: Option<Vec<u8>>,
    document_start_line: u64,
    /// Whether a record was already decoded line by line: after that, an incomplete line is
    /// a truncated record, not the start of a multi-line document.
    any_line_decoded: bool,
    /// Lines met before any format was recognized, held until one is (then each is rejected
    /// on its own) or until it is clear none will be (then the stream is rejected once).
    unrecognized: Vec<Rejection>,
    /// Set when the stream was rejected as a whole; its remaining lines are skipped.
    abandoned: bool,
}

/// Non-empty lines read looking for a known format before a stream is rejected as a whole.
const SNIFF_LINES: usize = 16;

impl<'o> StreamDecoder<'o> {
    /// A decoder for the stream named `source`, stamping `now` as the ingest time.
    pub fn new(source: impl Into<String>, opts: &'o DecodeOptions, now: Timestamp) -> Self {
        let source = source.into();
        StreamDecoder {
            opts,
            class: opts.class_of(&source),
            source,
            now,
            family: opts.format.and_then(Family::of_forced),
            zeek: zeek::TsvState::default(),
            line_no: 0,
            document: None,
            document_start_line: 0,
            any_line_decoded: false,
            unrecognized: Vec::new(),
            abandoned: false,
        }
    }

    /// Reads `reader` to its end, decoding every line. Lines longer than the limit are
    /// rejected (their beginning kept) without buffering the rest of them. An I/O error ends
    /// the stream and is returned; everything decoded before it has been emitted.
    pub fn read(&mut self, mut reader: impl BufRead, out: &mut impl FnMut(Decoded)) -> io::Result<()> {
        let max = self.opts.limits.max_line_bytes;
        let mut line: Vec<u8> = Vec::new();
        let mut overflow = false;
        let mut overflow_len = 0usize;
        loop {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.finish(out);
                    return Err(e);
                }
            };
            if buf.is_empty() {
                if overflow {
                    self.reject_long_line(&line, overflow_len, out);
                } else if !line.is_empty() {
                    self.line(&line, out);
                }
                self.finish(out);
                return Ok(());
            }
            let (chunk, consumed, complete) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            if self.document.is_some() {
                // Document mode buffers whole input, newlines included, up to the line cap
                // scaled to a document cap.
                let doc_cap = self.document_cap();
                let doc = self.document.get_or_insert_with(Vec::new);
                if doc.len() + consumed > doc_cap {
                    let start = self.document_start_line;
                    let taken = self.document.take().unwrap_or_default();
                    let reason = format!("JSON document exceeds {doc_cap} bytes");
                    out(Decoded::Rejected(self.rejection_at(
                        format!("line {start}"),
                        reason,
                        &taken[..taken.len().min(REJECTED_SAMPLE_BYTES)],
                    )));
                    // Skip the rest: a truncated document cannot be resynchronised reliably.
                    reader.consume(consumed);
                    drain(&mut reader)?;
                    return Ok(());
                }
                doc.extend_from_slice(&buf[..consumed]);
                reader.consume(consumed);
                continue;
            }
            if overflow {
                // The sample is the line's first bytes, however its reads were cut.
                overflow_len += chunk.len();
                let keep = REJECTED_SAMPLE_BYTES.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..keep]);
            } else if line.len() + chunk.len() > max {
                overflow = true;
                overflow_len = line.len() + chunk.len();
                let keep = REJECTED_SAMPLE_BYTES.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..keep]);
            } else {
                line.extend_from_slice(chunk);
            }
            reader.consume(consumed);
            if complete {
                if overflow {
                    self.reject_long_line(&line, overflow_len, out);
                    overflow = false;
                } else {
                    self.line(&line, out);
                }
                line.clear();
            }
        }
    }

    /// How many lines this decoder has read.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Whether the stream's format is still to be told by its next lines.
    pub fn sniffing(&self) -> bool {
        self.family.is_none() && !self.abandoned
    }

    /// A decoder that takes this stream up after its line `line_no`, decoding each line as
    /// this one would: `None` until every line decodes on its own. That is once the format is
    /// known and carries nothing from line to line (JSON lines after one line decoded, when a
    /// line that does not end is a truncated record rather than the start of a multi-line
    /// document; syslog, CEF, auditd; not Zeek's TSV, whose header lines set the columns), with
    /// no document pending and the stream not abandoned.
    pub fn fork_at(&self, line_no: u64) -> Option<StreamDecoder<'o>> {
        let independent = match self.family? {
            Family::Json => self.any_line_decoded,
            Family::Syslog | Family::Cef | Family::Auditd => true,
            Family::ZeekTsv => false,
        };
        (independent && self.document.is_none() && !self.abandoned && self.unrecognized.is_empty())
            .then(|| self.taken_up_at(line_no))
    }

    /// This stream taken up after its line `line_no`, for a decoder [`StreamDecoder::fork_at`]
    /// gave (whose lines decode on their own, so that any of its lines may be the first).
    pub(crate) fn taken_up_at(&self, line_no: u64) -> StreamDecoder<'o> {
        StreamDecoder {
            opts: self.opts,
            source: self.source.clone(),
            class: self.class,
            now: self.now,
            family: self.family,
            zeek: zeek::TsvState::default(),
            line_no,
            document: None,
            document_start_line: 0,
            any_line_decoded: self.any_line_decoded,
            unrecognized: Vec::new(),
            abandoned: false,
        }
    }

    /// Decodes one line (without its newline).
    pub fn line(&mut self, line: &[u8], out: &mut impl FnMut(Decoded)) {
        self.line_no += 1;
        if let Some(doc) = self.document.as_mut() {
            doc.extend_from_slice(line);
            doc.push(b'\n');
            return;
        }
        let line = strip_cr(line);
        if self.abandoned || trim_ascii_start(line).is_empty() {
            return;
        }
        let family = match self.family {
            Some(f) => f,
            None => match Family::sniff(line).filter(|f| *f != Family::Json || plausible_json(line)) {
                Some(f) => {
                    self.family = Some(f);
                    for r in self.unrecognized.drain(..) {
                        out(Decoded::Rejected(r));
                    }
                    f
                }
                None => {
                    let r = self.rejection_at(
                        format!("line {}", self.line_no),
                        "unrecognized format: not JSON, syslog, CEF, Zeek or auditd".to_owned(),
                        line,
                    );
                    self.unrecognized.push(r);
                    if self.unrecognized.len() >= SNIFF_LINES {
                        self.abandon(out);
                    }
                    return;
                }
            },
        };
        let result = match family {
            Family::Json => {
                let trimmed = trim_ascii_start(line);
                match line::parse(line) {
                    Ok(JsonLine::Object(map)) => Ok(self.json_event(map)),
                    Ok(JsonLine::Array(items)) => {
                        self.any_line_decoded = true;
                        self.json_items(items, out);
                        return;
                    }
                    Ok(JsonLine::Other(other)) => Err(format!("expected a JSON object, found {}", json_kind(&other))),
                    Err(e) if e.is_eof() && !self.any_line_decoded && matches!(trimmed.first(), Some(b'{' | b'[')) => {
                        // A document spread over several lines: buffer the rest of the stream.
                        self.document_start_line = self.line_no;
                        let mut doc = line.to_vec();
                        doc.push(b'\n');
                        self.document = Some(doc);
                        return;
                    }
                    Err(e) if e.is_eof() => Err(format!("truncated JSON: {e}")),
                    Err(e) => Err(format!("invalid JSON: {e}")),
                }
            }
            Family::Syslog => syslog::decode(line, self.now, self.opts),
            Family::Cef => std::str::from_utf8(line)
                .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
                .and_then(|s| cef::decode_bare(s, self.now, self.opts)),
            Family::ZeekTsv => match self.zeek.line(line, self.now, self.opts) {
                Ok(Some(event)) => Ok(event),
                Ok(None) => return,
                Err(reason) => Err(reason),
            },
            Family::Auditd => auditd::decode(line, self.now, self.opts),
        };
        self.any_line_decoded = true;
        match result {
            Ok(event) => self.emit(event, out),
            Err(reason) => self.reject(line, reason, out),
        }
    }

    /// Rejects the whole stream once: none of its first lines is in a known format (a YAML
    /// file, a binary, a README dropped into a log folder).
    fn abandon(&mut self, out: &mut impl FnMut(Decoded)) {
        let first = self.unrecognized.drain(..).next();
        let lines = self.line_no;
        if let Some(first) = first {
            out(Decoded::Rejected(Rejection {
                reason: format!(
                    "unrecognized format: none of the first {lines} lines is JSON, syslog, CEF, Zeek or auditd; the stream was not decoded"
                ),
                ..first
            }));
        }
        self.unrecognized.clear();
        self.abandoned = true;
    }

    /// Ends the stream: rejects it whole if no line was in a known format, and decodes a
    /// pending multi-line JSON document.
    pub fn finish(&mut self, out: &mut impl FnMut(Decoded)) {
        if self.family.is_none() && !self.unrecognized.is_empty() {
            if self.unrecognized.len() == 1 {
                // One line (a syslog datagram, a one-line body): reject it as itself.
                for r in self.unrecognized.drain(..) {
                    out(Decoded::Rejected(r));
                }
            } else {
                self.abandon(out);
            }
        }
        let Some(doc) = self.document.take() else {
            return;
        };
        let start = self.document_start_line;
        let mut stream = serde_json::Deserializer::from_slice(&doc).into_iter::<Value>();
        loop {
            let offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(Value::Object(map))) => {
                    let mut event = self.json_event(map);
                    event.origin.location = Some(format!("line {}", start + line_of(&doc, offset)));
                    out(Decoded::Event(Box::new(event)));
                }
                Some(Ok(Value::Array(items))) => {
                    let line = start + line_of(&doc, offset);
                    for (i, item) in items.into_iter().enumerate() {
                        match item {
                            Value::Object(map) => {
                                let mut event = self.json_event(map);
                                event.origin.location = Some(format!("line {line}, element {i}"));
                                out(Decoded::Event(Box::new(event)));
                            }
                            other => out(Decoded::Rejected(self.rejection_at(
                                format!("line {line}, element {i}"),
                                format!("expected a JSON object, found {}", json_kind(&other)),
                                other.to_string().as_bytes(),
                            ))),
                        }
                    }
                }
                Some(Ok(other)) => out(Decoded::Rejected(self.rejection_at(
                    format!("line {}", start + line_of(&doc, offset)),
                    format!("expected a JSON object, found {}", json_kind(&other)),
                    other.to_string().as_bytes(),
                ))),
                Some(Err(e)) => {
                    // serde_json cannot resynchronise after a syntax error: reject the rest.
                    let rest = &doc[offset..];
                    out(Decoded::Rejected(self.rejection_at(
                        format!("line {}, column {}", start + e.line() as u64 - 1, e.column()),
                        format!("invalid JSON: {e}; the rest of the document is quarantined"),
                        &rest[..rest.len().min(REJECTED_SAMPLE_BYTES)],
                    )));
                    break;
                }
            }
        }
    }

    fn document_cap(&self) -> usize {
        // A pretty-printed export is bigger than its NDJSON form; allow 256 lines' worth.
        self.opts.limits.max_line_bytes.saturating_mul(256)
    }

    fn json_items(&mut self, items: Vec<Value>, out: &mut impl FnMut(Decoded)) {
        for (i, item) in items.into_iter().enumerate() {
            let location = format!("line {}, element {i}", self.line_no);
            match item {
                Value::Object(map) => {
                    let mut event = self.json_event(map);
                    event.origin = Origin {
                        source: self.source.clone(),
                        location: Some(location),
                    };
                    out(Decoded::Event(Box::new(event)));
                }
                other => out(Decoded::Rejected(self.rejection_at(
                    location,
                    format!("expected a JSON object, found {}", json_kind(&other)),
                    other.to_string().as_bytes(),
                ))),
            }
        }
    }

    fn json_event(&self, fields: impl Into<Fields>) -> Event {
        json::decode(fields.into(), self.now, self.opts)
    }

    fn emit(&self, mut event: Event, out: &mut impl FnMut(Decoded)) {
        event.class = self.class;
        event.origin = Origin {
            source: self.source.clone(),
            location: Some(format!("line {}", self.line_no)),
        };
        out(Decoded::Event(Box::new(event)));
    }

    fn reject(&self, line: &[u8], reason: String, out: &mut impl FnMut(Decoded)) {
        out(Decoded::Rejected(self.rejection_at(
            format!("line {}", self.line_no),
            reason,
            line,
        )));
    }

    fn reject_long_line(&mut self, sample: &[u8], len: usize, out: &mut impl FnMut(Decoded)) {
        self.line_no += 1;
        let reason = format!(
            "line of {len} bytes exceeds the limit of {} bytes",
            self.opts.limits.max_line_bytes
        );
        out(Decoded::Rejected(self.rejection_at(
            format!("line {}", self.line_no),
            reason,
            sample,
        )));
    }

    fn rejection_at(&self, location: String, reason: String, raw: &[u8]) -> Rejection {
        Rejection {
            origin: Origin {
                source: self.source.clone(),
                location: Some(location),
            },
            reason,
            raw: raw.to_vec(),
        }
    }
}

/// Decodes a complete in-memory body (an HTTP request, a test fixture): NDJSON, a JSON array,
/// syslog lines, CEF, Zeek TSV, auditd, or an EVTX file.
pub fn decode_bytes(source: &str, bytes: &[u8], opts: &DecodeOptions, now: Timestamp, out: &mut impl FnMut(Decoded)) {
    if opts.format == Some(Format::Evtx) || (opts.format.is_none() && is_evtx(bytes)) {
        decode_evtx(source, bytes.to_vec(), opts, now, out);
        return;
    }
    let mut decoder = StreamDecoder::new(source, opts, now);
    // Reading from a slice cannot fail.
    let _ = decoder.read(bytes, out);
}

/// Whether a line that starts like JSON is JSON, or the start of a JSON document spread over
/// lines, rather than, say, a YAML flow sequence.
fn plausible_json(line: &[u8]) -> bool {
    match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        Ok(_) => true,
        Err(e) => e.is_eof(),
    }
}

fn drain(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let n = reader.fill_buf()?.len();
        if n == 0 {
            return Ok(());
        }
        reader.consume(n);
    }
}

fn line_of(doc: &[u8], offset: usize) -> u64 {
    // Skip the whitespace before the value so the line is the one it starts on.
    let start = doc[offset..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(offset, |p| offset + p);
    memchr::memchr_iter(b'\n', &doc[..start]).count() as u64
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    // A UTF-8 byte-order mark at the start of a file is not content.
    let b = &b[start..];
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

#[cfg(test)]
mod tests;
