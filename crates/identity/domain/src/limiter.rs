//! Failed-login counting in memory, on the injected clock: a sliding window
//! of failure times per key.

use std::collections::{HashMap, VecDeque};

pub struct FailureWindow {
    window_ms: i64,
    max_failures: usize,
    failures: HashMap<String, VecDeque<i64>>,
    /// When to next sweep keys whose failures have all expired, so the map
    /// does not grow without bound under a spray of distinct keys.
    next_sweep_ms: i64,
}

impl FailureWindow {
    pub fn new(max_failures: usize, window_ms: i64) -> FailureWindow {
        FailureWindow { window_ms, max_failures, failures: HashMap::new(), next_sweep_ms: 0 }
    }

    fn sweep(&mut self, now_ms: i64) {
        if now_ms < self.next_sweep_ms {
            return;
        }
        let cutoff = now_ms - self.window_ms;
        self.failures.retain(|_, q| q.back().is_some_and(|&t| t > cutoff));
        self.next_sweep_ms = now_ms + self.window_ms;
    }

    fn prune(&mut self, key: &str, now_ms: i64) {
        let cutoff = now_ms - self.window_ms;
        if let Some(q) = self.failures.get_mut(key) {
            while q.front().is_some_and(|&t| t <= cutoff) {
                q.pop_front();
            }
            if q.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    /// Seconds until one more attempt is allowed, if the key is at its limit now.
    pub fn blocked_for_s(&mut self, key: &str, now_ms: i64) -> Option<u64> {
        self.sweep(now_ms);
        self.prune(key, now_ms);
        let q = self.failures.get(key)?;
        if q.len() < self.max_failures {
            return None;
        }
        // The attempt that frees a slot: the oldest counted failure leaving the window.
        let idx = q.len() - self.max_failures;
        let free_at = q.get(idx).copied().unwrap_or(now_ms) + self.window_ms;
        let wait_ms = (free_at - now_ms).max(1);
        Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1))
    }

    pub fn add(&mut self, key: &str, now_ms: i64) {
        self.failures.entry(key.to_string()).or_default().push_back(now_ms);
    }

    /// Take back one failure counted at `at_ms` (an attempt counted in advance that succeeded).
    pub fn remove_one(&mut self, key: &str, at_ms: i64) {
        if let Some(q) = self.failures.get_mut(key) {
            if let Some(pos) = q.iter().rposition(|&t| t == at_ms) {
                q.remove(pos);
            }
            if q.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_at_the_limit_and_lifts_as_failures_age() {
        let mut w = FailureWindow::new(3, 60_000);
        for t in [0, 10_000, 20_000] {
            assert_eq!(w.blocked_for_s("k", t), None);
            w.add("k", t);
        }
        assert_eq!(w.blocked_for_s("k", 20_000), Some(40));
        assert_eq!(w.blocked_for_s("other", 20_000), None);
        assert_eq!(w.blocked_for_s("k", 59_999), Some(1));
        assert_eq!(w.blocked_for_s("k", 60_000), None);
        w.remove_one("k", 20_000);
        w.add("k", 60_000);
        assert_eq!(w.blocked_for_s("k", 60_001), None);
        w.clear("k");
        assert!(w.failures.is_empty());
    }

    #[test]
    fn sweeps_expired_keys() {
        let mut w = FailureWindow::new(3, 1000);
        for i in 0..100 {
            w.add(&format!("k{i}"), 0);
        }
        assert_eq!(w.blocked_for_s("x", 5000), None);
        assert!(w.failures.is_empty());
    }
}
