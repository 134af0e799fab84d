//! Sign-in with OpenID Connect: the authorization code flow with PKCE against the
//! institution's provider (OpenID Connect Core 1.0 §3.1, RFC 7636), for people; bearer tokens
//! stay for machines.
//!
//! The provider's endpoints come from discovery (`ISSUER/.well-known/openid-configuration`,
//! whose `issuer` must be the configured one exactly). An ID token is accepted only if its
//! signature verifies with a key of the provider's JWKS (asymmetric algorithms only; an unknown
//! key id fetches the JWKS again, at most every [`JWKS_REFETCH`], so a key rotation at the
//! provider is followed), its `iss` is the issuer, its `aud` holds the client id (and `azp`
//! names it when there are several), it has not expired, and its `nonce` is the one this
//! sign-in sent. `state` is single-use and bound to the browser that started the sign-in by a
//! cookie of its own. The person's role comes from a configured claim (groups or roles)
//! through `[oidc.roles]`; no mapped value, no sign-in.
//!
//! Sessions are refreshed with the provider every `refresh_secs` (refresh token grant); a
//! refused refresh (account disabled, session revoked at the provider) ends the session. A
//! provider that issues no refresh token bounds the session by the ID token's expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::TryRngCore;
use rempart_config::oidc::Oidc as Settings;
use rempart_store::Role;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A started sign-in not finished in this time is forgotten.
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// The JWKS is fetched again for an unknown key id at most this often.
pub const JWKS_REFETCH: Duration = Duration::from_secs(5);
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// Sign-ins in progress at once (older ones give way).
const MAX_PENDING: usize = 10_000;

/// Why a sign-in or a refresh failed; the message names the check.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Provider(String),
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the ID token was refused: {0}")]
    Token(String),
    #[error("{0}")]
    Flow(String),
    #[error("no role: none of `{claim}` ({values}) is mapped in `[oidc.roles]`")]
    NoRole { claim: String, values: String },
}

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

#[derive(Debug)]
struct Pending {
    nonce: String,
    verifier: String,
    /// SHA-256 of the cookie that binds the sign-in to its browser.
    browser: String,
    redirect_uri: String,
    next: String,
    created: Instant,
}

/// A person signed in through the provider.
#[derive(Debug, Clone)]
pub struct Person {
    /// The provider's subject identifier.
    pub sub: String,
    /// How records and pages name them (the configured name claim, else `sub`).
    pub name: String,
    pub role: Role,
    /// The claim values the role came from.
    pub groups: Vec<String>,
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// When the ID token expires (for providers that issue no refresh token).
    pub expires: Option<jiff::Timestamp>,
    pub refreshed: Instant,
}

impl Person {
    /// How the person appears in ledger records: `oidc:` and their name.
    pub fn actor(&self) -> String {
        format!("oidc:{}", self.name)
    }
}

/// The tokens a provider's token endpoint answers with.
#[derive(Debug, Deserialize)]
struct Tokens {
    id_token: Option<String>,
    refresh_token: Option<String>,
}

/// The OpenID Connect client of this server.
#[derive(Debug)]
pub struct Oidc {
    settings: Settings,
    secret: Option<String>,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<Metadata>>,
    jwks: tokio::sync::Mutex<(JwkSet, Option<Instant>)>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn random() -> Result<String, OidcError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| OidcError::Flow(format!("OS random source: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The algorithms an ID token may be signed with: asymmetric only (a shared-secret HS256 token
/// would be forgeable by anyone holding the client secret).
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Oidc {
    pub fn new(settings: &Settings) -> Result<Oidc, String> {
        let secret = match &settings.client_secret {
            rempart_config::gateway::Secret::None => None,
            rempart_config::gateway::Secret::Env(v) => {
                Some(std::env::var(v).map_err(|_| format!("`oidc.client_secret_env`: variable `{v}` is not set"))?)
            }
            rempart_config::gateway::Secret::File(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("`oidc.client_secret_file` `{}`: {e}", f.display()))?
                    .trim()
                    .to_owned(),
            ),
        };
        let tls = rempart_gateway::upstream::tls(settings.ca_file.as_deref()).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("OpenID client: {e}"))?;
        Ok(Oidc {
            settings: settings.clone(),
            secret,
            http,
            metadata: tokio::sync::Mutex::new(None),
            jwks: tokio::sync::Mutex::new((JwkSet { keys: Vec::new() }, None)),
            pending: Mutex::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(OidcError::Provider(format!("{url}: HTTP {}", resp.status())));
        }
        resp.json()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))
    }

    /// The provider's metadata, discovered once.
    async fn metadata(&self) -> Result<Metadata, OidcError> {
        let mut m = self.metadata.lock().await;
        if let Some(m) = m.as_ref() {
            return Ok(m.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer);
        let found: Metadata = self.get_json(&url).await?;
        if found.issuer.trim_end_matches('/') != self.settings.issuer {
            return Err(OidcError::Provider(format!(
                "discovery names issuer `{}`, not the configured `{}`",
                found.issuer, self.settings.issuer
            )));
        }
        *m = Some(found.clone());
        Ok(found)
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and the value
    /// of the cookie that binds this sign-in to that browser.
    pub async fn begin(&self, redirect_uri: &str, next: &str) -> Result<(String, String), OidcError> {
        let meta = self.metadata().await?;
        let (state, nonce, verifier, browser) = (random()?, random()?, random()?, random()?);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&meta.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if self.settings.scopes.iter().any(|s| s == "offline_access") {
            // Providers issue refresh tokens for `offline_access` only after consent.
            url.query_pairs_mut().append_pair("prompt", "consent");
        }
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|_, p| p.created.elapsed() < SIGN_IN_LIFETIME);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.created).map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            state,
            Pending {
                nonce,
                verifier,
                browser: digest(&browser),
                redirect_uri: redirect_uri.to_owned(),
                next: next.to_owned(),
                created: Instant::now(),
            },
        );
        Ok((url.to_string(), browser))
    }

    /// Finishes a sign-in from the provider's redirect: `state` must be one this server sent,
    /// unused, fresh, from the same browser; the code is exchanged (with the PKCE verifier)
    /// and the ID token verified. Returns the person and where they were going.
    pub async fn finish(&self, state: &str, code: &str, browser: Option<&str>) -> Result<(Person, String), OidcError> {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(state)
            .ok_or_else(|| OidcError::Flow("unknown, used or expired `state`".into()))?;
        if p.created.elapsed() >= SIGN_IN_LIFETIME {
            return Err(OidcError::Flow("the sign-in took too long; start again".into()));
        }
        if !browser.is_some_and(|b| crate::console::session::same_secret(&digest(b), &p.browser)) {
            return Err(OidcError::Flow(
                "this sign-in was started in another browser (its binding cookie is missing or different)".into(),
            ));
        }
        let meta = self.metadata().await?;
        let tokens = self
            .token_request(
                &meta,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &p.redirect_uri),
                    ("code_verifier", &p.verifier),
                ],
            )
            .await?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Refused("the token response holds no `id_token`".into()))?;
        let claims = self.verify(&meta, &id_token, Some(&p.nonce)).await?;
        let person = self.person(&claims, id_token, tokens.refresh_token)?;
        Ok((person, p.next))
    }

    /// Refreshes a session with the provider. `Err` when the provider no longer refreshes it;
    /// the session must then end.
    pub async fn refresh(&self, person: &Person) -> Result<Person, OidcError> {
        let Some(refresh_token) = &person.refresh_token else {
            return match person.expires {
                Some(exp) if exp > jiff::Timestamp::now() => Ok(Person {
                    refreshed: Instant::now(),
                    ..person.clone()
                }),
                _ => Err(OidcError::Refused(
                    "the ID token expired and the provider issued no refresh token".into(),
                )),
            };
        };
        let meta = self.metadata().await?;
        let tokens = self
            .token_request(
                &meta,
                &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
            )
            .await?;
        match tokens.id_token {
            Some(id_token) => {
                let claims = self.verify(&meta, &id_token, None).await?;
                if claims.get("sub").and_then(Value::as_str) != Some(person.sub.as_str()) {
                    return Err(OidcError::Token("a refresh answered for another subject".into()));
                }
                let refreshed = tokens.refresh_token.or_else(|| person.refresh_token.clone());
                self.person(&claims, id_token, refreshed)
            }
            None => Ok(Person {
                refresh_token: tokens.refresh_token.or_else(|| person.refresh_token.clone()),
                refreshed: Instant::now(),
                ..person.clone()
            }),
        }
    }

    /// Where to send the browser to end the provider's session too (RP-initiated logout).
    pub async fn logout_url(&self, person: &Person, after: &str) -> Option<String> {
        let end = self.metadata().await.ok()?.end_session_endpoint?;
        let mut url = reqwest::Url::parse(&end).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", &person.id_token)
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", after);
        Some(url.to_string())
    }

    async fn token_request(&self, meta: &Metadata, form: &[(&str, &str)]) -> Result<Tokens, OidcError> {
        let mut rb = self.http.post(&meta.token_endpoint);
        let mut body: Vec<(&str, &str)> = form.to_vec();
        match &self.secret {
            // client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded first.
            Some(secret) => {
                let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                rb = rb.basic_auth(enc(&self.settings.client_id), Some(enc(secret)));
            }
            None => body.push(("client_id", &self.settings.client_id)),
        }
        let resp = rb
            .form(&body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            let why: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(OidcError::Refused(format!(
                "token endpoint answered {status}: {} {}",
                why["error"].as_str().unwrap_or(""),
                why["error_description"].as_str().unwrap_or("")
            )));
        }
        serde_json::from_str(&text).map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))
    }

    /// The provider's key for `kid`, fetching the JWKS again when it is unknown (a rotation).
    async fn key(&self, meta: &Metadata, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, OidcError> {
        let mut jwks = self.jwks.lock().await;
        let find = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(k) => set.find(k),
                // Without a key id, the provider must have exactly one key for the algorithm.
                None => {
                    let mut usable = set.keys.iter().filter(|k| {
                        k.common
                            .key_algorithm
                            .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
                    });
                    match (usable.next(), usable.next()) {
                        (Some(k), None) => Some(k),
                        _ => None,
                    }
                }
            }?;
            DecodingKey::from_jwk(jwk).ok()
        };
        if let Some(k) = find(&jwks.0) {
            return Ok(k);
        }
        if jwks.1.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
            return Err(OidcError::Token(format!(
                "no key `{}` in the provider's JWKS",
                kid.unwrap_or("-")
            )));
        }
        let set: JwkSet = self.get_json(&meta.jwks_uri).await?;
        *jwks = (set, Some(Instant::now()));
        find(&jwks.0).ok_or_else(|| OidcError::Token(format!("no key `{}` in the provider's JWKS", kid.unwrap_or("-"))))
    }

    /// Verifies an ID token: signature, issuer, audience, authorized party, expiry, nonce.
    async fn verify(
        &self,
        meta: &Metadata,
        jwt: &str,
        nonce: Option<&str>,
    ) -> Result<serde_json::Map<String, Value>, OidcError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| OidcError::Token(format!("header: {e}")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Token(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let key = self.key(meta, header.kid.as_deref(), header.alg).await?;
        verify_claims(
            jwt,
            &key,
            header.alg,
            &self.settings.issuer,
            &self.settings.client_id,
            nonce,
        )
    }

    fn person(
        &self,
        claims: &serde_json::Map<String, Value>,
        id_token: String,
        refresh_token: Option<String>,
    ) -> Result<Person, OidcError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Token("no `sub`".into()))?
            .to_owned();
        let name = claims
            .get(&self.settings.name_claim)
            .and_then(Value::as_str)
            .unwrap_or(&sub)
            .to_owned();
        let groups = claim_values(claims.get(&self.settings.roles_claim));
        let role = role_for(&self.settings.roles, &groups).ok_or_else(|| OidcError::NoRole {
            claim: self.settings.roles_claim.clone(),
            values: if groups.is_empty() {
                "absent".into()
            } else {
                groups.join(", ")
            },
        })?;
        let expires = claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| jiff::Timestamp::from_second(e).ok());
        Ok(Person {
            sub,
            name,
            role,
            groups,
            refresh_token,
            id_token,
            expires,
            refreshed: Instant::now(),
        })
    }
}

/// The checks of OpenID Connect Core §3.1.3.7 on a token whose key is known.
pub fn verify_claims(
    jwt: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<serde_json::Map<String, Value>, OidcError> {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer, &format!("{issuer}/")]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(jwt, key, &v)
        .map_err(|e| OidcError::Token(e.to_string()))?;
    let claims = data.claims;
    // Several audiences: the authorized party must be this client.
    if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return Err(OidcError::Token(
            "several audiences and `azp` is not this client".into(),
        ));
    }
    if let Some(want) = nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(want)
    {
        return Err(OidcError::Token("`nonce` is not the one this sign-in sent".into()));
    }
    let now = jiff::Timestamp::now().as_second();
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + LEEWAY_SECS as i64)
    {
        return Err(OidcError::Token("issued in the future".into()));
    }
    Ok(claims)
}

/// A claim as a list of strings: an array of strings, or one string (space-separated roles
/// are one value each, as some providers write them).
fn claim_values(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The role a person's claim values give: the strongest of the mapped ones (admin, then
/// approver, analyst, auditor, viewer).
pub fn role_for(mapping: &[(String, String)], values: &[String]) -> Option<Role> {
    let mapped: Vec<Role> = mapping
        .iter()
        .filter(|(value, _)| values.iter().any(|v| v == value))
        .filter_map(|(_, role)| role.parse().ok())
        .collect();
    [Role::Admin, Role::Approver, Role::Analyst, Role::Auditor, Role::Viewer]
        .into_iter()
        .find(|r| mapped.contains(r))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::KeyPair;
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://idp.example.eu";

    /// An Ed25519 key pair: the signing key and the provider's published key.
    fn keys() -> (EncodingKey, DecodingKey) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        (
            EncodingKey::from_ed_der(pkcs8.as_ref()),
            DecodingKey::from_ed_der(pair.public_key().as_ref()),
        )
    }

    fn token(enc: &EncodingKey, claims: Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, enc).unwrap()
    }

    fn good(now: i64) -> Value {
        json!({"iss": ISS, "aud": "rempart", "sub": "u1", "iat": now, "exp": now + 300, "nonce": "n1"})
    }

    #[test]
    fn an_id_token_is_checked_as_the_specification_says() {
        let (enc, dec) = keys();
        let now = jiff::Timestamp::now().as_second();
        let check = |claims: Value, nonce: Option<&str>| {
            verify_claims(&token(&enc, claims), &dec, Algorithm::EdDSA, ISS, "rempart", nonce)
        };
        assert!(check(good(now), Some("n1")).is_ok());
        let with = |k: &str, v: Value| {
            let mut c = good(now);
            c[k] = v;
            c
        };
        for (name, claims, nonce) in [
            ("wrong audience", with("aud", json!("someone-else")), Some("n1")),
            ("wrong issuer", with("iss", json!("https://evil.example")), Some("n1")),
            ("expired", with("exp", json!(now - 3600)), Some("n1")),
            ("not yet valid", with("nbf", json!(now + 3600)), Some("n1")),
            ("issued in the future", with("iat", json!(now + 3600)), Some("n1")),
            ("wrong nonce", good(now), Some("n2")),
            ("no nonce", with("nonce", Value::Null), Some("n1")),
            (
                "several audiences, azp elsewhere",
                with("aud", json!(["rempart", "other"])),
                Some("n1"),
            ),
        ] {
            assert!(check(claims, nonce).is_err(), "{name} was accepted");
        }
        let mut several = with("aud", json!(["rempart", "other"]));
        several["azp"] = json!("rempart");
        assert!(check(several, Some("n1")).is_ok());
        // Another key's signature.
        let (other, _) = keys();
        let forged = token(&other, good(now));
        assert!(verify_claims(&forged, &dec, Algorithm::EdDSA, ISS, "rempart", Some("n1")).is_err());
        // A tampered payload.
        let t = token(&enc, good(now));
        let mut parts: Vec<&str> = t.split('.').collect();
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(with("sub", json!("admin")).to_string());
        parts[1] = &evil;
        assert!(verify_claims(&parts.join("."), &dec, Algorithm::EdDSA, ISS, "rempart", Some("n1")).is_err());
    }

    #[test]
    fn the_strongest_mapped_role_wins_and_unmapped_is_none() {
        let map = vec![
            ("soc".to_owned(), "viewer".to_owned()),
            ("approvers".to_owned(), "approver".to_owned()),
            ("audit".to_owned(), "auditor".to_owned()),
        ];
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(role_for(&map, &v(&["soc", "approvers"])), Some(Role::Approver));
        assert_eq!(role_for(&map, &v(&["audit", "soc"])), Some(Role::Auditor));
        assert_eq!(role_for(&map, &v(&["other"])), None);
        assert_eq!(claim_values(Some(&json!("a b"))), v(&["a", "b"]));
    }
}
