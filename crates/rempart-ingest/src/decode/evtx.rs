//! Windows EVTX files, through the `evtx` crate.
//!
//! The crate renders each record to the evtx_dump JSON shape, which [`super::windows`]
//! normalizes. A record the crate cannot parse (a corrupt or truncated chunk) becomes a
//! rejection naming the record or chunk; the records around it are kept.

use evtx::{EvtxParser, EvtxRecord, ParserSettings, SerializedEvtxRecord};
use jiff::Timestamp;
use rempart_model::{DataClass, Event, Format, Origin};
use serde_json::Value;

use super::{DecodeOptions, Decoded, Rejection, windows};

/// The signature every EVTX file starts with.
const MAGIC: &[u8] = b"ElfFile\0";

/// The fewest chunks a file must declare for its chunks to be decoded on several threads.
const MIN_CHUNKS_SHARED: u64 = 4;

pub fn is_evtx(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Decodes a whole EVTX file held in memory.
pub fn decode_evtx(source: &str, bytes: Vec<u8>, opts: &DecodeOptions, now: Timestamp, out: &mut impl FnMut(Decoded)) {
    let reject = |location: &str, reason: String, raw: &[u8]| rejection(source, location, reason, raw);
    let class = opts.class_of(source);
    let len = bytes.len() as u64;
    if len > opts.limits.max_evtx_bytes {
        out(Decoded::Rejected(reject(
            "byte 0",
            format!(
                "EVTX file of {len} bytes exceeds the limit of {} bytes",
                opts.limits.max_evtx_bytes
            ),
            &[],
        )));
        return;
    }
    let header_sample = bytes[..bytes.len().min(4096)].to_vec();
    let file_len = bytes.len() as u64;
    let parser = match EvtxParser::from_buffer(bytes) {
        Ok(p) => p,
        Err(e) => {
            out(Decoded::Rejected(reject(
                "byte 0",
                format!("not a readable EVTX file: {e}"),
                &header_sample,
            )));
            return;
        }
    };
    // The header says how many 64 KiB chunks follow its 4 KiB block; a shorter file was cut
    // (a copy interrupted, a disk full), which is said below: the crate reads what is there
    // silently.
    let declared = u64::from(parser.header().chunk_count);
    // A file of a few chunks is read faster on this thread than handed to others and waited for.
    let threads = if declared >= MIN_CHUNKS_SHARED {
        opts.threads.max(1)
    } else {
        1
    };
    let mut parser = parser.with_configuration(ParserSettings::new().num_threads(threads));
    let expected = 4096 + declared * 65536;
    if file_len < expected {
        let complete = file_len.saturating_sub(4096) / 65536;
        out(Decoded::Rejected(reject(
            &format!("byte {file_len}"),
            format!(
                "truncated EVTX file: the header declares {declared} chunks ({expected} bytes) but the file has {file_len} bytes; records of the {complete} complete chunks are kept"
            ),
            &[],
        )));
    }
    // Each record is rendered, parsed and normalized where its chunk is parsed: on this thread,
    // or with several threads on the pool's workers, chunks in flight side by side. Records come
    // back in the file's order either way.
    let origin = Origin {
        source: source.to_owned(),
        location: None,
    };
    let decode = move |record: evtx::err::Result<EvtxRecord<'_>>| {
        let record = record?.into_json_bytes()?;
        Ok(event_of(record, &origin, class, now))
    };
    for (index, decoded) in parser.serialized_records(decode).enumerate() {
        match decoded {
            Ok(decoded) => out(decoded),
            Err(e) => out(Decoded::Rejected(reject(
                &format!("item {index}"),
                format!("unreadable EVTX record: {e}"),
                &[],
            ))),
        }
    }
}

/// One rendered record as an event, or a rejection naming it.
fn event_of(record: SerializedEvtxRecord<Vec<u8>>, origin: &Origin, class: DataClass, now: Timestamp) -> Decoded {
    let location = format!("record {}", record.event_record_id);
    let reject = |reason: String| Decoded::Rejected(rejection(&origin.source, &location, reason, &[]));
    // Validated once as a whole, the text is then parsed without checking each string again.
    let text = match std::str::from_utf8(&record.data) {
        Ok(text) => text,
        Err(e) => return reject(format!("record rendered to text that is not UTF-8: {e}")),
    };
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return reject("record did not render to a JSON object".to_owned()),
        Err(e) => return reject(format!("record rendered to unreadable JSON: {e}")),
    };
    let (time, normalized) = windows::normalize_evtx_dump(&map);
    let mut event = Event::new(Format::Evtx, time.unwrap_or(record.timestamp), now, map);
    event.normalized = normalized;
    event.class = class;
    event.origin = Origin {
        source: origin.source.clone(),
        location: Some(location),
    };
    Decoded::Event(Box::new(event))
}

/// A rejection of part of `source`, at `location`.
fn rejection(source: &str, location: &str, reason: String, raw: &[u8]) -> Rejection {
    Rejection {
        origin: Origin {
            source: source.to_owned(),
            location: Some(location.to_owned()),
        },
        reason,
        raw: raw.to_vec(),
    }
}
