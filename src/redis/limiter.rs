//! [`RedisLimiter`]: the request bucket (GCRA on the Redis clock) and the methods' operating-time state.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{Script, Value};
use serde::{Deserialize, Serialize};

use super::{connect, decode, encode, failed, ConnectionManager, DEFAULT_PREFIX};
use crate::auth::{BoxFuture, StoreError};
use crate::client::{BucketSpec, MethodBudget, SharedLimiter};

/// How long a method's shared operating-time state lives after its last write: the
/// portal's 10-minute window (<https://apidocs.bitrix24.com/limits.html>).
const METHOD_STATE_TTL: Duration = Duration::from_secs(600);

/// The generic cell rate algorithm on Redis's clock. `KEYS[1]` holds the theoretical arrival
/// time (TAT), µs; `ARGV[1]` is the emission interval and `ARGV[2]` the burst tolerance,
/// µs. Returns 0 when a unit is granted (the TAT moves one interval on, and the key expires
/// when the bucket is empty again), else the µs until one will be (nothing is changed).
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.replicate_commands then
  redis.replicate_commands()
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then
  tat = now
end
local wait = tat - tolerance - now
if wait > 0 then
  return wait
end
local new_tat = tat + interval
local ttl = math.ceil((new_tat - now) / 1000)
if ttl < 1 then
  ttl = 1
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
return 0
",
    )
});

/// Empties the bucket `KEYS[1]` for `ARGV[2]` µs: its TAT becomes now + the burst tolerance
/// (`ARGV[1]`, µs) + the pause, unless it is already later. So no unit is granted for the
/// pause, and after it one per interval, with no burst.
static DRAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.replicate_commands then
  redis.replicate_commands()
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
local new_tat = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
if new_tat > tat then
  local ttl = math.ceil((new_tat - now) / 1000)
  if ttl < 1 then
    ttl = 1
  end
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
  return 1
end
return 0
",
    )
});

/// The longest pause passed to Redis (a day), µs.
const MAX_PAUSE_MICROS: u64 = 86_400_000_000;

/// The emission interval and burst tolerance of `bucket`, µs, as the scripts take them: a
/// `burst` of 0 counts as 1; the interval is taken to whole microseconds, within
/// 1 µs ..= 1 day.
fn gcra_micros(bucket: BucketSpec) -> (u64, u64) {
    let interval = u64::try_from(bucket.interval.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_INTERVAL_MICROS);
    let tolerance = interval
        .saturating_mul(u64::from(bucket.burst.max(1) - 1))
        .min(MAX_TOLERANCE_MICROS);
    (interval, tolerance)
}

/// The longest emission interval passed to Redis (a day), µs; the client's is at most that.
const MAX_INTERVAL_MICROS: u64 = 86_400_000_000;
/// The largest burst tolerance passed to Redis (30 days), µs.
const MAX_TOLERANCE_MICROS: u64 = 30 * 86_400_000_000;

/// A [`SharedLimiter`] in Redis: the request bucket of each portal, shared by every worker
/// of an application, so that together they stay under the portal's limit
/// (<https://apidocs.bitrix24.com/limits.html>), and each method's operating-time state.
/// Set it with [`ClientBuilder::shared_limiter`](crate::ClientBuilder::shared_limiter) or
/// [`ClientPoolBuilder::shared_limiter`](crate::ClientPoolBuilder::shared_limiter).
///
/// - [`try_acquire`](SharedLimiter::try_acquire) runs the generic cell rate algorithm
///   (GCRA) in one Lua script, on the Redis server's clock (`TIME`), so that all workers
///   agree on the time whatever their own clocks say. The key `{prefix}:bucket:{portal}`
///   holds the theoretical arrival time in microseconds; the emission interval is
///   [`BucketSpec::interval`] and the burst tolerance `interval * (burst - 1)`. So after a
///   quiet period `burst` requests go at once, then one per `interval`: over any span of
///   `t`, at most `burst + t / interval` requests. A refused request takes nothing and is
///   told the wait until the next unit.
/// - [`drain`](SharedLimiter::drain), after a worker meets `QUERY_LIMIT_EXCEEDED`, moves
///   that time on to now + the tolerance + the pause: every worker waits out the pause, then
///   goes at the rate with no burst (the portal's own bucket is evidently empty).
/// - [`load_method`](SharedLimiter::load_method) and
///   [`save_method`](SharedLimiter::save_method) keep a [`MethodBudget`] as JSON at
///   `{prefix}:method:{portal}:{method}`, expiring 600 s after the last write (the portal's
///   window).
///
/// `Debug` shows the prefix only. Cloning is cheap (the connection is shared).
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisLimiter {
    /// Connects to the Redis at `url` ([`connect`]).
    ///
    /// # Errors
    /// As for [`connect`].
    pub async fn connect(url: &str) -> Result<RedisLimiter, StoreError> {
        Ok(RedisLimiter::new(connect(url).await?))
    }

    /// A limiter on an existing connection.
    pub fn new(conn: ConnectionManager) -> RedisLimiter {
        RedisLimiter {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Sets the key prefix (default [`DEFAULT_PREFIX`], `bitrix24`). Workers that share a
    /// portal's budget must use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisLimiter {
        self.prefix = prefix.into();
        self
    }

    /// The key of the request bucket of `portal`: `{prefix}:bucket:{portal}`.
    pub fn bucket_key(&self, portal: &str) -> String {
        format!("{}:bucket:{portal}", self.prefix)
    }

    /// The key of the operating-time state of `method` on `portal`:
    /// `{prefix}:method:{portal}:{method}`.
    pub fn method_key(&self, portal: &str, method: &str) -> String {
        format!("{}:method:{portal}:{method}", self.prefix)
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A [`MethodBudget`] as stored: every field optional, so that a missing or non-finite one
/// reads as unknown.
#[derive(Serialize, Deserialize, Default)]
struct StoredBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reset_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked_until: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_sent: Option<f64>,
}

impl SharedLimiter for RedisLimiter {
    /// One GCRA step in Lua: `Ok(None)` when a unit was taken, else `Ok(Some(wait))`, the
    /// time until one is free (at microsecond precision). A `burst` of 0 counts as 1; the
    /// interval is taken to whole microseconds, within 1 µs ..= 1 day.
    fn try_acquire<'a>(
        &'a self,
        portal: &'a str,
        bucket: BucketSpec,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        Box::pin(async move {
            let (interval, tolerance) = gcra_micros(bucket);
            let wait: i64 = GCRA
                .key(self.bucket_key(portal))
                .arg(interval)
                .arg(tolerance)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("taking a request from the shared bucket failed", e))?;
            Ok(u64::try_from(wait)
                .ok()
                .filter(|w| *w > 0)
                .map(Duration::from_micros))
        })
    }

    /// `GET` of [`method_key`](RedisLimiter::method_key); `None` when nothing is stored (or
    /// it expired).
    fn load_method<'a>(
        &'a self,
        portal: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<Option<MethodBudget>, StoreError>> {
        Box::pin(async move {
            let stored: Option<Vec<u8>> = ::redis::cmd("GET")
                .arg(self.method_key(portal, method))
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("loading a method's operating-time state failed", e))?;
            let Some(bytes) = stored else {
                return Ok(None);
            };
            let s: StoredBudget = decode(&bytes, "operating-time state")?;
            let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
            let budget = MethodBudget {
                operating: finite(s.operating).unwrap_or(0.0),
                reset_at: finite(s.reset_at),
                blocked_until: finite(s.blocked_until),
                last_cost: finite(s.last_cost).unwrap_or(0.0),
                last_sent: finite(s.last_sent),
            };
            Ok(Some(budget))
        })
    }

    /// `SET ... EX 600` of [`method_key`](RedisLimiter::method_key), replacing what is
    /// stored; non-finite numbers are left out.
    fn save_method<'a>(
        &'a self,
        portal: &'a str,
        method: &'a str,
        budget: &'a MethodBudget,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let finite = |v: f64| Some(v).filter(|v| v.is_finite());
            let stored = StoredBudget {
                operating: finite(budget.operating),
                reset_at: budget.reset_at.and_then(finite),
                blocked_until: budget.blocked_until.and_then(finite),
                last_cost: finite(budget.last_cost),
                last_sent: budget.last_sent.and_then(finite),
            };
            let json = encode(&stored, "operating-time state")?;
            let _: Value = ::redis::cmd("SET")
                .arg(self.method_key(portal, method))
                .arg(json)
                .arg("EX")
                .arg(METHOD_STATE_TTL.as_secs())
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("saving a method's operating-time state failed", e))?;
            Ok(())
        })
    }

    /// One Lua script on the Redis clock: the TAT of [`bucket_key`](RedisLimiter::bucket_key)
    /// becomes now + the burst tolerance + `pause` (at most a day), unless it is already
    /// later, so that every worker's [`try_acquire`](SharedLimiter::try_acquire) waits out
    /// the pause and then gets one request per interval.
    fn drain<'a>(
        &'a self,
        portal: &'a str,
        bucket: BucketSpec,
        pause: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (_, tolerance) = gcra_micros(bucket);
            let pause = u64::try_from(pause.as_micros())
                .unwrap_or(u64::MAX)
                .min(MAX_PAUSE_MICROS);
            DRAIN
                .key(self.bucket_key(portal))
                .arg(tolerance)
                .arg(pause)
                .invoke_async::<i64>(&mut self.conn.clone())
                .await
                .map_err(|e| failed("emptying the shared bucket failed", e))?;
            Ok(())
        })
    }
}
