//! `[store]`: where Rempart keeps what it stores.
//!
//! Without a URL, the embedded SQLite file in the data directory. With one, a PostgreSQL
//! server every process of a cluster shares:
//!
//! ```toml
//! [store]
//! url = "postgres://rempart@db.soc.example:5432/rempart?sslmode=verify-full&sslrootcert=/etc/rempart/db-ca.pem"
//! password_file = "/run/credentials/rempart/db-password"   # or password_env = "REMPART_DB_PASSWORD"
//! max_connections = 16
//! schema = "rempart"
//! ```
//!
//! The password is never written in the URL (the file is often world-readable, the URL is
//! shown in messages): the URL is refused if it holds one.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Problem;
use crate::incidents::bounded;

/// The store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `postgres://…` for a shared PostgreSQL; `None` for the embedded SQLite file.
    pub url: Option<String>,
    /// A file holding the database password (its first line).
    pub password_file: Option<PathBuf>,
    /// A variable holding the database password.
    pub password_env: Option<String>,
    /// Connections one process keeps at most.
    pub max_connections: u32,
    /// The schema the tables live in; the user's `search_path` when `None`.
    pub schema: Option<String>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            url: None,
            password_file: None,
            password_env: None,
            max_connections: 16,
            schema: None,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    url: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    max_connections: Option<i64>,
    schema: Option<String>,
}

/// Whether the userinfo of `url` carries a password (`user:password@`).
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

pub(crate) fn validate(raw: RawStore, problems: &mut Vec<Problem>) -> Store {
    let mut out = Store::default();
    if let Some(url) = raw.url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.push(Problem {
                path: "store.url".into(),
                message: "expected a postgres:// URL (leave it out for the embedded store)".into(),
            });
        } else if has_password(&url) {
            problems.push(Problem {
                path: "store.url".into(),
                message: "holds a password: give it in `password_file` or `password_env` instead".into(),
            });
        } else {
            out.url = Some(url);
        }
    }
    if raw.password_file.is_some() && raw.password_env.is_some() {
        problems.push(Problem {
            path: "store.password_file".into(),
            message: "give `password_file` or `password_env`, not both".into(),
        });
    }
    if let Some(f) = &raw.password_file
        && !f.is_file()
    {
        problems.push(Problem {
            path: "store.password_file".into(),
            message: format!("file `{}` does not exist", f.display()),
        });
    }
    if out.url.is_none() && (raw.password_file.is_some() || raw.password_env.is_some() || raw.schema.is_some()) {
        problems.push(Problem {
            path: "store".into(),
            message: "`password_file`, `password_env` and `schema` need a PostgreSQL `url`".into(),
        });
    }
    if let Some(s) = &raw.schema
        && (s.is_empty()
            || s.len() > 63
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    {
        problems.push(Problem {
            path: "store.schema".into(),
            message: format!("`{s}` must be 1 to 63 characters of a-z, 0-9 and _"),
        });
    }
    if let Some(n) = bounded(problems, "store.max_connections", raw.max_connections, 2..=1000) {
        out.max_connections = u32::try_from(n).unwrap_or(16);
    }
    out.password_file = raw.password_file;
    out.password_env = raw.password_env;
    out.schema = raw.schema;
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use crate::Config;

    #[test]
    fn a_postgres_store_reads_and_a_password_in_the_url_is_refused() {
        let cfg = Config::parse(
            "version = 1\n[store]\nurl = \"postgres://rempart@db:5432/soc?sslmode=verify-full\"\npassword_env = \"P\"\nschema = \"rempart\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            cfg.store.url.as_deref(),
            Some("postgres://rempart@db:5432/soc?sslmode=verify-full")
        );
        assert_eq!(cfg.store.password_env.as_deref(), Some("P"));
        assert_eq!(cfg.store.max_connections, 16);
        assert_eq!(Config::default().store.url, None, "the embedded store by default");
        let err = Config::parse(
            "version = 1\n[store]\nurl = \"postgres://rempart:hunter2@db/soc\"\nschema = \"Bad-Name\"\nmax_connections = 1\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for expect in [
            "`store.url`: holds a password",
            "`store.schema`: `Bad-Name` must be",
            "`store.max_connections`: 1 is outside 2 to 1000",
        ] {
            assert!(err.contains(expect), "{expect} in {err}");
        }
        assert!(!err.contains("hunter2"), "the password is not repeated: {err}");
        let err = Config::parse("version = 1\n[store]\nurl = \"mysql://db\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a postgres:// URL"), "{err}");
    }
}
