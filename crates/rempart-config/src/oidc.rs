//! `[oidc]`: people sign in to the console through the institution's OpenID provider.
//!
//! ```toml
//! [oidc]
//! issuer = "https://login.example.eu/realms/soc"    # discovery at ISSUER/.well-known/openid-configuration
//! client_id = "rempart"
//! client_secret_env = "REMPART_OIDC_SECRET"         # or client_secret_file; none for a public client
//! redirect_url = "https://rempart.example.eu/sign-in/oidc/callback"
//! scopes = ["openid", "profile", "offline_access", "groups"]   # the default, less `groups`
//! roles_claim = "groups"                            # the ID token's claim holding groups or roles
//! refresh_secs = 300                                # how often a session is refreshed with the provider
//! ca_file = "/etc/rempart/idp-ca.pem"               # extra CA certificates for the provider
//! [oidc.roles]                                      # the claim's values, to Rempart's roles
//! "soc-analysts" = "analyst"
//! "soc-approvers" = "approver"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::gateway::Secret;
use crate::{Problem, ROLES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the provider sends the browser back; by default this server's
    /// `/sign-in/oidc/callback` at the address the browser used.
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    pub roles_claim: String,
    /// The claim that names the person in records and pages.
    pub name_claim: String,
    /// (claim value, role), by claim value.
    pub roles: Vec<(String, String)>,
    pub refresh_secs: u64,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    redirect_url: Option<String>,
    scopes: Option<Vec<String>>,
    roles_claim: Option<String>,
    name_claim: Option<String>,
    roles: Option<toml::Table>,
    refresh_secs: Option<i64>,
    ca_file: Option<PathBuf>,
}

/// Whether a URL is HTTPS, or plain HTTP to this machine only (a provider under test).
fn safe_url(url: &str) -> bool {
    url.starts_with("https://")
        || [
            "http://127.0.0.1:",
            "http://127.0.0.1/",
            "http://localhost:",
            "http://localhost/",
            "http://[::1]:",
        ]
        .iter()
        .any(|p| url.starts_with(p))
}

pub(crate) fn validate(raw: RawOidc, problems: &mut Vec<Problem>) -> Oidc {
    let mut problem = |path: &str, message: String| {
        problems.push(Problem {
            path: format!("oidc.{path}"),
            message,
        })
    };
    let issuer = raw.issuer.trim_end_matches('/').to_owned();
    if !safe_url(&issuer) {
        problem(
            "issuer",
            format!("`{issuer}` must be an https:// URL (plain http only to this machine)"),
        );
    }
    if raw.client_id.trim().is_empty() {
        problem("client_id", "must not be empty".into());
    }
    let client_secret = match (raw.client_secret_env, raw.client_secret_file) {
        (Some(_), Some(_)) => {
            problem(
                "client_secret_env",
                "give `client_secret_env` or `client_secret_file`, not both".into(),
            );
            Secret::None
        }
        (Some(e), None) => Secret::Env(e),
        (None, Some(f)) => {
            if !f.is_file() {
                problem("client_secret_file", format!("file `{}` does not exist", f.display()));
            }
            Secret::File(f)
        }
        (None, None) => Secret::None,
    };
    if let Some(r) = &raw.redirect_url
        && !(safe_url(r) && r.ends_with("/sign-in/oidc/callback"))
    {
        problem(
            "redirect_url",
            format!("`{r}` must be this server's https://…/sign-in/oidc/callback"),
        );
    }
    let scopes = raw
        .scopes
        .unwrap_or_else(|| ["openid", "profile", "offline_access"].map(str::to_owned).to_vec());
    if !scopes.iter().any(|s| s == "openid") {
        problem("scopes", "must include `openid`".into());
    }
    let mut roles = Vec::new();
    for (value, role) in raw.roles.unwrap_or_default() {
        match role.as_str() {
            Some(r) if ROLES.contains(&r) && !matches!(r, "ingest" | "gateway-client") => {
                roles.push((value, r.to_owned()));
            }
            _ => problem(
                &format!("roles.{value}"),
                format!("{role:?} is not a role a person may hold (viewer, analyst, approver, admin, auditor)"),
            ),
        }
    }
    if roles.is_empty() {
        problem(
            "roles",
            "map at least one value of the roles claim to a role, e.g. \"soc-analysts\" = \"analyst\"".into(),
        );
    }
    let refresh_secs = match raw.refresh_secs {
        None => 300,
        Some(s) if (10..=86_400).contains(&s) => s as u64,
        Some(s) => {
            problem("refresh_secs", format!("{s} is outside 10 to 86400"));
            300
        }
    };
    if let Some(ca) = &raw.ca_file
        && !ca.is_file()
    {
        problem("ca_file", format!("file `{}` does not exist", ca.display()));
    }
    Oidc {
        issuer,
        client_id: raw.client_id,
        client_secret,
        redirect_url: raw.redirect_url,
        scopes,
        roles_claim: raw.roles_claim.unwrap_or_else(|| "groups".into()),
        name_claim: raw.name_claim.unwrap_or_else(|| "preferred_username".into()),
        roles,
        refresh_secs,
        ca_file: raw.ca_file,
    }
}
