//! `[intel]`: threat-intelligence feeds a server polls on its own.
//!
//! ```toml
//! [[intel.taxii]]
//! url = "https://cti.example.eu/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
//! every_secs = 3600                 # the default; at least 60
//! username = "rempart"              # basic auth, with the password in this variable
//! password_env = "REMPART_TAXII_PASSWORD"
//! ca_file = "/etc/rempart/cti-ca.pem"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::Problem;
use crate::incidents::bounded;

/// Feeds polled by `rempart serve`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Intel {
    pub taxii: Vec<TaxiiFeed>,
}

/// A TAXII 2.1 collection, read whole at start and every `every_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiFeed {
    pub url: String,
    pub every_secs: u64,
    pub username: Option<String>,
    /// The variable holding the password (read when polling, never stored here).
    pub password_env: Option<String>,
    /// Extra CA certificates (PEM) to trust for this server.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntel {
    taxii: Option<Vec<RawTaxii>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxii {
    url: String,
    every_secs: Option<i64>,
    username: Option<String>,
    password_env: Option<String>,
    ca_file: Option<PathBuf>,
}

pub(crate) fn validate(raw: RawIntel, problems: &mut Vec<Problem>) -> Intel {
    let mut out = Intel::default();
    for (i, t) in raw.taxii.unwrap_or_default().into_iter().enumerate() {
        let path = format!("intel.taxii[{i}]");
        let mut ok = true;
        if !(t.url.starts_with("https://") || t.url.starts_with("http://")) {
            problems.push(Problem {
                path: format!("{path}.url"),
                message: format!("`{}` is not an http:// or https:// URL", t.url),
            });
            ok = false;
        }
        if t.username.is_some() != t.password_env.is_some() {
            problems.push(Problem {
                path: format!("{path}.username"),
                message: "give both username and password_env, or neither".into(),
            });
            ok = false;
        }
        if let Some(f) = &t.ca_file
            && !f.is_file()
        {
            problems.push(Problem {
                path: format!("{path}.ca_file"),
                message: format!("file `{}` does not exist", f.display()),
            });
            ok = false;
        }
        let every = bounded(problems, &format!("{path}.every_secs"), t.every_secs, 60..=7 * 86_400);
        if t.every_secs.is_some() && every.is_none() {
            ok = false;
        }
        if ok {
            out.taxii.push(TaxiiFeed {
                url: t.url,
                every_secs: every.unwrap_or(3_600),
                username: t.username,
                password_env: t.password_env,
                ca_file: t.ca_file,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use crate::Config;

    #[test]
    fn feeds_read_and_bad_ones_are_named() {
        let cfg = Config::parse(
            "version = 1\n[[intel.taxii]]\nurl = \"https://cti.example.eu/c/\"\nusername = \"r\"\npassword_env = \"P\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(cfg.intel.taxii[0].every_secs, 3_600);
        assert_eq!(cfg.intel.taxii[0].password_env.as_deref(), Some("P"));
        let err = Config::parse(
            "version = 1\n[[intel.taxii]]\nurl = \"ftp://x\"\nevery_secs = 5\nusername = \"r\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for expect in [
            "`intel.taxii[0].url`: `ftp://x` is not an http:// or https:// URL",
            "`intel.taxii[0].every_secs`: 5 is outside 60 to 604800",
            "`intel.taxii[0].username`: give both username and password_env",
        ] {
            assert!(err.contains(expect), "missing {expect:?} in {err}");
        }
    }
}
