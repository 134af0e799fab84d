//! Values a text names: what follows a label of [`LABELS`] (`PESEL: …`, `IBAN …`, `Hasło=…`,
//! `Account Name:\t\tanna`), a cue in prose (`user anna logged in`, `account pnowak on host
//! PC-0042`), or a field written out in text (`suser=anna`, `<Computer>WS-01</Computer>`,
//! `<Data Name="TargetUserName">anna</Data>`, `"host": "db01"`), whose name says what its value
//! is just as a JSON field's name does.
//!
//! A labelled value goes whatever its checksum says: when the text says what a value is, the
//! value is that (fail closed). Only its shape is checked, so that a label followed by a word
//! (`password changed`, `user logged in`) gives nothing.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

use super::commands::Found;
use super::names::Names;
use super::tables::{Introduces, LABELS, NOT_VALUES};
use super::{Entity, NOT_USERS, field_entity};

/// The label recognizers, ready to scan.
pub(super) struct Labels {
    words: AhoCorasick,
    /// The entity and the way of each of `words`' patterns.
    kinds: Vec<(Entity, Introduces)>,
    /// `<X>v</X>`, `Name="X">v<`, `X=v`, `"X": "v"`.
    fields: Regex,
}

/// Host labels strong enough that any single name after them is a host (`hostname: athena`).
const STRONG_HOST: &[&str] = &[
    "host",
    "computer",
    "workstation",
    "hostname",
    "host name",
    "computer name",
    "computername",
    "workstation name",
    "machine name",
    "device name",
    "rechnername",
    "nom d'hôte",
    "nome host",
];

/// Words between a label and its value that say nothing (`PESEL nr 85…`, `IBAN no. DE…`).
const FILLERS: &[&str] = &[
    "no.", "no", "nr.", "nr", "number", "num", "n°", "nº", "#", "is", "ist", "est", "é", "es", "jest",
];

impl Labels {
    pub(super) fn new() -> Result<Labels, String> {
        let mut patterns = Vec::new();
        let mut kinds = Vec::new();
        for label in LABELS {
            for w in label.words {
                patterns.push(*w);
                kinds.push((label.entity, label.introduces));
            }
        }
        let words = AhoCorasickBuilder::new()
            // A DFA: every string of every event passes through it.
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| format!("labels: {e}"))?;
        let fields = Regex::new(
            r#"(?x)
            <([A-Za-z][A-Za-z0-9_.-]*)>([^<>\r\n]+)</([A-Za-z][A-Za-z0-9_.-]*)>
            | Name=["']([A-Za-z][A-Za-z0-9_.-]*)["']>([^<>\r\n]+)<
            | "([A-Za-z][A-Za-z0-9_.-]*)"\s*:\s*"([^"\\\r\n]+)"
            "#,
        )
        .map_err(|e| format!("fields in text: {e}"))?;
        Ok(Labels { words, kinds, fields })
    }

    /// The values labels, cues and written-out fields name in `text`.
    pub(super) fn find(&self, text: &str, names: &Names, out: &mut Vec<Found>) {
        for m in self.words.find_iter(text) {
            if !word_edges(text, m.start(), m.end()) {
                continue;
            }
            let (entity, introduces) = self.kinds[m.pattern().as_usize()];
            let label = &text[m.start()..m.end()];
            self.labelled(text, label, m.start(), m.end(), entity, introduces, names, out);
        }
        if memchr::memchr3(b'=', b'<', b'"', text.as_bytes()).is_some() {
            self.written_fields(text, out);
        }
        // A label and a written-out field may name the same value (`<Computer>x</Computer>`).
        out.sort_unstable();
        out.dedup_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2));
    }

    #[allow(clippy::too_many_arguments, reason = "one label's match, read in one place")]
    fn labelled(
        &self,
        text: &str,
        label: &str,
        label_start: usize,
        label_end: usize,
        entity: Entity,
        introduces: Introduces,
        names: &Names,
        out: &mut Vec<Found>,
    ) {
        let (at, separated) = after_label(text, label_end);
        if at >= text.len() || (introduces == Introduces::Labelled && !separated) {
            return;
        }
        // A value follows whitespace or a separator, never the label's own letters (`User-Agent`).
        if at == label_end {
            return;
        }
        let rest = &text[at..];
        let value = match entity {
            Entity::NationalId => identifier(rest, 4),
            Entity::Iban => iban(rest),
            Entity::Card => digits_grouped(rest, 12, 19),
            Entity::Phone => phone(rest),
            Entity::Secret => {
                // In a URL's query (`?token=…&file=…`) the value ends at the next parameter.
                let in_query = text[..label_start].ends_with(['?', '&']);
                secret(rest, in_query).filter(|v| !NOT_VALUES.contains(&v.to_lowercase().as_str()) && !is_path(v))
            }
            // `User: NT AUTHORITY\NETWORK SERVICE` names the system's own account.
            Entity::User if super::starts_with_authority(rest) => None,
            Entity::User => token(rest).filter(|v| account(v, separated) && (separated || !sentence_word(v, names))),
            Entity::Host => {
                let strong = separated && STRONG_HOST.iter().any(|s| s.eq_ignore_ascii_case(label));
                token(rest).filter(|v| host(v, strong))
            }
            Entity::Person => {
                // `Service Name: Remote Registry` names no one: a person's label starts its field.
                let before = text[..label_start].trim_end_matches([' ', '\t']);
                let starts_field =
                    before.is_empty() || before.ends_with(['\n', '\r', ',', ';', '|', '{', '"', '(', '>']);
                if !starts_field {
                    return;
                }
                name_words(rest).filter(|v| names.labelled_name(v))
            }
            _ => None,
        };
        if let Some(v) = value {
            out.push((entity, at, at + v.len(), "label"));
        }
    }

    /// Fields written out in text, whose names [`field_entity`] knows.
    fn written_fields(&self, text: &str, out: &mut Vec<Found>) {
        // The regular expression finds the elements and quoted pairs; each is then split by
        // hand, which costs a fraction of running the backtracker for its capture groups.
        // `X=v`, the most frequent form by far, is read by hand from each `=`.
        let elements = memchr::memchr2(b'<', b'"', text.as_bytes())
            .is_some()
            .then(|| self.fields.find_iter(text))
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let (name, value) = split_field(m.as_str())?;
                let at = m.start();
                Some((at + name.start..at + name.end, at + value.start..at + value.end))
            });
        for (name, value) in elements.chain(assignments(text)) {
            let name = &text[name];
            let Some(entity) = field_entity(name) else {
                continue;
            };
            let (mut start, mut end) = (value.start, value.end);
            if text[start..end].starts_with('"') && end - start >= 2 {
                start += 1;
                end -= 1;
            }
            let v = &text[start..end];
            let v_trimmed = v.trim();
            if v_trimmed.is_empty() || v_trimmed.len() > 256 || name.len() > 40 || super::placeholder(v_trimmed) {
                continue;
            }
            let ok = match entity {
                Entity::User => {
                    !NOT_USERS.contains(&v_trimmed.to_lowercase().as_str()) && !v_trimmed.contains(['\\', '@', ' '])
                }
                Entity::Host => {
                    !v_trimmed.contains(char::is_whitespace) && v_trimmed.parse::<std::net::IpAddr>().is_err()
                }
                Entity::Ip => v_trimmed.parse::<std::net::IpAddr>().is_ok(),
                Entity::Email => v_trimmed.contains('@'),
                Entity::Secret => !is_path(v_trimmed),
                _ => true,
            };
            if ok {
                let lead = v.len() - v.trim_start().len();
                out.push((entity, start + lead, start + lead + v_trimmed.len(), "field-in-text"));
            }
        }
    }
}

/// The fields written `X=v` in `text`, as `(?-u:\b)[A-Za-z][A-Za-z0-9_.-]*=` followed by
/// `"[^"\r\n]+"` or `[^\s,;&|"'<>]+` reads them, from every `=` (so `a=b=c` is also `b=c`, which
/// a search from left to right would have taken as part of a value): the name's and the value's
/// ranges (the value with its quotes, if any).
fn assignments(text: &str) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> + '_ {
    let b = text.as_bytes();
    let name_byte = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    memchr::memchr_iter(b'=', b).filter_map(move |eq| {
        let run = b[..eq].iter().rposition(|&c| !name_byte(c)).map_or(0, |i| i + 1);
        // The name starts at the first letter of the run that follows no word character.
        let start = (run..eq).find(|&p| b[p].is_ascii_alphabetic() && (p == 0 || !word_byte(b[p - 1])))?;
        let v = eq + 1;
        let end = if b.get(v) == Some(&b'"') {
            let close = v + 1 + b[v + 1..].iter().position(|&c| matches!(c, b'"' | b'\r' | b'\n'))?;
            (b[close] == b'"' && close > v + 1).then_some(close + 1)?
        } else {
            let len = text[v..]
                .char_indices()
                .find(|&(_, c)| c.is_whitespace() || matches!(c, ',' | ';' | '&' | '|' | '"' | '\'' | '<' | '>'))
                .map_or(text.len() - v, |(i, _)| i);
            (len > 0).then_some(v + len)?
        };
        Some((start..eq, v..end))
    })
}

/// The name and the value of a field that `Labels::fields` matched whole, as ranges of it:
/// `<X>v</X>` (`None` unless the element closes as it opened), `Name="X">v<` and `"X": "v"`.
fn split_field(m: &str) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    if let Some(rest) = m.strip_prefix('<') {
        let name_end = 1 + rest.find('>')?;
        let close = m.rfind("</")?;
        (m[close + 2..m.len() - 1] == m[1..name_end]).then_some((1..name_end, name_end + 1..close))
    } else if m.starts_with("Name=") && m.ends_with('<') {
        let name_end = 6 + m[6..].find(['"', '\''])?;
        Some((6..name_end, name_end + 2..m.len() - 1))
    } else {
        let rest = m.strip_prefix('"')?;
        let name_end = 1 + rest.find('"')?;
        let value_start = m[..m.len() - 1].rfind('"')? + 1;
        Some((1..name_end, value_start..m.len() - 1))
    }
}

/// Whether `text[start..end]` is a whole word (no letter or digit on either side).
fn word_edges(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let label_ends_in_letter = text[..end].chars().next_back().is_some_and(char::is_alphanumeric);
    before.is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '\\' && c != '/')
        && (!label_ends_in_letter || after.is_none_or(|c| !c.is_alphanumeric() && c != '_'))
}

/// Where a label's value starts, and whether a separator (`:`, `=`, `#`, a tab, `">`, `>`)
/// came between: spaces, fillers (`nr`, `no.`) and opening quotes are skipped.
fn after_label(text: &str, mut at: usize) -> (usize, bool) {
    let b = text.as_bytes();
    let mut separated = false;
    loop {
        while at < b.len() && matches!(b[at], b' ' | b'\t') {
            separated |= b[at] == b'\t';
            at += 1;
        }
        // One separator: after it, a `#` or `=` belongs to the value (`Passwort: #4uMf…`).
        if at < b.len() && !separated && matches!(b[at], b':' | b'=' | b'#' | b'>') && !separated_twice(b, at) {
            separated = true;
            at += 1;
            continue;
        }
        if at + 1 < b.len() && b[at] == b'"' && b[at + 1] == b'>' {
            separated = true;
            at += 2;
            continue;
        }
        if at < b.len() && matches!(b[at], b'"' | b'\'') {
            at += 1;
            continue;
        }
        let rest = &text[at..];
        if let Some(filler) = FILLERS.iter().find(|f| {
            rest.len() > f.len()
                && rest.is_char_boundary(f.len())
                && rest[..f.len()].eq_ignore_ascii_case(f)
                && rest[f.len()..].starts_with([' ', ':', '\t'])
        }) {
            at += filler.len();
            continue;
        }
        return (at, separated);
    }
}

/// `::` or `:/` (a URL's scheme, an IPv6 address) is no separator.
fn separated_twice(b: &[u8], at: usize) -> bool {
    b[at] == b':' && b.get(at + 1).is_some_and(|c| matches!(c, b':' | b'/'))
}

/// The token at the start of `rest`: up to whitespace, a quote or a closing bracket; a trailing
/// sentence mark is left out.
fn token(rest: &str) -> Option<&str> {
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '}' | ',' | ';' | '|'))
        .unwrap_or(rest.len());
    let t = rest[..end].trim_end_matches(['.', ':', '!', '?']);
    (!t.is_empty()).then_some(t)
}

/// A secret at the start of `rest`: up to whitespace or a quote, every other character kept
/// (passwords end in `!` and `.`).
fn secret(rest: &str, in_query: bool) -> Option<&str> {
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<') || (in_query && matches!(c, '&' | '#')))
        .unwrap_or(rest.len());
    (end > 0).then_some(&rest[..end])
}

/// Whether a value is an absolute path (sudo's `PWD=/home/anna` is a directory, not a password).
fn is_path(v: &str) -> bool {
    v.starts_with('/') && (v.len() == 1 || v[1..].contains('/') || v[1..].bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether a token after a user label or cue is an account. After a cue without a separator
/// (`user anna logged in`) a word of the sentence (`user logged in`) is not.
fn account(v: &str, separated: bool) -> bool {
    let lower = v.to_lowercase();
    if NOT_VALUES.contains(&lower.as_str())
        || NOT_USERS.contains(&lower.as_str())
        || v.len() > 104
        || v.contains(['\\', '@', '/', '=', '(', '['])
        || v.parse::<std::net::IpAddr>().is_ok()
        || v.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let first = v.chars().next().unwrap_or(' ');
    (separated || first.is_alphanumeric() || first == '_') && !v.starts_with('-')
}

/// Whether a word after a cue without a separator is a word of the sentence rather than an
/// account: an English past participle (`user reported`, `account disabled`) that is no given
/// name (`ahmed` stays an account).
fn sentence_word(v: &str, names: &Names) -> bool {
    let verb = v.len() >= 5 && v.ends_with("ed");
    if !verb || !v.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let mut capital = v[..1].to_ascii_uppercase();
    capital.push_str(&v[1..]);
    !names.is_given(&capital)
}

/// Whether a token after a host label or cue is a host name: one label (a name with dots is
/// left to the DNS recognizers), with a digit, a hyphen or an underscore unless the label says
/// plainly that a host name follows; no version number.
fn host(v: &str, strong: bool) -> bool {
    let lower = v.to_lowercase();
    if v.contains('.')
        || NOT_VALUES.contains(&lower.as_str())
        || !v.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        || v.bytes().all(|b| b.is_ascii_digit())
        || !v.starts_with(|c: char| c.is_alphanumeric())
        || v.len() > 63
    {
        return false;
    }
    strong
        || v.contains(['-', '_'])
        || (v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// One to four capitalized words (a name) at the start of `rest`.
fn name_words(rest: &str) -> Option<&str> {
    let mut end = 0;
    for (n, w) in rest.split(' ').enumerate() {
        let w_clean = w.trim_end_matches([',', ';', '.', ')']);
        if n >= 4
            || w_clean.is_empty()
            || !w_clean
                .chars()
                .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’'))
        {
            break;
        }
        end = if n == 0 { w_clean.len() } else { end + 1 + w_clean.len() };
        if w_clean.len() != w.len() {
            break;
        }
    }
    let v = rest[..end].trim_end();
    (!v.is_empty()).then_some(v)
}

/// An identifier: letters, digits and single separators (`.`, `-`, `/`, one space between digit
/// groups), with at least `min_digits` digits, at the start of `rest`.
fn identifier(rest: &str, min_digits: usize) -> Option<&str> {
    grouped(rest, min_digits, false)
}

/// [`identifier`], with groups that may start with a letter after a space if `letter_groups`.
fn grouped(rest: &str, min_digits: usize, letter_groups: bool) -> Option<&str> {
    let b = rest.as_bytes();
    let mut end = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() {
            i += 1;
            end = i;
        } else if matches!(c, b'.' | b'-' | b'/' | b' ')
            && i > 0
            && b[i - 1].is_ascii_alphanumeric()
            && b.get(i + 1).is_some_and(|n| {
                if c == b' ' && !letter_groups {
                    n.is_ascii_digit()
                } else {
                    n.is_ascii_alphanumeric()
                }
            })
        {
            i += 1;
        } else {
            break;
        }
    }
    let v = &rest[..end];
    (v.bytes().filter(u8::is_ascii_digit).count() >= min_digits).then_some(v)
}

/// An IBAN's shape: two letters, two digits, then letters and digits, written together or in
/// groups of up to four upper-case letters and digits separated by single spaces.
fn iban(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    if b.len() < 12
        || !(b[0].is_ascii_uppercase() && b[1].is_ascii_uppercase() && b[2].is_ascii_digit() && b[3].is_ascii_digit())
    {
        return None;
    }
    let alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut end = 4;
    while end < b.len() && alnum(b[end]) {
        end += 1;
    }
    // Further groups: a space, then one to four characters ending the group.
    while end < b.len() && b[end] == b' ' {
        let group = b[end + 1..].iter().take_while(|c| alnum(**c)).count();
        let after = b.get(end + 1 + group);
        if group == 0 || group > 4 || after.is_some_and(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        end += 1 + group;
    }
    let v = &rest[..end];
    (v.bytes().filter(|c| alnum(*c)).count() >= 12 && v.bytes().filter(u8::is_ascii_digit).count() >= 8).then_some(v)
}

/// Digits in groups (spaces or dashes between), `min..=max` digits in all.
fn digits_grouped(rest: &str, min: usize, max: usize) -> Option<&str> {
    let v = identifier(rest, min)?;
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    (v.bytes().all(|c| c.is_ascii_digit() || c == b' ' || c == b'-') && digits <= max).then_some(v)
}

/// A phone number: an optional `+`, then digits with spaces, dots, dashes, slashes and
/// parentheses, 6 to 15 digits.
fn phone(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    let mut end = 0;
    let mut digits = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                end = i + 1;
            }
            b'+' if i == 0 => {}
            b' ' | b'.' | b'-' | b'/' | b'(' | b')' => {
                if c == b')' {
                    end = i + 1;
                }
            }
            _ => break,
        }
    }
    let v = &rest[..end];
    ((6..=15).contains(&digits)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The single expression `written_fields` read before, with capture groups: the oracle.
    const FIELDS: &str = r#"(?x)
        <([A-Za-z][A-Za-z0-9_.-]*)>([^<>\r\n]+)</([A-Za-z][A-Za-z0-9_.-]*)>
        | Name=["']([A-Za-z][A-Za-z0-9_.-]*)["']>([^<>\r\n]+)<
        | (?-u:\b)([A-Za-z][A-Za-z0-9_.-]*)=("[^"\r\n]+"|[^\s,;&|"'<>]+)
        | "([A-Za-z][A-Za-z0-9_.-]*)"\s*:\s*"([^"\\\r\n]+)"
    "#;

    proptest::proptest! {
        /// Reading the fields by hand finds every field the capture groups of one expression
        /// find, with the same name and value.
        #[test]
        fn fields_read_by_hand_are_those_the_capture_groups_find(text in "[<>\"'=: /a-zA-Z0-9_.,é\u{a0}-]{0,60}|(<[a-zA-Z]{1,4}>[a-z ]{1,5}</[a-zA-Z]{1,4}>|Name=[\"'][a-zA-Z]{1,4}[\"']>[a-z]{1,4}<|\"[a-z]{1,4}\" ?: ?\"[a-z ]{1,4}\"|[a-z0-9_.]{1,4}=\"?[a-z=]{0,4}\"?|[ ,;é]){1,6}") {
            static L: std::sync::LazyLock<(Labels, regex::Regex)> = std::sync::LazyLock::new(|| {
                (Labels::new().unwrap_or_else(|e| panic!("{e}")), regex::Regex::new(FIELDS).unwrap_or_else(|e| panic!("{e}")))
            });
            let elements = L.0.fields.find_iter(&text).filter_map(|m| {
                let (n, v) = split_field(m.as_str())?;
                Some((m.start() + n.start..m.start() + n.end, m.start() + v.start..m.start() + v.end))
            });
            let by_hand: Vec<_> = elements.chain(assignments(&text)).collect();
            for caps in L.1.captures_iter(&text) {
                let pairs = [(1, 2), (4, 5), (6, 7), (8, 9)];
                let Some((n, v)) = pairs.iter().find_map(|&(n, v)| Some((caps.get(n)?, caps.get(v)?))) else {
                    continue;
                };
                if caps.get(3).is_some_and(|c| c.as_str() != n.as_str()) {
                    continue;
                }
                let want = (n.start()..n.end(), v.start()..v.end());
                proptest::prop_assert!(by_hand.contains(&want), "{:?} not found in {:?}: {:?}", want, text, by_hand);
            }
        }
    }

    fn found(text: &str) -> Vec<(Entity, String)> {
        static L: std::sync::LazyLock<(Labels, Names)> =
            std::sync::LazyLock::new(|| (Labels::new().unwrap_or_else(|e| panic!("{e}")), Names::load()));
        let mut out = Vec::new();
        L.0.find(text, &L.1, &mut out);
        out.sort_by_key(|f| f.1);
        out.into_iter().map(|(e, s, t, _)| (e, text[s..t].to_owned())).collect()
    }

    #[test]
    fn labels_force_their_values_whatever_the_checksum() {
        assert_eq!(found("PESEL=85139912345"), [(Entity::NationalId, "85139912345".into())]);
        assert_eq!(
            found("Numer PESEL: 85139912345."),
            [(Entity::NationalId, "85139912345".into())]
        );
        assert_eq!(
            found("IBAN: DE00 1234 5678 9012 3456 78"),
            [(Entity::Iban, "DE00 1234 5678 9012 3456 78".into())]
        );
        assert_eq!(found("Hasło: Zima2024!"), [(Entity::Secret, "Zima2024!".into())]);
        assert_eq!(
            found("Tel.: +48 22 123 45 67"),
            [(Entity::Phone, "+48 22 123 45 67".into())]
        );
    }

    #[test]
    fn cues_in_prose() {
        assert_eq!(found("user anna logged in"), [(Entity::User, "anna".into())]);
        assert_eq!(
            found("account pnowak on host PC-0042"),
            [(Entity::User, "pnowak".into()), (Entity::Host, "PC-0042".into())]
        );
        assert_eq!(
            found("Login by account maria.rossi."),
            [(Entity::User, "maria.rossi".into())]
        );
        for quiet in [
            "user logged in from the console",
            "The user account was locked",
            "User-Agent: Mozilla/5.0",
            "password changed",
            "Windows Server 2019",
            "host header mismatch",
            "Service Name: Remote Registry",
        ] {
            assert!(found(quiet).is_empty(), "{quiet}: {:?}", found(quiet));
        }
    }

    #[test]
    fn fields_written_in_text() {
        assert_eq!(
            found("<Computer>WS-0042</Computer>"),
            [(Entity::Host, "WS-0042".into())]
        );
        assert_eq!(
            found(r#"<Data Name="TargetUserName">anna</Data>"#),
            [(Entity::User, "anna".into())]
        );
        assert_eq!(
            found("CEF:0|x|y|1|100|n|5|suser=anna dhost=db01"),
            [(Entity::User, "anna".into()), (Entity::Host, "db01".into())]
        );
    }
}
