//! Shared state in Redis (feature `redis`): the OAuth tokens of an installation
//! ([`RedisTokenStore`]), whole installations ([`RedisInstallationStore`]) and the portal's
//! request budget ([`RedisLimiter`]), shared by every process of an application.
//!
//! Several workers (processes, containers, machines) that call one Bitrix24 portal must
//! agree on two things:
//!
//! - **the tokens.** A refresh token is single use
//!   (<https://apidocs.bitrix24.com/settings/oauth/index.html>): of the workers that see
//!   `expired_token` at once, exactly one may refresh, and the others must adopt the pair it
//!   stores. The stores here keep the refresh lock in Redis (`SET NX PX`, released by a
//!   compare-and-delete) and save a refreshed pair with one Lua script that writes only if
//!   the stored refresh token is still the one the refresh spent (the protocol is described
//!   under "How a client refreshes" on [`TokenStore`]).
//! - **the request rate.** The portal counts requests from all of them in one leaky bucket
//!   (<https://apidocs.bitrix24.com/limits.html>). [`RedisLimiter`] is a
//!   [`SharedLimiter`]: each request takes its unit from a bucket in Redis, on the Redis
//!   server's clock, in one Lua script; the methods' operating-time state is shared too.
//!
//! Connections are [`ConnectionManager`]s: they reconnect by themselves after Redis
//! restarts. [`connect`] makes one with a [`CONNECTION_TIMEOUT`] and a [`RESPONSE_TIMEOUT`]
//! of 2 s each, so that a dead Redis gives an error after a few seconds instead of a hang;
//! one connection may be cloned into any number of stores and limiters. Redis Cluster is
//! not supported (each script touches one key, but the connection is to one node).
//! `rediss://` (TLS) needs one of the `redis` crate's TLS features, enabled in your own
//! `Cargo.toml` (features unify): this crate enables none.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::sync::Arc;
//! use bitrix24::redis::{RedisLimiter, RedisTokenStore};
//!
//! let app = bitrix24::OAuthApp::new("app.6570a8e5d0c1f2.12345678", "client-secret");
//! # let tokens = bitrix24::Tokens::new("access", "refresh", "https://portal.bitrix24.com/rest/");
//! let conn = bitrix24::redis::connect("redis://127.0.0.1:6379/").await?;
//! let store = RedisTokenStore::new(conn.clone(), &app.client_id, "0123456789abcdef");
//! let client = bitrix24::Client::builder()
//!     .oauth(app, tokens)
//!     .token_store(store)
//!     .shared_limiter(Arc::new(RedisLimiter::new(conn)))
//!     .build()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! # Keys
//! Every key starts with a prefix (default [`DEFAULT_PREFIX`], `bitrix24`; set with
//! `.prefix(..)`), so that several applications or environments can share one Redis:
//!
//! | key | type | holds | expiry |
//! | --- | --- | --- | --- |
//! | `{prefix}:tokens:{client_id}:{member_id}` | string | [`Tokens`] as JSON | none |
//! | `{prefix}:installation:{client_id}:{member_id}` | hash | `installation`: the [`Installation`] as JSON without `tokens`; `tokens`: its [`Tokens`] as JSON | none |
//! | `{prefix}:refresh-lock:{client_id}:{member_id}` | string | the [`RefreshLease`] id of the holder | the lock's time to live |
//! | `{prefix}:bucket:{portal}` | string | the bucket's theoretical arrival time, µs of Redis time | when the bucket is empty again |
//! | `{prefix}:method:{portal}:{method}` | string | a [`MethodBudget`] as JSON | 600 s after the last write |
//!
//! The JSON holds the secrets verbatim (it is what a client needs to go on after a
//! restart): protect the Redis like a password store (`requirepass` or ACLs, no public
//! port, TLS across machines).
//!
//! # Errors
//! Every method returns a [`StoreError`] whose text names the operation and the Redis
//! error (connection refused, timeout, `WRONGTYPE`...). Neither a token, the application
//! token nor a password from the Redis URL is ever in one: JSON that does not decode is
//! reported by line and column only.
//!
//! [`TokenStore`]: crate::TokenStore
//! [`SharedLimiter`]: crate::SharedLimiter
//! [`Tokens`]: crate::Tokens
//! [`Installation`]: crate::Installation
//! [`RefreshLease`]: crate::RefreshLease
//! [`MethodBudget`]: crate::MethodBudget

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionManagerConfig;
use ::redis::{Script, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use ::redis::aio::ConnectionManager;

mod installations;
mod limiter;
mod tokens;

pub use installations::RedisInstallationStore;
pub use limiter::RedisLimiter;
pub use tokens::RedisTokenStore;

use crate::auth::{RefreshLease, StoreError};

/// The key prefix used unless `.prefix(..)` sets another: `bitrix24`.
pub const DEFAULT_PREFIX: &str = "bitrix24";

/// How long [`connect`] (and every reconnection) waits for Redis to accept a connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection made by [`connect`] waits for the answer to one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest refresh lock: a longer `ttl` is cut to this.
const MAX_LOCK_TTL: Duration = Duration::from_secs(86_400);

/// Connects to the Redis at `url` (`redis://[[user]:password@]host[:port][/db]`, or
/// `redis+unix:///path/to/socket`) and returns a [`ConnectionManager`]: it reconnects by
/// itself when the connection drops, and can be cloned into any number of stores and
/// limiters (clones share the connection).
///
/// Each connection attempt gives up after [`CONNECTION_TIMEOUT`] and each command after
/// [`RESPONSE_TIMEOUT`]; a failed attempt is tried once more after 1 to 2 s. So when
/// Redis is down this answers an error within a few seconds, and so does every command
/// while it stays down (each one tries to reconnect); once it is back, commands work again.
///
/// # Errors
/// A [`StoreError`] when the URL does not parse, Redis cannot be reached, or it refuses the
/// credentials. Its text has the host and port but never the URL's password.
pub async fn connect(url: &str) -> Result<ConnectionManager, StoreError> {
    let secrets = url_secrets(url);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let target = url_target(url);
    let client = ::redis::Client::open(url).map_err(|e| {
        StoreError::from(crate::error::redact_text(
            &format!("the Redis URL is not valid: {e}"),
            &secrets,
        ))
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECTION_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| {
            StoreError::from(crate::error::redact_text(
                &format!("could not connect to Redis at {target}: {e}"),
                &secrets,
            ))
        })
}

/// The password in a Redis URL (as written and percent-decoded; also the `pass` query
/// parameter of a Unix socket URL), to keep out of error texts.
fn url_secrets(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    if let Some(password) = parsed.password() {
        secrets.push(password.to_owned());
        secrets.extend(percent_decode(password));
    }
    secrets.extend(
        parsed
            .query_pairs()
            .filter(|(k, _)| k == "pass")
            .map(|(_, v)| v.into_owned()),
    );
    secrets
}

/// `text` with its `%XX` escapes decoded, when the result is UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `host:port` (or the socket path) of a Redis URL, for error texts; never the password.
fn url_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.host_str() {
            Some(host) => format!("{host}:{}", u.port().unwrap_or(6379)),
            None => u.path().to_owned(),
        },
        Err(_) => "an unparsable URL".to_owned(),
    }
}

/// A Redis failure as a [`StoreError`]: what was being done, and Redis's own error (which
/// carries no stored value: replies are never decoded into types that could fail on them).
fn failed(what: &str, e: ::redis::RedisError) -> StoreError {
    StoreError::from(format!("Redis: {what}: {e}"))
}

/// Decodes stored JSON. On failure, only the kind of error and its line and column: serde's
/// message may quote the value, and stored values hold tokens.
fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::from(format!(
            "Redis: the stored {what} could not be decoded ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Encodes a value to store as JSON (it cannot fail for this crate's types; the error text
/// leaves serde's message out all the same).
fn encode<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::from(format!("could not encode the {what} ({:?})", e.classify())))
}

/// `ttl` as whole milliseconds for `PX`, rounded up, within 1 ms ..= [`MAX_LOCK_TTL`].
fn lock_millis(ttl: Duration) -> u64 {
    let ttl = ttl.min(MAX_LOCK_TTL);
    let millis = ttl.as_millis() as u64 + u64::from(ttl.subsec_nanos() % 1_000_000 != 0);
    millis.max(1)
}

/// The refresh lock's key of one installation, shared by [`RedisTokenStore`] and
/// [`RedisInstallationStore`]: `{prefix}:refresh-lock:{client_id}:{member_id}`.
fn lock_key(prefix: &str, client_id: &str, member_id: &str) -> String {
    format!("{prefix}:refresh-lock:{client_id}:{member_id}")
}

/// Takes the lock at `key` for `ttl` with a new lease: `SET key id NX PX ttl`.
async fn take_lock(
    conn: &ConnectionManager,
    key: &str,
    ttl: Duration,
) -> Result<Option<RefreshLease>, StoreError> {
    let lease = RefreshLease::new();
    let reply: Value = ::redis::cmd("SET")
        .arg(key)
        .arg(lease.id())
        .arg("NX")
        .arg("PX")
        .arg(lock_millis(ttl))
        .query_async(&mut conn.clone())
        .await
        .map_err(|e| failed("taking the refresh lock failed", e))?;
    Ok(match reply {
        Value::Nil => None,
        _ => Some(lease),
    })
}

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]` (the releasing lease's id).
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Releases the lock at `key` if `lease` still holds it (compare-and-delete).
async fn release_lock(
    conn: &ConnectionManager,
    key: &str,
    lease: &RefreshLease,
) -> Result<(), StoreError> {
    UNLOCK
        .key(key)
        .arg(lease.id())
        .invoke_async::<i64>(&mut conn.clone())
        .await
        .map_err(|e| failed("releasing the refresh lock failed", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Tokens;

    #[test]
    fn lock_ttls_round_up_to_whole_milliseconds_within_bounds() {
        assert_eq!(lock_millis(Duration::ZERO), 1);
        assert_eq!(lock_millis(Duration::from_micros(1)), 1);
        assert_eq!(lock_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(lock_millis(Duration::from_secs(40)), 40_000);
        assert_eq!(lock_millis(Duration::MAX), 86_400_000);
    }

    #[test]
    fn url_passwords_are_found_for_redaction_and_targets_have_none() {
        let url = "redis://user:p%40ss-w0rd@cache.internal:6380/2";
        let secrets = url_secrets(url);
        assert!(secrets.contains(&"p%40ss-w0rd".to_owned()), "{secrets:?}");
        assert!(secrets.contains(&"p@ss-w0rd".to_owned()), "{secrets:?}");
        assert_eq!(url_target(url), "cache.internal:6380");
        assert_eq!(
            url_secrets("redis+unix:///run/redis.sock?pass=s3cret-pass"),
            ["s3cret-pass"]
        );
        assert_eq!(url_target("not a url :s3cret@"), "an unparsable URL");
        assert!(url_secrets("not a url").is_empty());
    }

    #[test]
    fn percent_escapes_decode_and_odd_ones_stay() {
        assert_eq!(percent_decode("a%40b%2Fc").as_deref(), Some("a@b/c"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%C3%BC").as_deref(), Some("ü"));
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("ü%").as_deref(), Some("ü%"));
    }

    #[test]
    fn stored_json_errors_give_the_position_but_no_value() {
        let e = decode::<Tokens>(
            br#"{"access_token":"TOP-SECRET-1","refresh_token":5}"#,
            "tokens",
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("TOP-SECRET-1"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        let e = decode::<Tokens>(b"TOP-SECRET-2 not json", "tokens")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("TOP-SECRET-2"), "{e}");
    }
}
