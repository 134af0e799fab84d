//! Indicators as Rempart matches them: alternatives of atoms that must all be seen in one event.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::pattern::{Comparison, Literal, Observation, Op, PropTest, Qualifier, Step};

/// What kind of observable an atom is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ip,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Email => "email",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Sha512 => "sha512",
        }
    }

    /// A hash kind from a STIX or MISP hash name (`SHA-256`, `sha256`, `MD5`, …).
    pub fn hash(name: &str) -> Option<Kind> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "md5" => Some(Kind::Md5),
            "sha1" => Some(Kind::Sha1),
            "sha256" => Some(Kind::Sha256),
            "sha512" => Some(Kind::Sha512),
            _ => None,
        }
    }
}

/// One thing to look for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Atom {
    /// A value, normalized (lower case; a domain without its trailing dot; a URL as written).
    Exact { kind: Kind, value: String },
    /// An address range (a single address is a /32 or /128).
    Cidr { network: IpAddr, prefix: u8 },
}

impl Atom {
    /// The atom for `value` of `kind`, normalized; `None` if the value is not one.
    pub fn new(kind: Kind, value: &str) -> Option<Atom> {
        let v = value.trim();
        if v.is_empty() {
            return None;
        }
        Some(match kind {
            Kind::Ip => return cidr(v),
            Kind::Domain => Atom::Exact {
                kind,
                value: v.trim_end_matches('.').to_ascii_lowercase(),
            },
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Sha512 => {
                let len = match kind {
                    Kind::Md5 => 32,
                    Kind::Sha1 => 40,
                    Kind::Sha256 => 64,
                    _ => 128,
                };
                if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                Atom::Exact {
                    kind,
                    value: v.to_ascii_lowercase(),
                }
            }
            Kind::Email => Atom::Exact {
                kind,
                value: v.to_ascii_lowercase(),
            },
            Kind::Url => Atom::Exact {
                kind,
                value: v.to_owned(),
            },
        })
    }
}

/// `10.0.0.0/8`, `2001:db8::/32` or a bare address; the network is masked to its prefix.
pub fn cidr(v: &str) -> Option<Atom> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
        None => {
            let a = v.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let network = match addr {
        IpAddr::V4(a) if prefix <= 32 => IpAddr::V4(mask4(u32::from(a), prefix).into()),
        IpAddr::V6(a) if prefix <= 128 => IpAddr::V6(mask6(u128::from(a), prefix).into()),
        _ => return None,
    };
    Some(Atom::Cidr { network, prefix })
}

pub fn mask4(a: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(prefix)))
    }
}

pub fn mask6(a: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// An indicator ready to index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// The source's id (`indicator--…`, a MISP attribute uuid).
    pub id: String,
    pub name: String,
    /// Where it came from: `stix`, `misp`, `taxii`, with the file or collection.
    pub source: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    /// 0–100, as STIX writes it.
    pub confidence: Option<u8>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    /// The pattern or value as the source wrote it.
    pub pattern: String,
    /// Any alternative whose atoms are all seen in one event matches.
    pub alternatives: Vec<Vec<Atom>>,
}

impl Indicator {
    /// Whether it is in force at `t`.
    pub fn valid_at(&self, t: Timestamp) -> bool {
        self.valid_from.is_none_or(|f| f <= t) && self.valid_until.is_none_or(|u| t < u)
    }
}

/// A `START … STOP` window.
pub type Window = (Timestamp, Timestamp);

/// Most alternatives one pattern may expand to.
const MAX_ALTERNATIVES: usize = 256;

/// The alternatives a pattern matches on single events. Tests Rempart cannot evaluate on one
/// event (other properties, `LIKE`, `MATCHES`, negations, `REPEATS`) make their alternative
/// unusable; if none is left, the reason says why. Observations joined by `AND` or
/// `FOLLOWEDBY` must all be seen in the same event (stricter than STIX, never looser);
/// `WITHIN` is therefore met, and `START … STOP` narrows the validity.
pub fn alternatives(p: &Observation) -> Result<(Vec<Vec<Atom>>, Option<Window>), String> {
    let mut window = None;
    let alts = observation(p, &mut window)?;
    let first_reason = alts.iter().find_map(|a| a.as_ref().err().cloned());
    let usable: Vec<Vec<Atom>> = alts.into_iter().filter_map(Result::ok).collect();
    if usable.is_empty() {
        return Err(format!(
            "no part of the pattern can be matched on single events ({})",
            first_reason.unwrap_or_else(|| "empty".into())
        ));
    }
    Ok((usable, window))
}

type Alt = Result<Vec<Atom>, String>;

fn product(a: Vec<Alt>, b: Vec<Alt>) -> Result<Vec<Alt>, String> {
    if a.len().saturating_mul(b.len()) > MAX_ALTERNATIVES {
        return Err(format!(
            "the pattern expands to more than {MAX_ALTERNATIVES} alternatives"
        ));
    }
    let mut out = Vec::new();
    for x in &a {
        for y in &b {
            out.push(match (x, y) {
                (Ok(x), Ok(y)) => Ok(x.iter().chain(y).cloned().collect()),
                (Err(e), _) | (_, Err(e)) => Err(e.clone()),
            });
        }
    }
    Ok(out)
}

fn observation(p: &Observation, window: &mut Option<Window>) -> Result<Vec<Alt>, String> {
    match p {
        Observation::Simple(c) => comparison(c),
        Observation::Or(a, b) => {
            let mut v = observation(a, window)?;
            v.extend(observation(b, window)?);
            if v.len() > MAX_ALTERNATIVES {
                return Err(format!(
                    "the pattern expands to more than {MAX_ALTERNATIVES} alternatives"
                ));
            }
            Ok(v)
        }
        Observation::And(a, b) | Observation::FollowedBy(a, b) => {
            product(observation(a, window)?, observation(b, window)?)
        }
        Observation::Qualified(inner, q) => match q {
            Qualifier::Repeats(_) => Ok(vec![Err("REPEATS needs several events".into())]),
            Qualifier::Within(_) => observation(inner, window),
            Qualifier::StartStop(a, b) => {
                if let (Ok(a), Ok(b)) = (a.parse::<Timestamp>(), b.parse::<Timestamp>()) {
                    *window = Some((a, b));
                }
                observation(inner, window)
            }
        },
    }
}

fn comparison(c: &Comparison) -> Result<Vec<Alt>, String> {
    match c {
        Comparison::Or(a, b) => {
            let mut v = comparison(a)?;
            v.extend(comparison(b)?);
            Ok(v)
        }
        Comparison::And(a, b) => product(comparison(a)?, comparison(b)?),
        Comparison::Test(t) => Ok(test(t)),
    }
}

/// The kind of observable a path names, if Rempart can see it in events.
fn kind_of(t: &PropTest) -> Option<Kind> {
    let keys: Vec<&str> = t
        .path
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    match (t.path.object_type.as_str(), keys.as_slice()) {
        ("ipv4-addr" | "ipv6-addr", ["value"]) => Some(Kind::Ip),
        ("network-traffic", ["src_ref" | "dst_ref", "value"]) => Some(Kind::Ip),
        ("domain-name", ["value"]) => Some(Kind::Domain),
        ("url", ["value"]) => Some(Kind::Url),
        ("email-addr", ["value"]) => Some(Kind::Email),
        ("email-message", ["from_ref" | "sender_ref" | "to_refs" | "cc_refs", "value"]) => Some(Kind::Email),
        ("file" | "artifact", ["hashes", h]) => Kind::hash(h),
        _ => None,
    }
}

fn test(t: &PropTest) -> Vec<Alt> {
    let unusable = |why: String| vec![Err(why)];
    if t.negated {
        return unusable(format!("`NOT` on {}", t.path));
    }
    let Some(kind) = kind_of(t) else {
        return unusable(format!("{} is not an observable Rempart matches", t.path));
    };
    let value = |l: &Literal| match l {
        Literal::Str(s) => Atom::new(kind, s).ok_or_else(|| format!("`{s}` is not a valid {}", kind.as_str())),
        other => Err(format!("{other:?} is not a string")),
    };
    match &t.op {
        Op::Eq(l) => vec![value(l).map(|a| vec![a])],
        Op::In(set) => set.iter().map(|l| value(l).map(|a| vec![a])).collect(),
        Op::IsSubset(s) if kind == Kind::Ip => {
            vec![cidr(s).map(|a| vec![a]).ok_or_else(|| format!("`{s}` is not a CIDR"))]
        }
        _ => unusable(format!("this comparison on {} cannot be indexed", t.path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::parse;

    fn alts(p: &str) -> Vec<Vec<Atom>> {
        alternatives(&parse(p).unwrap()).unwrap().0
    }

    #[test]
    fn ors_become_alternatives_and_ands_conjunctions() {
        let a = alts("[ipv4-addr:value = '10.0.0.1' OR domain-name:value = 'Evil.Example.']");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1],
            vec![Atom::Exact {
                kind: Kind::Domain,
                value: "evil.example".into()
            }]
        );
        let a = alts("[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E' AND url:value = 'http://x/y']");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].len(), 2);
        let a = alts(
            "[ipv4-addr:value IN ('10.0.0.1', '10.0.0.2')] OR [network-traffic:dst_ref.value ISSUBSET '192.0.2.0/24']",
        );
        assert_eq!(a.len(), 3);
        assert_eq!(
            a[2],
            vec![Atom::Cidr {
                network: "192.0.2.0".parse().unwrap(),
                prefix: 24
            }]
        );
    }

    #[test]
    fn what_cannot_be_matched_is_dropped_or_refused_with_a_reason() {
        // One usable alternative out of two.
        let a = alts(
            "[file:name = 'x.exe'] OR [file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
        );
        assert_eq!(a.len(), 1);
        // The conjunction with an unusable test is unusable as a whole.
        let e = alternatives(
            &parse("[file:name = 'x.exe' AND file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']").unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("no part"), "{e}");
        assert!(alternatives(&parse("[ipv4-addr:value = '10.0.0.1'] REPEATS 3 TIMES").unwrap()).is_err());
        assert!(alternatives(&parse("[ipv4-addr:value = 'not-an-ip']").unwrap()).is_err());
    }

    #[test]
    fn addresses_are_masked_to_their_prefix() {
        assert_eq!(
            cidr("10.1.2.3/8"),
            Some(Atom::Cidr {
                network: "10.0.0.0".parse().unwrap(),
                prefix: 8
            })
        );
        assert_eq!(
            cidr("2001:db8::1"),
            Some(Atom::Cidr {
                network: "2001:db8::1".parse().unwrap(),
                prefix: 128
            })
        );
        assert_eq!(cidr("10.0.0.0/33"), None);
    }
}
