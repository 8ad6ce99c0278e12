//! The policy layer, on top of every call: the per-method operating-time budget, the retry
//! loop and the deadline of the whole call.
//!
//! What is retried is decided once, from [`Error::retry_class`] and
//! [`Error::maybe_executed`]:
//!
//! | failure | read | write |
//! |---|---|---|
//! | `QUERY_LIMIT_EXCEEDED` (refused before it ran) | retried | retried |
//! | `OPERATION_TIME_LIMIT` (refused before it ran) | retried after the reset | retried after the reset |
//! | connection never opened | retried | retried |
//! | timeout, connection lost, 5xx, non-JSON answer | retried | **not retried** |
//! | `OVERLOAD_LIMIT`, auth, `ACCESS_DENIED`, other 4xx, decode | not retried | not retried |

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use super::decode::Answer;
use super::{Call, Inner};
use crate::error::{Error, ErrorKind, RetryClass};

/// Default deadline of a whole call: waits for the rate limit, redirects, a token refresh and
/// retries included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest backoff [`Retry`] accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How a call is retried after a failure that may be transient.
///
/// A read (a method marked read in the spec, or a raw call marked
/// [`read`](crate::RawCall::read)) is retried on network errors, timeouts, 5xx answers and
/// rate limits. A write is retried only when the portal certainly did not run it: a
/// `QUERY_LIMIT_EXCEEDED` or `OPERATION_TIME_LIMIT` refusal, or a connection that never
/// opened; otherwise a repeated `crm.deal.add` would create a second deal, so the caller
/// gets the error (with [`Error::maybe_executed`] true) instead.
///
/// Delays grow exponentially from [`base_backoff`](Self::base_backoff) to
/// [`max_backoff`](Self::max_backoff), with jitter. Rate-limit refusals are retried until the
/// call's deadline rather than counted against [`max_attempts`](Self::max_attempts): the
/// portal asked to slow down, not to give up.
///
/// ```
/// use std::time::Duration;
/// let patient = bitrix24::Retry::default().max_attempts(6).max_backoff(Duration::from_secs(20));
/// let once = bitrix24::Retry::never();
/// # let _ = (patient, once);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    pub(super) max_attempts: u32,
    base: Duration,
    max: Duration,
}

impl Default for Retry {
    /// Up to 4 attempts, backoff from 500 ms to 10 s.
    fn default() -> Self {
        Retry {
            max_attempts: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// No retry of transient failures: one attempt. Rate-limit refusals are still waited
    /// out, as the portal did not run the request.
    pub fn never() -> Retry {
        Retry {
            max_attempts: 1,
            ..Retry::default()
        }
    }

    /// Attempts in all for transient failures, the first included (0 counts as 1).
    pub fn max_attempts(mut self, n: u32) -> Retry {
        self.max_attempts = n.max(1);
        self
    }

    /// The first delay (default 500 ms; at most an hour).
    pub fn base_backoff(mut self, delay: Duration) -> Retry {
        self.base = delay.min(MAX_BACKOFF);
        self
    }

    /// The longest delay (default 10 s; at most an hour).
    pub fn max_backoff(mut self, delay: Duration) -> Retry {
        self.max = delay.min(MAX_BACKOFF);
        self
    }

    fn schedule(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max.max(self.base))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// Per-request settings that override the client's: set with `.retry(..)` and
/// `.timeout(..)` on any request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CallOptions {
    pub retry: Option<Retry>,
    /// The deadline of the whole call.
    pub timeout: Option<Duration>,
}

/// What the lower layers report back about one attempt.
#[derive(Default)]
pub(crate) struct Progress {
    /// An HTTP request of this attempt is out and its answer not fully read: if the
    /// deadline ends the attempt now, the request may have run.
    pub in_flight: bool,
}

/// Runs `call` under the client's policy: waits for the method's operating-time budget,
/// sends (auth, transport), retries what may be retried, all within the deadline.
pub(crate) async fn run(inner: &Arc<Inner>, call: &Call) -> Result<Answer, Error> {
    let timeout = call.options.timeout.unwrap_or(inner.call_timeout);
    // `Duration::MAX` is a fair way to say "no deadline": a century is as good.
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    let retry = call.options.retry.as_ref().unwrap_or(&inner.retry);
    let mut backoff = retry.schedule();
    let mut attempts = 0u32;
    let mut transient_failures = 0u32;
    // Whether an earlier attempt may have run: a later failure must not hide that.
    let mut maybe_ran = false;
    let limits = &inner.limits;
    'call: loop {
        let error = 'attempt: {
            // With a shared limiter, what other workers learned of this method first. A
            // failure is `ErrorKind::Limiter`, retried below as transient: nothing was sent.
            if let Err(e) = limits.pull_method(&call.method).await {
                break 'attempt e;
            }
            let (wait, blocked) = limits.method_wait(&call.method);
            if !wait.is_zero() {
                let past_deadline = Instant::now() + wait > deadline;
                if past_deadline && blocked {
                    return Err(Error::new(ErrorKind::Api)
                        .with_method(&call.method)
                        .with_code(crate::codes::OPERATION_TIME_LIMIT.to_owned())
                        .with_description(format!(
                            "not sent: the method is paused for {} s more after OPERATION_TIME_LIMIT, \
                             past the call's deadline",
                            wait.as_secs()
                        ))
                        .with_operating_reset_at(unix_in(wait))
                        .or_maybe_executed(maybe_ran));
                }
                if past_deadline {
                    // Spreading the budget is advice: rather send now than fail unsent.
                    limits.method_sent(&call.method);
                } else {
                    tracing::debug!(method = %call.method, wait_ms = wait.as_millis() as u64, "waiting for the method's operating-time budget");
                    tokio::time::sleep(wait).await;
                    continue 'call;
                }
            }
            attempts += 1;
            let mut progress = Progress::default();
            let result = tokio::time::timeout_at(
                deadline.into(),
                super::auth::send(inner, call, &mut progress),
            )
            .await;
            match result {
                Ok(Ok(answer)) => {
                    let budget = answer.budget();
                    limits.answered(&call.method, budget.as_ref());
                    if budget.is_some_and(|b| b.operating.is_some()) {
                        limits.push_method(&call.method).await;
                    }
                    return Ok(answer);
                }
                Ok(Err(e)) => e,
                Err(_elapsed) => {
                    let e = Error::new(ErrorKind::Timeout)
                        .with_method(&call.method)
                        .with_message(format!(
                            "the call's deadline of {} s passed (attempt {attempts})",
                            timeout.as_secs_f64()
                        ));
                    // Waiting for the bucket or a refresh, nothing is out: certainly not run.
                    return Err(if maybe_ran || progress.in_flight {
                        e.or_maybe_executed(true)
                    } else {
                        e.never_executed()
                    });
                }
            }
        };
        maybe_ran |= error.maybe_executed();
        let delay = match error.retry_class() {
            RetryClass::Throttled => {
                let pause = limits.throttled();
                limits.drain_shared(pause).await;
                tracing::info!(method = %call.method, pause_ms = pause.as_millis() as u64, "QUERY_LIMIT_EXCEEDED: backing off");
                pause.max(backoff.next().unwrap_or(pause))
            }
            RetryClass::OperatingLimit => {
                limits.not_throttled();
                let (until, reset_unix) = limits.blocked(&call.method, error.operating_reset_at());
                limits.push_method(&call.method).await;
                let error = error.with_operating_reset_at(reset_unix);
                let wait = until.saturating_duration_since(Instant::now());
                if Instant::now() + wait > deadline {
                    return Err(error.or_maybe_executed(maybe_ran));
                }
                tracing::info!(method = %call.method, wait_s = wait.as_secs(), "OPERATION_TIME_LIMIT: pausing this method");
                tokio::time::sleep(wait).await;
                continue;
            }
            RetryClass::Transient => {
                if error.kind() != ErrorKind::Limiter {
                    limits.not_throttled();
                }
                transient_failures += 1;
                let safe = call.access_is_read() || !error.maybe_executed();
                if !safe || transient_failures >= retry.max_attempts {
                    return Err(error.or_maybe_executed(maybe_ran));
                }
                backoff.next().unwrap_or(retry.max)
            }
            RetryClass::Never => {
                limits.not_throttled();
                return Err(error.or_maybe_executed(maybe_ran));
            }
        };
        if Instant::now() + delay > deadline {
            return Err(error.or_maybe_executed(maybe_ran));
        }
        tracing::debug!(method = %call.method, attempt = attempts, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
        tokio::time::sleep(delay).await;
    }
}

fn unix_in(wait: Duration) -> i64 {
    super::unix_now() + i64::try_from(wait.as_secs()).unwrap_or(0) + 1
}
