//! Pseudonymization: findings replaced by typed, keyed, deterministic pseudonyms a model can
//! still reason with, within one pseudonymization domain.
//!
//! - `user_3f9a0c21de`, `person_…`, `phone_…`, `iban_…`, `card_…`, `natid_…`, `mac_…`: the type, then
//!   the first 40 bits of HMAC-SHA256(domain key, type || 0 || normalized value) in hex;
//! - `host_3f9a0c21de.corp.example.eu`: an internal host keeps its configured suffix;
//! - `email_3f9a0c21de@example.fr`: the local part is pseudonymized, the mail domain kept (a
//!   phishing sender's domain matters), unless it is internal;
//! - `sid_3f9a0c21de-500`: the relative identifier stays (500 is the built-in Administrator);
//! - IP addresses stay addresses (Crypto-PAn, prefix-preserving);
//! - secrets become `[secret removed]` and are kept nowhere.
//!
//! The same value gives the same pseudonym inside a domain (a tenant, an incident) and an
//! unrelated one in another domain: the domain key is derived from the master secret, the
//! domain's name and its rotation epoch.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::PrivacyError;
use crate::cryptopan::CryptoPan;
use crate::recent::Recent;
use crate::recognize::{Entity, FieldRule, Finding, LineMemo, Recognizers, placeholder};

/// What a removed secret becomes.
pub const SECRET_REMOVED: &str = "[secret removed]";

/// Hex digits of a pseudonym's hash part.
pub const TOKEN_HEX: usize = 10;

/// Largest text redacted in one piece; larger input is refused rather than released unscanned.
pub const MAX_TEXT: usize = 16 * 1024 * 1024;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// A pseudonymization domain: its name and the keys derived for it.
#[derive(Clone)]
pub struct Domain {
    name: String,
    epoch: u32,
    key: [u8; 32],
    pan: CryptoPan,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Domain({}#{})", self.name, self.epoch)
    }
}

impl Domain {
    /// Derives a domain's keys from a secret (the instance's pseudonymization secret), its name
    /// and its key epoch (bumped to rotate).
    pub fn derive(secret: &[u8; 32], name: &str, epoch: u32) -> Domain {
        let key = hmac(
            secret,
            &[
                b"rempart pseudonym domain\0",
                name.as_bytes(),
                b"\0",
                &epoch.to_be_bytes(),
            ],
        );
        let pan_key = hmac(
            secret,
            &[b"rempart crypto-pan\0", name.as_bytes(), b"\0", &epoch.to_be_bytes()],
        );
        Domain {
            name: name.to_owned(),
            epoch,
            key,
            pan: CryptoPan::new(&pan_key),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    fn hash(&self, entity: Entity, normalized: &str) -> String {
        let h = hmac(&self.key, &[entity.prefix().as_bytes(), b"\0", normalized.as_bytes()]);
        hex::encode(&h[..TOKEN_HEX / 2])
    }
}

/// One value replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replacement {
    pub entity: Entity,
    pub original: String,
    /// What replaced it in the output (`SECRET_REMOVED` for a secret).
    pub pseudonym: String,
    /// Who it is about, as erasure names it: `user:alice`, `ip:10.1.2.3`, …; `None` for secrets.
    pub subject: Option<String>,
    pub recognizer: &'static str,
    /// Where: a JSON path (`$.Event.EventData.TargetUserName`) or `text`.
    pub path: String,
    /// Byte span in the original string at `path`.
    pub start: usize,
    pub end: usize,
}

impl Replacement {
    /// What `--explain` and the API list for it on `line`: never the original.
    pub fn explain(&self, line: usize) -> serde_json::Value {
        serde_json::json!({"line": line, "path": self.path, "type": self.entity, "start": self.start,
            "end": self.end, "recognizer": self.recognizer, "pseudonym": self.pseudonym})
    }
}

/// Text or JSON with its replacements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redacted<T> {
    pub output: T,
    pub replacements: Vec<Replacement>,
}

/// Recognizes and pseudonymizes, within one domain.
#[derive(Debug)]
pub struct Redactor {
    recognizers: std::sync::Arc<Recognizers>,
    domain: Domain,
    /// Pseudonyms computed lately: the same users, hosts and addresses recur in every event,
    /// and each costs keyed hashes (32 AES blocks for an address).
    memo: std::sync::Mutex<Recent<(Entity, String), Option<String>>>,
    /// What the recognizers found in strings seen lately: telemetry repeats its values (the
    /// same images, parents, hashes, channels and command lines in event after event), and the
    /// findings of a string depend on nothing but the string.
    seen: std::sync::Mutex<Recent<Box<str>, Box<[Finding]>>>,
    /// What the recognizers found in the lines of texts seen lately: the texts of rendered
    /// messages differ from event to event (a process id, a time) while most of their lines
    /// recur, and a line's findings depend on nothing but the line.
    lines: LineMemo,
}

/// Pseudonyms remembered before the memo starts over.
const MEMO_MAX: usize = 65_536;
/// Strings remembered with their findings before the cache starts over, and their total size.
const SEEN_MAX: usize = 16_384;
const SEEN_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Longer strings are scanned every time (they would crowd the cache). Windows' rendered
/// messages run to a few kilobytes and recur (a tenth of the bytes of an OTRF recording).
const SEEN_MAX_LEN: usize = 16 * 1024;
/// Lines remembered with what their scan found before the cache starts over, and their size.
const LINES_MAX: usize = 32_768;
const LINES_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The subject a value is about (see [`rempart_audit::subject_id`]).
pub fn subject(entity: Entity, value: &str) -> String {
    rempart_audit::subject_id(entity.prefix(), value)
}

/// The normalized value pseudonyms are computed from: the subject without its type.
fn normalize(entity: Entity, value: &str) -> String {
    let s = subject(entity, value);
    s[entity.prefix().len() + 1..].to_owned()
}

impl Redactor {
    pub fn new(recognizers: impl Into<std::sync::Arc<Recognizers>>, domain: Domain) -> Self {
        Redactor {
            recognizers: recognizers.into(),
            domain,
            memo: std::sync::Mutex::new(Recent::new(MEMO_MAX, usize::MAX)),
            seen: std::sync::Mutex::new(Recent::new(SEEN_MAX, SEEN_MAX_BYTES)),
            lines: std::sync::Mutex::new(Recent::new(LINES_MAX, LINES_MAX_BYTES)),
        }
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn recognizers(&self) -> &Recognizers {
        &self.recognizers
    }

    /// The pseudonym of `value` as an `entity`; `None` for a value that must stay as it is
    /// (allow-listed, a placeholder, an address that does not parse).
    pub fn pseudonym(&self, entity: Entity, value: &str) -> Option<String> {
        let key = (entity, value.to_owned());
        let mut memo = self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = memo.get(&key) {
            return hit.clone();
        }
        let computed = self.compute_pseudonym(entity, value);
        memo.insert(key, computed.clone(), 0);
        computed
    }

    fn compute_pseudonym(&self, entity: Entity, value: &str) -> Option<String> {
        if self.recognizers.allowed(value) {
            return None;
        }
        let n = normalize(entity, value);
        Some(match entity {
            Entity::Secret => SECRET_REMOVED.to_owned(),
            Entity::Ip => {
                // An address may come with a port or a zone; only a bare address is mapped.
                let ip: IpAddr = value.trim().parse().ok()?;
                self.domain.pan.ip(ip).to_string()
            }
            Entity::Host => {
                let h = self.domain.hash(entity, &n);
                match self.internal_suffix(&n) {
                    Some(suffix) => format!("host_{h}.{suffix}"),
                    None => format!("host_{h}"),
                }
            }
            Entity::Email => {
                let (_, mail_domain) = n.rsplit_once('@')?;
                let h = self.domain.hash(entity, &n);
                if self.recognizers.is_internal_host(mail_domain) {
                    let dh = self.domain.hash(Entity::Host, mail_domain);
                    let suffix = self.internal_suffix(mail_domain).unwrap_or_default();
                    format!("email_{h}@host_{dh}.{suffix}")
                } else {
                    format!("email_{h}@{mail_domain}")
                }
            }
            Entity::Sid => {
                let h = self.domain.hash(entity, &n);
                let rid = n.rsplit('-').next().unwrap_or("0");
                format!("sid_{h}-{rid}")
            }
            _ => format!("{}_{}", entity.prefix(), self.domain.hash(entity, &n)),
        })
    }

    /// The internal suffix of a host name (the part after its first label), if it is internal.
    fn internal_suffix(&self, host: &str) -> Option<String> {
        if !self.recognizers.is_internal_host(host) {
            return None;
        }
        host.split_once('.').map(|(_, s)| s.to_owned())
    }

    fn replacement(&self, f: &Finding, original: &str, path: &str) -> Option<Replacement> {
        let pseudonym = self.pseudonym(f.entity, original)?;
        let subject =
            (f.entity != Entity::Secret).then(|| format!("{}:{}", f.entity.prefix(), normalize(f.entity, original)));
        Some(Replacement {
            entity: f.entity,
            original: original.to_owned(),
            pseudonym,
            subject,
            recognizer: f.recognizer,
            path: path.to_owned(),
            start: f.start,
            end: f.end,
        })
    }

    /// The recognizers' findings in `text`, from the cache when the string was seen lately.
    fn findings(&self, text: &str) -> Vec<Finding> {
        if text.len() > SEEN_MAX_LEN {
            return self.recognizers.find_remembering(text, &self.lines);
        }
        let lock = || self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = lock().get(text) {
            return hit.to_vec();
        }
        let found = self.recognizers.find_remembering(text, &self.lines);
        lock().insert(text.into(), found.as_slice().into(), text.len());
        found
    }

    /// Redacts free text.
    pub fn redact_text(&self, text: &str) -> Result<Redacted<String>, PrivacyError> {
        let replacements = self.replacements_in(text, "text")?;
        Ok(Redacted {
            output: applied(text, &replacements),
            replacements,
        })
    }

    /// What replaces what in `text`, in order (none: the text stands as it is).
    fn replacements_in(&self, text: &str, path: &str) -> Result<Vec<Replacement>, PrivacyError> {
        if text.len() > MAX_TEXT {
            return Err(PrivacyError::TooLarge {
                len: text.len(),
                max: MAX_TEXT,
            });
        }
        let findings = self.findings(text);
        Ok(findings
            .iter()
            .filter_map(|f| self.replacement(f, &text[f.start..f.end], path))
            .collect())
    }

    /// Redacts a JSON value in place: fields named for an entity are replaced whole, every
    /// other string is scanned as free text.
    pub fn redact_json(&self, value: &mut Value) -> Result<Vec<Replacement>, PrivacyError> {
        let mut replacements = Vec::new();
        self.walk(value, &mut String::from("$"), None, &mut replacements)?;
        Ok(replacements)
    }

    /// Redacts `value`, found at `path` (`$.Event.EventData.User`): the one path buffer of a
    /// walk, each level appending its step and taking it off again.
    fn walk(
        &self,
        value: &mut Value,
        path: &mut String,
        field: Option<Entity>,
        out: &mut Vec<Replacement>,
    ) -> Result<(), PrivacyError> {
        use std::fmt::Write;
        let parent = path.len();
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    path.push('.');
                    path.push_str(k);
                    let walked = match self.recognizers.field_rule(path) {
                        FieldRule::Skip => Ok(()),
                        FieldRule::Whole(e) => self.walk(v, path, Some(e), out),
                        FieldRule::Scan => self.walk(v, path, None, out),
                    };
                    path.truncate(parent);
                    walked?;
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    let _ = write!(path, "[{i}]");
                    let walked = self.walk(v, path, field, out);
                    path.truncate(parent);
                    walked?;
                }
            }
            Value::String(s) => {
                let mut found = self.redact_string(s, path, field)?;
                if !found.is_empty() {
                    *s = applied(s, &found);
                    out.append(&mut found);
                }
            }
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
        }
        Ok(())
    }

    /// What replaces what in one string value found at `path` in a field whose name says it is
    /// `field`: the whole value when it can be that entity, else what a scan as text finds
    /// (nothing: the value stays).
    fn redact_string(&self, s: &str, path: &str, field: Option<Entity>) -> Result<Vec<Replacement>, PrivacyError> {
        // A machine account (`WS-01$`) in an account field is a host.
        let field = match field {
            Some(Entity::User) if s.ends_with('$') && s.len() > 1 => Some(Entity::Host),
            other => other,
        };
        if let Some(entity) = field.filter(|e| !placeholder(s) && self.entity_fits(*e, s)) {
            let f = Finding {
                entity,
                start: 0,
                end: s.len(),
                recognizer: "field-name",
            };
            return Ok(self.replacement(&f, s, path).into_iter().collect());
        }
        self.replacements_in(s, path)
    }

    /// Redacts a JSON document in its own bytes: only the personal values change, every other
    /// byte (spacing, key order, escapes, numbers) stays as written. Finds what
    /// [`Redactor::redact_json`] finds. `None` if `text` is not a JSON object or array.
    pub fn redact_json_text(&self, text: &str) -> Result<Option<Redacted<String>>, PrivacyError> {
        let mut replacements = Vec::new();
        let mut error = None;
        let output = crate::json_text::rewrite_strings(text, |path, s| {
            if error.is_some() {
                return Vec::new();
            }
            let field = match self.rule_at(path) {
                FieldRule::Skip => return Vec::new(),
                FieldRule::Whole(e) => Some(e),
                FieldRule::Scan => None,
            };
            match self.redact_string(s, path, field) {
                Ok(found) => {
                    let edits = found.iter().map(|r| (r.start, r.end, r.pseudonym.clone())).collect();
                    replacements.extend(found);
                    edits
                }
                Err(e) => {
                    error = Some(e);
                    Vec::new()
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        Ok(output.map(|output| Redacted { output, replacements }))
    }

    /// The rule for the string at `path` as [`Redactor::redact_json`]'s walk applies it: the
    /// field it is the value of (an array's items are their field's), unless a field above it
    /// is skipped.
    fn rule_at(&self, path: &str) -> FieldRule {
        let mut key = path;
        while key.ends_with(']') {
            key = key.rfind('[').map_or(key, |i| &key[..i]);
        }
        let mut prefix = key;
        while let Some(i) = prefix.rfind('.') {
            prefix = &prefix[..i];
            while prefix.ends_with(']') {
                prefix = prefix.rfind('[').map_or(prefix, |i| &prefix[..i]);
            }
            if prefix.len() > 1 && matches!(self.recognizers.field_rule(prefix), FieldRule::Skip) {
                return FieldRule::Skip;
            }
        }
        if key == "$" {
            FieldRule::Scan
        } else {
            self.recognizers.field_rule(key)
        }
    }

    /// [`Redactor::replace_known`] on text that may be a JSON document, in its own bytes.
    pub fn replace_known_text(text: &str, found: &[Replacement]) -> (String, usize) {
        let mut n = 0;
        let mut replace = |s: &str| -> Option<String> {
            let mut v = Value::String(s.to_owned());
            let k = Redactor::replace_known(&mut v, found);
            n += k;
            match v {
                Value::String(out) if k > 0 => Some(out),
                _ => None,
            }
        };
        let output = crate::json_text::rewrite_strings(text, |_, s| {
            replace(s).map(|out| vec![(0, s.len(), out)]).unwrap_or_default()
        });
        match output {
            Some(out) => (out, n),
            None => {
                let out = replace(text).unwrap_or_else(|| text.to_owned());
                (out, n)
            }
        }
    }

    /// Whether a structured value can be the entity its field names (an `IpAddress` field
    /// holding `-` or a host name is scanned as text instead).
    fn entity_fits(&self, entity: Entity, value: &str) -> bool {
        match entity {
            Entity::Ip => value.trim().parse::<IpAddr>().is_ok(),
            Entity::Email => value.contains('@'),
            // `CORP\\alice` and `alice@corp.example.eu` are scanned, so that only the account is
            // replaced and the subject is `user:alice`.
            Entity::User => value.len() <= 256 && !value.contains([' ', '\\', '@']),
            Entity::Host => value.len() <= 256 && !value.contains(char::is_whitespace),
            Entity::Person => true,
            _ => true,
        }
    }

    /// Replaces, in `value`'s strings, every further occurrence of an original some recognizer
    /// already found elsewhere (`found`): a host name recognized in a `host` field is personal
    /// data in a free-text summary too, where no recognizer would know it. Only whole tokens
    /// (not inside a longer name) of at least four characters are replaced. Returns how many.
    pub fn replace_known(value: &mut Value, found: &[Replacement]) -> usize {
        let mut known: Vec<(&str, &str)> = found
            .iter()
            .filter(|r| r.original.chars().count() >= 4 && r.original != r.pseudonym)
            .map(|r| (r.original.as_str(), r.pseudonym.as_str()))
            .collect();
        known.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        known.dedup_by(|a, b| a.0 == b.0);
        if known.is_empty() {
            return 0;
        }
        let mut n = 0;
        visit_strings(value, &mut |s| n += replace_tokens(s, &known));
        n
    }

    /// Redacts one line: a JSON object or array is redacted as JSON in its own bytes, anything
    /// else as text.
    pub fn redact_line(&self, line: &str) -> Result<Redacted<String>, PrivacyError> {
        match self.redact_json_text(line)? {
            Some(redacted) => Ok(redacted),
            None => self.redact_text(line),
        }
    }
}

/// `text` with each replacement's span (in order, apart) taking its pseudonym.
fn applied(text: &str, replacements: &[Replacement]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in replacements {
        out.push_str(&text[at..r.start]);
        out.push_str(&r.pseudonym);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

fn visit_strings(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| visit_strings(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| visit_strings(x, f)),
        _ => {}
    }
}

/// Whether `c` continues a name (so that `ws-01` is not replaced inside `ws-012`).
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$')
}

/// Replaces whole-token, case-insensitive occurrences of each original (longest first).
fn replace_tokens(s: &mut String, known: &[(&str, &str)]) -> usize {
    replace_tokens_where(s, known, name_char)
}

/// Replaces case-insensitive occurrences of each original (longest first) that no character
/// for which `name_char` holds continues on either side.
pub(crate) fn replace_tokens_where(s: &mut String, known: &[(&str, &str)], name_char: impl Fn(char) -> bool) -> usize {
    let mut n = 0;
    // Lower-cased once, and again only after a replacement changed the text.
    let mut lower = s.to_lowercase();
    for (original, pseudonym) in known {
        let needle = original.to_lowercase();
        // Lower-casing can change lengths outside ASCII: only then fall back to exact matching.
        let (hay, pat) = if lower.len() == s.len() && needle.len() == original.len() {
            (lower.as_str(), needle.as_str())
        } else {
            (s.as_str(), *original)
        };
        let mut spans = Vec::new();
        let mut from = 0;
        while let Some(i) = hay[from..].find(pat) {
            let start = from + i;
            let end = start + pat.len();
            let before = s[..start].chars().next_back();
            let after = s[end..].chars().next();
            // A trailing dot ends a sentence, not a name.
            let after_ok = after.is_none_or(|c| {
                !name_char(c) || (c == '.' && s[end + 1..].chars().next().is_none_or(|d| !name_char(d)))
            });
            if before.is_none_or(|c| !name_char(c)) && after_ok {
                spans.push((start, end));
            }
            from = end;
        }
        if spans.is_empty() {
            continue;
        }
        for (start, end) in spans.into_iter().rev() {
            s.replace_range(start..end, pseudonym);
            n += 1;
        }
        lower = s.to_lowercase();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recognize::RecognizerConfig;

    fn redactor(domain: &str) -> Redactor {
        let r = Recognizers::new(&RecognizerConfig {
            internal_suffixes: vec!["corp.example.eu".into()],
            allow: vec!["8.8.8.8".into()],
            ..RecognizerConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Redactor::new(r, Domain::derive(&[1; 32], domain, 0))
    }

    #[test]
    fn a_value_found_in_a_field_is_replaced_wherever_else_it_appears() {
        let r = redactor("tenant-a");
        let mut v = serde_json::json!({
            "host": "srv-file-01",
            "note": "Copied from SRV-FILE-01. Then srv-file-01x and srv-file-012 are other hosts; srv-file-01.",
        });
        let found = r.redact_json(&mut v).unwrap_or_else(|e| panic!("{e}"));
        let pseudonym = v["host"].as_str().unwrap_or_default().to_owned();
        assert!(pseudonym.starts_with("host_"), "{v}");
        assert_eq!(Redactor::replace_known(&mut v, &found), 2);
        assert_eq!(
            v["note"],
            format!("Copied from {pseudonym}. Then srv-file-01x and srv-file-012 are other hosts; {pseudonym}.")
        );
    }

    #[test]
    fn typed_pseudonyms_keep_what_a_model_reasons_with() {
        let r = redactor("tenant-a");
        let out = r
            .redact_text(r"CORP\alice on ws-fin-07.corp.example.eu mailed jean@example.fr; 10.1.2.3 -> 8.8.8.8; password=hunter2")
            .unwrap_or_else(|e| panic!("{e}"));
        let text = &out.output;
        assert!(
            !text.contains("alice")
                && !text.contains("ws-fin-07")
                && !text.contains("jean@")
                && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("CORP\\user_"), "{text}");
        assert!(text.contains(".corp.example.eu"), "internal suffix kept: {text}");
        assert!(text.contains("@example.fr"), "mail domain kept: {text}");
        assert!(text.contains("8.8.8.8"), "allow-listed: {text}");
        assert!(text.contains(SECRET_REMOVED), "{text}");
        let ip = out
            .replacements
            .iter()
            .find(|r| r.entity == Entity::Ip)
            .map(|r| r.pseudonym.clone())
            .unwrap_or_default();
        assert!(ip.starts_with("10."), "private stays private: {ip}");
    }

    #[test]
    fn configured_fields_are_always_or_never_taken() {
        let r = Recognizers::new(&RecognizerConfig {
            fields: vec![("ParentUser".into(), Entity::User)],
            skip_fields: vec!["Hashes".into(), "TargetUserName".into()],
            ..RecognizerConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let r = Redactor::new(r, Domain::derive(&[1; 32], "t", 0));
        let mut v: Value =
            serde_json::from_str(r#"{"ParentUser":"svc-root","TargetUserName":"bob","Hashes":"MD5=AB12,IP=10.1.2.3"}"#)
                .unwrap_or_default();
        r.redact_json(&mut v).unwrap_or_default();
        assert!(v["ParentUser"].as_str().unwrap_or("").starts_with("user_"), "{v}");
        assert_eq!(v["TargetUserName"], "bob", "skipped");
        assert_eq!(v["Hashes"], "MD5=AB12,IP=10.1.2.3", "skipped, even what would be found");
    }

    #[test]
    fn deterministic_within_a_domain_and_unlinkable_across() {
        let a = redactor("tenant-a");
        let b = redactor("tenant-b");
        let pa = a.pseudonym(Entity::User, "alice");
        assert_eq!(
            pa,
            a.pseudonym(Entity::User, "Alice"),
            "user names are case-insensitive"
        );
        assert_ne!(pa, b.pseudonym(Entity::User, "alice"));
        assert_ne!(
            a.pseudonym(Entity::Ip, "203.0.113.7"),
            b.pseudonym(Entity::Ip, "203.0.113.7")
        );
    }

    #[test]
    fn json_fields_by_name_and_free_text_in_the_rest() {
        let r = redactor("t");
        let mut v: Value = serde_json::from_str(
            r#"{"Event":{"EventData":{"TargetUserName":"bob","IpAddress":"-","WorkstationName":"WS-01","CommandLine":"net use \\\\srv\\c$ /user:CORP\\bob Passw0rd"}}}"#,
        )
        .unwrap_or_default();
        let reps = r.redact_json(&mut v).unwrap_or_default();
        let data = &v["Event"]["EventData"];
        assert!(data["TargetUserName"].as_str().unwrap_or("").starts_with("user_"));
        assert_eq!(data["IpAddress"], "-");
        assert!(data["WorkstationName"].as_str().unwrap_or("").starts_with("host_"));
        assert!(!data["CommandLine"].as_str().unwrap_or("").contains("bob"), "{v}");
        assert!(reps.iter().any(|r| r.path == "$.Event.EventData.TargetUserName"));
    }

    #[test]
    fn a_repeated_string_is_redacted_as_the_first_time_with_its_own_path() {
        let r = redactor("tenant-a");
        let line = r#"{"a":"net use \\\\srv-file-01\\share /user:CORP\\alice from 10.1.2.3","b":"net use \\\\srv-file-01\\share /user:CORP\\alice from 10.1.2.3"}"#;
        let first = r.redact_line(line).unwrap_or_else(|e| panic!("{e}"));
        // The second field's string comes from the cache of findings; a new redactor scans it.
        let again = r.redact_line(line).unwrap_or_else(|e| panic!("{e}"));
        let fresh = redactor("tenant-a").redact_line(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, again);
        assert_eq!(first, fresh);
        let v: Value = serde_json::from_str(&first.output).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["a"], v["b"]);
        assert!(
            !first.output.contains("alice") && !first.output.contains("10.1.2.3"),
            "{}",
            first.output
        );
        let paths = |p: &str| first.replacements.iter().filter(|x| x.path == p).count();
        assert!(
            paths("$.a") >= 3 && paths("$.a") == paths("$.b"),
            "{:?}",
            first.replacements
        );
        // Strings beyond the cache's length limit are redacted alike, time after time.
        let long = format!("{} user=alice", "x".repeat(SEEN_MAX_LEN));
        let (a, b) = (r.redact_text(&long), r.redact_text(&long));
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Some(a.clone()), b.ok());
        assert!(a.output.contains("user=user_"), "{}", &a.output[SEEN_MAX_LEN..]);
    }

    #[test]
    fn a_json_line_keeps_every_byte_but_its_personal_values() {
        let r = redactor("t");
        let line = "{\"msg\" :  \"login by user=alice from 10.1.2.3 caf\\u00e9\",\n \"n\": 1.0e2, \"host\": \"ws-01\", \"ok\": true}";
        let out = r.redact_line(line).unwrap_or_else(|e| panic!("{e}"));
        let alice = r.pseudonym(Entity::User, "alice").unwrap_or_default();
        let host = r.pseudonym(Entity::Host, "ws-01").unwrap_or_default();
        let ip = r.pseudonym(Entity::Ip, "10.1.2.3").unwrap_or_default();
        assert_eq!(
            out.output,
            format!(
                "{{\"msg\" :  \"login by user={alice} from {ip} caf\\u00e9\",\n \"n\": 1.0e2, \"host\": \"{host}\", \"ok\": true}}"
            )
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Redacting a document in its bytes finds and replaces what redacting its parse does.
        #[test]
        fn redacting_in_bytes_agrees_with_redacting_the_parse(
            fields in proptest::collection::vec((0..KEYS.len(), 0..VALUES.len(), 0..3usize), 1..8),
            pretty in proptest::bool::ANY,
        ) {
            let r = redactor("t");
            let mut doc = serde_json::Map::new();
            for (k, v, shape) in fields {
                let value = Value::String(VALUES[v].to_owned());
                let value = match shape {
                    0 => value,
                    1 => Value::Array(vec![value, Value::from(1)]),
                    _ => serde_json::json!({"inner": value, "user": VALUES[v]}),
                };
                doc.insert(KEYS[k].to_owned(), value);
            }
            let doc = Value::Object(doc);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }
                .unwrap_or_default();
            let mut parsed = doc.clone();
            let by_parse = r.redact_json(&mut parsed).unwrap_or_default();
            let by_bytes = r.redact_json_text(&text).unwrap_or_default().unwrap_or_else(|| panic!("{text}"));
            let reread: Value = serde_json::from_str(&by_bytes.output).unwrap_or_default();
            proptest::prop_assert_eq!(reread, parsed);
            proptest::prop_assert_eq!(by_bytes.replacements.len(), by_parse.len());
        }
    }

    const KEYS: &[&str] = &[
        "msg",
        "host",
        "TargetUserName",
        "IpAddress",
        "CommandLine",
        "Hashes",
        "user",
        "note",
    ];
    const VALUES: &[&str] = &[
        "alice",
        "-",
        "WS-01$",
        "10.1.2.3",
        "net use \\\\srv\\c$ pw /user:CORP\\bob",
        "login by user=carol from fe80::1",
        "caf\u{e9} \"quoted\" \u{1} tab\t",
        "ws-fin-07.corp.example.eu",
        "The analyst Jan Kowalski called",
    ];
}
