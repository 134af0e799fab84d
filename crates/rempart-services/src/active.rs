//! What detection uses that a reload replaces whole: the rule set and the indicator index.
//! A batch is evaluated by one version from start to end.

use std::sync::Arc;

use rempart_intel::IocIndex;

/// The detection rules in force. A reload swaps the whole set.
#[derive(Debug, Clone, Default)]
pub struct ActiveRules(Arc<std::sync::RwLock<Option<Arc<rempart_detect::RuleSet>>>>);

impl ActiveRules {
    pub fn new(rules: Option<Arc<rempart_detect::RuleSet>>) -> Self {
        ActiveRules(Arc::new(std::sync::RwLock::new(rules)))
    }

    /// The rules now in force.
    pub fn current(&self) -> Option<Arc<rempart_detect::RuleSet>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn replace(&self, rules: Arc<rempart_detect::RuleSet>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rules);
    }
}

/// The indicator index in force; replaced whole.
#[derive(Debug, Clone, Default)]
pub struct ActiveIntel(Arc<std::sync::RwLock<Option<Arc<IocIndex>>>>);

impl ActiveIntel {
    pub fn current(&self) -> Option<Arc<IocIndex>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn replace(&self, index: Arc<IocIndex>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(index);
    }
}
