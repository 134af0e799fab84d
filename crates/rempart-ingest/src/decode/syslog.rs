//! Syslog: RFC 5424, RFC 3164, and the variants real devices send.
//!
//! Variants handled: no `<PRI>` (lines from log files), an RFC 3339 timestamp in a 3164 line
//! (rsyslog's high-precision format), a year or milliseconds in the BSD timestamp, Cisco's
//! sequence number and `*` before the timestamp, a missing hostname, a missing timestamp. The
//! message of either kind may be CEF, which is then decoded as CEF with the syslog header kept
//! under `syslog`.

use jiff::Timestamp;
use rempart_model::{Event, Format, Normalized, Severity};
use serde_json::{Map, Value};

use super::{DecodeOptions, cef, time};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whether a line without `<PRI>` still looks like syslog: it starts with a BSD or an RFC 3339
/// timestamp, as in `/var/log/syslog` or rsyslog files.
pub fn looks_like_headerless(line: &[u8]) -> bool {
    let starts_month = line.len() > 4 && MONTHS.iter().any(|m| line.starts_with(m.as_bytes())) && line[3] == b' ';
    let starts_iso = line.len() > 20 && line[..4].iter().all(u8::is_ascii_digit) && line[4] == b'-' && line[10] == b'T';
    starts_month || starts_iso
}

/// Decodes one syslog line (either RFC), CEF payloads included.
pub fn decode(line: &[u8], now: Timestamp, opts: &DecodeOptions) -> Result<Event, String> {
    let (text, lossy) = match std::str::from_utf8(line) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), false),
        Err(_) => (String::from_utf8_lossy(line), true),
    };
    let text = text.trim_start_matches('\u{feff}');
    let (pri, rest) = parse_pri(text)?;
    let mut header = Map::new();
    if let Some(pri) = pri {
        header.insert("facility".to_owned(), Value::from(pri >> 3));
        header.insert("severity".to_owned(), Value::from(pri & 7));
    }
    if lossy {
        // Kept, not rejected: devices send Latin-1; the replacement is recorded.
        header.insert("invalid_utf8".to_owned(), Value::Bool(true));
    }
    let forced_3164 = opts.format == Some(Format::Syslog3164);
    let (format, ts, message) = match rest.strip_prefix("1 ") {
        Some(body) if pri.is_some() && !forced_3164 => {
            let (ts, msg) = parse_5424(body, &mut header)?;
            (Format::Syslog5424, ts, msg)
        }
        _ => {
            let (ts, msg) = parse_3164(rest, now, &mut header);
            (Format::Syslog3164, ts, msg)
        }
    };
    if let Some(cef_start) = message
        .find("CEF:")
        .filter(|&i| message[..i].trim().is_empty() || message[..i].ends_with(": ") || message[..i].ends_with(' '))
    {
        let cef_text = message[cef_start..].to_owned();
        let fields = cef::parse(&cef_text)?;
        return Ok(cef::event(fields, Some((header, ts)), now, opts));
    }
    let n = Normalized {
        host: header.get("hostname").and_then(Value::as_str).map(str::to_owned),
        process: header.get("app_name").and_then(Value::as_str).map(str::to_owned),
        process_id: header
            .get("procid")
            .and_then(Value::as_str)
            .and_then(|p| p.parse().ok()),
        channel: header.get("app_name").and_then(Value::as_str).map(str::to_owned),
        provider: Some("syslog".to_owned()),
        severity: pri.map(|p| Severity::from_syslog((p & 7) as u8)),
        message: Some(message.clone()).filter(|m| !m.is_empty()),
        ..Normalized::default()
    };
    header.insert("message".to_owned(), Value::String(message));
    let mut e = Event::new(format, ts.unwrap_or(now), now, header);
    e.normalized = n;
    Ok(e)
}

/// `<PRI>` (RFC 5424 §6.2.1: 1 to 3 digits, at most 191), or nothing.
fn parse_pri(s: &str) -> Result<(Option<u16>, &str), String> {
    let Some(after) = s.strip_prefix('<') else {
        return Ok((None, s));
    };
    let close = after
        .find('>')
        .filter(|&i| i <= 3)
        .ok_or_else(|| "syslog priority `<…>` is not closed within 3 digits".to_owned())?;
    let digits = &after[..close];
    let pri: u16 = digits
        .parse()
        .map_err(|_| format!("syslog priority `<{digits}>` is not a number"))?;
    if pri > 191 {
        return Err(format!("syslog priority {pri} is out of range (0 to 191)"));
    }
    Ok((Some(pri), &after[close + 1..]))
}

/// Takes the next space-delimited token.
fn token(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn nil(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_owned())
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` after `<PRI>1 `.
fn parse_5424(body: &str, header: &mut Map<String, Value>) -> Result<(Option<Timestamp>, String), String> {
    let (ts_text, rest) = token(body);
    let ts = if ts_text == "-" {
        None
    } else {
        Some(time::parse(ts_text).ok_or_else(|| format!("RFC 5424 timestamp `{ts_text}` is not RFC 3339"))?)
    };
    let mut rest = rest;
    for name in ["hostname", "app_name", "procid", "msgid"] {
        let (value, next) = token(rest);
        if value.is_empty() {
            return Err(format!("RFC 5424 header ends before `{name}`"));
        }
        if let Some(v) = nil(value) {
            header.insert(name.to_owned(), Value::String(v));
        }
        rest = next;
    }
    let (sd, msg) = if let Some(after) = rest.strip_prefix('-') {
        (Map::new(), after)
    } else if rest.starts_with('[') {
        parse_structured_data(rest)?
    } else {
        return Err("RFC 5424 structured data must be `-` or start with `[`".to_owned());
    };
    if !sd.is_empty() {
        header.insert("structured_data".to_owned(), Value::Object(sd));
    }
    let msg = msg.strip_prefix(' ').unwrap_or(msg).trim_start_matches('\u{feff}');
    Ok((ts, msg.to_owned()))
}

/// `[id param="value" …][id2 …]`, values unescaped (`\"`, `\\`, `\]`).
fn parse_structured_data(s: &str) -> Result<(Map<String, Value>, &str), String> {
    let mut out = Map::new();
    let mut rest = s;
    while let Some(inner) = rest.strip_prefix('[') {
        let id_end = inner
            .find([' ', ']'])
            .ok_or_else(|| "structured data element is not closed".to_owned())?;
        let id = &inner[..id_end];
        if id.is_empty() {
            return Err("structured data element has an empty id".to_owned());
        }
        let mut params = Map::new();
        let mut cur = &inner[id_end..];
        loop {
            cur = cur.trim_start_matches(' ');
            if let Some(after) = cur.strip_prefix(']') {
                cur = after;
                break;
            }
            let eq = cur
                .find('=')
                .ok_or_else(|| format!("structured data `{id}`: parameter without `=`"))?;
            let name = &cur[..eq];
            let after_eq = cur[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("structured data `{id}`: value of `{name}` is not quoted"))?;
            let mut value = String::new();
            let mut end = None;
            let mut chars = after_eq.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\' | ']'))) => value.push(e),
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => value.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("structured data `{id}`: value of `{name}` is not closed"))?;
            // Repeated parameter names are allowed (RFC 5424 §6.3.3): keep them all.
            match params.get_mut(name) {
                Some(Value::Array(list)) => list.push(Value::String(value)),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(value)]);
                }
                None => {
                    params.insert(name.to_owned(), Value::String(value));
                }
            }
            cur = &after_eq[end + 1..];
        }
        out.insert(id.to_owned(), Value::Object(params));
        rest = cur;
    }
    Ok((out, rest))
}

/// The BSD format and its variants, after `<PRI>` (if any). Never fails: at worst the whole
/// line is the message.
fn parse_3164(s: &str, now: Timestamp, header: &mut Map<String, Value>) -> (Option<Timestamp>, String) {
    let mut rest = s.trim_start();
    // Cisco: `123: *Mar  1 00:00:00.000: %SYS-5-CONFIG_I: …`
    if let Some(colon) = rest.find(": ")
        && colon > 0
        && rest[..colon].bytes().all(|b| b.is_ascii_digit())
    {
        header.insert("sequence".to_owned(), Value::String(rest[..colon].to_owned()));
        rest = &rest[colon + 2..];
    }
    rest = rest.trim_start_matches(['*', '.']);
    let (ts, after_ts) = bsd_timestamp(rest, now);
    if ts.is_some() {
        rest = after_ts.strip_prefix(':').unwrap_or(after_ts).trim_start();
        // Hostname, unless the next token is already the tag.
        let (tok, after) = token(rest);
        if !tok.is_empty() && !tok.ends_with(':') && !tok.contains('[') && !tok.starts_with('%') && !after.is_empty() {
            header.insert("hostname".to_owned(), Value::String(tok.to_owned()));
            rest = after;
        }
    }
    // Tag: `app[pid]: ` or `app: `.
    let (tok, after) = token(rest);
    if let Some(tag) = tok.strip_suffix(':')
        && !tag.is_empty()
        && !tag.starts_with('%')
        && tag.len() <= 64
    {
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, pid.strip_suffix(']')),
            None => (tag, None),
        };
        if !app.is_empty() && app.bytes().all(|b| b.is_ascii_graphic()) {
            header.insert("app_name".to_owned(), Value::String(app.to_owned()));
            if let Some(pid) = pid {
                header.insert("procid".to_owned(), Value::String(pid.to_owned()));
            }
            rest = after;
        }
    }
    (ts, rest.to_owned())
}

/// Reads a BSD timestamp (`Mmm dd hh:mm:ss`, optionally with milliseconds or a year) or an
/// RFC 3339 one at the start of `s`.
fn bsd_timestamp(s: &str, now: Timestamp) -> (Option<Timestamp>, &str) {
    let (first, _) = token(s);
    if first.len() >= 19 && first.as_bytes().get(4) == Some(&b'-') {
        if let Some(ts) = time::parse(first.trim_end_matches(':')) {
            return (Some(ts), s[first.len()..].trim_start_matches(' '));
        }
        return (None, s);
    }
    if !MONTHS.iter().any(|m| s.starts_with(m)) {
        return (None, s);
    }
    // `Mmm dd` + optional year + time; the day may be space-padded.
    let words: Vec<&str> = s.splitn(5, ' ').filter(|w| !w.is_empty()).collect();
    let candidates = [3usize, 4];
    for take in candidates {
        if words.len() < take {
            continue;
        }
        let joined = words[..take].join(" ");
        let stamp = joined.trim_end_matches(':');
        let parsed = if take == 4 {
            time::parse(stamp)
        } else {
            time::parse_bsd(stamp, now)
        };
        if let Some(ts) = parsed {
            // Find where the consumed words end in the original string.
            let mut end = 0;
            for w in &words[..take] {
                end = s[end..].find(w).map_or(end, |p| end + p + w.len());
            }
            return (Some(ts), s[end..].trim_start_matches(' '));
        }
    }
    (None, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn dec(line: &str) -> Event {
        decode(line.as_bytes(), now(), &DecodeOptions::default()).unwrap()
    }

    #[test]
    fn rfc5424_example_with_structured_data() {
        // RFC 5424 §6.5, example 3.
        let e = dec(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
        );
        assert_eq!(e.format, Format::Syslog5424);
        assert_eq!(e.time.to_string(), "2003-10-11T22:14:15.003Z");
        assert_eq!(e.fields["facility"], 20);
        assert_eq!(e.fields["severity"], 5);
        assert_eq!(
            e.fields["structured_data"]["exampleSDID@32473"]["eventSource"],
            "Application"
        );
        assert_eq!(e.normalized.host.as_deref(), Some("mymachine.example.com"));
        assert_eq!(
            e.normalized.message.as_deref(),
            Some("An application event log entry...")
        );
    }

    #[test]
    fn rfc5424_escapes_in_sd_values() {
        let e = dec(r#"<13>1 2024-01-01T00:00:00Z h a - - [x@1 k="a\"b\]c\\d"] m"#);
        assert_eq!(e.fields["structured_data"]["x@1"]["k"], r#"a"b]c\d"#);
    }

    #[test]
    fn rfc3164_example() {
        // RFC 3164 §5.4, example 1.
        let e = dec("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(e.format, Format::Syslog3164);
        assert_eq!(e.time.to_string(), "2026-10-11T22:14:15Z");
        assert_eq!(e.normalized.host.as_deref(), Some("mymachine"));
        assert_eq!(e.normalized.process.as_deref(), Some("su"));
        assert_eq!(e.normalized.severity, Some(Severity::High));
        assert_eq!(
            e.normalized.message.as_deref(),
            Some("'su root' failed for lonvick on /dev/pts/8")
        );
    }

    #[test]
    fn messy_variants() {
        let e = dec("Nov 21 08:01:02 web01 sshd[4242]: Accepted publickey for alice");
        assert_eq!(e.normalized.process_id, Some(4242));
        assert_eq!(e.normalized.host.as_deref(), Some("web01"));
        let e = dec("<13>Nov  1 08:01:02 sshd[7]: hostless");
        assert_eq!(e.normalized.host, None);
        assert_eq!(e.normalized.process.as_deref(), Some("sshd"));
        let e = dec("<189>123: *Mar  1 00:00:00.000: %SYS-5-CONFIG_I: Configured from console");
        assert_eq!(e.fields["sequence"], "123");
        assert_eq!(
            e.normalized.message.as_deref(),
            Some("%SYS-5-CONFIG_I: Configured from console")
        );
        let e = dec("2024-05-01T10:00:00.123456+02:00 fw1 kernel: DROP IN=eth0");
        assert_eq!(e.time.to_string(), "2024-05-01T08:00:00.123456Z");
        assert_eq!(e.normalized.host.as_deref(), Some("fw1"));
        let e = dec("<14>just a message");
        assert_eq!(e.time, now());
        assert_eq!(e.normalized.message.as_deref(), Some("just a message"));
    }

    #[test]
    fn cef_inside_syslog() {
        let e = dec(
            "<134>Feb 10 09:00:00 fw01 CEF:0|Vendor|FW|1.0|4001|Blocked|7|src=10.1.1.1 dst=8.8.8.8 dpt=53 suser=bob",
        );
        assert_eq!(e.format, Format::Cef);
        assert_eq!(e.normalized.dst_port, Some(53));
        assert_eq!(e.normalized.user.as_deref(), Some("bob"));
        assert_eq!(e.fields["syslog"]["hostname"], "fw01");
        assert_eq!(e.normalized.host.as_deref(), Some("fw01"));
    }

    #[test]
    fn bad_priorities_are_rejected_with_reasons() {
        let opts = DecodeOptions::default();
        let err = decode(b"<999>x", now(), &opts).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        let err = decode(b"<12", now(), &opts).unwrap_err();
        assert!(err.contains("not closed"), "{err}");
        let err = decode(b"<13>1 notatime h a p m - x", now(), &opts).unwrap_err();
        assert!(err.contains("not RFC 3339"), "{err}");
    }
}
