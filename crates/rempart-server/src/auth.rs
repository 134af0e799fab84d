//! API tokens and roles.
//!
//! A token is `rmp_` followed by 64 hex digits of OS randomness (256 bits). Only
//! its SHA-256 is stored: with that much entropy a slow hash adds nothing, and lookups stay
//! O(1). The secret is shown once, at creation.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use jiff::Timestamp;
use rand::TryRngCore;
use rempart_audit::{Draft, Ledger, kind};
use rempart_store::{Role, Store, TokenRecord};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Prefix of every token secret, so that secret scanners recognize leaked ones.
pub const TOKEN_PREFIX: &str = "rmp_";

/// Hex SHA-256 of a token secret.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A token to create.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    /// The person it acts for; the creator when `None`.
    pub owner: Option<&'a str>,
}

/// Who creates something: the ledger's actor and the person behind it.
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    pub actor: &'a str,
    pub person: &'a str,
}

/// Creates a token, stores its hash, and returns the record and the secret. The token acts
/// for its owner (the creator unless another person is named) and remembers its creator.
/// The creation is recorded in the ledger first: if it cannot be, no token exists.
pub async fn create_token(
    store: &dyn Store,
    ledger: &Ledger,
    by: By<'_>,
    new: NewToken<'_>,
) -> Result<(TokenRecord, String), ApiError> {
    if let Some(owner) = new.owner
        && (owner.is_empty() || owner.chars().count() > 128 || owner.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(
            "`owner` must be 1 to 128 characters, none of them a control character".into(),
        ));
    }
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(random::<32>()?));
    let id = format!("tok_{}", hex::encode(random::<6>()?));
    let record = TokenRecord {
        id,
        name: new.name.to_owned(),
        role: new.role,
        hash: hash_token(&secret),
        created: Timestamp::now(),
        revoked: false,
        owner: Some(new.owner.unwrap_or(by.person).to_owned()),
        created_by: Some(by.person.to_owned()),
    };
    ledger
        .append(Draft::new(
            by.actor,
            kind::TOKEN_CREATE,
            serde_json::json!({
                "token": record.id, "name": record.name, "role": record.role,
                "owner": record.owner, "created_by": record.created_by,
            }),
        ))
        .await?;
    store.create_token(&record).await?;
    Ok((record, secret))
}

/// Revokes a token, recorded in the ledger first; `false` if there is no such token.
pub async fn revoke_token(store: &dyn Store, ledger: &Ledger, actor: &str, id: &str) -> Result<bool, ApiError> {
    let exists = store.list_tokens().await?.iter().any(|t| t.id == id && !t.revoked);
    if !exists {
        return Ok(false);
    }
    ledger
        .append(Draft::new(actor, kind::TOKEN_REVOKE, serde_json::json!({"token": id})))
        .await?;
    Ok(store.revoke_token(id).await?)
}

/// `N` bytes from the operating system's random source.
fn random<const N: usize>() -> Result<[u8; N], rempart_store::StoreError> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| rempart_store::StoreError::Open {
            path: "OS random source".into(),
            reason: e.to_string(),
        })?;
    Ok(bytes)
}

/// How long a token found valid is trusted without asking the store again: a revocation through
/// this server takes effect at once, one by another process (the CLI) within this time.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Tokens found valid lately, by hash. Unknown tokens are not remembered.
#[derive(Debug, Default)]
pub struct TokenCache(std::sync::Mutex<std::collections::HashMap<String, (TokenRecord, std::time::Instant)>>);

impl TokenCache {
    pub(crate) fn get(&self, hash: &str) -> Option<TokenRecord> {
        let cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(t, _)| t.clone())
    }

    pub(crate) fn put(&self, hash: String, token: TokenRecord) {
        let mut cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
        }
        cache.insert(hash, (token, std::time::Instant::now()));
    }

    /// Forgets every token (after a revocation).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// How a token (or a client certificate, whose record's id begins `cert:`, or a person signed
/// in through the identity provider, `oidc:`) appears in ledger records.
pub fn actor_of(token: &TokenRecord) -> String {
    if !is_bearer_token(token) {
        token.id.clone()
    } else {
        format!("token:{}", token.id)
    }
}

/// Whether a caller's record is a token the store holds, not a client certificate's (`cert:`)
/// or a signed-in person's (`oidc:`).
pub fn is_bearer_token(token: &TokenRecord) -> bool {
    !(token.id.starts_with("cert:") || token.id.starts_with("oidc:"))
}

/// The authenticated caller, put into request extensions by [`require`].
#[derive(Debug, Clone)]
pub struct Caller(pub TokenRecord);

impl Caller {
    /// The caller as four eyes count votes on a response.
    pub fn voter(&self) -> crate::respond::Voter {
        let t = &self.0;
        crate::respond::Voter {
            actor: self.actor(),
            person: self.person(),
            role: t.role,
            token: is_bearer_token(t).then(|| (t.created, t.created_by.clone())),
        }
    }

    /// How the caller appears in ledger records.
    pub fn actor(&self) -> String {
        actor_of(&self.0)
    }

    /// The person behind the caller, as approvals count them.
    pub fn person(&self) -> String {
        person_of(&self.0)
    }
}

/// The person behind a token record: a console session's OpenID subject, a certificate's
/// holder, or a token's owner (a token without one is a person of its own).
pub fn person_of(token: &TokenRecord) -> String {
    if !is_bearer_token(token) {
        return token.id.clone();
    }
    token.owner.clone().unwrap_or_else(|| format!("token:{}", token.id))
}

/// Middleware: the request must carry a live token whose role grants `required`, as a bearer
/// token or through a console session (see [`admit`]).
pub async fn require(
    State((state, required)): State<(AppState, Role)>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let req = admit(&state, Some(required), req).await?;
    Ok(next.run(req).await)
}

/// Middleware: the request must carry a live token or session, of any role (what every
/// caller may read: the API's description).
pub async fn require_any(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let req = admit(&state, None, req).await?;
    Ok(next.run(req).await)
}

/// The bearer secret a request carries (`Authorization: Bearer` or Anthropic's `x-api-key`).
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// The live token with this hash, from the cache or the store.
pub async fn token_by_hash(state: &AppState, hash: &str) -> Result<Option<TokenRecord>, ApiError> {
    if let Some(t) = state.tokens.get(hash) {
        return Ok(Some(t));
    }
    let Some(t) = state.store.find_token(hash).await? else {
        return Ok(None);
    };
    state.tokens.put(hash.to_owned(), t.clone());
    Ok(Some(t))
}

/// A person's session as the caller: refreshed with the provider when due; a refresh the
/// provider refuses ends the session (recorded), and a role that changed is recorded.
async fn person_record(state: &AppState, key: &str, person: &crate::oidc::Person) -> Result<TokenRecord, ApiError> {
    let mut person = person.clone();
    if let Some(oidc) = &state.oidc
        && person.refreshed.elapsed() >= std::time::Duration::from_secs(oidc.settings().refresh_secs)
    {
        match oidc.refresh(&person).await {
            Ok(fresh) => {
                if fresh.role != person.role {
                    state
                        .ledger
                        .append(Draft::new(
                            fresh.actor(),
                            kind::CONSOLE_ROLE_CHANGE,
                            serde_json::json!({"sub": fresh.sub, "from": person.role, "to": fresh.role, "groups": fresh.groups}),
                        ))
                        .await?;
                }
                state.console.sessions.update_person(key, fresh.clone());
                person = fresh;
            }
            Err(e) => {
                state.console.sessions.close(key);
                state
                    .ledger
                    .append(Draft::new(
                        person.actor(),
                        kind::CONSOLE_SESSION_END,
                        serde_json::json!({"sub": person.sub, "reason": e.to_string()}),
                    ))
                    .await?;
                tracing::info!(person = %person.name, error = %e, "console session ended by the identity provider");
                return Err(ApiError::Unauthenticated);
            }
        }
    }
    Ok(TokenRecord {
        id: person.actor(),
        name: person.name.clone(),
        role: person.role,
        hash: String::new(),
        created: Timestamp::now(),
        revoked: false,
        owner: None,
        created_by: None,
    })
}

/// The role a verified client certificate stands for, as a token record named after the
/// certificate (`cert:` and the start of its fingerprint), if `[[server.tls.clients]]` maps one
/// of its names.
fn certificate_holder(state: &AppState, req: &Request) -> Option<TokenRecord> {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<crate::tls::Peer>>()?;
    let cert = peer.0.cert.as_ref()?;
    let client = state
        .cert_clients
        .iter()
        .find(|c| cert.names.iter().any(|n| n == &c.subject))?;
    Some(TokenRecord {
        id: format!("cert:{}", &cert.fingerprint[..16]),
        name: client.name.clone(),
        role: client.role.parse().ok()?,
        hash: String::new(),
        created: Timestamp::now(),
        revoked: false,
        owner: None,
        created_by: None,
    })
}

/// Who a request comes from: a bearer token, else a mapped client certificate, else a console
/// session (its token still live, or its person refreshed with the provider when due).
async fn identify(
    state: &AppState,
    bearer: Option<String>,
    cert: Option<TokenRecord>,
    session: Option<crate::console::Session>,
) -> Result<(TokenRecord, Option<crate::console::Session>), ApiError> {
    Ok(match bearer {
        Some(secret) => {
            if !secret.starts_with(TOKEN_PREFIX) {
                return Err(ApiError::Unauthenticated);
            }
            let token = token_by_hash(state, &hash_token(&secret))
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            (token, None)
        }
        None if let Some(token) = cert => (token, None),
        None => {
            let session = session.ok_or(ApiError::Unauthenticated)?;
            let token = match &session.principal {
                crate::console::Principal::Token(hash) => {
                    let Some(token) = token_by_hash(state, hash).await? else {
                        // The token was revoked: every session made from it is over.
                        state.console.sessions.close_token(hash);
                        return Err(ApiError::Unauthenticated);
                    };
                    token
                }
                crate::console::Principal::Person(person) => person_record(state, &session.key, person).await?,
            };
            (token, Some(session))
        }
    })
}

/// Lets a request in if its caller's role grants `required` (any role when `None`), and puts
/// the [`Caller`] (and the console [`Session`](crate::console::Session), if it came through
/// one) into its extensions.
///
/// A bearer token wins over a client certificate (mutual TLS, mapped by
/// `[[server.tls.clients]]`), which wins over a session cookie. A request through a session that may change
/// state (any method but GET and HEAD) must also come from this server's own pages: a
/// same-origin `Origin` when the browser sends one, and the session's CSRF token as the
/// `x-csrf-token` header or the `csrf` field of a form.
pub async fn admit(state: &AppState, required: Option<Role>, mut req: Request) -> Result<Request, ApiError> {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::tls::Peer>>()
        .map(|c| c.0.addr.ip());
    // An address that failed too often lately gets nothing but tokens already known valid.
    if let Some(ip) = ip
        && let Some(wait) = state.auth_failures.blocked(ip)
        && bearer(&req).is_none_or(|s| state.tokens.get(&hash_token(s)).is_none())
    {
        return Err(ApiError::TooManyFailures(wait));
    }
    let presented = bearer(&req).is_some() || req.headers().contains_key(axum::http::header::COOKIE);
    // Read what the request carries before awaiting: a request body is not `Sync`.
    let secret = bearer(&req).map(str::to_owned);
    // Only what wins is looked up: a bearer token, else a certificate, else a session.
    let cert = secret.is_none().then(|| certificate_holder(state, &req)).flatten();
    let session = (secret.is_none() && cert.is_none())
        .then(|| state.console.session_of(&req))
        .flatten();
    let found = identify(state, secret, cert, session);
    let (token, session) = match found.await {
        Ok(found) => found,
        Err(ApiError::Unauthenticated) => {
            if presented
                && let Some(ip) = ip
                && let Some(wait) = state.auth_failures.fail(ip)
            {
                tracing::warn!(%ip, "authentication failures over the limit: address held back");
                return Err(ApiError::TooManyFailures(wait));
            }
            return Err(ApiError::Unauthenticated);
        }
        Err(e) => return Err(e),
    };
    // The gateway's clients are held to its own quotas; everyone else to the per-caller rate.
    if required != Some(Role::GatewayClient)
        && let Some(retry) = state.rate.take(&token.id)
    {
        return Err(ApiError::RateLimited {
            limit: state.rate.limit(),
            retry,
        });
    }
    if let Some(required) = required
        && !token.role.grants(required)
    {
        state.metrics.auth_denied.inc();
        return Err(ApiError::Forbidden {
            held: token.role.to_string(),
            required: required.to_string(),
        });
    }
    if let Some(session) = &session
        && !(req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD)
    {
        req = crate::console::check_csrf(req, session).await?;
    }
    record_first_use(state, &token).await?;
    req.extensions_mut().insert(Caller(token));
    if let Some(session) = session {
        req.extensions_mut().insert(session);
    }
    Ok(req)
}

/// Records the first authenticated use of each token in this server's life (the API's
/// "login"), before serving it: a token whose use cannot be recorded is not served.
async fn record_first_use(state: &AppState, token: &TokenRecord) -> Result<(), ApiError> {
    if state.logged_in.lock().await.contains(&token.id) {
        return Ok(());
    }
    state
        .ledger
        .append(Draft::new(
            actor_of(token),
            kind::TOKEN_USE,
            serde_json::json!({"token": token.id, "name": token.name, "role": token.role}),
        ))
        .await?;
    state.logged_in.lock().await.insert(token.id.clone());
    Ok(())
}

/// Failed authentications per client address in a sliding minute. Past [`Failures::LIMIT`],
/// the address is held back for the rest of its window: guessing costs time, and the store
/// is not asked about every guess.
#[derive(Debug)]
pub struct Failures {
    limit: u32,
    seen: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
}

impl Default for Failures {
    fn default() -> Self {
        Failures::with_limit(Failures::LIMIT)
    }
}

impl Failures {
    /// Failures an address may have in a window, by default.
    pub const LIMIT: u32 = 30;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    /// Most addresses tracked (the oldest windows are dropped first).
    const MAX_TRACKED: usize = 100_000;

    pub fn with_limit(limit: u32) -> Failures {
        Failures {
            limit,
            seen: std::sync::Mutex::default(),
        }
    }

    /// Seconds left to wait, if the address is held back. A limit of 0 holds no one back.
    pub fn blocked(&self, ip: std::net::IpAddr) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let map = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (n, start) = map.get(&ip)?;
        let elapsed = start.elapsed();
        (*n >= self.limit && elapsed < Self::WINDOW).then(|| (Self::WINDOW - elapsed).as_secs().max(1))
    }

    /// Counts a failure; the seconds to wait if the address is now held back.
    pub fn fail(&self, ip: std::net::IpAddr) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let mut map = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::MAX_TRACKED {
            map.retain(|_, (_, start)| start.elapsed() < Self::WINDOW);
        }
        let now = std::time::Instant::now();
        let slot = map.entry(ip).or_insert((0, now));
        if slot.1.elapsed() >= Self::WINDOW {
            *slot = (0, now);
        }
        slot.0 += 1;
        let elapsed = slot.1.elapsed();
        (slot.0 >= self.limit).then(|| Self::WINDOW.saturating_sub(elapsed).as_secs().max(1))
    }
}

/// A token bucket per caller: `limit` requests a minute, refilled continuously, bursts up to
/// the minute's allowance.
#[derive(Debug)]
pub struct RateLimit {
    limit: u32,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimit {
    /// `limit` requests a minute per caller; 0 for none.
    pub fn per_minute(limit: u32) -> RateLimit {
        RateLimit {
            limit,
            buckets: std::sync::Mutex::default(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Takes one request from `caller`'s allowance; the seconds to wait if there is none left.
    pub fn take(&self, caller: &str) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let per_sec = f64::from(self.limit) / 60.0;
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
        }
        let (tokens, at) = buckets.entry(caller.to_owned()).or_insert((f64::from(self.limit), now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(f64::from(self.limit));
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}
