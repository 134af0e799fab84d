//! Zeek logs in their native tab-separated form.
//!
//! A log starts with `#` directives (`#separator`, `#set_separator`, `#empty_field`,
//! `#unset_field`, `#path`, `#fields`, `#types`); data lines follow. Values are typed from
//! `#types` so that the record looks as Zeek's own JSON writer would write it: `time` and
//! `double` as numbers, `count` and `port` as integers, `bool` as booleans, sets and vectors as
//! arrays, unset fields left out.

use jiff::Timestamp;
use rempart_model::{Event, Format};
use serde_json::{Map, Number, Value};

use super::{DecodeOptions, json, time};

/// Directive state of one Zeek TSV stream.
#[derive(Debug, Clone)]
pub struct TsvState {
    separator: String,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    path: Option<String>,
    fields: Vec<String>,
    types: Vec<String>,
}

impl Default for TsvState {
    fn default() -> Self {
        TsvState {
            separator: "\t".to_owned(),
            set_separator: ",".to_owned(),
            empty_field: "(empty)".to_owned(),
            unset_field: "-".to_owned(),
            path: None,
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

impl TsvState {
    /// Reads one line: a directive updates the state (`Ok(None)`), a data line is an event.
    pub fn line(&mut self, line: &[u8], now: Timestamp, opts: &DecodeOptions) -> Result<Option<Event>, String> {
        let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
        if let Some(directive) = line.strip_prefix('#') {
            self.directive(directive)?;
            return Ok(None);
        }
        if self.fields.is_empty() {
            return Err("Zeek data line before any `#fields` header".to_owned());
        }
        let values: Vec<&str> = line.split(self.separator.as_str()).collect();
        if values.len() != self.fields.len() {
            return Err(format!(
                "Zeek line has {} values but `#fields` names {}",
                values.len(),
                self.fields.len()
            ));
        }
        let mut map = Map::new();
        if let Some(path) = &self.path {
            map.insert("_path".to_owned(), Value::String(path.clone()));
        }
        for (i, (name, raw)) in self.fields.iter().zip(values).enumerate() {
            if raw == self.unset_field {
                continue;
            }
            let ty = self.types.get(i).map_or("string", String::as_str);
            let value = self
                .typed(raw, ty)
                .map_err(|why| format!("Zeek field `{name}` ({ty}): {why}"))?;
            map.insert(name.clone(), value);
        }
        let time = map.get("ts").and_then(time::from_value).unwrap_or(now);
        let normalized = json::zeek_normalized(&map);
        let mut event = Event::new(Format::ZeekTsv, time, now, map);
        event.normalized = normalized;
        event.class = opts.class;
        Ok(Some(event))
    }

    fn directive(&mut self, d: &str) -> Result<(), String> {
        let (name, value) = match d.split_once(['\t', ' ']) {
            Some((n, v)) => (n, v),
            None => (d, ""),
        };
        match name {
            "separator" => self.separator = unescape(value.trim()),
            "set_separator" => self.set_separator = unescape_value(value, &self.separator),
            "empty_field" => self.empty_field = unescape_value(value, &self.separator),
            "unset_field" => self.unset_field = unescape_value(value, &self.separator),
            "path" => self.path = Some(unescape_value(value, &self.separator)),
            "fields" => {
                self.fields = d.split(self.separator.as_str()).skip(1).map(str::to_owned).collect();
                self.types.clear();
            }
            "types" => self.types = d.split(self.separator.as_str()).skip(1).map(str::to_owned).collect(),
            // `#open`, `#close` and comments carry nothing a record needs.
            _ => {}
        }
        if name == "fields" && self.fields.is_empty() {
            return Err("Zeek `#fields` header names no fields".to_owned());
        }
        Ok(())
    }

    fn typed(&self, raw: &str, ty: &str) -> Result<Value, String> {
        let container = ty.starts_with("set[") || ty.starts_with("vector[");
        if raw == self.empty_field {
            return Ok(if container {
                Value::Array(Vec::new())
            } else {
                Value::String(String::new())
            });
        }
        if container {
            let inner = &ty[ty.find('[').map_or(0, |i| i + 1)..ty.len().saturating_sub(1)];
            let items = raw
                .split(self.set_separator.as_str())
                .map(|item| self.typed(item, inner))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Value::Array(items));
        }
        Ok(match ty {
            "time" | "double" | "interval" => {
                let f: f64 = raw.parse().map_err(|_| format!("`{raw}` is not a number"))?;
                Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("`{raw}` is not finite"))?
            }
            "count" | "port" => Value::from(raw.parse::<u64>().map_err(|_| format!("`{raw}` is not a count"))?),
            "int" => Value::from(raw.parse::<i64>().map_err(|_| format!("`{raw}` is not an integer"))?),
            "bool" => match raw {
                "T" => Value::Bool(true),
                "F" => Value::Bool(false),
                _ => return Err(format!("`{raw}` is not T or F")),
            },
            _ => Value::String(unescape(raw)),
        })
    }
}

fn unescape_value(v: &str, sep: &str) -> String {
    unescape(v.strip_prefix(sep).unwrap_or(v).trim_end_matches('\r'))
}

/// Zeek escapes non-printable bytes and separators as `\xNN`.
fn unescape(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let digit = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (digit(b[i + 2]), digit(b[i + 3])) {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tlocal_orig\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tbool\tset[string]\n1588205199.824370\tCvf4XX\t10.0.1.6\t54243\t10.0.0.4\t53\tudp\tdns\tT\t(empty)\n1588205200.000000\tCabc\t10.0.1.7\t1\t10.0.0.5\t443\ttcp\t-\tF\ta,b\n";

    #[test]
    fn typed_records_from_a_conn_log() {
        let mut st = TsvState::default();
        let opts = DecodeOptions::default();
        let events: Vec<Event> = LOG
            .lines()
            .filter_map(|l| st.line(l.as_bytes(), Timestamp::UNIX_EPOCH, &opts).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(e.fields["_path"], "conn");
        assert_eq!(e.fields["id.orig_p"], 54243);
        assert_eq!(e.fields["local_orig"], true);
        assert_eq!(e.fields["tunnel_parents"], serde_json::json!([]));
        assert_eq!(e.normalized.src_ip, "10.0.1.6".parse().ok());
        assert_eq!(e.normalized.dst_port, Some(53));
        assert_eq!(e.normalized.channel.as_deref(), Some("conn"));
        assert_eq!(e.time.as_microsecond(), 1_588_205_199_824_370);
        assert!(!events[1].fields.contains_key("service"));
        assert_eq!(events[1].fields["tunnel_parents"], serde_json::json!(["a", "b"]));
    }

    #[test]
    fn data_before_header_and_wrong_arity_are_rejected() {
        let mut st = TsvState::default();
        let opts = DecodeOptions::default();
        let err = st.line(b"1\t2", Timestamp::UNIX_EPOCH, &opts).unwrap_err();
        assert!(err.contains("before any `#fields`"));
        st.line(b"#fields\ta\tb", Timestamp::UNIX_EPOCH, &opts).unwrap();
        let err = st.line(b"1", Timestamp::UNIX_EPOCH, &opts).unwrap_err();
        assert!(err.contains("1 values but `#fields` names 2"), "{err}");
    }
}
