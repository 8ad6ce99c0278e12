//! Transport-side limits: the portal's request-rate bucket and the per-method operating-time
//! budget, kept per portal and shared by every clone of a client.
//!
//! Bitrix24 counts HTTP requests per portal (and source IP) in a leaky bucket: a burst of
//! `X` requests, drained by `Y` per second; a request above the level is refused with 503
//! `QUERY_LIMIT_EXCEEDED`. Separately, each method may run at most about 480 s of server
//! time in any 10 minutes; above that, the next call of that method is refused with 429
//! `OPERATION_TIME_LIMIT` until the oldest minute drops out
//! (<https://apidocs.bitrix24.com/limits.html>).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::auth::{BoxFuture, StoreError};
use crate::error::{Cause, CauseKind, Error, ErrorKind};
use crate::wire::Time;

/// The portal's request-rate limit, as the client enforces it on itself.
///
/// Every HTTP request to the portal takes one unit from a bucket shared by all clones of the
/// client (and by every client a [`ClientPool`](crate::ClientPool) hands out for one portal):
/// a re-POST after a redirect, the retry after a token refresh and a `batch` each count. The
/// client keeps a small safety margin below the plan's figures (2 % of the burst, at
/// least 1 request, and 1 % of the rate), so that network jitter does not trip the portal.
///
/// The per-method operating-time budget (480 s of server time per 10 minutes on cloud
/// portals) is part of the same settings: a method whose `time.operating` approaches it is
/// slowed down; after `OPERATION_TIME_LIMIT` it is paused until `operating_reset_at`, while
/// other methods go on.
///
/// ```
/// use bitrix24::RateLimit;
/// let enterprise = RateLimit::enterprise(); // 250 at once, then 5 per second
/// let custom = RateLimit::custom(100, 4.0); // a self-hosted portal's own settings
/// let none = RateLimit::off(); // a portal with the limiter switched off
/// # let _ = (enterprise, custom, none);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// `None`: no client-side bucket.
    bucket: Option<(u32, f64)>,
    operating_budget: Duration,
}

/// The cloud portals' per-method budget of server time in any 10 minutes.
pub const DEFAULT_OPERATING_BUDGET: Duration = Duration::from_secs(480);

impl RateLimit {
    /// Every cloud plan but Enterprise: a burst of 50 requests, then 2 per second.
    pub fn standard() -> RateLimit {
        RateLimit::custom(50, 2.0)
    }

    /// Enterprise plans: a burst of 250 requests, then 5 per second.
    pub fn enterprise() -> RateLimit {
        RateLimit::custom(250, 5.0)
    }

    /// A bucket of `burst` requests that drains by `per_second` requests per second (a
    /// self-hosted portal's own settings). A `burst` of 0 counts as 1; a `per_second` that is
    /// not a positive finite number switches the bucket off; below one request a day it
    /// counts as one a day.
    pub fn custom(burst: u32, per_second: f64) -> RateLimit {
        let bucket =
            (per_second.is_finite() && per_second > 0.0).then_some((burst.max(1), per_second));
        RateLimit {
            bucket,
            operating_budget: DEFAULT_OPERATING_BUDGET,
        }
    }

    /// No client-side bucket: every request goes out at once. For portals whose limiter is
    /// off (self-hosted ones often are) or a caller that paces itself. A
    /// `QUERY_LIMIT_EXCEEDED` that arrives anyway is still retried with backoff.
    pub fn off() -> RateLimit {
        RateLimit {
            bucket: None,
            operating_budget: DEFAULT_OPERATING_BUDGET,
        }
    }

    /// The per-method budget of server time in any 10 minutes (default
    /// [`DEFAULT_OPERATING_BUDGET`], 480 s; self-hosted portals use 420 s when they enable
    /// it).
    pub fn operating_budget(mut self, budget: Duration) -> RateLimit {
        self.operating_budget = budget;
        self
    }

    /// The plan's burst and drain rate (requests, requests per second), `None` when off.
    pub fn bucket(&self) -> Option<(u32, f64)> {
        self.bucket
    }
}

impl Default for RateLimit {
    /// [`RateLimit::standard`].
    fn default() -> Self {
        RateLimit::standard()
    }
}

/// A portal's request bucket as a [`SharedLimiter`] enforces it: at most `burst` requests at
/// once, then one per `interval`. The client's safety margin is already taken off the plan's
/// figures ([`RateLimit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketSpec {
    /// Requests that may go at once after a quiet period.
    pub burst: u32,
    /// The time one request takes to drain from the bucket (1 / rate).
    pub interval: Duration,
}

impl BucketSpec {
    /// A bucket of `burst` requests at once, then one per `interval` (a limiter's own tests,
    /// or a [`SharedLimiter`] wrapping another). Clients make theirs from their
    /// [`RateLimit`].
    pub fn new(burst: u32, interval: Duration) -> BucketSpec {
        BucketSpec { burst, interval }
    }
}

/// The operating-time state of one method on one portal, as a [`SharedLimiter`] shares it
/// between processes (the portal counts a method's server time for every caller). Times are
/// unix seconds with fractions, on the local clocks of the processes (keep them in sync).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MethodBudget {
    /// `time.operating` of the last answer: seconds of server time the method used in the
    /// last 10 minutes.
    pub operating: f64,
    /// When the oldest minute of that window drops out (`time.operating_reset_at`).
    pub reset_at: Option<f64>,
    /// Paused after `OPERATION_TIME_LIMIT` until then.
    pub blocked_until: Option<f64>,
    /// `time.processing` of the last answer, seconds: what one more call will likely cost.
    pub last_cost: f64,
    /// When the last call was let through while the method was being spread out.
    pub last_sent: Option<f64>,
}

/// A rate budget shared by processes: every worker of an application that calls one portal
/// takes its requests from the same bucket, so that together they stay under the portal's
/// limit, and they share each method's operating-time state. `RedisLimiter` (feature
/// `redis`) is one; set it with [`ClientBuilder::shared_limiter`](crate::ClientBuilder::shared_limiter)
/// or [`ClientPoolBuilder::shared_limiter`](crate::ClientPoolBuilder::shared_limiter).
///
/// `portal` is the key the client uses for the portal: the host name of its REST endpoint
/// in lower case (`example.bitrix24.com`), taken when the client is built. A failure makes the call fail unsent with [`ErrorKind::Limiter`], unless
/// the client falls back to its in-process bucket
/// ([`ClientBuilder::limiter_fallback`](crate::ClientBuilder::limiter_fallback)).
pub trait SharedLimiter: Send + Sync + 'static {
    /// Takes one request from the bucket of `portal` if one is free now: `Ok(None)`. When
    /// none is, `Ok(Some(wait))`: the time until one will be (nothing was taken; the client
    /// sleeps and asks again). One atomic step, so that processes asking at once cannot take
    /// the same unit.
    fn try_acquire<'a>(
        &'a self,
        portal: &'a str,
        bucket: BucketSpec,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>>;

    /// The shared state of `method` on `portal`, `None` when none is known.
    fn load_method<'a>(
        &'a self,
        portal: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<Option<MethodBudget>, StoreError>>;

    /// Replaces the shared state of `method` on `portal`. It may expire 10 minutes after the
    /// last write (the portal's window).
    fn save_method<'a>(
        &'a self,
        portal: &'a str,
        method: &'a str,
        budget: &'a MethodBudget,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The portal answered `QUERY_LIMIT_EXCEEDED`: its own bucket is empty (another program
    /// on the same IP spends it too), whatever the shared one says. Empties the bucket of
    /// `portal` so that no worker is granted a request for `pause`, and after it only one
    /// per interval, with no burst. Refusals that arrive together do not add up: the later
    /// end wins.
    ///
    /// The default does nothing: each process then pauses on its own after its own refusal.
    fn drain<'a>(
        &'a self,
        portal: &'a str,
        bucket: BucketSpec,
        pause: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (portal, bucket, pause);
        Box::pin(async { Ok(()) })
    }
}

/// What a client does when its [`SharedLimiter`] fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimiterFallback {
    /// The call fails unsent with [`ErrorKind::Limiter`] (retried like a connection that
    /// never opened). The default: never send past a budget other workers spend too.
    #[default]
    Fail,
    /// The client's in-process bucket takes over until the shared limiter answers again
    /// (logged once per outage). Safe for one worker; several together may then trip the
    /// portal's limit, which answers `QUERY_LIMIT_EXCEEDED` (retried with backoff).
    InProcess,
}

/// The portal's effective bucket: the plan's figures less the safety margin (2 % of the
/// burst, at least 1, against requests bunched by network jitter; 1 % of the rate, against
/// clock drift and the portal's rounding). The interval is at most a day. `None` when the
/// limit is off.
fn effective_bucket(limit: &RateLimit) -> Option<BucketSpec> {
    let (burst, per_second) = limit.bucket?;
    let margin = (burst / 50).max(1);
    let burst = burst.saturating_sub(margin).max(1);
    let interval = Duration::try_from_secs_f64(1.0 / (per_second * 0.99))
        .unwrap_or(Duration::from_secs(86_400))
        .min(Duration::from_secs(86_400));
    Some(BucketSpec { burst, interval })
}

/// A client's link to its [`SharedLimiter`].
struct Shared {
    backend: Arc<dyn SharedLimiter>,
    /// The portal's key: the host of its REST endpoint, in lower case.
    portal: String,
    /// `None` when the rate limit is off: then only the methods' state is shared.
    bucket: Option<BucketSpec>,
    fallback: LimiterFallback,
    /// Whether the last request to the backend failed (to log an outage once).
    down: AtomicBool,
}

impl Shared {
    /// A backend failure: `Ok` to go on in-process (fallback), else the typed error.
    fn failed(&self, method: &str, e: StoreError) -> Result<(), Error> {
        let was_down = self.down.swap(true, Ordering::Relaxed);
        match self.fallback {
            LimiterFallback::InProcess => {
                if !was_down {
                    tracing::warn!(error = %e, "the shared rate limiter failed; using the in-process bucket until it is back");
                }
                Ok(())
            }
            LimiterFallback::Fail => {
                if !was_down {
                    tracing::warn!(error = %e, "the shared rate limiter failed; calls fail unsent until it is back");
                }
                Err(Error::new(ErrorKind::Limiter)
                    .with_method(method)
                    .with_message(format!("the shared rate limiter failed: {e}"))
                    .with_cause(Cause::new(CauseKind::Limiter, e.to_string()))
                    .never_executed())
            }
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("the shared rate limiter answers again");
        }
    }
}

/// After a `QUERY_LIMIT_EXCEEDED` the whole portal is left alone for this long (doubled for
/// every further refusal in a row, up to [`MAX_THROTTLE_PAUSE`]).
const THROTTLE_PAUSE: Duration = Duration::from_millis(500);
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(8);
/// The pause of a method refused with `OPERATION_TIME_LIMIT` when no `operating_reset_at` is
/// known: the window's buckets are one minute long.
pub(crate) const DEFAULT_OPERATING_PAUSE: Duration = Duration::from_secs(60);
/// The shortest pause after `OPERATION_TIME_LIMIT` (doubled for every refusal in a row, up to
/// [`DEFAULT_OPERATING_PAUSE`]).
const MIN_OPERATING_PAUSE: Duration = Duration::from_secs(1);
/// Above this share of the budget a method's calls are spread out until the reset.
const SLOW_DOWN_AT: f64 = 0.8;

/// The limits of one portal: the bucket, a portal-wide pause after a refusal, and the
/// per-method operating-time state.
pub(crate) struct Limits {
    bucket: Option<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    /// The portal's drain rate the bucket was made for, requests per second.
    per_second: Option<f64>,
    clock: DefaultClock,
    budget: f64,
    state: Mutex<State>,
    shared: Option<Shared>,
}

#[derive(Default)]
struct State {
    /// Set after `QUERY_LIMIT_EXCEEDED`: no request leaves before this instant.
    throttled_until: Option<Instant>,
    /// Refusals in a row (reset by any answer that is not a refusal).
    refusals: u32,
    methods: HashMap<String, MethodState>,
}

#[derive(Default)]
struct MethodState {
    /// `time.operating` of the last answer, seconds.
    operating: f64,
    /// `time.operating_reset_at` of the last answer, as a local instant.
    reset_at: Option<Instant>,
    /// Paused after `OPERATION_TIME_LIMIT` until then.
    blocked_until: Option<Instant>,
    /// `time.processing` (or `duration`) of the last answer, seconds.
    last_cost: f64,
    /// When the last call of this method was let through.
    last_sent: Option<Instant>,
    /// `OPERATION_TIME_LIMIT` refusals since its last answer.
    blocked_in_a_row: u32,
}

impl Limits {
    pub(crate) fn new(limit: &RateLimit) -> Limits {
        Limits::with_effective(limit, effective_bucket(limit))
    }

    fn with_effective(limit: &RateLimit, effective: Option<BucketSpec>) -> Limits {
        let clock = DefaultClock::default();
        let bucket = effective.and_then(|spec| {
            let burst = NonZeroU32::new(spec.burst)?;
            let quota = Quota::with_period(spec.interval)?.allow_burst(burst);
            Some(RateLimiter::direct_with_clock(quota, clock.clone()))
        });
        Limits {
            bucket,
            per_second: limit.bucket.map(|(_, r)| r),
            clock,
            budget: limit.operating_budget.as_secs_f64(),
            state: Mutex::new(State::default()),
            shared: None,
        }
    }

    /// Limits that take every request from `backend`'s bucket for `portal` and share the
    /// methods' operating-time state there; the in-process bucket is kept for `fallback`.
    pub(crate) fn with_shared(
        limit: &RateLimit,
        backend: Arc<dyn SharedLimiter>,
        portal: String,
        fallback: LimiterFallback,
    ) -> Limits {
        let bucket = effective_bucket(limit);
        let mut limits = Limits::with_effective(limit, bucket);
        limits.shared = Some(Shared {
            backend,
            portal,
            bucket,
            fallback,
            down: AtomicBool::new(false),
        });
        limits
    }

    /// The portal's request rate this client keeps to (requests per second), if limited.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.per_second
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until one more HTTP request may go to the portal: after any portal-wide pause,
    /// and for a unit of the bucket (the shared one when there is one).
    ///
    /// # Errors
    /// [`ErrorKind::Limiter`] when the shared limiter fails and the client does not fall
    /// back.
    pub(crate) async fn acquire(&self, method: &str) -> Result<(), Error> {
        loop {
            let until = self.state().throttled_until;
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => break,
            }
        }
        if let Some(shared) = &self.shared {
            let Some(spec) = shared.bucket else {
                return Ok(());
            };
            loop {
                match shared.backend.try_acquire(&shared.portal, spec).await {
                    Ok(None) => {
                        shared.answered();
                        return Ok(());
                    }
                    Ok(Some(wait)) => {
                        shared.answered();
                        tokio::time::sleep(wait.clamp(Duration::from_millis(1), spec.interval))
                            .await;
                    }
                    Err(e) => {
                        shared.failed(method, e)?;
                        break;
                    }
                }
            }
        }
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        loop {
            match bucket.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// With a shared limiter: takes the shared state of `method` into this client's (a
    /// pause or a spread another worker learned of). Without one, nothing.
    ///
    /// # Errors
    /// [`ErrorKind::Limiter`] as for [`acquire`](Self::acquire).
    pub(crate) async fn pull_method(&self, method: &str) -> Result<(), Error> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let budget = match shared.backend.load_method(&shared.portal, method).await {
            Ok(b) => {
                shared.answered();
                b
            }
            Err(e) => return shared.failed(method, e),
        };
        let Some(b) = budget else { return Ok(()) };
        let now = Instant::now();
        let unix = unix_now_f64();
        let at = |t: f64| -> Option<Instant> {
            let ahead = t - unix;
            if !ahead.is_finite() {
                return None;
            }
            let d = Duration::from_secs_f64(ahead.abs().min(600.0));
            if ahead >= 0.0 {
                Some(now + d)
            } else {
                now.checked_sub(d)
            }
        };
        let mut s = self.state();
        let m = s.methods.entry(method.to_owned()).or_default();
        m.operating = b.operating;
        m.reset_at = b.reset_at.and_then(at);
        m.last_cost = b.last_cost;
        let later = |a: Option<Instant>, b: Option<Instant>| a.max(b);
        m.blocked_until = later(m.blocked_until, b.blocked_until.and_then(at));
        m.last_sent = later(m.last_sent, b.last_sent.and_then(at));
        Ok(())
    }

    /// With a shared limiter: writes this client's state of `method` for the others. A
    /// failure is only logged (the call it follows has its answer).
    pub(crate) async fn push_method(&self, method: &str) {
        let Some(shared) = &self.shared else { return };
        let budget = {
            let s = self.state();
            let Some(m) = s.methods.get(method) else {
                return;
            };
            let now = Instant::now();
            let unix = unix_now_f64();
            let at = |t: Instant| {
                if t >= now {
                    unix + (t - now).as_secs_f64()
                } else {
                    unix - (now - t).as_secs_f64()
                }
            };
            MethodBudget {
                operating: m.operating,
                reset_at: m.reset_at.map(at),
                blocked_until: m.blocked_until.map(at),
                last_cost: m.last_cost,
                last_sent: m.last_sent.map(at),
            }
        };
        match shared
            .backend
            .save_method(&shared.portal, method, &budget)
            .await
        {
            Ok(()) => shared.answered(),
            Err(e) => {
                if !shared.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, method, "could not share the method's operating-time state");
                }
            }
        }
    }

    /// With a shared limiter: after `QUERY_LIMIT_EXCEEDED`, empties the shared bucket for
    /// `pause` ([`SharedLimiter::drain`]), so that the other workers wait too. A failure is
    /// only logged: this worker pauses anyway.
    pub(crate) async fn drain_shared(&self, pause: Duration) {
        let Some(shared) = &self.shared else { return };
        let Some(bucket) = shared.bucket else { return };
        match shared.backend.drain(&shared.portal, bucket, pause).await {
            Ok(()) => shared.answered(),
            Err(e) => {
                if !shared.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "could not share the pause after QUERY_LIMIT_EXCEEDED");
                }
            }
        }
    }

    /// Whether the methods' state is shared with other processes.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// A `QUERY_LIMIT_EXCEEDED` arrived: another program on the same IP is spending the
    /// portal's budget. Every request to this portal waits a growing pause. Returns it.
    pub(crate) fn throttled(&self) -> Duration {
        let mut s = self.state();
        let now = Instant::now();
        if let Some(until) = s.throttled_until.filter(|t| *t > now) {
            // Requests that were in flight together are refused for the same reason: one
            // refusal, not many in a row.
            return until - now;
        }
        s.refusals = s.refusals.saturating_add(1);
        let pause = THROTTLE_PAUSE
            .saturating_mul(1 << (s.refusals - 1).min(5))
            .min(MAX_THROTTLE_PAUSE);
        s.throttled_until = Some(now + pause);
        pause
    }

    /// Any answer that was not a rate-limit refusal.
    pub(crate) fn not_throttled(&self) {
        let mut s = self.state();
        if s.refusals != 0 {
            s.refusals = 0;
        }
    }

    /// How long a call of `method` must wait before it is sent: until a pause after
    /// `OPERATION_TIME_LIMIT` ends, or, close to the budget, long enough to spread what is left
    /// of it until the reset (then the flag is false: only advice). Zero when it may go now,
    /// and then it counts as sent.
    pub(crate) fn method_wait(&self, method: &str) -> (Duration, bool) {
        let now = Instant::now();
        let mut s = self.state();
        let budget = self.budget;
        let Some(m) = s.methods.get_mut(method) else {
            return (Duration::ZERO, false);
        };
        let blocked = m.blocked_until.is_some_and(|t| t > now);
        let wait = m.wait(now, budget);
        if wait.is_zero() {
            m.last_sent = Some(now);
        }
        (wait, blocked)
    }

    /// Marks a call of `method` as let through now (a spread-out wait skipped).
    pub(crate) fn method_sent(&self, method: &str) {
        if let Some(m) = self.state().methods.get_mut(method) {
            m.last_sent = Some(Instant::now());
        }
    }

    /// Records an answer of `method` that was not a rate-limit refusal, with its `time`.
    pub(crate) fn answered(&self, method: &str, time: Option<&Time>) {
        let mut s = self.state();
        s.refusals = 0;
        let Some(time) = time else { return };
        let Some(operating) = time.operating else {
            // A portal with the limit off sends no `operating`: nothing to track.
            return;
        };
        let reset_at = time.operating_reset_at.and_then(|r| local_instant(r, time));
        let cost = time.processing.or(time.duration).unwrap_or(0.0);
        // No allocation for a method already seen (the usual case).
        if !s.methods.contains_key(method) {
            s.methods.insert(method.to_owned(), MethodState::default());
        }
        let Some(m) = s.methods.get_mut(method) else {
            return;
        };
        m.operating = operating;
        m.reset_at = reset_at;
        m.last_cost = cost;
        m.blocked_until = None;
        m.blocked_in_a_row = 0;
    }

    /// `OPERATION_TIME_LIMIT` for `method`: pauses it until `reset_at` (unix seconds) or,
    /// when unknown, the last reset time seen for it or [`DEFAULT_OPERATING_PAUSE`]. Returns
    /// the instant it may be called again and that instant as unix seconds.
    pub(crate) fn blocked(&self, method: &str, reset_at: Option<i64>) -> (Instant, i64) {
        let now = Instant::now();
        let mut s = self.state();
        let m = s.methods.entry(method.to_owned()).or_default();
        // Refused again right after a pause: the reset was not what it seemed (a portal
        // clock behind ours, a reset second just passed). Never less than a growing pause,
        // so that a method is not hammered.
        let floor = MIN_OPERATING_PAUSE
            .saturating_mul(1 << m.blocked_in_a_row.min(6))
            .min(DEFAULT_OPERATING_PAUSE);
        m.blocked_in_a_row = m.blocked_in_a_row.saturating_add(1);
        let until = reset_at
            .and_then(|r| local_instant(r, &Time::default()))
            .or(m.reset_at.filter(|t| *t > now))
            .unwrap_or(now + DEFAULT_OPERATING_PAUSE)
            .max(now + floor);
        m.blocked_until = Some(until);
        let unix = crate::client::unix_now()
            + i64::try_from(until.saturating_duration_since(now).as_secs()).unwrap_or(0)
            + 1;
        (until, unix)
    }
}

impl MethodState {
    fn wait(&self, now: Instant, budget: f64) -> Duration {
        if let Some(t) = self.blocked_until.filter(|t| *t > now) {
            return t - now;
        }
        if budget <= 0.0 || self.operating < budget * SLOW_DOWN_AT {
            return Duration::ZERO;
        }
        let Some(reset) = self.reset_at.filter(|t| *t > now) else {
            return Duration::ZERO;
        };
        let left = (budget - self.operating).max(0.0);
        // Calls of the last cost that still fit before the reset; spread them evenly.
        let calls = (left / self.last_cost.max(0.001)).floor().max(0.0);
        let spacing = (reset - now).div_f64(calls + 1.0);
        let since = self
            .last_sent
            .map_or(spacing, |t| now.saturating_duration_since(t));
        spacing.saturating_sub(since)
    }
}

/// The local clock as unix seconds with fractions.
fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The local instant of the portal's unix time `at`, measured from the answer's own clock
/// (`time.finish`) when it has one, so that a portal clock that differs from ours does not
/// matter.
fn local_instant(at: i64, time: &Time) -> Option<Instant> {
    let portal_now = time
        .finish
        .unwrap_or_else(|| crate::client::unix_now() as f64);
    let ahead = at as f64 - portal_now;
    if !ahead.is_finite() {
        return None;
    }
    // Never more than the window itself (a wrong clock must not pause for hours).
    let ahead = ahead.clamp(0.0, 600.0);
    Some(Instant::now() + Duration::from_secs_f64(ahead))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(operating: f64, reset_in: i64, cost: f64) -> Time {
        let now = crate::client::unix_now();
        Time {
            finish: Some(now as f64),
            operating: Some(operating),
            operating_reset_at: Some(now + reset_in),
            processing: Some(cost),
            ..Time::default()
        }
    }

    #[test]
    fn the_bucket_keeps_a_margin() {
        let limits = Limits::new(&RateLimit::custom(50, 2.0));
        let bucket = limits.bucket.as_ref().unwrap();
        let mut allowed = 0;
        while bucket.check().is_ok() {
            allowed += 1;
        }
        // 2 % of 50 is 1: a jitter of one request.
        assert_eq!(allowed, 49);
        let enterprise = Limits::new(&RateLimit::enterprise());
        let mut allowed = 0;
        while enterprise.bucket.as_ref().unwrap().check().is_ok() {
            allowed += 1;
        }
        assert_eq!(allowed, 245);
        assert!(Limits::new(&RateLimit::off()).bucket.is_none());
        assert!(Limits::new(&RateLimit::custom(10, f64::NAN))
            .bucket
            .is_none());
    }

    #[test]
    fn a_method_close_to_its_budget_is_spread_out_and_others_are_not() {
        let limits = Limits::new(&RateLimit::standard());
        limits.answered("a", Some(&time(100.0, 60, 1.0)));
        assert_eq!(
            limits.method_wait("a").0,
            Duration::ZERO,
            "well under the budget"
        );
        // 470 of 480 s used: 10 calls of 1 s fit in the 60 s left, about 5.5 s apart.
        limits.answered("a", Some(&time(470.0, 60, 1.0)));
        // The call before went just now: the next waits about one spacing.
        let wait = limits.method_wait("a").0;
        assert!(
            wait > Duration::from_secs(4) && wait < Duration::from_secs(7),
            "{wait:?}"
        );
        assert_eq!(limits.method_wait("b").0, Duration::ZERO);
    }

    #[test]
    fn operation_time_limit_pauses_only_that_method() {
        let limits = Limits::new(&RateLimit::standard());
        let now = crate::client::unix_now();
        let (until, unix) = limits.blocked("a", Some(now + 30));
        assert!((now + 30..=now + 31).contains(&unix), "{unix} vs {now}");
        assert!(until > Instant::now() + Duration::from_secs(28));
        assert!(limits.method_wait("a").0 > Duration::from_secs(28));
        assert_eq!(limits.method_wait("b").0, Duration::ZERO);
        // Unknown reset: the documented default pause.
        let (until, _) = limits.blocked("c", None);
        let pause = until - Instant::now();
        assert!(pause > Duration::from_secs(58) && pause <= DEFAULT_OPERATING_PAUSE);
        // A successful answer lifts the pause.
        limits.answered("a", Some(&time(10.0, 600, 0.1)));
        assert_eq!(limits.method_wait("a").0, Duration::ZERO);
    }

    #[test]
    fn a_reset_already_past_still_pauses_and_the_pause_grows() {
        let limits = Limits::new(&RateLimit::standard());
        let past = crate::client::unix_now() - 5;
        let pauses: Vec<Duration> = (0..3)
            .map(|_| limits.blocked("a", Some(past)).0 - Instant::now())
            .collect();
        assert!(pauses[0] > Duration::from_millis(900), "{pauses:?}");
        assert!(pauses[1] > Duration::from_millis(1900), "{pauses:?}");
        assert!(pauses[2] > Duration::from_millis(3900), "{pauses:?}");
    }

    #[test]
    fn refusals_in_a_row_pause_longer_and_simultaneous_ones_count_once() {
        let limits = Limits::new(&RateLimit::off());
        let first = limits.throttled();
        assert_eq!(first, THROTTLE_PAUSE);
        // Refused while the pause runs: the same burst, the pause does not grow.
        assert!(limits.throttled() <= first);
        let mut s = limits.state();
        s.throttled_until = None; // the pause ended
        drop(s);
        assert_eq!(limits.throttled(), first * 2);
        limits.state().throttled_until = None;
        limits.not_throttled();
        assert_eq!(limits.throttled(), first);
    }
}
