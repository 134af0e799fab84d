//! STIX 2.1 patterning (OASIS STIX 2.1, part 5; grammar `STIXPattern.g4`): a recursive-descent
//! parser into an AST. Errors name the byte offset and what was expected there.

use std::fmt;

/// A parsed pattern: observation expressions joined by `AND`, `OR`, `FOLLOWEDBY`.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// `[ comparison ]`
    Simple(Comparison),
    And(Box<Observation>, Box<Observation>),
    Or(Box<Observation>, Box<Observation>),
    FollowedBy(Box<Observation>, Box<Observation>),
    Qualified(Box<Observation>, Qualifier),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    Within(f64),
    Repeats(u64),
    StartStop(String, String),
}

/// A comparison expression inside one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    And(Box<Comparison>, Box<Comparison>),
    Or(Box<Comparison>, Box<Comparison>),
    Test(PropTest),
}

/// `object-type:path op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropTest {
    pub path: ObjectPath,
    pub negated: bool,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Literal),
    Neq(Literal),
    Gt(Literal),
    Lt(Literal),
    Ge(Literal),
    Le(Literal),
    In(Vec<Literal>),
    Like(String),
    Matches(String),
    IsSubset(String),
    IsSuperset(String),
    Exists,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(String),
    Hex(String),
    Binary(String),
}

/// `file:hashes.'SHA-256'` → type `file`, steps `hashes`, `SHA-256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub object_type: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(i64),
    Any,
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
                Step::Any => write!(f, "[*]")?,
            }
        }
        Ok(())
    }
}

/// Why a pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern offset {offset}: {message}")]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

/// Longest pattern accepted.
pub const MAX_PATTERN: usize = 64 * 1024;
/// Deepest nesting of parentheses and brackets accepted.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Colon,
    Dot,
    Comma,
    Star,
    Eq,
    Neq,
    Gt,
    Lt,
    Ge,
    Le,
    Word(String),
    Str(String),
    Int(i64),
    Float(f64),
    Timestamp(String),
    Hex(String),
    Binary(String),
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, PatternError> {
    let err = |offset, message: &str| PatternError {
        offset,
        message: message.to_owned(),
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'[' => out.push((start, Tok::LBrack)),
            b']' => out.push((start, Tok::RBrack)),
            b'(' => out.push((start, Tok::LParen)),
            b')' => out.push((start, Tok::RParen)),
            b':' => out.push((start, Tok::Colon)),
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => out.push((start, Tok::Dot)),
            b',' => out.push((start, Tok::Comma)),
            b'*' => out.push((start, Tok::Star)),
            b'=' => out.push((start, Tok::Eq)),
            b'!' | b'<' | b'>' => {
                let next = b.get(i + 1).copied();
                let tok = match (c, next) {
                    (b'!', Some(b'=')) => Tok::Neq,
                    (b'<', Some(b'=')) => Tok::Le,
                    (b'>', Some(b'=')) => Tok::Ge,
                    (b'<', Some(b'>')) => Tok::Neq,
                    (b'<', _) => Tok::Lt,
                    (b'>', _) => Tok::Gt,
                    _ => return Err(err(start, "`!` must be followed by `=`")),
                };
                if matches!(tok, Tok::Neq | Tok::Le | Tok::Ge) {
                    i += 1;
                }
                out.push((start, tok));
            }
            b'\'' => {
                let s = string_at(text, i).ok_or_else(|| err(start, "unterminated string"))?;
                i = s.1;
                out.push((start, Tok::Str(s.0)));
                continue;
            }
            b't' | b'h' | b'b' if b.get(i + 1) == Some(&b'\'') => {
                let s = string_at(text, i + 1).ok_or_else(|| err(start, "unterminated literal"))?;
                i = s.1;
                out.push((
                    start,
                    match c {
                        b't' => Tok::Timestamp(s.0),
                        b'h' => Tok::Hex(s.0),
                        _ => Tok::Binary(s.0),
                    },
                ));
                continue;
            }
            b'-' | b'+' | b'0'..=b'9' | b'.' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
                let num = &text[i..j];
                let tok = if num.contains('.') {
                    Tok::Float(num.parse().map_err(|_| err(start, "not a number"))?)
                } else {
                    Tok::Int(num.parse().map_err(|_| err(start, "not a number"))?)
                };
                out.push((start, tok));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
                    j += 1;
                }
                out.push((start, Tok::Word(text[i..j].to_owned())));
                i = j;
                continue;
            }
            _ => return Err(err(start, "unexpected character")),
        }
        i += 1;
    }
    Ok(out)
}

/// The string literal whose opening quote is at `i`: its value and the offset after it.
fn string_at(text: &str, i: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[i + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\'' | '\\'))) => out.push(e),
                _ => return None,
            },
            '\'' => return Some((out, i + 1 + k + 1)),
            c => out.push(c),
        }
    }
    None
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(o, _)| *o)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), PatternError> {
        if self.peek() == Some(t) {
            self.at += 1;
            Ok(())
        } else {
            self.fail(format!("expected {what}"))
        }
    }

    fn enter(&mut self) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn observations(&mut self) -> Result<Observation, PatternError> {
        let mut left = self.obs_or()?;
        while self.word("FOLLOWEDBY") {
            self.at += 1;
            let right = self.obs_or()?;
            left = Observation::FollowedBy(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn obs_or(&mut self) -> Result<Observation, PatternError> {
        let mut left = self.obs_and()?;
        while self.word("OR") {
            self.at += 1;
            let right = self.obs_and()?;
            left = Observation::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn obs_and(&mut self) -> Result<Observation, PatternError> {
        let mut left = self.observation()?;
        while self.word("AND") {
            self.at += 1;
            let right = self.observation()?;
            left = Observation::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn observation(&mut self) -> Result<Observation, PatternError> {
        self.enter()?;
        let mut obs = match self.peek() {
            Some(Tok::LBrack) => {
                self.at += 1;
                let c = self.comparison()?;
                self.expect(&Tok::RBrack, "`]`")?;
                Observation::Simple(c)
            }
            Some(Tok::LParen) => {
                self.at += 1;
                let o = self.observations()?;
                self.expect(&Tok::RParen, "`)`")?;
                o
            }
            _ => return self.fail("expected `[` or `(` to start an observation"),
        };
        loop {
            if self.word("WITHIN") {
                self.at += 1;
                let secs = match self.peek() {
                    Some(Tok::Int(n)) if *n > 0 => *n as f64,
                    Some(Tok::Float(f)) if *f > 0.0 => *f,
                    _ => return self.fail("expected a positive number of seconds after WITHIN"),
                };
                self.at += 1;
                if !self.word("SECONDS") {
                    return self.fail("expected SECONDS");
                }
                self.at += 1;
                obs = Observation::Qualified(Box::new(obs), Qualifier::Within(secs));
            } else if self.word("REPEATS") {
                self.at += 1;
                let Some(Tok::Int(n)) = self.peek().cloned() else {
                    return self.fail("expected a count after REPEATS");
                };
                if n <= 0 {
                    return self.fail("REPEATS needs a positive count");
                }
                self.at += 1;
                if !self.word("TIMES") {
                    return self.fail("expected TIMES");
                }
                self.at += 1;
                obs = Observation::Qualified(Box::new(obs), Qualifier::Repeats(n.unsigned_abs()));
            } else if self.word("START") {
                self.at += 1;
                let Some(Tok::Timestamp(a)) = self.peek().cloned() else {
                    return self.fail("expected t'…' after START");
                };
                self.at += 1;
                if !self.word("STOP") {
                    return self.fail("expected STOP");
                }
                self.at += 1;
                let Some(Tok::Timestamp(b)) = self.peek().cloned() else {
                    return self.fail("expected t'…' after STOP");
                };
                self.at += 1;
                obs = Observation::Qualified(Box::new(obs), Qualifier::StartStop(a, b));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(obs)
    }

    fn comparison(&mut self) -> Result<Comparison, PatternError> {
        let mut left = self.comparison_and()?;
        while self.word("OR") {
            self.at += 1;
            let right = self.comparison_and()?;
            left = Comparison::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison_and(&mut self) -> Result<Comparison, PatternError> {
        let mut left = self.prop_test()?;
        while self.word("AND") {
            self.at += 1;
            let right = self.prop_test()?;
            left = Comparison::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn prop_test(&mut self) -> Result<Comparison, PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.enter()?;
            self.at += 1;
            let c = self.comparison()?;
            self.expect(&Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(c);
        }
        let mut negated = false;
        if self.word("NOT") {
            negated = true;
            self.at += 1;
        }
        if self.word("EXISTS") {
            self.at += 1;
            let path = self.path()?;
            return Ok(Comparison::Test(PropTest {
                path,
                negated,
                op: Op::Exists,
            }));
        }
        let path = self.path()?;
        if self.word("NOT") {
            negated = true;
            self.at += 1;
        }
        let op = match self.peek().cloned() {
            Some(Tok::Eq) => {
                self.at += 1;
                Op::Eq(self.literal()?)
            }
            Some(Tok::Neq) => {
                self.at += 1;
                Op::Neq(self.literal()?)
            }
            Some(Tok::Gt) => {
                self.at += 1;
                Op::Gt(self.literal()?)
            }
            Some(Tok::Lt) => {
                self.at += 1;
                Op::Lt(self.literal()?)
            }
            Some(Tok::Ge) => {
                self.at += 1;
                Op::Ge(self.literal()?)
            }
            Some(Tok::Le) => {
                self.at += 1;
                Op::Le(self.literal()?)
            }
            Some(Tok::Word(w)) => {
                self.at += 1;
                match w.to_ascii_uppercase().as_str() {
                    "IN" => Op::In(self.set()?),
                    "LIKE" => Op::Like(self.string()?),
                    "MATCHES" => Op::Matches(self.string()?),
                    "ISSUBSET" => Op::IsSubset(self.string()?),
                    "ISSUPERSET" => Op::IsSuperset(self.string()?),
                    other => return self.fail(format!("`{other}` is not a comparison operator")),
                }
            }
            _ => return self.fail("expected a comparison operator"),
        };
        Ok(Comparison::Test(PropTest { path, negated, op }))
    }

    fn path(&mut self) -> Result<ObjectPath, PatternError> {
        let Some(Tok::Word(object_type)) = self.peek().cloned() else {
            return self.fail("expected an object type such as `ipv4-addr`");
        };
        self.at += 1;
        self.expect(&Tok::Colon, "`:` after the object type")?;
        let first = match self.peek().cloned() {
            Some(Tok::Word(w)) => w,
            Some(Tok::Str(s)) => s,
            _ => return self.fail("expected a property name"),
        };
        self.at += 1;
        let mut steps = vec![Step::Key(first)];
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.at += 1;
                    match self.peek().cloned() {
                        Some(Tok::Word(w)) => steps.push(Step::Key(w)),
                        Some(Tok::Str(s)) => steps.push(Step::Key(s)),
                        _ => return self.fail("expected a property name after `.`"),
                    }
                    self.at += 1;
                }
                Some(Tok::LBrack) => {
                    self.at += 1;
                    match self.peek().cloned() {
                        Some(Tok::Int(n)) => steps.push(Step::Index(n)),
                        Some(Tok::Star) => steps.push(Step::Any),
                        _ => return self.fail("expected an index or `*`"),
                    }
                    self.at += 1;
                    self.expect(&Tok::RBrack, "`]`")?;
                }
                _ => break,
            }
        }
        Ok(ObjectPath { object_type, steps })
    }

    fn string(&mut self) -> Result<String, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(s)
            }
            _ => self.fail("expected a quoted string"),
        }
    }

    fn literal(&mut self) -> Result<Literal, PatternError> {
        let l = match self.peek().cloned() {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Int(n)) => Literal::Int(n),
            Some(Tok::Float(f)) => Literal::Float(f),
            Some(Tok::Timestamp(t)) => Literal::Timestamp(t),
            Some(Tok::Hex(h)) => Literal::Hex(h),
            Some(Tok::Binary(b)) => Literal::Binary(b),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return self.fail("expected a value"),
        };
        self.at += 1;
        Ok(l)
    }

    fn set(&mut self) -> Result<Vec<Literal>, PatternError> {
        self.expect(&Tok::LParen, "`(` to open a set")?;
        let mut out = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.at += 1;
            return Ok(out);
        }
        loop {
            out.push(self.literal()?);
            match self.peek() {
                Some(Tok::Comma) => self.at += 1,
                Some(Tok::RParen) => {
                    self.at += 1;
                    return Ok(out);
                }
                _ => return self.fail("expected `,` or `)` in a set"),
            }
        }
    }
}

/// Parses a STIX pattern.
pub fn parse(text: &str) -> Result<Observation, PatternError> {
    if text.len() > MAX_PATTERN {
        return Err(PatternError {
            offset: MAX_PATTERN,
            message: format!("longer than {MAX_PATTERN} bytes"),
        });
    }
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
        end: text.len(),
        depth: 0,
    };
    let obs = p.observations()?;
    if p.at != p.toks.len() {
        return p.fail("unexpected text after the pattern");
    }
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_s_examples_parse() {
        for p in [
            "[ipv4-addr:value = '198.51.100.1/32']",
            "[ipv4-addr:value = '203.0.113.1' OR ipv4-addr:value = '203.0.113.2']",
            "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' AND file:name = 'foo.dll']",
            "[url:value = 'http://example.com/foo'] FOLLOWEDBY [domain-name:value = 'example.com'] WITHIN 300 SECONDS",
            "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$' AND email-message:body_multipart[*].body_raw_ref.name LIKE 'pdf%']",
            "([ipv4-addr:value = '10.0.0.1'] AND [ipv4-addr:value = '10.0.0.2']) REPEATS 5 TIMES",
            "[network-traffic:dst_ref.value ISSUBSET '2001:db8::/32']",
            "[file:size IN (1, 2, 3)] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
            "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\System\\\\Foo' AND NOT EXISTS windows-registry-key:values]",
        ] {
            parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn the_tree_keeps_paths_operators_and_escapes() {
        let p = parse("[file:hashes.'SHA-256' = 'ab' OR file:name = 'it''s']");
        assert!(p.is_err(), "a doubled quote is not an escape in STIX");
        let p = parse(r"[file:name = 'it\'s' OR file:hashes.'SHA-256' = 'ab']").unwrap();
        let Observation::Simple(Comparison::Or(a, b)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            *a,
            Comparison::Test(PropTest {
                path: ObjectPath {
                    object_type: "file".into(),
                    steps: vec![Step::Key("name".into())]
                },
                negated: false,
                op: Op::Eq(Literal::Str("it's".into())),
            })
        );
        let Comparison::Test(t) = *b else { panic!() };
        assert_eq!(t.path.to_string(), "file:hashes.SHA-256");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("[ipv4-addr:value = '1.2.3.4'").unwrap_err();
        assert_eq!(e.offset, 28);
        assert!(e.message.contains("`]`"), "{e}");
        let e = parse("[ipv4-addr:value ~ '1']").unwrap_err();
        assert_eq!(e.offset, 17);
        let e = parse("ipv4-addr:value = '1'").unwrap_err();
        assert!(e.message.contains("observation"), "{e}");
        let deep = format!("{}[a:b = 1]{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,2})?",
            "[a-z]{1,10}\\.(example|org|eu)",
            "[a-f0-9]{32}",
            "[a-zA-Z0-9 '\\\\]{0,12}",
        ]
    }

    fn test() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just("ipv4-addr:value"),
                Just("domain-name:value"),
                Just("file:hashes.'SHA-256'"),
                Just("url:value")
            ],
            prop_oneof![Just("="), Just("!="), Just("LIKE"), Just("NOT =")],
            value(),
        )
            .prop_map(|(p, op, v)| format!("{p} {op} '{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
    }

    fn observation() -> impl Strategy<Value = String> {
        proptest::collection::vec(test(), 1..4)
            .prop_map(|ts| format!("[{}]", ts.join(" OR ")))
            .prop_recursive(3, 12, 3, |inner| {
                prop_oneof![
                    (
                        inner.clone(),
                        inner.clone(),
                        prop_oneof![Just("AND"), Just("OR"), Just("FOLLOWEDBY")]
                    )
                        .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
                    (inner, 1u32..100).prop_map(|(a, n)| format!("{a} WITHIN {n} SECONDS")),
                ]
            })
    }

    proptest! {
        /// Every well-formed pattern parses, with its string values intact.
        #[test]
        fn well_formed_patterns_parse(p in observation()) {
            prop_assert!(parse(&p).is_ok(), "{p}: {:?}", parse(&p));
        }

        /// Any text at all: an answer or an error with an offset inside it, never a panic.
        #[test]
        fn any_text_is_answered(s in ".{0,200}") {
            if let Err(e) = parse(&s) {
                prop_assert!(e.offset <= s.len());
            }
        }
    }
}
