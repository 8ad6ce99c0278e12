//! The two Bitrix24 limits (PROTOCOL.md 4): a leaky bucket per portal and the per-method
//! operating time over a sliding 10 minutes, both on the portal's virtual clock.

use std::collections::VecDeque;

/// Request-rate limit: each request adds 1; the level drains by `drain` per second; a request
/// that would lift it above `burst` is refused (503 `QUERY_LIMIT_EXCEEDED`).
#[derive(Debug)]
pub(crate) struct Bucket {
    pub burst: f64,
    pub drain: f64,
    pub enabled: bool,
    level: f64,
    last: f64,
}

impl Bucket {
    pub(crate) fn new(burst: f64, drain: f64, enabled: bool) -> Self {
        Bucket {
            burst,
            drain,
            enabled,
            level: 0.0,
            last: f64::NEG_INFINITY,
        }
    }

    /// Counts one request at `now`; false when it is refused.
    pub(crate) fn take(&mut self, now: f64) -> bool {
        if !self.enabled {
            return true;
        }
        if self.last.is_finite() {
            let drained = (now - self.last).max(0.0) * self.drain;
            self.level = (self.level - drained).max(0.0);
        }
        self.last = now;
        if self.level + 1.0 > self.burst {
            return false;
        }
        self.level += 1.0;
        true
    }
}

/// Seconds one method ran for one app or webhook: ten one-minute buckets.
#[derive(Debug, Default)]
pub(crate) struct Operating {
    /// `(minute index, first call in it, seconds)`, oldest first.
    buckets: VecDeque<(i64, f64, f64)>,
}

/// The window, seconds.
pub(crate) const WINDOW: f64 = 600.0;

impl Operating {
    fn prune(&mut self, now: f64) {
        while let Some((_, first, _)) = self.buckets.front() {
            if first + WINDOW <= now {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Seconds used in the window at `now`.
    pub(crate) fn used(&mut self, now: f64) -> f64 {
        self.prune(now);
        self.buckets.iter().map(|b| b.2).sum()
    }

    /// Adds `cost` seconds at `now`.
    pub(crate) fn add(&mut self, now: f64, cost: f64) {
        self.prune(now);
        let minute = (now / 60.0).floor() as i64;
        match self.buckets.back_mut() {
            Some(b) if b.0 == minute => b.2 += cost,
            _ => self.buckets.push_back((minute, now, cost)),
        }
    }

    /// When the oldest bucket has dropped out (unix seconds, rounded up, so a retry at this
    /// instant succeeds); `now + 600` when empty.
    pub(crate) fn reset_at(&mut self, now: f64) -> i64 {
        self.prune(now);
        let first = self.buckets.front().map_or(now, |b| b.1);
        (first + WINDOW).ceil() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_drains() {
        let mut b = Bucket::new(50.0, 2.0, true);
        for _ in 0..50 {
            assert!(b.take(100.0));
        }
        assert!(!b.take(100.0));
        assert!(b.take(100.5));
        assert!(!b.take(100.5));
    }

    #[test]
    fn operating_window_slides() {
        let mut o = Operating::default();
        o.add(1000.0, 100.0);
        o.add(1100.0, 100.0);
        assert_eq!(o.used(1100.0), 200.0);
        assert_eq!(o.reset_at(1100.5), 1600);
        assert_eq!(o.used(1600.0), 100.0);
        assert_eq!(o.reset_at(1600.0), 1700);
    }
}
