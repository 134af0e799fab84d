//! The input formats Rempart decodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A wire or file format of security telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Any JSON object, one per line or as an array; the catch-all for JSON that no more
    /// specific decoder claims.
    Json,
    /// Syslog, RFC 5424.
    #[serde(rename = "syslog-5424")]
    Syslog5424,
    /// Syslog, RFC 3164 (BSD) and the variants real devices send.
    #[serde(rename = "syslog-3164")]
    Syslog3164,
    /// ArcSight Common Event Format, alone or inside syslog.
    Cef,
    /// Windows binary event log files.
    Evtx,
    /// Windows events exported to JSON (evtx_dump, Winlogbeat, NXLog as in OTRF data sets).
    WindowsJson,
    /// Suricata EVE JSON.
    SuricataEve,
    /// Zeek logs, tab-separated with a `#fields` header.
    ZeekTsv,
    /// Zeek logs written as JSON.
    ZeekJson,
    /// Linux audit (auditd) records, `type=… msg=audit(…): key=value …`.
    Auditd,
}

impl Format {
    /// Every format, for listings and help text.
    pub const ALL: [Format; 10] = [
        Format::Json,
        Format::Syslog5424,
        Format::Syslog3164,
        Format::Cef,
        Format::Evtx,
        Format::WindowsJson,
        Format::SuricataEve,
        Format::ZeekTsv,
        Format::ZeekJson,
        Format::Auditd,
    ];

    /// The name used on the command line, in configuration and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Syslog5424 => "syslog-5424",
            Format::Syslog3164 => "syslog-3164",
            Format::Cef => "cef",
            Format::Evtx => "evtx",
            Format::WindowsJson => "windows-json",
            Format::SuricataEve => "suricata-eve",
            Format::ZeekTsv => "zeek-tsv",
            Format::ZeekJson => "zeek-json",
            Format::Auditd => "auditd",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name Rempart does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Other names a format is known by: the file or protocol names people use.
    pub const ALIASES: [(&'static str, Format); 9] = [
        ("ndjson", Format::Json),
        ("jsonl", Format::Json),
        ("syslog", Format::Syslog5424),
        ("rfc5424", Format::Syslog5424),
        ("rfc3164", Format::Syslog3164),
        ("bsd-syslog", Format::Syslog3164),
        ("eve", Format::SuricataEve),
        ("suricata", Format::SuricataEve),
        ("zeek", Format::ZeekTsv),
    ];
}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// A format's name or one of its [`Format::ALIASES`], exactly as written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .or_else(|| Format::ALIASES.iter().find(|(alias, _)| *alias == s).map(|(_, f)| *f))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_through_its_name() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
    }

    #[test]
    fn serialized_names_are_the_cli_names() {
        for f in Format::ALL {
            let json = serde_json::to_string(&f).ok();
            assert_eq!(json, Some(format!("\"{}\"", f.as_str())));
        }
    }

    #[test]
    fn aliases_name_their_format_and_names_are_exact() {
        for (alias, f) in Format::ALIASES {
            assert_eq!(alias.parse::<Format>(), Ok(f));
            assert!(
                Format::ALL.iter().all(|g| g.as_str() != alias),
                "{alias} is also a name"
            );
        }
        for written in ["JSON", " json", "json ", "Syslog"] {
            assert_eq!(written.parse::<Format>(), Err(UnknownFormat(written.to_owned())));
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!("xml".parse::<Format>(), Err(UnknownFormat("xml".to_owned())));
    }
}
