//! Windows EVTX files, through the `evtx` crate.
//!
//! The crate renders each record to the evtx_dump JSON shape, which [`super::windows`]
//! normalizes. A record the crate cannot parse (a corrupt or truncated chunk) becomes a
//! rejection naming the record or chunk; the records around it are kept.

use evtx::{EvtxParser, ParserSettings};
use jiff::Timestamp;
use rempart_model::{Event, Format, Origin};
use serde_json::Value;

use super::{DecodeOptions, Decoded, Rejection, windows};

/// The signature every EVTX file starts with.
const MAGIC: &[u8] = b"ElfFile\0";

pub fn is_evtx(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Decodes a whole EVTX file held in memory.
pub fn decode_evtx(source: &str, bytes: Vec<u8>, opts: &DecodeOptions, now: Timestamp, out: &mut impl FnMut(Decoded)) {
    let reject = |location: &str, reason: String, raw: &[u8]| Rejection {
        origin: Origin {
            source: source.to_owned(),
            location: Some(location.to_owned()),
        },
        reason,
        raw: raw.to_vec(),
    };
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
    let mut parser = match EvtxParser::from_buffer(bytes) {
        Ok(p) => p.with_configuration(ParserSettings::new().num_threads(1)),
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
    // (a copy interrupted, a disk full). Say so: the crate reads what is there silently.
    let declared = u64::from(parser.header().chunk_count);
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
    for (index, record) in parser.records_json_value().enumerate() {
        match record {
            Ok(record) => {
                let Value::Object(map) = record.data else {
                    out(Decoded::Rejected(reject(
                        &format!("record {}", record.event_record_id),
                        "record did not render to a JSON object".to_owned(),
                        &[],
                    )));
                    continue;
                };
                let (time, normalized) = windows::normalize_evtx_dump(&map);
                let mut event = Event::new(Format::Evtx, time.unwrap_or(record.timestamp), now, map);
                event.normalized = normalized;
                event.class = class;
                event.origin = Origin {
                    source: source.to_owned(),
                    location: Some(format!("record {}", record.event_record_id)),
                };
                out(Decoded::Event(Box::new(event)));
            }
            Err(e) => out(Decoded::Rejected(reject(
                &format!("item {index}"),
                format!("unreadable EVTX record: {e}"),
                &[],
            ))),
        }
    }
}
