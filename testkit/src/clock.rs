//! The portal's virtual clock: real time, optionally sped up, plus whatever a test advanced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Unix time in seconds (fractional) as the portal sees it.
pub(crate) struct Clock {
    origin: Instant,
    origin_unix: f64,
    scale: f64,
    /// Seconds added by [`Clock::advance`], as `f64` bits.
    offset: AtomicU64,
}

impl Clock {
    /// A clock that starts at `start_unix` and runs `scale` times faster than real time.
    pub(crate) fn new(start_unix: f64, scale: f64) -> Self {
        Clock {
            origin: Instant::now(),
            origin_unix: start_unix,
            scale,
            offset: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Now, unix seconds.
    pub(crate) fn now(&self) -> f64 {
        let offset = f64::from_bits(self.offset.load(Ordering::Acquire));
        self.origin_unix + self.origin.elapsed().as_secs_f64() * self.scale + offset
    }

    /// Moves the clock forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let add = by.as_secs_f64();
        let _ = self
            .offset
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some((f64::from_bits(bits) + add).to_bits())
            });
    }

    /// The real duration that `virtual_secs` of portal time takes.
    pub(crate) fn real(&self, virtual_secs: f64) -> Duration {
        if self.scale <= 0.0 || !virtual_secs.is_finite() || virtual_secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((virtual_secs / self.scale).min(3600.0))
    }
}

/// The system clock, unix seconds.
pub(crate) fn system_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `unix` as an ISO 8601 string in the portal's time zone (`2026-08-20T11:55:00+02:00`).
pub(crate) fn iso(unix: f64, offset_secs: i32) -> String {
    use chrono::{FixedOffset, SecondsFormat, TimeZone};
    let tz = FixedOffset::east_opt(offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let secs = unix.floor() as i64;
    match tz.timestamp_opt(secs, 0).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, false),
        None => String::new(),
    }
}

/// `unix` as `dd.mm.yyyy hh:mm:ss` (the user object's `TIMESTAMP_X` format).
pub(crate) fn dotted(unix: f64, offset_secs: i32) -> String {
    fmt_with(unix, offset_secs, "%d.%m.%Y %H:%M:%S")
}

/// `unix` as `yyyy-mm-dd hh:mm:ss`.
pub(crate) fn spaced(unix: f64, offset_secs: i32) -> String {
    fmt_with(unix, offset_secs, "%Y-%m-%d %H:%M:%S")
}

fn fmt_with(unix: f64, offset_secs: i32, f: &str) -> String {
    use chrono::{FixedOffset, TimeZone};
    let tz = FixedOffset::east_opt(offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    match tz.timestamp_opt(unix.floor() as i64, 0).single() {
        Some(t) => t.format(f).to_string(),
        None => String::new(),
    }
}
