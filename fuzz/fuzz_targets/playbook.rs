//! Playbook YAML: checking any text either yields a playbook or problems with their places,
//! never a panic; a playbook that checks has valid ids and steps.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rempart_config::{Connector, ConnectorKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut connectors = BTreeMap::new();
    connectors.insert(
        "hook".to_owned(),
        Connector {
            name: "hook".into(),
            kind: ConnectorKind::Webhook {
                url: "http://127.0.0.1:9/".into(),
                secret: rempart_config::gateway::Secret::Env("K".into()),
            },
            dry_run: true,
            timeout_secs: 1,
        },
    );
    let cx = rempart_respond::CheckContext {
        connectors: &connectors,
        default_approval_timeout_secs: 60,
    };
    match rempart_respond::playbook::parse(text, Path::new("fuzz.yml"), cx) {
        Ok(pb) => {
            assert!(!pb.steps.is_empty());
            assert!(pb.steps.len() <= rempart_respond::playbook::MAX_STEPS);
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
});
