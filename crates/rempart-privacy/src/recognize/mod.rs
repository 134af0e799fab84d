//! Recognizers: where personal data and secrets sit in free text and in structured fields.
//!
//! Free text is scanned with one regular expression per recognizer, each candidate checked
//! (addresses parsed, checksums computed, context words required where a format alone is too
//! weak), and overlapping findings resolved so that each byte belongs to at most one finding.
//! Structured fields are recognized by name: the whole value of `TargetUserName` is a user.
//!
//! Beside the patterns, recognizers driven by the tables of [`tables`]: credentials on command
//! lines ([`commands`]), values named by labels and cues in the EU's main languages and fields
//! written out in text ([`labels`]), persons named in prose from a gazetteer ([`names`]), and
//! the host a syslog header names.

mod commands;
mod labels;
mod names;
pub mod tables;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::PrivacyError;
use crate::checks;

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// An IPv4 or IPv6 address (pseudonymized prefix-preserving).
    Ip,
    Email,
    User,
    Host,
    /// A Windows security identifier of a domain or local account.
    Sid,
    Mac,
    Phone,
    Iban,
    Card,
    NationalId,
    Person,
    /// API keys, bearer tokens, private keys, passwords: removed, never pseudonymized.
    Secret,
}

impl Entity {
    pub const ALL: [Entity; 12] = [
        Entity::Ip,
        Entity::Email,
        Entity::User,
        Entity::Host,
        Entity::Sid,
        Entity::Mac,
        Entity::Phone,
        Entity::Iban,
        Entity::Card,
        Entity::NationalId,
        Entity::Person,
        Entity::Secret,
    ];

    /// The type prefix of its pseudonyms (`user_7f3a9c1d`).
    pub fn prefix(self) -> &'static str {
        match self {
            Entity::Ip => "ip",
            Entity::Email => "email",
            Entity::User => "user",
            Entity::Host => "host",
            Entity::Sid => "sid",
            Entity::Mac => "mac",
            Entity::Phone => "phone",
            Entity::Iban => "iban",
            Entity::Card => "card",
            Entity::NationalId => "natid",
            Entity::Person => "person",
            Entity::Secret => "secret",
        }
    }

    pub fn from_prefix(p: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.prefix() == p)
    }
}

/// One recognized span of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub entity: Entity,
    /// Byte offsets in the scanned text.
    pub start: usize,
    pub end: usize,
    /// Which recognizer found it.
    pub recognizer: &'static str,
}

/// What the recognizers look for beyond their built-in patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecognizerConfig {
    /// DNS suffixes of the institution's own hosts (`corp.example.eu`): any name under them is
    /// a host.
    pub internal_suffixes: Vec<String>,
    /// Values that stay in clear (public resolvers, well-known services).
    pub allow: Vec<String>,
    /// Entity types not to look for.
    pub disabled: Vec<Entity>,
    /// Structured fields (by name, case-insensitive) whose whole value is always this entity,
    /// whatever the built-in field names say.
    pub fields: Vec<(String, Entity)>,
    /// Structured fields never scanned (hashes, GUIDs, fields known to hold nothing personal).
    pub skip_fields: Vec<String>,
}

/// What to do with a structured field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// Its whole value is this entity.
    Whole(Entity),
    /// Scan it as free text.
    Scan,
    /// Leave it as it is.
    Skip,
}

type Check = fn(&str) -> bool;

struct Pattern {
    name: &'static str,
    entity: Entity,
    regex: Regex,
    /// The capture group holding the entity (0: the whole match).
    group: usize,
    /// Where the entity starts inside the whole match, for a pattern whose entity is a suffix of
    /// its match (then searched without capture groups, which is several times faster).
    tail: Option<fn(&str) -> usize>,
    /// Its place in [`Recognizers::screen`], if it is screened.
    screened: Option<usize>,
    check: Option<Check>,
    /// Words one of which must occur shortly before the match (case-insensitive).
    context: &'static [&'static str],
    /// What a text must contain for the pattern to have a chance, checked before running it.
    needs: Needs,
    /// Whether the pattern reads across lines ([`spans_lines`], or context words looked for
    /// before and after a match): searched in the whole text, the others line by line.
    whole: bool,
}

/// Whether a regular expression can match a line break, or depends on where its text starts
/// or ends (`^`, `$`, `\A`, `\z` outside multi-line mode): searched in a line on its own, it
/// could find what it does not find in the whole text, or miss what it finds there. Word
/// boundaries look at one character, and a line break is no word character, so they read a
/// line alone as they read it in its text. A pattern that does not parse counts as spanning.
fn spans_lines(pattern: &str) -> bool {
    use regex_syntax::hir::{Class, Hir, HirKind, Look};
    fn walk(h: &Hir) -> bool {
        match h.kind() {
            HirKind::Empty => false,
            HirKind::Literal(l) => l.0.contains(&b'\n'),
            HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| r.start() <= '\n' && '\n' <= r.end()),
            HirKind::Class(Class::Bytes(c)) => c.ranges().iter().any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
            HirKind::Look(look) => matches!(look, Look::Start | Look::End),
            HirKind::Repetition(r) => walk(&r.sub),
            HirKind::Capture(c) => walk(&c.sub),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(walk),
        }
    }
    regex_syntax::Parser::new()
        .parse(pattern)
        .ok()
        .is_none_or(|hir| walk(&hir))
}

/// Cheap facts about a text, computed in one pass, that rule recognizers out before their
/// regular expression runs (most strings in an event hold nothing personal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Features {
    digits: usize,
    longest_digit_run: usize,
    at: bool,
    colon: bool,
    colons: usize,
    dots: usize,
    dot: bool,
    backslash: bool,
    slash: bool,
    equals: bool,
    dash: bool,
    dashes: usize,
    /// `::` (a compressed IPv6 address).
    double_colon: bool,
    dollar: bool,
    upper: usize,
    plus_or_zero: bool,
}

impl Features {
    /// The features of a text made of the texts of `self` and `other`, with a line break
    /// between them (which no feature counts, and which ends a run of digits).
    fn merge(&mut self, other: &Features) {
        // Every field named, so that a new one cannot be left out of the merge.
        let Features {
            digits,
            longest_digit_run,
            at,
            colon,
            colons,
            dots,
            dot,
            backslash,
            slash,
            equals,
            dash,
            dashes,
            double_colon,
            dollar,
            upper,
            plus_or_zero,
        } = *other;
        self.digits += digits;
        self.longest_digit_run = self.longest_digit_run.max(longest_digit_run);
        self.at |= at;
        self.colon |= colon;
        self.colons += colons;
        self.dots += dots;
        self.dot |= dot;
        self.backslash |= backslash;
        self.slash |= slash;
        self.equals |= equals;
        self.dash |= dash;
        self.dashes += dashes;
        self.double_colon |= double_colon;
        self.dollar |= dollar;
        self.upper += upper;
        self.plus_or_zero |= plus_or_zero;
    }

    fn of(text: &str) -> Features {
        let mut f = Features::default();
        let mut run = 0;
        let mut last = 0u8;
        for &b in text.as_bytes() {
            let before = std::mem::replace(&mut last, b);
            if b.is_ascii_digit() {
                f.digits += 1;
                run += 1;
                f.longest_digit_run = f.longest_digit_run.max(run);
                continue;
            }
            run = 0;
            match b {
                b'@' => f.at = true,
                b':' => {
                    f.colon = true;
                    f.colons += 1;
                    if before == b':' {
                        f.double_colon = true;
                    }
                }
                b'.' => {
                    f.dot = true;
                    f.dots += 1;
                }
                b'\\' => f.backslash = true,
                b'/' => f.slash = true,
                b'=' => f.equals = true,
                b'-' => {
                    f.dash = true;
                    f.dashes += 1;
                }
                b'$' => f.dollar = true,
                b'+' => f.plus_or_zero = true,
                b'A'..=b'Z' => f.upper += 1,
                _ => {}
            }
        }
        f
    }
}

/// A set of entity types, one bit each.
#[derive(Debug, Clone, Copy, Default)]
struct Disabled(u32);

impl Disabled {
    fn of(entities: &[Entity]) -> Disabled {
        Disabled(entities.iter().fold(0, |bits, e| bits | 1 << *e as u32))
    }

    fn has(self, e: Entity) -> bool {
        self.0 & (1 << e as u32) != 0
    }
}

/// What a pattern needs of a text.
#[derive(Debug, Clone, Copy)]
enum Needs {
    Digits(usize),
    At,
    DotAndDigits,
    Dot,
    Backslash,
    Slash,
    Equals,
    Dollar,
    Upper(usize),
    ColonOrEquals,
    Phone,
    /// A run of at least this many digits.
    Run(usize),
    /// What an IPv6 address has: `::`, or six colons or more.
    Colons,
    /// At least this many `:` and `-` together (a MAC address has five).
    Separators(usize),
    /// One of these byte strings, as written.
    Any(&'static [&'static str]),
    /// One of these lower-case ASCII words, in any case.
    AnyIgnoreCase(&'static [&'static str]),
}

/// Whether `hay` holds `needle` (lower-case ASCII) in any case, without copying `hay`.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else { return true };
    let mut at = 0;
    while let Some(i) = memchr::memchr2(first, first.to_ascii_uppercase(), &hay[at..]) {
        let start = at + i;
        if hay.len() - start >= needle.len() && hay[start..start + needle.len()].eq_ignore_ascii_case(needle) {
            return true;
        }
        at = start + 1;
    }
    false
}

impl Needs {
    fn met(self, f: &Features, text: &str) -> bool {
        match self {
            Needs::Digits(n) => f.digits >= n,
            Needs::At => f.at,
            Needs::DotAndDigits => f.dots >= 3 && f.digits >= 4,
            Needs::Run(n) => f.longest_digit_run >= n,
            Needs::Colons => f.double_colon || f.colons >= 6,
            Needs::Separators(n) => f.colons + f.dashes >= n,
            Needs::Any(words) => words
                .iter()
                .any(|w| memchr::memmem::find(text.as_bytes(), w.as_bytes()).is_some()),
            Needs::AnyIgnoreCase(words) => words
                .iter()
                .any(|w| contains_ignore_case(text.as_bytes(), w.as_bytes())),
            Needs::Dot => f.dot,
            Needs::Backslash => f.backslash,
            Needs::Slash => f.slash,
            Needs::Equals => f.equals,
            Needs::Dollar => f.dollar,
            Needs::Upper(n) => f.upper >= n,
            Needs::ColonOrEquals => f.colon || f.equals,
            Needs::Phone => f.digits >= 8 && (f.plus_or_zero || f.longest_digit_run >= 2),
        }
    }
}

/// An IPv4 address in text.
pub const IPV4: &str = r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b";
/// An IPv6 address in text (candidates; parsed before use). The first alternative is the form
/// ending in an IPv4 address (RFC 4291 section 2.2, form 3: `::ffff:192.0.2.1`,
/// `64:ff9b::192.0.2.1`), so that it is taken whole rather than cut after its first group
/// with the IPv4 address's last three numbers left in clear.
pub const IPV6: &str = concat!(
    r"(?i)(?:(?:[0-9a-f]{1,4}:){1,6}:?|::)(?:[0-9a-f]{1,4}:){0,5}",
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b",
    r"|(?:[0-9a-f]{1,4}:){1,7}(?:(?::[0-9a-f]{1,4}){1,6}|[0-9a-f]{1,4}|:)|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4}"
);

/// How far before a match context words are looked for, in bytes.
const CONTEXT_WINDOW: usize = 48;

/// Accounts and authorities that are not people.
const NOT_USERS: &[&str] = &[
    "system",
    "local service",
    "network service",
    "anonymous logon",
    "nt authority",
    "builtin",
    "nt service",
    "window manager",
    "font driver host",
    "public",
    "default",
    "default user",
    "all users",
    "-",
];

fn ip_check(s: &str) -> bool {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => !a.is_unspecified() && !a.is_broadcast(),
        Ok(IpAddr::V6(a)) => !a.is_unspecified() && s.matches(':').count() >= 2,
        Err(_) => false,
    }
}

fn ipv6_check(s: &str) -> bool {
    s.parse::<Ipv6Addr>().is_ok_and(|a| !a.is_unspecified()) && s.matches(':').count() >= 2
}

fn phone_check(s: &str) -> bool {
    let n = s.bytes().filter(u8::is_ascii_digit).count();
    (9..=15).contains(&n)
}

macro_rules! natid {
    ($name:ident, $country:literal) => {
        fn $name(s: &str) -> bool {
            checks::national_id($country, s)
        }
    };
}
natid!(de_id, "DE");
natid!(fr_id, "FR");
natid!(it_id, "IT");
natid!(es_id, "ES");
natid!(nl_id, "NL");
natid!(be_id, "BE");
natid!(pl_id, "PL");
natid!(at_id, "AT");
natid!(pt_id, "PT");
natid!(se_id, "SE");
natid!(fi_id, "FI");
natid!(dk_id, "DK");
natid!(ie_id, "IE");

/// The built-in free-text recognizers, in priority order (earlier wins an overlap of equal
/// start).
fn builtin() -> Result<Vec<Pattern>, regex::Error> {
    let p = |name, entity, re: &str, group, check: Option<Check>, context: &'static [&'static str], needs| {
        let re = ascii_boundaries(re);
        Ok::<_, regex::Error>(Pattern {
            name,
            entity,
            regex: Regex::new(&re)?,
            group,
            tail: None,
            screened: None,
            check,
            context,
            needs,
            whole: !context.is_empty() || spans_lines(&re),
        })
    };
    use Entity::*;
    Ok(vec![
        p(
            "private-key",
            Secret,
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            0,
            None,
            &[],
            Needs::Upper(10),
        )?,
        p(
            "api-key",
            Secret,
            r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|rmp_[0-9a-f]{64}|glpat-[A-Za-z0-9_-]{20})\b",
            0,
            None,
            &[],
            Needs::Any(&["AKIA", "gh", "xox", "sk-", "AIza", "rmp_", "glpat-"]),
        )?,
        p(
            "jwt",
            Secret,
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            0,
            None,
            &[],
            Needs::Dot,
        )?,
        p(
            "bearer",
            Secret,
            r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{12,}=*)",
            1,
            None,
            &[],
            Needs::AnyIgnoreCase(&["bearer", "basic"]),
        )?,
        p(
            "url-password",
            Secret,
            r"(?i)\b[a-z][a-z0-9+.-]{1,15}://[^/\s:@]{1,64}:([^/\s@]{1,128})@",
            1,
            None,
            &[],
            Needs::At,
        )?,
        p(
            "url-user",
            User,
            r"(?i)\b[a-z][a-z0-9+.-]{1,15}://([^/\s:@]{1,64}):[^/\s@]{1,128}@",
            1,
            None,
            &[],
            Needs::At,
        )?,
        p(
            "query-secret",
            Secret,
            r"(?i)[?&](?:token|access_token|id_token|refresh_token|api_key|apikey|key|sig|signature|password|passwd|secret|client_secret|code|session|sessionid|sid)=([^&\s#'\x22]+)",
            1,
            None,
            &[],
            Needs::Equals,
        )?,
        p(
            "assigned-secret",
            Secret,
            r#"(?i)\b(?:password|passwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|auth[_-]?token|access[_-]?token|client[_-]?secret)["']?\s*[=:]\s*("[^"\n]{1,256}"|'[^'\n]{1,256}'|[^\s&,;"']{1,256})"#,
            1,
            None,
            &[],
            Needs::ColonOrEquals,
        )?,
        p(
            "email",
            Email,
            r"(?i)\b[a-z0-9._%+-]{1,64}@(?:[a-z0-9-]{1,63}\.)+[a-z]{2,24}\b",
            0,
            None,
            &[],
            Needs::At,
        )?,
        p(
            "iban",
            Iban,
            r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            0,
            Some(checks::iban),
            &[],
            Needs::Digits(10),
        )?,
        p(
            "card",
            Card,
            r"\b(?:\d[ -]?){11,18}\d\b",
            0,
            Some(checks::card),
            &[],
            Needs::Digits(12),
        )?,
        p(
            "fr-nir",
            NationalId,
            r"\b[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b",
            0,
            Some(fr_id),
            &[],
            Needs::Digits(13),
        )?,
        p(
            "it-codice-fiscale",
            NationalId,
            r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b",
            0,
            Some(it_id),
            &[],
            Needs::Upper(9),
        )?,
        p(
            "es-dni-nie",
            NationalId,
            r"\b(?:\d{8}|[XYZ]\d{7})-?[A-Z]\b",
            0,
            Some(es_id),
            &[],
            Needs::Run(7),
        )?,
        p(
            "fi-hetu",
            NationalId,
            r"\b\d{6}[-+ABCDEFYXWVU]\d{3}[0-9A-Y]\b",
            0,
            Some(fi_id),
            &[],
            Needs::Run(6),
        )?,
        p(
            "be-rrn",
            NationalId,
            r"\b\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}\b",
            0,
            Some(be_id),
            &[],
            Needs::Digits(11),
        )?,
        p(
            "be-rrn-plain",
            NationalId,
            r"\b\d{11}\b",
            0,
            Some(be_id),
            &[
                "rijksregister",
                "registre national",
                "national number",
                "nn",
                "insz",
                "niss",
            ],
            Needs::Run(11),
        )?,
        p(
            "de-steuer-id",
            NationalId,
            r"\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b",
            0,
            Some(de_id),
            &["steuer", "idnr", "identifikationsnummer", "tin", "tax id"],
            Needs::Digits(11),
        )?,
        p(
            "pl-pesel",
            NationalId,
            r"\b\d{11}\b",
            0,
            Some(pl_id),
            &["pesel"],
            Needs::Run(11),
        )?,
        p(
            "nl-bsn",
            NationalId,
            r"\b\d{4}\.?\d{2}\.?\d{3}\b",
            0,
            Some(nl_id),
            &["bsn", "burgerservicenummer", "sofinummer"],
            Needs::Digits(9),
        )?,
        p(
            "pt-nif",
            NationalId,
            r"\b\d{9}\b",
            0,
            Some(pt_id),
            &["nif", "contribuinte", "nipc"],
            Needs::Run(9),
        )?,
        p(
            "at-svnr",
            NationalId,
            r"\b\d{4} ?\d{6}\b",
            0,
            Some(at_id),
            &["svnr", "sv-nr", "sozialversicherung", "versicherungsnummer"],
            Needs::Run(4),
        )?,
        p(
            "se-personnummer",
            NationalId,
            r"\b(?:\d{2})?\d{6}[-+]\d{4}\b",
            0,
            Some(se_id),
            &["personnummer", "personnr", "pnr"],
            Needs::Run(6),
        )?,
        p(
            "dk-cpr",
            NationalId,
            r"\b\d{6}-\d{4}\b",
            0,
            Some(dk_id),
            &["cpr", "personnummer"],
            Needs::Run(6),
        )?,
        p(
            "ie-ppsn",
            NationalId,
            r"\b\d{7}[A-W][ABHWTX]?\b",
            0,
            Some(ie_id),
            &["pps", "ppsn", "personal public service"],
            Needs::Run(7),
        )?,
        p("ipv4", Ip, IPV4, 0, Some(ip_check), &[], Needs::DotAndDigits)?,
        p("ipv6", Ip, IPV6, 0, Some(ipv6_check), &[], Needs::Colons)?,
        p(
            "mac",
            Mac,
            r"(?i)\b[0-9a-f]{2}(?:([:-])[0-9a-f]{2})(?:[:-][0-9a-f]{2}){4}\b",
            0,
            None,
            &[],
            Needs::Separators(5),
        )?,
        p(
            "windows-sid",
            Sid,
            r"\bS-1-5-21(?:-\d{1,10}){3}-\d{3,10}\b",
            0,
            None,
            &[],
            Needs::Digits(10),
        )?,
        p(
            "phone-international",
            Phone,
            r"(?:\+|\b00)[1-9]\d{0,2}(?:[ .\-/]?\(?\d{1,4}\)?){2,6}\b",
            0,
            Some(phone_check),
            &[],
            Needs::Phone,
        )?,
        p(
            "phone-fr",
            Phone,
            r"\b0[1-9](?:[ .-]?\d{2}){4}\b",
            0,
            None,
            &["tel", "tél", "phone", "mobile", "portable", "fax"],
            Needs::Digits(10),
        )?,
        p(
            "phone-national",
            Phone,
            r"\b0\d{2,4}[ /-]\d{3,8}(?:[ -]\d{2,5})?\b",
            0,
            Some(phone_check),
            &["tel", "phone", "mobile", "telefon", "handy", "fax", "tél"],
            Needs::Digits(7),
        )?,
        p(
            "phone-nanp",
            Phone,
            r"(?:\+?\b1[-. ])?(?:\(\d{3}\)|\b\d{3})[-. ]\d{3}[-. ]\d{4}(?:x\d{1,5})?\b",
            0,
            Some(phone_check),
            &[],
            Needs::Digits(10),
        )?,
        p(
            "phone-grouped",
            Phone,
            r"\b0\d{1,4}(?:[ .]\d{2,4}){2,4}\b",
            0,
            Some(phone_check),
            &[],
            Needs::Digits(9),
        )?,
        p(
            // `\\SRV-FILE-01\share`: the server of a UNC path (an address is left to the IP
            // recognizers).
            "unc-host",
            Host,
            r"(?:(?m:^)|[^\\\n])\\\\([A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63})*)(?:\\|(?m:$)|[[\s\x22']--\n])",
            1,
            Some(not_an_address),
            &[],
            Needs::Backslash,
        )?,
        with_tail(
            p(
                "domain-user",
                User,
                r"(?i)\b[a-z0-9][a-z0-9_.-]{0,62}(?:\\\\|\\)([a-z0-9][a-z0-9._-]{0,63})(?:\b|(?m:$))",
                1,
                None,
                &[],
                Needs::Backslash,
            )?,
            after_separator,
        ),
        p(
            "home-dir",
            User,
            r"/(?:home|Users)/([a-z_][a-z0-9_.-]{0,31})\b",
            1,
            None,
            &[],
            Needs::Slash,
        )?,
        p(
            "windows-profile",
            User,
            r"(?i)\b[a-z]:(?:\\\\|\\)users(?:\\\\|\\)([^\\\s\x22'/<>|:*?]{1,64})",
            1,
            None,
            &[],
            Needs::Backslash,
        )?,
        p(
            "ssh-user",
            User,
            r"(?:Accepted|Failed) [a-z-]+ for (?:invalid user )?([^\s]{1,64}) from",
            1,
            None,
            &[],
            Needs::Any(&["Accepted ", "Failed "]),
        )?,
        p(
            "session-user",
            User,
            r"(?:session (?:opened|closed) for user\s+|user=|USER=|by user\s+|logname=|ruser=|acct=)\x22?(?:[A-Za-z0-9._-]{1,64}\\{1,2})?([a-zA-Z0-9._-]{1,64})",
            1,
            None,
            &[],
            Needs::Any(&["session ", "user=", "USER=", "by user", "logname=", "acct="]),
        )?,
        p(
            "user-at-address",
            User,
            r"\b([a-z_][a-z0-9_.-]{0,31})@(?:\d{1,3}\.){3}\d{1,3}\b",
            1,
            None,
            &[],
            Needs::At,
        )?,
        p(
            "sudo-user",
            User,
            r"\bsudo(?:\[\d+\])?:\s+([a-z_][a-z0-9_.-]{0,31}) :",
            1,
            None,
            &[],
            Needs::Any(&["sudo"]),
        )?,
        p(
            // Common and combined log formats: `ip ident authuser [date]`.
            "access-log-user",
            User,
            r"^\S+ \S+ ([^\s\[\]\x22-][^\s\[\]\x22]{0,63}) \[\d{2}/[A-Z][a-z]{2}/\d{4}:",
            1,
            None,
            &[],
            Needs::Any(&["/"]),
        )?,
        p(
            // OpenVPN: `ip:port [common-name] Peer Connection`, `common-name/ip:port MULTI`.
            "vpn-user",
            User,
            r"(?:\d{1,3}\.){3}\d{1,3}:\d{1,5} \[([^\]\s]{1,64})\] ",
            1,
            None,
            &[],
            Needs::DotAndDigits,
        )?,
        p(
            "vpn-user",
            User,
            r"(?:^|\s)([A-Za-z0-9._@-]{1,64})/(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b",
            1,
            None,
            &[],
            Needs::DotAndDigits,
        )?,
        p(
            // DHCP servers: dnsmasq's `DHCPACK(eth0) ip mac name`, ISC's `… to mac (name) via`.
            "dhcp-host",
            Host,
            r"DHCP[A-Z]{3,8}\([^)]{1,32}\) (?:[\d.]{7,15} )?(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2} ([A-Za-z0-9][A-Za-z0-9_-]{0,62})\b",
            1,
            None,
            &[],
            Needs::Any(&["DHCP"]),
        )?,
        p(
            "dhcp-host",
            Host,
            r"(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2} \(([A-Za-z0-9][A-Za-z0-9_-]{0,62})\) via",
            1,
            None,
            &[],
            Needs::Any(&[" via"]),
        )?,
        p(
            "machine-account",
            Host,
            r"\b([A-Za-z0-9][A-Za-z0-9-]{0,14})\$",
            0,
            None,
            &[],
            Needs::Dollar,
        )?,
    ])
}

/// Gives a pattern whose entity ends its match the offset function that finds the entity's
/// start, so that it is searched without capture groups.
fn with_tail(mut pattern: Pattern, tail: fn(&str) -> usize) -> Pattern {
    pattern.tail = Some(tail);
    pattern
}

/// Where the account of a `DOMAIN\user` match starts: after its first separator, one
/// backslash or two (the domain holds none; the account starts with a letter or digit, so
/// two backslashes are both the separator).
fn after_separator(m: &str) -> usize {
    let at = m.find('\\').unwrap_or(0);
    at + if m[at + 1..].starts_with('\\') { 2 } else { 1 }
}

/// Writes every `\b` of a pattern as an ASCII word boundary, `(?-u:\b)`. A Unicode word
/// boundary keeps the fast automata from searching several patterns at once (three times
/// slower on real events). The two differ only beside a letter outside ASCII: `née4111…`
/// has an ASCII boundary before the digits and no Unicode one. An escaped backslash (`\\b`)
/// stays.
pub(crate) fn ascii_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some(next) => {
                out.push(c);
                out.push(next);
            }
            None => out.push(c),
        }
    }
    out
}

/// The recognizers searched together first (see [`Recognizers::screen`]): those whose
/// preconditions most strings of an event meet (digits, dots, dashes), and which rarely match.
const SCREENED: &[&str] = &[
    "iban",
    "card",
    "fr-nir",
    "it-codice-fiscale",
    "es-dni-nie",
    "fi-hetu",
    "be-rrn",
    "ipv4",
    "mac",
    "phone-international",
    "phone-nanp",
    "phone-grouped",
];

/// A UNC server that is not an IPv4 address (those are the IP recognizers' own).
fn not_an_address(v: &str) -> bool {
    v.parse::<std::net::Ipv4Addr>().is_err()
}

/// The recognizers, ready to scan.
pub struct Recognizers {
    patterns: Vec<Pattern>,
    /// The [`SCREENED`] patterns in one set: one pass over a text says which of them match it
    /// at all, and only those then search it one by one (most texts hold none of them, and
    /// one pass of the set costs about what one pattern costs).
    screen: RegexSet,
    fields: std::collections::HashMap<String, Entity>,
    skip_fields: HashSet<String>,
    /// Names under an internal suffix: the configured ones (any case) and the conventional
    /// ones of [`tables::INTERNAL_SUFFIXES`] (in one case throughout, so that .NET's
    /// `System.Management.Automation.Internal` is no host).
    hosts: Regex,
    /// The suffixes, each after its dot: a text holding none holds no internal host name
    /// (most strings), found by a vectorized search before `hosts` runs.
    host_suffixes: aho_corasick::AhoCorasick,
    /// The configured suffixes in lower case, each after its dot.
    configured_suffixes: Vec<String>,
    syslog: Regex,
    commands: commands::Commands,
    labels: labels::Labels,
    names: names::Names,
    allow: HashSet<String>,
    /// The entity types not looked for, one bit each (asked for every pattern of every string).
    disabled: Disabled,
}

/// Priorities of the table-driven recognizers' findings ([`resolve`]: below 9 is kept before
/// anything else, in order; the rest fills in where nothing overlaps).
const COMMAND_SECRET: usize = 3;
const COMMAND_ACCOUNT: usize = 5;
const LABELLED: usize = 6;
const SYSLOG_HOST: usize = 10;
const PERSON: usize = 95;
const CUED: usize = 100;

/// The host of a syslog header: RFC 3164 (`<13>Dec  5 10:00:01 db01 sshd[42]: …`, with or
/// without the priority) and RFC 5424 (`<13>1 2026-12-05T10:00:01Z db01 sshd 42 - …`).
const SYSLOG: &str = r"^(?:<\d{1,3}>)?(?:\d{1,2} )?(?:[A-Z][a-z]{2} [ 0-3]\d \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) ([A-Za-z0-9][A-Za-z0-9._-]{0,252}) [A-Za-z0-9_./()-]{1,64}(?:\[\d{1,10}\])?(?::| \S)";

/// Severity words an application log writes where syslog writes the host.
const LOG_LEVELS: &[&str] = &[
    "emerg",
    "emergency",
    "alert",
    "crit",
    "critical",
    "err",
    "error",
    "warn",
    "warning",
    "notice",
    "info",
    "debug",
    "trace",
    "fatal",
    "severe",
];

impl std::fmt::Debug for Recognizers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizers")
            .field("patterns", &self.patterns.iter().map(|p| p.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Recognizers {
    pub fn new(config: &RecognizerConfig) -> Result<Self, PrivacyError> {
        let mut patterns = builtin().map_err(|e| PrivacyError::Config(format!("built-in recognizer: {e}")))?;
        let mut screened = Vec::new();
        for p in patterns.iter_mut().filter(|p| SCREENED.contains(&p.name)) {
            p.screened = Some(screened.len());
            screened.push(p.regex.as_str().to_owned());
        }
        let screen =
            RegexSet::new(&screened).map_err(|e| PrivacyError::Config(format!("screened recognizers: {e}")))?;
        let configured: Vec<String> = config
            .internal_suffixes
            .iter()
            .map(|s| regex::escape(s.trim_start_matches('.')))
            .collect();
        let conventional = tables::INTERNAL_SUFFIXES.iter().map(|s| regex::escape(s));
        let alternatives: Vec<String> = configured.iter().cloned().chain(conventional).collect();
        // ASCII only, and labels of any length (those over 63 bytes are cut off after the
        // match): a bounded repetition multiplies the automaton's states.
        let hosts = Regex::new(&format!(
            r"(?i-u)\b(?:[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?\.)+(?:{})\b",
            alternatives.join("|")
        ))
        .map_err(|e| PrivacyError::Config(format!("internal suffixes: {e}")))?;
        let host_suffixes = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(
                config
                    .internal_suffixes
                    .iter()
                    .map(|s| s.trim_start_matches('.'))
                    .chain(tables::INTERNAL_SUFFIXES.iter().copied())
                    .map(|s| format!(".{s}")),
            )
            .map_err(|e| PrivacyError::Config(format!("internal suffixes: {e}")))?;
        let table = |e: String| PrivacyError::Config(format!("built-in recognizer tables: {e}"));
        Ok(Recognizers {
            patterns,
            screen,
            fields: config
                .fields
                .iter()
                .map(|(f, e)| (f.to_ascii_lowercase(), *e))
                .collect(),
            skip_fields: config.skip_fields.iter().map(|f| f.to_ascii_lowercase()).collect(),
            hosts,
            host_suffixes,
            configured_suffixes: config
                .internal_suffixes
                .iter()
                .map(|s| format!(".{}", s.trim_start_matches('.').to_ascii_lowercase()))
                .collect(),
            syslog: Regex::new(SYSLOG).map_err(|e| table(e.to_string()))?,
            commands: commands::Commands::new().map_err(table)?,
            labels: labels::Labels::new().map_err(table)?,
            names: names::Names::load(),
            allow: config.allow.iter().map(|a| a.to_ascii_lowercase()).collect(),
            disabled: Disabled::of(&config.disabled),
        })
    }

    /// Whether a name ends with an internal suffix (configured, or conventional as
    /// [`tables::INTERNAL_SUFFIXES`] lists them).
    pub fn is_internal_host(&self, name: &str) -> bool {
        self.internal_hosts(name)
            .next()
            .is_some_and(|(s, e)| s == 0 && e == name.len())
    }

    /// The spans of `text` that are names under an internal suffix.
    fn internal_hosts<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
        let candidates = self.host_suffixes.is_match(text).then(|| self.hosts.find_iter(text));
        candidates.into_iter().flatten().filter_map(move |m| {
            // A DNS label is at most 63 bytes: the name starts after a longer one.
            let start = m.start()
                + m.as_str()
                    .split('.')
                    .scan(0, |at, label| {
                        let begin = *at;
                        *at += label.len() + 1;
                        Some((begin, label.len()))
                    })
                    .filter(|(_, len)| *len > 63)
                    .last()
                    .map_or(0, |(begin, len)| begin + len + 1);
            let name = &text[start..m.end()];
            let lower = name.to_ascii_lowercase();
            let configured = self.configured_suffixes.iter().any(|s| lower.ends_with(s.as_str()));
            if !configured {
                // A conventional suffix, written in one case as host names are; never the
                // loopback name.
                let suffix = tables::INTERNAL_SUFFIXES
                    .iter()
                    .filter(|s| lower.ends_with(*s) && lower[..lower.len() - s.len()].ends_with('.'))
                    .map(|s| &name[name.len() - s.len()..])
                    .max_by_key(|s| s.len())?;
                let one_case = suffix == suffix.to_ascii_lowercase() || suffix == suffix.to_ascii_uppercase();
                let first = name.split('.').next().unwrap_or_default();
                if !one_case
                    || first.eq_ignore_ascii_case("localhost")
                    || !name.bytes().any(|b| b.is_ascii_alphabetic())
                    || !name.contains('.')
                {
                    return None;
                }
            }
            // What remains after a long label must still be a name under the suffix.
            (name.contains('.') && start < m.end()).then_some((start, m.end()))
        })
    }

    /// How many given names and surnames the gazetteer holds.
    pub fn gazetteer_size(&self) -> (usize, usize) {
        self.names.size()
    }

    /// The rule for a structured field at `path` (`$.Event.EventData.TargetUserName`): the
    /// configured fields first, then the built-in names.
    pub fn field_rule(&self, path: &str) -> FieldRule {
        if !self.skip_fields.is_empty() || !self.fields.is_empty() {
            let name = path.rsplit(['.', '/']).next().unwrap_or(path).to_ascii_lowercase();
            if self.skip_fields.contains(&name) {
                return FieldRule::Skip;
            }
            if let Some(e) = self.fields.get(&name) {
                return FieldRule::Whole(*e);
            }
        }
        field_entity(path).map_or(FieldRule::Scan, FieldRule::Whole)
    }

    /// Whether `value` is allow-listed (stays in clear).
    pub fn allowed(&self, value: &str) -> bool {
        self.allow.contains(&value.to_ascii_lowercase())
    }

    /// Every finding in `text`, in order, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.search(text, true, None)
    }

    /// [`Recognizers::find`], with the scans of `text`'s lines remembered in `lines` (and taken
    /// from it): the lines of Windows' rendered messages and PowerShell's context recur from
    /// event to event while the texts around them differ.
    pub(crate) fn find_remembering(&self, text: &str, lines: &LineMemo) -> Vec<Finding> {
        self.search(text, true, Some(lines))
    }

    /// [`Recognizers::find`], with the shortcuts (`fast`: the screening set, searches without
    /// capture groups) or without them, which must find the same (tested).
    ///
    /// A text is read line by line ([`lines`]), except by the patterns that read across lines
    /// ([`Pattern::whole`]) and the command-line shapes, which read the whole text: no other
    /// recognizer finds a value across a line break, so a line's findings depend on nothing but
    /// the line, and a line seen before need not be scanned again.
    fn search(&self, text: &str, fast: bool, memo: Option<&LineMemo>) -> Vec<Finding> {
        let mut found: Vec<Found> = Vec::new();
        if memchr::memchr(b'\n', text.as_bytes()).is_none() {
            // One line: every recognizer reads it at once (and the caller remembers it whole,
            // if at all).
            let features = Features::of(text);
            if self.scan_line_into(text, &features, fast, Reads::Everything, &mut found) {
                self.shapes(text, &mut found);
            }
            return resolve(found);
        }
        let mut features = Features::default();
        let mut shapes = false;
        for (at, line) in lines(text) {
            let mut take = |scan: &LineScan| {
                features.merge(&scan.features);
                shapes |= scan.shapes;
                found.extend(scan.found.iter().map(|f| f.moved(at)));
            };
            match memo {
                Some(memo) if line.len() <= LINE_MAX_LEN => {
                    let lock = || memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let hit = lock().get(line).cloned();
                    let scan = hit.unwrap_or_else(|| {
                        let scan = std::sync::Arc::new(self.scan_line(line, fast));
                        lock().insert(line.into(), scan.clone(), line.len());
                        scan
                    });
                    take(&scan);
                }
                _ => take(&self.scan_line(line, fast)),
            }
        }
        // What reads across lines reads the whole text.
        self.patterns(text, &features, fast, Reads::Whole, &mut found);
        if shapes {
            self.shapes(text, &mut found);
        }
        resolve(found)
    }

    /// What the recognizers that read line by line find in `line`.
    fn scan_line(&self, line: &str, fast: bool) -> LineScan {
        let features = Features::of(line);
        let mut found = Vec::new();
        let shapes = self.scan_line_into(line, &features, fast, Reads::Line, &mut found);
        LineScan {
            found: found.into_boxed_slice(),
            features,
            shapes,
        }
    }

    /// The findings in `line` (whose features are `features`) of the patterns `reads` names and
    /// of the table-driven recognizers; returns whether the words of the command-line shapes
    /// occur in it.
    fn scan_line_into(
        &self,
        line: &str,
        features: &Features,
        fast: bool,
        reads: Reads,
        found: &mut Vec<Found>,
    ) -> bool {
        self.patterns(line, features, fast, reads, found);
        if !self.disabled.has(Entity::Host) {
            for (start, end) in self.internal_hosts(line) {
                if !self.allowed(&line[start..end]) {
                    found.push(Found {
                        finding: Finding {
                            entity: Entity::Host,
                            start,
                            end,
                            recognizer: "internal-host",
                        },
                        // After secrets and e-mail addresses, before everything else.
                        priority: 9,
                        rank: Rank::Table,
                    });
                }
            }
        }
        let mut extra: Vec<commands::Found> = Vec::new();
        self.syslog_hosts(line, &mut extra);
        let shapes = self.commands.find_in_line(line, &mut extra);
        self.labels.find(line, &self.names, &mut extra);
        if features.upper > 0 && !self.disabled.has(Entity::Person) {
            self.names.find(line, &mut extra);
        }
        self.tabled(line, extra, found);
        shapes
    }

    /// What the command-line shapes find in `text` (a whole text: a shape may continue on the
    /// next line).
    fn shapes(&self, text: &str, found: &mut Vec<Found>) {
        let mut extra = Vec::new();
        self.commands.shapes(text, &mut extra);
        self.tabled(text, extra, found);
    }

    /// The findings of the patterns `reads` names.
    fn patterns(&self, text: &str, features: &Features, fast: bool, reads: Reads, found: &mut Vec<Found>) {
        let mut lower: Option<String> = None;
        let mut screened: Option<regex::SetMatches> = None;
        for (priority, p) in self.patterns.iter().enumerate() {
            let read = match reads {
                Reads::Everything => true,
                Reads::Line => !p.whole,
                Reads::Whole => p.whole,
            };
            if !read || self.disabled.has(p.entity) || !p.needs.met(features, text) {
                continue;
            }
            if let Some(i) = p.screened
                && fast
                && !screened.get_or_insert_with(|| self.screen.matches(text)).matched(i)
            {
                continue;
            }
            if !p.context.is_empty() {
                let lower = lower.get_or_insert_with(|| text.to_lowercase());
                if !p.context.iter().any(|w| lower.contains(w)) {
                    continue;
                }
            }
            let mut consider = |start: usize, end: usize| {
                let value = &text[start..end];
                if p.check.is_some_and(|check| !check(value))
                    || (!p.context.is_empty() && !has_context(text, start, end, p.context))
                    || (p.entity == Entity::User && NOT_USERS.contains(&value.to_ascii_lowercase().as_str()))
                    || self.allowed(value)
                {
                    return;
                }
                found.push(Found {
                    finding: Finding {
                        entity: p.entity,
                        start,
                        end,
                        recognizer: p.name,
                    },
                    priority,
                    rank: Rank::Pattern,
                });
            };
            if let Some(tail) = p.tail.filter(|_| fast) {
                for m in p.regex.find_iter(text) {
                    let start = m.start() + tail(m.as_str());
                    if p.name == "domain-user" && (in_path(text, m.start(), m.end()) || after_authority(&text[..start]))
                    {
                        continue;
                    }
                    consider(start, m.end());
                }
            } else if p.group == 0 {
                // No capture groups needed: the faster search.
                for m in p.regex.find_iter(text) {
                    // `ws01$` is a machine account; `\\srv\c$` and `ADMIN$` are shares.
                    if p.name == "machine-account"
                        && (text[..m.start()].ends_with('\\')
                            || m.len() < 3
                            || ["admin$", "ipc$", "print$"].contains(&m.as_str().to_ascii_lowercase().as_str()))
                    {
                        continue;
                    }
                    consider(m.start(), m.end());
                }
            } else {
                // Most strings hold no match: finding that out costs no capture slots (setting
                // them up for every pattern and string was a fifth of the time).
                if !p.regex.is_match(text) {
                    continue;
                }
                for caps in p.regex.captures_iter(text) {
                    let (Some(whole), Some(m)) = (caps.get(0), caps.get(p.group)) else {
                        continue;
                    };
                    if p.name == "domain-user"
                        && (in_path(text, whole.start(), m.end()) || after_authority(&text[..m.start()]))
                    {
                        continue;
                    }
                    consider(m.start(), m.end());
                }
            }
        }
    }

    /// The host of a syslog header at the start of `text`'s lines (a line may hold a record of
    /// its own, as logs pasted into a message do).
    fn syslog_hosts(&self, text: &str, extra: &mut Vec<commands::Found>) {
        let mut line_start = 0;
        for line in text.split('\n') {
            if let Some(caps) = self.syslog.captures(line)
                && let Some(h) = caps.get(1)
                && h.as_str().parse::<IpAddr>().is_err()
                && h.as_str() != "-"
                && !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(h.as_str()))
            {
                extra.push((
                    Entity::Host,
                    line_start + h.start(),
                    line_start + h.end(),
                    "syslog-host",
                ));
            }
            line_start += line.len() + 1;
        }
    }

    /// The findings of the table-driven recognizers, `extra`, with their priorities.
    fn tabled(&self, text: &str, extra: Vec<commands::Found>, found: &mut Vec<Found>) {
        for (entity, start, end, recognizer) in extra {
            if self.disabled.has(entity) || start >= end || self.allowed(&text[start..end]) {
                continue;
            }
            let command = matches!(
                recognizer,
                "command-line-secret"
                    | "command-line-account"
                    | "impacket-target"
                    | "powershell-securestring"
                    | "powershell-credential"
                    | "url-token"
                    | "env-secret"
            );
            let priority = match recognizer {
                _ if command && entity == Entity::Secret => COMMAND_SECRET,
                _ if command => COMMAND_ACCOUNT,
                "label" if !matches!(entity, Entity::User | Entity::Host | Entity::Person) => LABELLED,
                "syslog-host" => SYSLOG_HOST,
                "person-name" => PERSON,
                _ => CUED,
            };
            found.push(Found {
                finding: Finding {
                    entity,
                    start,
                    end,
                    recognizer,
                },
                priority,
                rank: Rank::Table,
            });
        }
    }
}

/// Which patterns a scan runs.
#[derive(Debug, Clone, Copy)]
enum Reads {
    /// All: the text is one line.
    Everything,
    /// Those that read line by line, in one line of a text.
    Line,
    /// Those that read across lines ([`Pattern::whole`]), in a whole text.
    Whole,
}

/// A finding before the overlaps are resolved.
#[derive(Debug, Clone)]
struct Found {
    finding: Finding,
    /// Lower wins an overlap ([`resolve`]).
    priority: usize,
    /// At equal start, priority and length, a pattern's finding wins.
    rank: Rank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Pattern,
    Table,
}

impl Found {
    /// The same finding in a text where its line starts at `at`.
    fn moved(&self, at: usize) -> Found {
        let mut f = self.clone();
        f.finding.start += at;
        f.finding.end += at;
        f
    }
}

/// What scanning one line found, and what the scan of its whole text needs of it.
#[derive(Debug)]
pub(crate) struct LineScan {
    /// The findings of the recognizers that read line by line, at offsets in the line.
    found: Box<[Found]>,
    features: Features,
    /// Whether the words of the command-line shapes occur in the line.
    shapes: bool,
}

/// Lines scanned lately, with what the scan found (see [`Recognizers::find_remembering`]).
pub(crate) type LineMemo = std::sync::Mutex<crate::recent::Recent<Box<str>, std::sync::Arc<LineScan>>>;

/// Longer lines are scanned every time.
const LINE_MAX_LEN: usize = 16 * 1024;

/// The lines of `text`, each with its offset: split at line breaks, the break left out (a
/// carriage return before it stays in its line), except after a line continued on the next
/// (ending in `\`, `` ` `` or `^`, as shells continue a command), which is kept with it.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let b = text.as_bytes();
    let mut start = 0;
    let mut from = 0;
    std::iter::from_fn(move || {
        if start > b.len() {
            return None;
        }
        loop {
            let Some(i) = memchr::memchr(b'\n', &b[from..]).map(|i| from + i) else {
                let line = (start, &text[start..]);
                start = b.len() + 1;
                return Some(line);
            };
            let body = b[start..i].strip_suffix(b"\r").unwrap_or(&b[start..i]);
            if matches!(body.last(), Some(b'\\' | b'`' | b'^')) {
                from = i + 1;
                continue;
            }
            let line = (start, &text[start..i]);
            start = i + 1;
            from = start;
            return Some(line);
        }
    })
}

/// Whether a `DOMAIN\\user` match spanning `start..end` is a step of a path instead: preceded by a
/// separator or a drive (`C:\\Windows\\System32`, `\\\\srv\\share`), or followed by one.
fn in_path(text: &str, start: usize, end: usize) -> bool {
    let before = &text[..start];
    if before.ends_with(['\\', '/', '.']) || text[end..].starts_with(['\\', '/']) {
        return true;
    }
    // The argument the match sits in (since the last quote, `=`, ` /` or ` -` option marker):
    // if it began as a drive or UNC path, this is a path with spaces (`C:\\Program
    // Files\\Microsoft Office`), not an account.
    let segment = &before[argument_start(before.as_bytes())..];
    let drive = segment
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_alphabetic() && w[1] == b':' && w[2] == b'\\');
    // In a key, the step that holds the match is a name (`Trust Providers`), not a sentence
    // that names an account after the key (`… set by CORP\\dave`).
    let step = &before[before.rfind('\\').map_or(0, |i| i + 1)..];
    // The key's root may be the match's own first step (`TargetObject: HKLM\\SOFTWARE`).
    let key = &text[start - segment.len()..end];
    // A step of many words is a key's too when each is capitalized (`Windows Live ID Token
    // Issuer`), as a sentence's are not.
    let key_step = step.matches(' ').count() <= 2
        || step
            .split(' ')
            .filter(|w| !w.is_empty())
            .all(|w| w.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()));
    drive || segment.trim_start().starts_with("\\\\") || (holds_registry_key(key) && key_step)
}

/// Whether text holds a registry key's path (`HKLM\`, `HKU\`, `HKEY_LOCAL_MACHINE\`,
/// `\REGISTRY\`, as a word of its own: `TargetObject: HKLM\…`), whose steps may hold spaces
/// (`…\Trust Providers\Software Publishing`) and are never accounts.
fn holds_registry_key(text: &str) -> bool {
    const ROOTS: [&str; 5] = ["hklm", "hkcu", "hku", "hkcr", "hkcc"];
    let b = text.as_bytes();
    memchr::memchr_iter(b'\\', b).any(|j| {
        // The word before the backslash, and what comes before that word.
        let start = b[..j]
            .iter()
            .rposition(|c| !c.is_ascii_alphanumeric() && *c != b'_')
            .map_or(0, |i| i + 1);
        let word = &text[start..j];
        let alone = start == 0 || (!b[start - 1].is_ascii_alphanumeric() && b[start - 1] != b'\\');
        let root = ROOTS.iter().any(|r| word.eq_ignore_ascii_case(r))
            || word.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("hkey_"));
        (alone && root)
            || (start > 0
                && b[start - 1] == b'\\'
                && word.eq_ignore_ascii_case("registry")
                && (start == 1 || b[start - 2] != b'\\'))
    })
}

/// Windows' authorities whose accounts are the system's own (services, the virtual accounts
/// of the desktop window manager and the font driver host, built-in groups, application
/// pools), never a person's.
const AUTHORITIES: &[&str] = &[
    "nt authority",
    "nt service",
    "builtin",
    "window manager",
    "font driver host",
    "iis apppool",
    "nt virtual machine",
];

/// Whether `before` ends with one of [`AUTHORITIES`] and its separator (`NT AUTHORITY\`).
fn after_authority(before: &str) -> bool {
    let name = before.trim_end_matches('\\');
    name.len() < before.len()
        && AUTHORITIES.iter().any(|a| {
            name.len() >= a.len()
                && name.is_char_boundary(name.len() - a.len())
                && name[name.len() - a.len()..].eq_ignore_ascii_case(a)
                && name[..name.len() - a.len()]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric())
        })
}

/// Whether `text` starts with one of [`AUTHORITIES`] and its separator.
pub(crate) fn starts_with_authority(text: &str) -> bool {
    AUTHORITIES
        .iter()
        .any(|a| text.get(..a.len()).is_some_and(|t| t.eq_ignore_ascii_case(a)) && text[a.len()..].starts_with('\\'))
}

/// Where the last argument of `before` starts: after its last quote, `=`, ` /` or ` -`, found
/// in one backward pass that stops there (a message holds many paths, each of them checked).
fn argument_start(before: &[u8]) -> usize {
    (0..before.len())
        .rev()
        .find(|&j| match before[j] {
            b'"' | b'\'' | b'=' => true,
            b'/' | b'-' => j > 0 && before[j - 1] == b' ',
            _ => false,
        })
        .map_or(0, |j| j + 1)
}

/// Whether one of `words` occurs (as a word start) near the span `at..end` (before or after).
fn has_context(text: &str, at: usize, end: usize, words: &[&str]) -> bool {
    let mut from = at.saturating_sub(CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut to = (end + CONTEXT_WINDOW / 2).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    let window = format!("{} {}", &text[from..at], &text[end..to]).to_lowercase();
    words.iter().any(|w| {
        window
            .match_indices(w)
            .any(|(i, _)| i == 0 || !window[..i].chars().next_back().is_some_and(char::is_alphanumeric))
    })
}

/// Keeps the earliest finding, then the higher-priority one at equal start, then the longest,
/// then a pattern's;
/// drops whatever overlaps a kept one.
fn resolve(mut found: Vec<Found>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        let (fa, fb) = (&a.finding, &b.finding);
        fa.start
            .cmp(&fb.start)
            .then(a.priority.cmp(&b.priority))
            .then((fb.end - fb.start).cmp(&(fa.end - fa.start)))
            .then(a.rank.cmp(&b.rank))
    });
    // A secret or e-mail that starts later but covers an earlier, lower-priority finding wins:
    // first keep high-priority findings, then fill in the rest where they do not overlap.
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for pass in [true, false] {
        for Found {
            finding: f, priority, ..
        } in &found
        {
            let high = *priority < 9;
            if high != pass {
                continue;
            }
            if kept.iter().all(|k| f.end <= k.start || f.start >= k.end) {
                kept.push(f.clone());
            }
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

/// The entity a structured field holds, by its name (the last segment of its path).
pub fn field_entity(name: &str) -> Option<Entity> {
    // The last segment and its parent, split at `.` and `/` (a vectorized search: every field
    // of every event comes through here).
    fn split(s: &str) -> Option<(&str, &str)> {
        memchr::memrchr2(b'.', b'/', s.as_bytes()).map(|i| (&s[..i], &s[i + 1..]))
    }
    let (last, parent) = match split(name) {
        Some((before, last)) => (last, Some(split(before).map_or(before, |(_, p)| p))),
        None => (name, None),
    };
    let (mut a, mut b, mut c) = ([0; FOLDED], [0; FOLDED], [0; FOLDED]);
    // ECS and similar nest the meaning: `user.name`, `host.name`, `source.user.name`.
    let parent = parent.and_then(|p| folded(p, false, &mut a));
    match (parent, folded(last, false, &mut b)) {
        (Some("user" | "account"), Some("name" | "id")) => return Some(Entity::User),
        (Some("host" | "observer" | "device"), Some("name" | "hostname")) => return Some(Entity::Host),
        (Some("user" | "account"), Some("fullname" | "full_name" | "displayname")) => return Some(Entity::Person),
        _ => {}
    }
    Some(match folded(last, true, &mut c)? {
        "user" | "username" | "targetusername" | "subjectusername" | "accountname" | "samaccountname" | "srcuser"
        | "dstuser" | "suser" | "duser" | "login" | "logonuser" | "targetuser" | "callerusername" | "uname"
        | "userid" | "upn" | "userprincipalname" | "usrname" | "identusrname" => Entity::User,
        "computer"
        | "computername"
        | "hostname"
        | "host"
        | "workstationname"
        | "workstation"
        | "dvchost"
        | "shost"
        | "dhost"
        | "machinename"
        | "devicename"
        | "sourcehostname"
        | "destinationhostname"
        | "identhostname"
        | "srchostname"
        | "dsthostname" => Entity::Host,
        "ipaddress"
        | "srcip"
        | "destip"
        | "dstip"
        | "sourceaddress"
        | "destinationaddress"
        | "sourceip"
        | "destinationip"
        | "clientip"
        | "remoteaddr"
        | "remoteip"
        | "origh"
        | "resph"
        | "src"
        | "dst"
        | "ip"
        | "clientaddress"
        | "sourcenetworkaddress"
        | "ipv4"
        | "ipv6" => Entity::Ip,
        "email" | "mail" | "emailaddress" | "sender" | "recipient" | "mailfrom" | "rcptto" => Entity::Email,
        "fullname" | "displayname" | "userdisplayname" | "givenname" | "surname" | "firstname" | "lastname"
        | "personname" | "commonname" => Entity::Person,
        "password" | "passwd" | "pwd" | "secret" | "token" | "apikey" | "authorization" | "cookie" | "setcookie"
        | "privatekey" | "clientsecret" | "accesstoken" | "refreshtoken" | "sessiontoken" => Entity::Secret,
        "targetusersid" | "subjectusersid" | "usersid" | "sid" | "targetsid" => Entity::Sid,
        "macaddress" | "mac" | "srcmac" | "dstmac" => Entity::Mac,
        "phone" | "phonenumber" | "mobile" | "telephonenumber" => Entity::Phone,
        "iban" => Entity::Iban,
        _ => return None,
    })
}

/// Room for a field name folded for comparison: longer than any name [`field_entity`] knows.
const FOLDED: usize = 32;

/// `segment` in ASCII lower case, without `_` and `-` if `strip`, written in `buf` (field
/// names are looked up for every field of every event: no allocation); `None` if it does not
/// fit, for then it is no name [`field_entity`] knows.
fn folded<'b>(segment: &str, strip: bool, buf: &'b mut [u8; FOLDED]) -> Option<&'b str> {
    let mut n = 0;
    for &byte in segment.as_bytes() {
        if strip && matches!(byte, b'_' | b'-') {
            continue;
        }
        *buf.get_mut(n)? = byte.to_ascii_lowercase();
        n += 1;
    }
    // Only ASCII bytes were changed or left out: what remains is whole characters.
    std::str::from_utf8(&buf[..n]).ok()
}

/// Whether a structured value holds nothing personal however its field is named.
pub fn placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v == "-" || v == "?" || NOT_USERS.contains(&v.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The last segment and its parent are those `rsplit` gives.
        #[test]
        fn field_paths_split_as_rsplit_does(name in "[a-zA-Z_./-]{0,24}") {
            let mut segments = name.rsplit(['.', '/']);
            let last = segments.next().unwrap_or(&name);
            let parent = segments.next();
            let user = (parent.map(str::to_ascii_lowercase).as_deref(), last.to_ascii_lowercase().as_str())
                == (Some("user"), "name");
            if user {
                proptest::prop_assert_eq!(field_entity(&name), Some(Entity::User));
            }
            let suffixed = format!("{name}.user.name");
            proptest::prop_assert_eq!(field_entity(&suffixed), Some(Entity::User));
        }
    }

    #[test]
    fn field_names_map_to_entities_in_any_case_and_spelling() {
        for (name, want) in [
            ("TargetUserName", Some(Entity::User)),
            ("target_user-name", Some(Entity::User)),
            ("source.user.name", Some(Entity::User)),
            ("USER.ID", Some(Entity::User)),
            ("winlog.event_data.Workstation_Name", Some(Entity::Host)),
            ("host.hostname", Some(Entity::Host)),
            ("user.full_name", Some(Entity::Person)),
            ("id.orig_h", Some(Entity::Ip)),
            ("Image", None),
            ("a_very_long_field_name_that_is_no_known_name_at_all", None),
            ("x.a_very_long_parent_segment_beyond_the_buffer.name", None),
            ("Ünïcode", None),
            ("", None),
        ] {
            assert_eq!(field_entity(name), want, "{name}");
        }
    }

    #[test]
    fn the_gates_let_through_every_form_their_patterns_take() {
        assert!(contains_ignore_case(b"Authorization: BeArEr x", b"bearer"));
        assert!(!contains_ignore_case(b"Bea rer", b"bearer"));
        assert!(contains_ignore_case(b"b", b"b"));
        assert!(!contains_ignore_case(b"", b"b"));
        for (text, entity, value) in [
            (
                "Authorization: BeArEr abcdefghijklmnop",
                Entity::Secret,
                "abcdefghijklmnop",
            ),
            ("mac 00:0d:3a:13:e3:69 up", Entity::Mac, "00:0d:3a:13:e3:69"),
            ("mac 00-0d-3a:13-e3-69", Entity::Mac, "00-0d-3a:13-e3-69"),
            ("from fe80::1 to", Entity::Ip, "fe80::1"),
            ("from 2001:db8:0:0:0:0:0:1 to", Entity::Ip, "2001:db8:0:0:0:0:0:1"),
            ("Accepted password for alice from 10.0.0.1", Entity::User, "alice"),
            (
                "pam_unix(sudo:session): session opened for user root",
                Entity::User,
                "root",
            ),
            ("key AKIAABCDEFGHIJKLMNOP", Entity::Secret, "AKIAABCDEFGHIJKLMNOP"),
        ] {
            let found = kinds(text);
            assert!(
                found.iter().any(|(e, v)| *e == entity && v == value),
                "{text}: {found:?}"
            );
        }
        // A time has colons and dashes, but not what an IPv6 or MAC address needs.
        let f = Features::of("2026-11-22T10:01:02.123Z");
        assert!(!Needs::Colons.met(&f, "") && !Needs::Separators(5).met(&f, ""));
    }

    #[test]
    fn a_disabled_entity_type_is_never_found() {
        let text = "The analyst Jan Kowalski on db01.corp.example.eu mailed anna@example.org";
        let all = Recognizers::new(&RecognizerConfig {
            internal_suffixes: vec!["corp.example.eu".into()],
            ..RecognizerConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let some = Recognizers::new(&RecognizerConfig {
            internal_suffixes: vec!["corp.example.eu".into()],
            disabled: vec![Entity::Person, Entity::Host],
            ..RecognizerConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let entities = |r: &Recognizers| r.find(text).into_iter().map(|f| f.entity).collect::<Vec<_>>();
        assert_eq!(entities(&all), [Entity::Person, Entity::Host, Entity::Email]);
        assert_eq!(entities(&some), [Entity::Email]);
    }

    #[test]
    fn an_internal_host_name_has_labels_of_at_most_63_bytes() {
        let long = "a".repeat(64);
        let hosts = |text: &str| -> Vec<String> {
            kinds(text)
                .into_iter()
                .filter(|(e, _)| *e == Entity::Host)
                .map(|(_, v)| v)
                .collect()
        };
        assert_eq!(
            hosts(&format!("see {long}.db01.corp.example.eu now")),
            ["db01.corp.example.eu"]
        );
        assert!(hosts(&format!("see {long}.corp.example.eu now")).is_empty());
        assert_eq!(
            hosts("ping FS01.Corp.Example.EU and nas.LAN"),
            ["FS01.Corp.Example.EU", "nas.LAN"]
        );
        // A conventional suffix counts in one case only, as host names are written.
        assert!(hosts("the Server.Local file").is_empty());
    }

    #[test]
    fn every_line_of_a_text_may_start_with_a_syslog_header() {
        let text = "pasted by the analyst:\n<13>Dec  5 10:00:01 db01 sshd[42]: Accepted publickey\r\n\
                    <34>1 2026-12-05T10:00:02Z mail-gw postfix 7 - - relayed\nDec  5 10:00:03 ERROR sshd[1]: x";
        let hosts: Vec<String> = kinds(text)
            .into_iter()
            .filter(|(e, _)| *e == Entity::Host)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(hosts, ["db01", "mail-gw"]);
    }

    fn kinds(text: &str) -> Vec<(Entity, String)> {
        let r = Recognizers::new(&RecognizerConfig {
            internal_suffixes: vec!["corp.example.eu".into()],
            ..RecognizerConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        r.find(text)
            .into_iter()
            .map(|f| (f.entity, text[f.start..f.end].to_owned()))
            .collect()
    }

    #[test]
    fn security_log_lines() {
        assert_eq!(
            kinds("Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2"),
            [(Entity::User, "admin".into()), (Entity::Ip, "203.0.113.7".into())]
        );
        assert_eq!(
            kinds(r"CORP\alice logged on to ws-fin-07.corp.example.eu from fe80::1c2d:3e4f:5a6b:7c8d"),
            [
                (Entity::User, "alice".into()),
                (Entity::Host, "ws-fin-07.corp.example.eu".into()),
                (Entity::Ip, "fe80::1c2d:3e4f:5a6b:7c8d".into())
            ]
        );
        assert_eq!(
            kinds("GET https://bob:hunter2@api.example.com/x?access_token=abc123def&q=1 from 10.1.2.3"),
            [
                (Entity::User, "bob".into()),
                (Entity::Secret, "hunter2".into()),
                (Entity::Secret, "abc123def".into()),
                (Entity::Ip, "10.1.2.3".into())
            ]
        );
        assert_eq!(
            kinds("mail from jean.dupont@example.fr, IBAN FR14 2004 1010 0505 0001 3M02 606, tel +33 6 12 34 56 78"),
            [
                (Entity::Email, "jean.dupont@example.fr".into()),
                (Entity::Iban, "FR14 2004 1010 0505 0001 3M02 606".into()),
                (Entity::Phone, "+33 6 12 34 56 78".into())
            ]
        );
    }

    #[test]
    fn paths_are_not_accounts() {
        // The server of a UNC path is a host; no part of a path is an account.
        assert_eq!(
            kinds(r"C:\Windows\System32\cmd.exe /c copy \\srv\share\x.txt"),
            [(Entity::Host, "srv".to_owned())]
        );
        assert_eq!(kinds(r"net use /user:CORP\bob")[0].1, "bob");
        assert_eq!(kinds(r"C:\Users\carol\AppData\Local\Temp")[0].1, "carol");
        assert_eq!(
            kinds(r"7z a q4.7z \\SRV-FILE-01\Finance\*")[0],
            (Entity::Host, "SRV-FILE-01".into())
        );
        assert_eq!(kinds(r"net use \\fs01.corp\share")[0].1, "fs01.corp");
        assert!(kinds(r"copy \\10.1.2.3\c$\x").iter().all(|(e, _)| *e != Entity::Host));
        for line in [
            // A registry key's steps may hold spaces: none is an account.
            r"HKU\S-1-5-21-1-2-3-1106\Software\Microsoft\WinTrust\Trust Providers\Software Publishing",
            r"HKLM\System\CurrentControlSet\Services\Remote Access\Parameters",
            r"\REGISTRY\MACHINE\SOFTWARE\Some Vendor\Agent",
            // After a label, too (a Sysmon message's `TargetObject: HKLM\…`).
            r"TargetObject: HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
            r"Object Name: \REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\VSS\Diag\Registry Writer\THAW (Enter)",
            "\tObject Name:\t\t\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager\\Environment\r\n\tHandle ID:\t\t0x9bc",
            r"TargetObject: HKU\S-1-5-21-1-2-3-1106\SOFTWARE\Microsoft\SystemCertificates\Windows Live ID Token Issuer\CRLs",
            // The system's own accounts are nobody's.
            r"User: NT AUTHORITY\NETWORK SERVICE",
            r"TargetUser: NT AUTHORITY\LOCAL SERVICE",
            r"TargetUser: Window Manager\DWM-1",
            r"TargetUser: Font Driver Host\UMFD-0",
            r"Account: NT SERVICE\TrustedInstaller",
        ] {
            assert!(
                kinds(line).iter().all(|(e, _)| *e != Entity::User),
                "{line}: {:?}",
                kinds(line)
            );
        }
        // A path on the line before leaves an account on this one an account.
        assert_eq!(
            kinds("CallTrace: C:\\Windows\\SYSTEM32\\ntdll.dll+7e3db\r\nSourceUser: PANDALAB\\Administrator"),
            [(Entity::User, "Administrator".to_owned())]
        );
        assert_eq!(kinds(r"HKCU run key set by CORP\dave")[0].1, "dave");
        assert_eq!(kinds(r"HKLM\Software\Run value was set by CORP\erin")[0].1, "erin");
    }

    #[test]
    fn numbers_without_a_checksum_or_context_stay() {
        assert!(kinds("order 4111 1111 1111 1112 shipped; pid 123456789; port 443").is_empty());
        assert_eq!(kinds("BSN 111222333")[0].0, Entity::NationalId);
        assert!(
            kinds("ticket 111222333").is_empty(),
            "a valid BSN without context is not taken"
        );
        assert!(kinds("at 10:32:45 build 1.2.3").is_empty());
    }

    #[test]
    fn secrets_are_found_and_structured_names_map() {
        assert_eq!(
            kinds("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiJ.SflKxwRJSMeKKF2QT")[0].0,
            Entity::Secret
        );
        assert_eq!(kinds("key AKIAIOSFODNN7EXAMPLE used")[0].1, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(field_entity("Event.EventData.TargetUserName"), Some(Entity::User));
        assert_eq!(field_entity("id.orig_h"), Some(Entity::Ip));
        assert_eq!(field_entity("CommandLine"), None);
    }

    /// A secret's label before a yes or no answer names a setting, not a secret: Windows'
    /// process creation events (4688) say `Elevated Token: Yes`, which a triage needs.
    #[test]
    fn a_label_before_a_boolean_is_a_setting() {
        for setting in [
            "Elevated Token:\t\tYes",
            "Elevated Token:\t\tNo",
            "token: true",
            "API key: false",
        ] {
            assert!(kinds(setting).is_empty(), "{setting}: {:?}", kinds(setting));
        }
        assert_eq!(kinds("Token: Yes-1234abcd")[0].0, Entity::Secret);
        assert_eq!(kinds("password: yesyesyes")[0].1, "yesyesyes");
    }

    #[test]
    fn word_boundaries_become_ascii_and_escaped_backslashes_stay() {
        assert_eq!(ascii_boundaries(r"\b\d{2}\b"), r"(?-u:\b)\d{2}(?-u:\b)");
        assert_eq!(ascii_boundaries(r"a\\b"), r"a\\b");
        assert_eq!(
            ascii_boundaries(r"(?:\\\\|\\)([a-z])(?:\b|$)"),
            r"(?:\\\\|\\)([a-z])(?:(?-u:\b)|$)"
        );
        assert_eq!(ascii_boundaries("x\\"), "x\\");
    }

    #[test]
    fn the_account_of_a_domain_user_match_starts_after_its_separator() {
        assert_eq!(after_separator(r"CORP\alice"), 5);
        assert_eq!(after_separator(r"CORP\\alice"), 6);
        assert_eq!(after_separator(r"a.b-c\\d"), 7);
    }

    /// Pieces of telemetry: digits in every grouping, separators, paths, accounts, letters
    /// outside ASCII, and whole entities, so that random texts put screened patterns next to
    /// and inside each other.
    const PIECES: &[&str] = &[
        "0",
        "1",
        "4",
        "7",
        "9",
        "00",
        "06",
        "12",
        "123",
        "2020",
        "-",
        ".",
        ":",
        "::",
        " ",
        "/",
        "+",
        "(",
        ")",
        "\\",
        "\\\\",
        "$",
        "@",
        "=",
        "\r\n",
        "\"",
        "A",
        "Z",
        "DE",
        "FR",
        "é",
        "ß",
        "Ж",
        "née",
        "corp",
        "alice",
        "x",
        "C:\\Users\\",
        "CORP\\",
        "S-1-5-21-",
        "4111 1111 1111 1111",
        "DE89370400440532013000",
        "10.0.0.5",
        "fe80::1",
        "00:0d:3a:13:e3:69",
        "+33 6 12 34 56 78",
        "(555) 123-4567",
        "RSSMRA85T10A562S",
        "12345678Z",
        "131052-308T",
        "85.07.30-033.28",
        "1 85 05 78 006 084 36",
        "tel ",
        "{6a910b9d-498a-5ee0-c903-000000000400}",
        "ws01$",
        "\n",
        " \\\n",
        " `\r\n",
        "net use \\\\srv\\s ",
        " /user:",
        "curl -u ",
        "pesel ",
        "Password: ",
        "user ",
        "Jan Kowalski",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "ConvertTo-SecureString ",
        "'Pw1'",
    ];

    /// A text is read line by line: what its lines hold is found in each line as in the line
    /// alone, a value never runs on past a line break, and only the recognizers that read across
    /// lines (a private key's block, context words, the shapes of command lines) see past one.
    #[test]
    fn a_text_is_read_line_by_line() {
        let r = Recognizers::new(&RecognizerConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        let values = |text: &str| -> Vec<(Entity, String)> {
            r.find(text)
                .into_iter()
                .map(|f| (f.entity, text[f.start..f.end].to_owned()))
                .collect()
        };
        let lines = [
            "Account Name:\t\tpnowak",
            "Process Command Line:\tnet use \\\\fs01\\share Winter2024 /user:CORP\\anna",
            "Source Network Address:\t10.1.2.3",
            "The analyst Jan Kowalski reviewed it",
        ];
        let alone: Vec<_> = lines.iter().flat_map(|l| values(l)).collect();
        assert_eq!(values(&lines.join("\r\n")), alone);
        assert_eq!(values(&lines.join("\n")), alone);
        // `CORP\anna.` at a line's end ends there, as at the end of a text.
        assert_eq!(values("CORP\\anna.\nx"), values("CORP\\anna."));
        // A command continued on the next line is read as one; a line break ends any other.
        for continued in [
            "curl \\\n  -u anna:S3cret https://x",
            "curl -u anna:S3cret ^\r\n  https://x",
        ] {
            assert_eq!(
                values(continued),
                [(Entity::User, "anna".into()), (Entity::Secret, "S3cret".into())],
                "{continued:?}"
            );
        }
        assert!(values("curl\n-u anna:S3cret").is_empty());
        // Across lines: a private key's block, a context word on the line before.
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(values(key), [(Entity::Secret, key.into())]);
        assert_eq!(
            values("PESEL:\n44051401359"),
            [(Entity::NationalId, "44051401359".into())]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The backward pass finds the latest of the markers, as searching for each would.
        #[test]
        fn an_argument_starts_after_the_latest_marker(before in "[ /\\-=\"'a:C]{0,24}") {
            let each = [
                before.rfind(['"', '\'', '=']).map(|i| i + 1),
                before.rfind(" /").map(|i| i + 2),
                before.rfind(" -").map(|i| i + 2),
            ];
            let latest = each.into_iter().flatten().max().unwrap_or(0);
            proptest::prop_assert_eq!(argument_start(before.as_bytes()), latest, "{:?}", before);
        }

        /// The screening set and the searches without capture groups change nothing: the
        /// findings are those of every pattern searched on its own, with its capture groups.
        #[test]
        fn the_shortcuts_find_what_the_plain_search_finds(
            picks in proptest::collection::vec(0..PIECES.len(), 0..40)
        ) {
            static R: std::sync::LazyLock<Recognizers> = std::sync::LazyLock::new(|| {
                Recognizers::new(&RecognizerConfig::default()).unwrap_or_else(|e| panic!("{e}"))
            });
            let text: String = picks.iter().map(|&i| PIECES[i]).collect();
            proptest::prop_assert_eq!(R.search(&text, true, None), R.search(&text, false, None), "{:?}", text);
        }

        /// The features of a text are those of its lines merged: what the patterns that read
        /// the whole text are gated by, without a pass of its own over the text.
        #[test]
        fn a_text_s_features_are_its_lines_merged(text in "[0-9a-zA-Z:.@=$+\\\\/ -]{0,12}(\n[0-9a-zA-Z:.@=$+\\\\/ -]{0,12}){0,5}") {
            let mut merged = Features::default();
            for (_, line) in lines(&text) {
                merged.merge(&Features::of(line));
            }
            proptest::prop_assert_eq!(merged, Features::of(&text), "{:?}", text);
        }

        /// Remembering lines changes nothing: a text whose lines come from the memo (seen in
        /// this text or an earlier one) is found as when every line is scanned afresh.
        #[test]
        fn remembered_lines_find_what_fresh_scans_find(
            lines in proptest::collection::vec(proptest::collection::vec(0..PIECES.len(), 0..8), 1..6),
            picks in proptest::collection::vec((0..6usize, 0..4usize), 1..12),
        ) {
            static R: std::sync::LazyLock<Recognizers> = std::sync::LazyLock::new(|| {
                Recognizers::new(&RecognizerConfig::default()).unwrap_or_else(|e| panic!("{e}"))
            });
            static MEMO: std::sync::LazyLock<LineMemo> =
                std::sync::LazyLock::new(|| std::sync::Mutex::new(crate::recent::Recent::new(64, 1 << 20)));
            let breaks = ["\n", "\r\n", " `\n", "\n\n"];
            let text: String = picks
                .iter()
                .map(|&(l, b)| {
                    let line: String = lines[l % lines.len()].iter().map(|&i| PIECES[i]).collect();
                    line + breaks[b]
                })
                .collect();
            proptest::prop_assert_eq!(R.search(&text, true, Some(&MEMO)), R.search(&text, true, None), "{:?}", text);
        }
    }
}
