//! Erasure of a data subject (GDPR Art. 17) from what Rempart stores in clear.
//!
//! Key destruction makes the subject's pseudonyms and sealed ledger payloads irreversible; the
//! telemetry itself still names the subject. An [`Eraser`] knows how the subject is written:
//! a user or host name as a whole word in any case, an address however it is spelled (`fe80::1`
//! and `FE80:0:0:0:0:0:0:1`, `10.0.0.5` inside `::ffff:10.0.0.5`), a phone number, card, IBAN or
//! national id with or without separators, a MAC address with `:`, `-` or `.`. It replaces each
//! occurrence with one marker drawn at random for this erasure (`erased-user-3fa1c2d9`, an
//! address in a reserved range), so that the subject's events still belong together in an
//! incident's timeline but nothing derives from the original any more.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use regex::Regex;
use rempart_audit::seal;
use rempart_store::Sweep;

use crate::PrivacyError;
use crate::recognize::{Entity, IPV4, IPV6, ascii_boundaries};
use crate::redact::replace_tokens_where;

/// Shortest name swept as a word: a shorter one (`jo`, `a`) would erase ordinary words.
pub const MIN_WORD: usize = 3;

/// Separators allowed between the characters of a number written in groups.
const NUMBER_SEPARATORS: &str = r"[ \t.\-/()]{0,2}";
const MAC_SEPARATORS: &str = r"[:.\-]?";

#[derive(Debug)]
enum Matcher {
    /// Whole words, case-insensitive, longest spelling first.
    Words(Vec<String>),
    /// The subject's characters with optional separators between them, not inside a longer
    /// run of letters and digits.
    Spaced(Regex),
    /// Addresses equal to the subject's, however written.
    Address {
        ip: IpAddr,
        found: Regex,
        replacement: IpAddr,
    },
}

/// How to find and replace one data subject in stored text.
#[derive(Debug)]
pub struct Eraser {
    subject: String,
    needles: Vec<String>,
    marker: String,
    matcher: Matcher,
}

/// Whether `c` continues a name, for an erasure: letters, digits, `_`, and `.` between labels
/// (`alice.smith` and `ws1.corp` are other names). Unlike the redactor's rule, `-`, `@`, `\` and
/// `$` end a name: `alice-laptop`, the account in `alice@corp.example.eu` (as the recognizers
/// read a UPN) and the user in `…-alice@krbtgt…` all name the subject.
fn erasure_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.')
}

fn random_hex(bytes: usize) -> String {
    hex::encode(&seal::random_key()[..bytes])
}

/// An address no network routes, to stand for an erased one: IPv4 in 240.0.0.0/4 (reserved),
/// IPv6 in 100::/64 (discard only).
fn reserved_address(like: IpAddr) -> IpAddr {
    let r = seal::random_key();
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(0xf0 | (r[0] & 0x0f), r[1], r[2], r[3])),
        IpAddr::V6(_) => {
            let low = u64::from_be_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]);
            IpAddr::V6(Ipv6Addr::from((0x0100_u128 << 112) | u128::from(low)))
        }
    }
}

fn spaced(chars: &str, separators: &str, prefix: &str) -> Result<Regex, PrivacyError> {
    let body: Vec<String> = chars.chars().map(|c| regex::escape(&c.to_string())).collect();
    Regex::new(&format!("(?i){prefix}{}", body.join(separators)))
        .map_err(|e| PrivacyError::Config(format!("erasure pattern: {e}")))
}

impl Eraser {
    /// For `subject` (`user:alice`, `ip:10.0.0.5`, …, as [`rempart_audit::subject_id`] writes
    /// it) and the spellings of it the vault kept.
    pub fn new(subject: &str, spellings: &[String]) -> Result<Eraser, PrivacyError> {
        let Some((kind, value)) = subject.split_once(':') else {
            return Err(PrivacyError::BadRequest(format!(
                "`{subject}` is not a subject: write TYPE:VALUE, e.g. user:alice"
            )));
        };
        if Entity::from_prefix(kind).is_none_or(|e| e == Entity::Secret) {
            let kinds: Vec<&str> = Entity::ALL
                .iter()
                .filter(|e| **e != Entity::Secret)
                .map(|e| e.prefix())
                .collect();
            return Err(PrivacyError::BadRequest(format!(
                "`{}` is not a type of data subject (one of {})",
                kind.escape_debug(),
                kinds.join(", ")
            )));
        }
        let value = value.trim();
        if !value.chars().any(char::is_alphanumeric) {
            return Err(PrivacyError::BadRequest(format!(
                "`{}` names no value to erase",
                subject.escape_debug()
            )));
        }
        let marker = format!("erased-{kind}-{}", random_hex(4));
        let (matcher, needles) = match kind {
            "ip" => {
                let ip: IpAddr = value
                    .parse()
                    .map_err(|_| PrivacyError::BadRequest(format!("`{value}` is not an IP address")))?;
                let ip = ip.to_canonical();
                let (pattern, needles) = match ip {
                    IpAddr::V4(v4) => (IPV4, vec![v4.to_string()]),
                    IpAddr::V6(v6) => {
                        let s = v6.segments();
                        let full: Vec<String> = s.iter().map(|x| format!("{x:x}")).collect();
                        let padded: Vec<String> = s.iter().map(|x| format!("{x:04x}")).collect();
                        (IPV6, vec![v6.to_string(), full.join(":"), padded.join(":")])
                    }
                };
                let found = Regex::new(&ascii_boundaries(pattern))
                    .map_err(|e| PrivacyError::Config(format!("erasure pattern: {e}")))?;
                (
                    Matcher::Address {
                        ip,
                        found,
                        replacement: reserved_address(ip),
                    },
                    needles,
                )
            }
            "mac" => {
                let hexdigits: String = value.chars().filter(char::is_ascii_hexdigit).collect();
                if hexdigits.len() != 12 {
                    return Err(PrivacyError::BadRequest(format!("`{value}` is not a MAC address")));
                }
                let pairs: Vec<&str> = (0..6).map(|i| &hexdigits[2 * i..2 * i + 2]).collect();
                let quads: Vec<&str> = (0..3).map(|i| &hexdigits[4 * i..4 * i + 4]).collect();
                let needles = vec![pairs.join(":"), pairs.join("-"), quads.join("."), hexdigits.clone()];
                (Matcher::Spaced(spaced(&hexdigits, MAC_SEPARATORS, "")?), needles)
            }
            "phone" | "card" | "iban" | "natid" => {
                let chars: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
                if chars.len() < 6 || chars.bytes().filter(u8::is_ascii_digit).count() < 4 {
                    return Err(PrivacyError::BadRequest(format!(
                        "`{value}` is not a {kind} number (at least six letters and digits, four of them digits)"
                    )));
                }
                // Any grouping of the number ends with its last two characters.
                let needles = vec![chars[chars.len() - 2..].to_owned()];
                let prefix = if kind == "phone" { r"\+?" } else { "" };
                (Matcher::Spaced(spaced(&chars, NUMBER_SEPARATORS, prefix)?), needles)
            }
            _ => {
                let mut words: Vec<String> = std::iter::once(value.to_owned())
                    .chain(spellings.iter().map(|s| s.trim().to_owned()))
                    .filter(|s| s.chars().count() >= MIN_WORD)
                    .map(|s| s.to_lowercase())
                    .collect();
                if words.is_empty() {
                    return Err(PrivacyError::BadRequest(format!(
                        "`{value}` is shorter than {MIN_WORD} characters: sweeping it as a word would erase ordinary words"
                    )));
                }
                words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
                words.dedup();
                let needles = words.clone();
                (Matcher::Words(words), needles)
            }
        };
        Ok(Eraser {
            subject: format!("{kind}:{value}"),
            needles,
            marker,
            matcher,
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What stands for the subject from now on (for an address: the reserved address).
    pub fn marker(&self) -> String {
        match &self.matcher {
            Matcher::Address { replacement, .. } => replacement.to_string(),
            _ => self.marker.clone(),
        }
    }

    /// Replaces every occurrence of the subject in `s`; returns how many.
    pub fn rewrite(&self, s: &mut String) -> usize {
        match &self.matcher {
            Matcher::Words(words) => {
                let known: Vec<(&str, &str)> = words.iter().map(|w| (w.as_str(), self.marker.as_str())).collect();
                replace_tokens_where(s, &known, erasure_name_char)
            }
            Matcher::Spaced(re) => {
                let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                let spans: Vec<(usize, usize)> = re
                    .find_iter(s)
                    .filter(|m| !alnum(s[..m.start()].chars().next_back()) && !alnum(s[m.end()..].chars().next()))
                    .map(|m| (m.start(), m.end()))
                    .collect();
                for &(start, end) in spans.iter().rev() {
                    s.replace_range(start..end, &self.marker);
                }
                spans.len()
            }
            Matcher::Address { ip, found, replacement } => {
                let spans: Vec<(usize, usize)> = found
                    .find_iter(s)
                    .filter(|m| m.as_str().parse::<IpAddr>().is_ok_and(|a| a.to_canonical() == *ip))
                    .map(|m| (m.start(), m.end()))
                    .collect();
                let with = replacement.to_string();
                for &(start, end) in spans.iter().rev() {
                    s.replace_range(start..end, &with);
                }
                spans.len()
            }
        }
    }

    /// The prefilter a store applies before handing strings to [`Eraser::rewrite`].
    pub fn needles(&self) -> &[String] {
        &self.needles
    }

    /// A sweep of the store with this eraser.
    pub fn sweep<'a>(&'a self, rewrite: &'a (dyn Fn(&mut String) -> usize + Send + Sync), dry_run: bool) -> Sweep<'a> {
        Sweep {
            needles: &self.needles,
            rewrite,
            dry_run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erase(subject: &str, spellings: &[&str], text: &str) -> (String, usize, String) {
        let spellings: Vec<String> = spellings.iter().map(|s| (*s).to_owned()).collect();
        let e = Eraser::new(subject, &spellings).expect("eraser");
        let mut s = text.to_owned();
        let n = e.rewrite(&mut s);
        (s, n, e.marker())
    }

    #[test]
    fn a_user_goes_as_a_whole_word_in_any_case() {
        let (out, n, m) = erase(
            "user:alice",
            &["ALICE"],
            r"CORP\Alice logged on; /home/alice/.ssh; malice; alice.smith; alice@corp.example; alice-laptop; x.alice; alice.",
        );
        assert_eq!(n, 5, "{out}");
        assert_eq!(
            out,
            format!(
                r"CORP\{m} logged on; /home/{m}/.ssh; malice; alice.smith; {m}@corp.example; {m}-laptop; x.alice; {m}."
            )
        );
        assert!(m.starts_with("erased-user-") && m.len() == "erased-user-".len() + 8);
    }

    #[test]
    fn each_erasure_draws_its_own_marker() {
        let a = Eraser::new("user:alice", &[]).expect("eraser");
        let b = Eraser::new("user:alice", &[]).expect("eraser");
        assert_ne!(a.marker(), b.marker());
    }

    #[test]
    fn an_address_goes_however_it_is_written() {
        let (out, n, m) = erase(
            "ip:10.0.0.5",
            &[],
            "from 10.0.0.5:514 and ::ffff:10.0.0.5, not 10.0.0.55 or 110.0.0.5",
        );
        assert_eq!(n, 2, "{out}");
        assert_eq!(out, format!("from {m}:514 and ::ffff:{m}, not 10.0.0.55 or 110.0.0.5"));
        let ip: IpAddr = m.parse().expect("an address still");
        assert!(matches!(ip, IpAddr::V4(v4) if v4.octets()[0] >= 240));

        let (out, n, m) = erase("ip:fe80::1", &[], "a FE80:0:0:0:0:0:0:1 b fe80::1%eth0 c fe80::10");
        assert_eq!(n, 2, "{out}");
        assert_eq!(out, format!("a {m} b {m}%eth0 c fe80::10"));
        assert!(m.starts_with("100::"), "{m}");
    }

    #[test]
    fn a_number_goes_with_or_without_separators() {
        let (out, n, m) = erase(
            "iban:DE89370400440532013000",
            &[],
            "IBAN DE89 3704 0044 0532 0130 00, de89370400440532013000; not DE89370400440532013000123",
        );
        assert_eq!(n, 2, "{out}");
        assert_eq!(out, format!("IBAN {m}, {m}; not DE89370400440532013000123"));
        let (out, n, m) = erase("phone:33612345678", &[], "call +33 6 12 34 56 78 or 33612345678");
        assert_eq!((out, n), (format!("call {m} or {m}"), 2));
        let (out, n, m) = erase(
            "mac:00:1a:2b:3c:4d:5e",
            &[],
            "00-1A-2B-3C-4D-5E 001a.2b3c.4d5e 00:1a:2b:3c:4d:5e0",
        );
        assert_eq!((out, n), (format!("{m} {m} 00:1a:2b:3c:4d:5e0"), 2));
    }

    #[test]
    fn needles_find_every_spelling_the_rewrite_finds() {
        let e = Eraser::new("iban:DE89370400440532013000", &[]).expect("eraser");
        assert!(
            e.needles()
                .iter()
                .all(|n| "DE89 3704 0044 0532 0130 00".contains(n.as_str()))
        );
        let e = Eraser::new("ip:fe80::1", &[]).expect("eraser");
        for spelling in [
            "fe80::1",
            "fe80:0:0:0:0:0:0:1",
            "fe80:0000:0000:0000:0000:0000:0000:0001",
        ] {
            assert!(e.needles().iter().any(|n| n == spelling), "{spelling}");
        }
    }

    proptest::proptest! {
        /// Every whole-word occurrence goes, in any case, and nothing else changes: split on the
        /// separators, the text has the same pieces in the same order, each `alice` now the marker.
        #[test]
        fn a_name_goes_and_nothing_else_changes(
            pieces in proptest::collection::vec((
                proptest::sample::select(vec!["alice", "Alice", "ALICE", "malice", "alices", "bob", "x", "alice_2", "é"]),
                proptest::sample::select(vec![" ", "\\", "/", ",", ";", "\n", "=", ": ", "\"", "-", "@", "$"]),
            ), 0..24)
        ) {
            let text: String = pieces.iter().map(|(w, s)| format!("{w}{s}")).collect();
            let e = Eraser::new("user:alice", &[]).expect("eraser");
            let mut out = text.clone();
            let n = e.rewrite(&mut out);
            let marker = e.marker();
            let expected: String = pieces
                .iter()
                .map(|(w, s)| format!("{}{s}", if w.eq_ignore_ascii_case("alice") { marker.as_str() } else { w }))
                .collect();
            proptest::prop_assert_eq!(&out, &expected);
            proptest::prop_assert_eq!(n, pieces.iter().filter(|(w, _)| w.eq_ignore_ascii_case("alice")).count());
        }

        /// An address goes wherever it stands and however it is written; its neighbours stay.
        #[test]
        fn an_address_goes_and_its_neighbours_stay(
            pieces in proptest::collection::vec((
                proptest::sample::select(vec!["10.0.0.5", "::ffff:10.0.0.5", "10.0.0.55", "110.0.0.5", "10.0.0.6", "host", "5"]),
                proptest::sample::select(vec![" ", ":514 ", ",", "/", " from "]),
            ), 0..16)
        ) {
            let text: String = pieces.iter().map(|(w, s)| format!("{w}{s}")).collect();
            let e = Eraser::new("ip:10.0.0.5", &[]).expect("eraser");
            let mut out = text.clone();
            e.rewrite(&mut out);
            let marker = e.marker();
            let expected: String = pieces
                .iter()
                .map(|(w, s)| match *w {
                    "10.0.0.5" => format!("{marker}{s}"),
                    "::ffff:10.0.0.5" => format!("::ffff:{marker}{s}"),
                    other => format!("{other}{s}"),
                })
                .collect();
            proptest::prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn refuses_what_cannot_be_swept_safely() {
        for bad in [
            "alice",
            "user:",
            "user:jo",
            "user:\0\0\0",
            "ip:10.0.0",
            "mac:00:11",
            "card:123",
            "natid:erased",
            "secret:hunter2",
            "\u{2}\0:\0\0\0",
            "team:blue",
        ] {
            assert!(Eraser::new(bad, &[]).is_err(), "{bad}");
        }
    }
}
