//! Data classification, on the Traffic Light Protocol (FIRST TLP 2.0).
//!
//! Every event carries a class; later the sovereignty gateway decides from it which model
//! provider may see what. Classes are ordered: `Clear < Green < Amber < AmberStrict < Red`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How far information may travel, per TLP 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataClass {
    /// `TLP:CLEAR`: no limit on disclosure.
    Clear,
    /// `TLP:GREEN`: the community.
    Green,
    /// `TLP:AMBER`: the organisation and its clients. The default for telemetry, which holds
    /// personal data until proven otherwise.
    #[default]
    Amber,
    /// `TLP:AMBER+STRICT`: the organisation only.
    AmberStrict,
    /// `TLP:RED`: named recipients only.
    Red,
}

impl DataClass {
    /// All classes, least restrictive first.
    pub const ALL: [DataClass; 5] = [
        DataClass::Clear,
        DataClass::Green,
        DataClass::Amber,
        DataClass::AmberStrict,
        DataClass::Red,
    ];

    /// The label as TLP 2.0 writes it, e.g. `TLP:AMBER+STRICT`.
    pub fn tlp_label(self) -> &'static str {
        match self {
            DataClass::Clear => "TLP:CLEAR",
            DataClass::Green => "TLP:GREEN",
            DataClass::Amber => "TLP:AMBER",
            DataClass::AmberStrict => "TLP:AMBER+STRICT",
            DataClass::Red => "TLP:RED",
        }
    }

    /// The short name used in configuration and in the API, e.g. `amber-strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Clear => "clear",
            DataClass::Green => "green",
            DataClass::Amber => "amber",
            DataClass::AmberStrict => "amber-strict",
            DataClass::Red => "red",
        }
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data class name that is none of the TLP 2.0 labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data class `{0}` (expected one of clear, green, amber, amber-strict, red)")]
pub struct UnknownDataClass(pub String);

impl FromStr for DataClass {
    type Err = UnknownDataClass;

    /// Accepts the short names (`amber-strict`) and the TLP labels (`TLP:AMBER+STRICT`),
    /// case-insensitively. `TLP:WHITE` is TLP 1.0's name for `TLP:CLEAR`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("tlp:").unwrap_or(&lower);
        match bare {
            "clear" | "white" => Ok(DataClass::Clear),
            "green" => Ok(DataClass::Green),
            "amber" => Ok(DataClass::Amber),
            "amber-strict" | "amber+strict" => Ok(DataClass::AmberStrict),
            "red" => Ok(DataClass::Red),
            _ => Err(UnknownDataClass(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ordered_by_restriction() {
        assert!(DataClass::Clear < DataClass::Green);
        assert!(DataClass::Amber < DataClass::AmberStrict);
        assert!(DataClass::AmberStrict < DataClass::Red);
    }

    #[test]
    fn parses_short_names_and_tlp_labels() {
        for class in DataClass::ALL {
            assert_eq!(class.as_str().parse::<DataClass>(), Ok(class));
            assert_eq!(class.tlp_label().parse::<DataClass>(), Ok(class));
        }
        assert_eq!("TLP:WHITE".parse::<DataClass>(), Ok(DataClass::Clear));
        assert!("purple".parse::<DataClass>().is_err());
    }
}
