//! Text from telemetry, intelligence or a model, rendered inert and visible.
//!
//! Attackers write into logs. Everything that came from outside is shown through [`Text`]:
//! markup is escaped (so `<script>` and `![x](http://…)` are characters on the page, never an
//! element or a link), and every character that changes how text reads without being seen
//! (bidirectional overrides, zero-width characters, Unicode tags, other controls) is replaced
//! by a visible marker naming its code point, so a command line cannot pretend to be another.

use std::fmt::{self, Write};

/// Untrusted text, escaped for HTML with invisible characters made visible. Templates print
/// it as it is: its `Display` is the escaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    pub fn new(s: impl Into<String>) -> Text {
        Text(s.into())
    }

    /// At most `max` characters, with an ellipsis when cut.
    pub fn short(s: &str, max: usize) -> Text {
        match s.char_indices().nth(max) {
            Some((i, _)) => Text(format!("{}…", &s[..i])),
            None => Text(s.to_owned()),
        }
    }

    /// Whether the text holds a character that [`Text`] shows as a marker.
    pub fn has_hidden(&self) -> bool {
        self.0.chars().any(hidden)
    }
}

/// Characters that are not what they look like: controls, format characters that reorder or
/// hide text, and the tag block that smuggles invisible ASCII.
pub fn hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// Writes `s` escaped for HTML text and attribute values, invisible characters as markers.
pub fn write_inert(out: &mut impl Write, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            c if hidden(c) => {
                out.write_str(&s[start..i])?;
                write!(
                    out,
                    "<span class=\"cc\" title=\"hidden character\">U+{:04X}</span>",
                    c as u32
                )?;
                start = i + c.len_utf8();
                continue;
            }
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        out.write_str(escaped)?;
        start = i + 1;
    }
    out.write_str(&s[start..])
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_inert(f, &self.0)
    }
}

// `Text` escapes itself; askama must not escape its markers a second time.
impl askama::filters::HtmlSafe for Text {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_hidden_characters_shown() {
        let t = Text::new("<script>alert(1)</script> ![x](http://evil/?q=1) a\u{202e}gpj.exe\u{200b}'\"&");
        let html = t.to_string();
        assert!(!html.contains('<') || html.matches('<').count() == html.matches("<span").count() * 2);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("U+202E") && html.contains("U+200B"));
        assert!(html.contains("&#39;&quot;&amp;"));
        assert!(t.has_hidden());
    }

    #[test]
    fn tags_block_and_controls_are_markers() {
        let html = Text::new("ok\u{e0041}\u{1b}[31m").to_string();
        assert_eq!(
            html,
            "ok<span class=\"cc\" title=\"hidden character\">U+E0041</span><span class=\"cc\" title=\"hidden character\">U+001B</span>[31m"
        );
    }

    /// Strips the markers `Text` writes; what is left must be plain escaped text.
    fn without_markers(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while let Some(i) = rest.find("<span class=\"cc\" title=\"hidden character\">U+") {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            let end = after.find("</span>").map_or(after.len(), |e| e + "</span>".len());
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    proptest::proptest! {
        /// Whatever a log holds, its rendering has no markup but the markers, no hidden
        /// character, no unescaped quote; and unescaping gives back the visible text.
        #[test]
        fn any_text_renders_inert(s in "(?s).{0,200}", tricky in proptest::collection::vec(proptest::sample::select(vec![
            "<", ">", "&", "\"", "'", "<script>", "</span>", "\u{202e}", "\u{2066}", "\u{200b}", "\u{e0041}",
            "\u{1b}", "\u{0}", "\u{feff}", "![x](http://a/b)", "javascript:", "&lt;", "\u{85}",
        ]), 0..12)) {
            let input: String = s.chars().chain(tricky.concat().chars()).collect();
            let html = Text::new(input.clone()).to_string();
            let plain = without_markers(&html);
            proptest::prop_assert!(!plain.contains('<') && !plain.contains('>'), "{}", html);
            proptest::prop_assert!(!plain.contains('"') && !plain.contains('\''), "{}", html);
            proptest::prop_assert!(!html.chars().any(hidden), "{}", html);
            let visible: String = input.chars().filter(|c| !hidden(*c)).collect();
            let back = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                .replace("&#39;", "'").replace("&amp;", "&");
            proptest::prop_assert_eq!(back, visible);
        }
    }

    #[test]
    fn short_cuts_on_characters() {
        assert_eq!(Text::short("żółw", 2).0, "żó…");
        assert_eq!(Text::short("ab", 2).0, "ab");
    }
}
