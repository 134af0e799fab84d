//! Which providers may receive a request: a pure decision from the request's data class and
//! purpose and each provider's declarations. A provider is allowed only if every rule allows
//! it; each refusal names the rule.

use rempart_config::gateway::{Gateway, Jurisdiction, Provider};
use rempart_model::DataClass;
use serde::Serialize;

/// The decision for one provider of a route's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub provider: String,
    pub allowed: bool,
    /// Why it was refused, or how it is allowed (`pseudonymized`, `in clear, on premises`).
    pub reason: String,
    /// Whether what is sent to it is pseudonymized.
    pub pseudonymize: bool,
}

/// Decides for one provider.
pub fn decide(gateway: &Gateway, p: &Provider, class: DataClass, purpose: &str, revoked: bool) -> Verdict {
    let refuse = |reason: String| Verdict {
        provider: p.name.clone(),
        allowed: false,
        reason,
        pseudonymize: true,
    };
    if revoked {
        return refuse("revoked".into());
    }
    if class > p.max_class {
        return refuse(format!(
            "{} is above the provider's ceiling {}",
            class.tlp_label(),
            p.max_class.tlp_label()
        ));
    }
    let ceiling = gateway.ceiling(&p.jurisdiction);
    if class > ceiling {
        return refuse(format!(
            "{} may not go to jurisdiction `{}` (ceiling {})",
            class.tlp_label(),
            p.jurisdiction,
            ceiling.tlp_label()
        ));
    }
    if !p.purposes.is_empty() && !p.purposes.iter().any(|x| x == purpose) {
        return refuse(format!("purpose `{purpose}` is not among the provider's purposes"));
    }
    // Outside the premises, personal data always leaves pseudonymized; configuration cannot
    // say otherwise, and this holds even if it somehow did.
    let pseudonymize = p.pseudonymize || p.jurisdiction != Jurisdiction::OnPrem;
    Verdict {
        provider: p.name.clone(),
        allowed: true,
        reason: if pseudonymize {
            "allowed, pseudonymized".into()
        } else {
            "allowed, in clear on premises".into()
        },
        pseudonymize,
    }
}

#[cfg(test)]
mod tests {
    use rempart_config::gateway::{ProviderKind, Secret};

    use super::*;

    fn provider(name: &str, jurisdiction: Jurisdiction, max_class: DataClass) -> Provider {
        Provider {
            name: name.into(),
            kind: ProviderKind::OpenAi,
            base_url: "https://example.invalid/v1".into(),
            model: "m".into(),
            api_key: Secret::None,
            jurisdiction,
            max_class,
            pseudonymize: true,
            retention_days: None,
            purposes: vec![],
            revoked: false,
            timeout_secs: 10,
            max_retries: 0,
            max_retry_after_secs: 0,
            price_input_per_mtok: 0.0,
            price_output_per_mtok: 0.0,
            ca_file: None,
            breaker_threshold: 5,
            breaker_cool_down_secs: 30,
        }
    }

    /// Every class against a provider in each jurisdiction that declares it may take anything:
    /// only the jurisdiction's ceiling decides.
    #[test]
    fn the_jurisdiction_ceiling_table() {
        let g = Gateway::default();
        let cases = [
            (Jurisdiction::OnPrem, [true, true, true, true, true]),
            (Jurisdiction::Eu, [true, true, true, false, false]),
            (Jurisdiction::Country("us".into()), [true, true, false, false, false]),
        ];
        for (j, expected) in cases {
            let p = provider("p", j.clone(), DataClass::Red);
            for (class, allowed) in DataClass::ALL.into_iter().zip(expected) {
                let v = decide(&g, &p, class, "triage", false);
                assert_eq!(v.allowed, allowed, "{class} to {j}: {}", v.reason);
            }
        }
    }

    /// The provider's own ceiling and the configured jurisdiction ceilings both bind.
    #[test]
    fn provider_ceilings_and_configured_ceilings_both_bind() {
        let mut g = Gateway::default();
        g.ceilings.insert(Jurisdiction::Eu, DataClass::Green);
        let eu = provider("eu", Jurisdiction::Eu, DataClass::Red);
        assert!(!decide(&g, &eu, DataClass::Amber, "x", false).allowed);
        assert!(decide(&g, &eu, DataClass::Green, "x", false).allowed);
        let local = provider("local", Jurisdiction::OnPrem, DataClass::Amber);
        let v = decide(&g, &local, DataClass::Red, "x", false);
        assert!(!v.allowed);
        assert!(v.reason.contains("provider's ceiling TLP:AMBER"), "{}", v.reason);
    }

    #[test]
    fn revocation_and_purpose_refuse_with_their_reason() {
        let g = Gateway::default();
        let mut p = provider("p", Jurisdiction::Eu, DataClass::Amber);
        assert_eq!(decide(&g, &p, DataClass::Clear, "x", true).reason, "revoked");
        p.purposes = vec!["triage".into()];
        assert!(
            decide(&g, &p, DataClass::Clear, "chat", false)
                .reason
                .contains("purpose `chat`")
        );
        assert!(decide(&g, &p, DataClass::Clear, "triage", false).allowed);
    }

    #[test]
    fn only_on_premises_providers_may_receive_clear_data() {
        let g = Gateway::default();
        let mut local = provider("local", Jurisdiction::OnPrem, DataClass::Red);
        local.pseudonymize = false;
        assert!(!decide(&g, &local, DataClass::Red, "x", false).pseudonymize);
        let mut eu = provider("eu", Jurisdiction::Eu, DataClass::Amber);
        eu.pseudonymize = false;
        assert!(decide(&g, &eu, DataClass::Amber, "x", false).pseudonymize);
    }
}
