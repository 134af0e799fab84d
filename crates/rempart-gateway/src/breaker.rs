//! A circuit breaker per provider: after `threshold` consecutive health failures it opens and
//! the provider is skipped for `cool_down`; then one request probes it (half-open), and its
//! outcome closes or re-opens the circuit. Time is passed in, so tests need no sleeping.

use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    failures: u32,
    opened: Option<Instant>,
    probing: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            failures: 0,
            opened: None,
            probing: false,
        }
    }

    pub fn state(&self, now: Instant) -> State {
        match self.opened {
            None => State::Closed,
            Some(t) if now.duration_since(t) >= self.cool_down => State::HalfOpen,
            Some(_) => State::Open,
        }
    }

    /// Whether a request may go to the provider now; in half-open state only one at a time.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self.state(now) {
            State::Closed => true,
            State::Open => false,
            State::HalfOpen if self.probing => false,
            State::HalfOpen => {
                self.probing = true;
                true
            }
        }
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.opened = None;
        self.probing = false;
    }

    /// A failure that says the provider is unhealthy.
    pub fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.probing || self.failures >= self.threshold {
            self.opened = Some(now);
        }
        self.probing = false;
    }

    /// A request admitted as a probe ended without saying anything about health.
    pub fn release(&mut self) {
        self.probing = false;
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cool_down_and_recovers() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert!(b.admit(t0));
            b.failure(t0);
        }
        assert_eq!(b.state(t0), State::Closed);
        b.failure(t0);
        assert_eq!(b.state(t0), State::Open);
        assert!(!b.admit(t0 + Duration::from_secs(29)));
        let later = t0 + Duration::from_secs(30);
        assert!(b.admit(later), "one probe after the cool-down");
        assert!(!b.admit(later), "only one probe at a time");
        b.failure(later);
        assert_eq!(b.state(later), State::Open, "a failed probe re-opens at once");
        let again = later + Duration::from_secs(30);
        assert!(b.admit(again));
        b.success();
        assert_eq!(b.state(again), State::Closed);
        assert!(b.admit(again) && b.admit(again));
    }
}
