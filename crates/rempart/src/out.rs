//! Standard output for people. On a terminal, text that telemetry or a model wrote (a command
//! line, a user name, a verdict's summary) cannot drive the terminal: escape sequences, other
//! control characters and the characters that reorder or hide text are printed as visible
//! `<U+XXXX>` markers. Piped or redirected output is left byte for byte as written.

use std::borrow::Cow;
use std::io::{IsTerminal, StdoutLock, Write};

/// Standard output, made inert when it is a terminal.
pub fn stdout() -> Out {
    let tty = std::io::stdout().is_terminal();
    Out {
        inner: std::io::stdout().lock(),
        tty,
    }
}

/// See [`stdout`].
#[derive(Debug)]
pub struct Out {
    inner: StdoutLock<'static>,
    tty: bool,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.tty {
            return self.inner.write(buf);
        }
        self.inner.write_all(&inert(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `buf` with every character a terminal would act on, or that hides or reorders text, written
/// as a visible marker; line breaks and tabs stay. Bytes that are not UTF-8 (a write cut inside
/// a character) keep their printable bytes and lose nothing a terminal would act on.
pub fn inert(buf: &[u8]) -> Cow<'_, [u8]> {
    let acts = |c: char| (c.is_control() && c != '\n' && c != '\t') || rempart_server::console::text::hidden(c);
    match std::str::from_utf8(buf) {
        Ok(s) if !s.chars().any(acts) => Cow::Borrowed(buf),
        Ok(s) => {
            let mut out = String::with_capacity(s.len() + 16);
            for c in s.chars() {
                if acts(c) {
                    out.push_str(&format!("<U+{:04X}>", c as u32));
                } else {
                    out.push(c);
                }
            }
            Cow::Owned(out.into_bytes())
        }
        Err(_) => Cow::Owned(
            buf.iter()
                .flat_map(|&b| {
                    if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
                        format!("<0x{b:02X}>").into_bytes()
                    } else {
                        vec![b]
                    }
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_hidden_characters_are_shown_not_obeyed() {
        let s = "title\u{1b}]0;pwned\u{7}\u{1b}[2J after\u{202e}exe.txt\u{200b}\n\tnext";
        let shown = String::from_utf8(inert(s.as_bytes()).into_owned()).unwrap_or_default();
        assert_eq!(
            shown,
            "title<U+001B>]0;pwned<U+0007><U+001B>[2J after<U+202E>exe.txt<U+200B>\n\tnext"
        );
        assert!(matches!(inert(b"plain text\n"), Cow::Borrowed(_)));
        assert_eq!(inert(b"\xff\x1b[31m").as_ref(), b"\xff<0x1B>[31m");
    }

    proptest::proptest! {
        #[test]
        fn nothing_a_terminal_acts_on_gets_through(s in "(?s).{0,200}") {
            let shown = inert(s.as_bytes());
            let text = String::from_utf8_lossy(&shown);
            proptest::prop_assert!(!text.chars().any(|c| (c.is_control() && c != '\n' && c != '\t')
                || rempart_server::console::text::hidden(c)));
        }
    }
}
