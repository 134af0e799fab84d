//! Server-sent events, read incrementally from a byte stream (WHATWG HTML, "Parsing an event
//! stream"): `event:` and `data:` fields, multi-line data joined by `\n`, comments ignored,
//! an event dispatched at a blank line. One event is capped in size.

use crate::WireError;

/// Largest event accepted.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    name: Option<String>,
    data: String,
    has_data: bool,
}

impl Parser {
    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, WireError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = memchr_newline(&self.buf[start..]) {
            let end = start + nl;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = std::str::from_utf8(line)
                .map_err(|_| WireError::Upstream("event stream is not UTF-8".into()))?
                .to_owned();
            start = end + 1;
            self.line(&line, &mut out)?;
        }
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > MAX_EVENT {
            return Err(WireError::Upstream(format!(
                "stream event larger than {MAX_EVENT} bytes"
            )));
        }
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) -> Result<(), WireError> {
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    name: self.name.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.name = None;
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT {
                    return Err(WireError::Upstream(format!(
                        "stream event larger than {MAX_EVENT} bytes"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn events_with_names_comments_and_multiline_data() {
        let mut p = Parser::default();
        let text = ": ping\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let events = p.feed(text.as_bytes()).unwrap();
        assert_eq!(
            events,
            vec![
                Event {
                    name: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: None,
                    data: "one\ntwo".into()
                },
                Event {
                    name: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    proptest! {
        /// However the bytes are cut, the same events come out.
        #[test]
        fn splitting_never_changes_the_events(cuts in proptest::collection::vec(0usize..200, 0..10)) {
            let text = "event: a\ndata: {\"x\":\"é\"}\n\n: c\ndata: 1\ndata: 2\n\nevent: b\r\ndata:3\r\n\r\n";
            let whole = Parser::default().feed(text.as_bytes()).unwrap();
            let mut p = Parser::default();
            let mut got = Vec::new();
            let mut at = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            for c in cuts {
                got.extend(p.feed(&text.as_bytes()[at..c.max(at)]).unwrap());
                at = c.max(at);
            }
            got.extend(p.feed(&text.as_bytes()[at..]).unwrap());
            prop_assert_eq!(got, whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Parser::default().feed(&bytes);
        }
    }
}
