//! Browser sessions: a signed-in person holds an opaque cookie, never a bearer token.
//!
//! A session is created from an API token (pasted on the sign-in page) or from a one-time
//! sign-in code (the link `rempart demo` prints). The server keeps only the SHA-256 of the
//! session identifier and of the token it stands for, so a memory dump holds no live secret.
//! Each request through a session re-checks the token, so revoking the token ends every
//! session made from it. Sessions end after [`IDLE`] without use and at [`ABSOLUTE`] whatever
//! happens; each carries its own CSRF token that every state-changing request must echo.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "rempart_session";
/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is over this long after sign-in, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// A one-time sign-in code is good this long, and once.
pub const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Most live sessions kept; the oldest give way.
const MAX_SESSIONS: usize = 10_000;

/// Who a session stands for.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An API token, by the SHA-256 of its secret (pasted, or through a one-time link).
    Token(String),
    /// A person signed in through the institution's OpenID provider.
    Person(Box<crate::oidc::Person>),
}

/// A live session, as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the session identifier (the cookie's value).
    pub key: String,
    pub principal: Principal,
    /// The token every state-changing request of this session must carry.
    pub csrf: String,
}

#[derive(Debug)]
struct Held {
    principal: Principal,
    csrf: String,
    created: Instant,
    used: Instant,
}

/// Every live session and unused sign-in code of this server.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Held>>,
    codes: Mutex<HashMap<String, (String, Instant)>>,
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// 32 bytes of the operating system's randomness, hex-encoded.
fn secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("OS random source: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Opens a session for `principal`; returns the cookie value.
    pub fn open(&self, principal: Principal) -> Result<String, String> {
        let id = secret()?;
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.retain(|_, h| live(h, now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, h)| h.created).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&id),
            Held {
                principal,
                csrf: secret()?,
                created: now,
                used: now,
            },
        );
        Ok(id)
    }

    /// The live session a cookie value names, marked as used now.
    pub fn find(&self, cookie: &str) -> Option<Session> {
        let key = digest(cookie);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = sessions.get_mut(&key)?;
        if !live(held, now) {
            sessions.remove(&key);
            return None;
        }
        held.used = now;
        Some(Session {
            key,
            principal: held.principal.clone(),
            csrf: held.csrf.clone(),
        })
    }

    /// Ends a session (sign-out).
    pub fn close(&self, key: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// Ends every session made from a token (after its revocation).
    pub fn close_token(&self, token_hash: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, h| !matches!(&h.principal, Principal::Token(t) if t == token_hash));
    }

    /// Replaces a session's person after a refresh with the provider.
    pub fn update_person(&self, key: &str, person: crate::oidc::Person) {
        if let Some(h) = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(key)
        {
            h.principal = Principal::Person(Box::new(person));
        }
    }

    /// A one-time code that opens a session for the token whose hash is `token_hash`.
    pub fn sign_in_code(&self, token_hash: &str) -> Result<String, String> {
        let code = secret()?;
        let now = Instant::now();
        let mut codes = self.codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        codes.retain(|_, (_, at)| now.duration_since(*at) < CODE_LIFETIME);
        codes.insert(digest(&code), (token_hash.to_owned(), now));
        Ok(code)
    }

    /// Spends a one-time code: the token hash it stood for, once, while it is fresh.
    pub fn redeem(&self, code: &str) -> Option<String> {
        let mut codes = self.codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (token_hash, at) = codes.remove(&digest(code))?;
        (at.elapsed() < CODE_LIFETIME).then_some(token_hash)
    }
}

fn live(h: &Held, now: Instant) -> bool {
    now.duration_since(h.used) < IDLE && now.duration_since(h.created) < ABSOLUTE
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_code_opens_one_session_once() {
        let s = Sessions::default();
        let code = s.sign_in_code("h").unwrap();
        assert_eq!(s.redeem(&code).as_deref(), Some("h"));
        assert_eq!(s.redeem(&code), None, "a code is spent by its first use");
        assert_eq!(s.redeem("not-a-code"), None);
    }

    #[test]
    fn sessions_end_by_sign_out_and_by_revocation() {
        let s = Sessions::default();
        let a = s.open(Principal::Token("t1".into())).unwrap();
        let b = s.open(Principal::Token("t2".into())).unwrap();
        let found = s.find(&a).unwrap();
        assert!(matches!(&found.principal, Principal::Token(t) if t == "t1"));
        assert_ne!(
            found.csrf,
            s.find(&b).unwrap().csrf,
            "each session has its own CSRF token"
        );
        s.close(&found.key);
        assert!(s.find(&a).is_none());
        s.close_token("t2");
        assert!(s.find(&b).is_none());
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = "x_rempart_session=1; rempart_session=abc; other=2";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie("rempart_sessionx=1", COOKIE), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
