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

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionManagerConfig;
use ::redis::{Script, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use ::redis::aio::ConnectionManager;

use crate::auth::{BoxFuture, RefreshLease, Secret, StoreError, TokenStore, Tokens};
use crate::client::{BucketSpec, MethodBudget, SharedLimiter};
use crate::install::{InstallError, Installation, InstallationStore};

/// The key prefix used unless `.prefix(..)` sets another: `bitrix24`.
pub const DEFAULT_PREFIX: &str = "bitrix24";

/// How long [`connect`] (and every reconnection) waits for Redis to accept a connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection made by [`connect`] waits for the answer to one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a method's shared operating-time state lives after its last write: the
/// portal's 10-minute window (<https://apidocs.bitrix24.com/limits.html>).
const METHOD_STATE_TTL: Duration = Duration::from_secs(600);

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

/// Writes `ARGV[2]` to `KEYS[1]` if nothing is stored there, or the stored JSON's
/// `refresh_token` is `ARGV[1]`: 1 when written, 0 when another pair is stored, -1 when the
/// stored value is not a JSON object (left alone).
static SAVE_IF_CURRENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, tokens = pcall(cjson.decode, stored)
  if not ok or type(tokens) ~= 'table' then
    return -1
  end
  if tokens['refresh_token'] ~= ARGV[1] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Keeps the OAuth [`Tokens`] of one installation (one application `client_id` on one
/// portal `member_id`) in Redis, shared by every process of the application, with a refresh
/// lock in Redis so that exactly one of them spends the single-use refresh token
/// (<https://apidocs.bitrix24.com/settings/oauth/index.html>).
///
/// - The tokens are JSON at `{prefix}:tokens:{client_id}:{member_id}`
///   ([`tokens_key`](Self::tokens_key)), the secrets verbatim.
/// - [`save_if_absent`](TokenStore::save_if_absent) is `SET NX`: it never replaces a pair.
/// - [`lock_refresh`](TokenStore::lock_refresh) is `SET {prefix}:refresh-lock:{client_id}:{member_id} <lease id> NX PX <ttl>`
///   ([`lock_key`](Self::lock_key)); the lock expires by itself after `ttl` (at most a
///   day), so a worker that died holding it blocks the others no longer than that.
/// - [`unlock_refresh`](TokenStore::unlock_refresh) deletes the lock only if it still holds
///   that lease's id (a lease that outlived its expiry cannot release a newer holder's lock).
/// - [`save_if_current`](TokenStore::save_if_current) is one Lua script: it reads the stored
///   JSON, compares its `refresh_token` with the spent one, and writes only if they are
///   equal or nothing is stored, so that a newer pair is never overwritten.
///
/// `Debug` shows the prefix, `client_id` and `member_id`; never a token or the Redis URL.
/// Cloning is cheap (the connection is shared).
#[derive(Clone)]
pub struct RedisTokenStore {
    conn: ConnectionManager,
    prefix: String,
    client_id: String,
    member_id: String,
}

impl RedisTokenStore {
    /// Connects to the Redis at `url` ([`connect`]) and keeps the tokens of the application
    /// `client_id` (`local.xxxx` or `app.xxxx`) on the portal `member_id` there.
    ///
    /// # Errors
    /// As for [`connect`]: the URL does not parse, Redis cannot be reached (within a few
    /// seconds) or refuses the credentials. Never with the URL's password.
    pub async fn connect(
        url: &str,
        client_id: &str,
        member_id: &str,
    ) -> Result<RedisTokenStore, StoreError> {
        Ok(RedisTokenStore::new(
            connect(url).await?,
            client_id,
            member_id,
        ))
    }

    /// A store on an existing connection (a clone of one shared with other stores and
    /// limiters, or one you configured yourself) for the application `client_id` on the
    /// portal `member_id`.
    pub fn new(
        conn: ConnectionManager,
        client_id: impl Into<String>,
        member_id: impl Into<String>,
    ) -> RedisTokenStore {
        RedisTokenStore {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
            client_id: client_id.into(),
            member_id: member_id.into(),
        }
    }

    /// Sets the key prefix (default [`DEFAULT_PREFIX`], `bitrix24`), e.g. one per
    /// environment sharing a Redis. Stores that share tokens must use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisTokenStore {
        self.prefix = prefix.into();
        self
    }

    /// The key of the tokens: `{prefix}:tokens:{client_id}:{member_id}`.
    pub fn tokens_key(&self) -> String {
        format!(
            "{}:tokens:{}:{}",
            self.prefix, self.client_id, self.member_id
        )
    }

    /// The key of the refresh lock: `{prefix}:refresh-lock:{client_id}:{member_id}` (the
    /// same as [`RedisInstallationStore::lock_key`] for that installation).
    pub fn lock_key(&self) -> String {
        lock_key(&self.prefix, &self.client_id, &self.member_id)
    }
}

fn lock_key(prefix: &str, client_id: &str, member_id: &str) -> String {
    format!("{prefix}:refresh-lock:{client_id}:{member_id}")
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.prefix)
            .field("client_id", &self.client_id)
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

impl TokenStore for RedisTokenStore {
    /// `GET` of [`tokens_key`](Self::tokens_key); `None` when the key does not exist.
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        Box::pin(async move {
            let stored: Option<Vec<u8>> = ::redis::cmd("GET")
                .arg(self.tokens_key())
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("loading the tokens failed", e))?;
            stored.map(|bytes| decode(&bytes, "tokens")).transpose()
        })
    }

    /// `SET` of [`tokens_key`](Self::tokens_key), replacing what is stored.
    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let json = encode(tokens, "tokens")?;
            let _: Value = ::redis::cmd("SET")
                .arg(self.tokens_key())
                .arg(json)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("saving the tokens failed", e))?;
            Ok(())
        })
    }

    /// `SET NX`: writes only when nothing is stored, answering whether it wrote.
    fn save_if_absent<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let json = encode(tokens, "tokens")?;
            let reply: Value = ::redis::cmd("SET")
                .arg(self.tokens_key())
                .arg(json)
                .arg("NX")
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("saving the first tokens failed", e))?;
            Ok(!matches!(reply, Value::Nil))
        })
    }

    /// `SET lock_key <lease id> NX PX <ttl in ms>` (`ttl` rounded up to whole milliseconds,
    /// at least 1 ms, at most a day): `Some(lease)` when taken, `None` while another holder
    /// has it.
    fn lock_refresh(
        &self,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<Option<RefreshLease>, StoreError>> {
        Box::pin(async move { take_lock(&self.conn, &self.lock_key(), ttl).await })
    }

    /// Deletes the lock only if it still holds `lease`'s id (one Lua script).
    fn unlock_refresh(&self, lease: RefreshLease) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { release_lock(&self.conn, &self.lock_key(), &lease).await })
    }

    /// One Lua script: writes `tokens` only if the stored pair's `refresh_token` is `spent`
    /// or nothing is stored. A stored value that is not a JSON object is left alone and
    /// reported as an error.
    fn save_if_current<'a>(
        &'a self,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let json = encode(tokens, "tokens")?;
            let reply: i64 = SAVE_IF_CURRENT
                .key(self.tokens_key())
                .arg(spent.expose())
                .arg(json)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("saving the refreshed tokens failed", e))?;
            match reply {
                1 => Ok(true),
                0 => Ok(false),
                _ => Err(StoreError::from(
                    "Redis: the stored tokens are not a JSON object; they were not overwritten",
                )),
            }
        })
    }
}

/// Writes the installation hash `KEYS[1]`'s `tokens` field (`ARGV[2]`) if the installation
/// exists and, when `ARGV[1]` is `'1'`, only if its stored `refresh_token` is `ARGV[3]`:
/// 1 written, 0 another pair is stored, -1 the stored tokens are not a JSON object, -2 no
/// installation is stored.
static UPDATE_TOKENS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'installation') == 0 then
  return -2
end
if ARGV[1] == '1' then
  local stored = redis.call('HGET', KEYS[1], 'tokens')
  if stored then
    local ok, tokens = pcall(cjson.decode, stored)
    if not ok or type(tokens) ~= 'table' then
      return -1
    end
    if tokens['refresh_token'] ~= ARGV[3] then
      return 0
    end
  end
end
redis.call('HSET', KEYS[1], 'tokens', ARGV[2])
return 1
",
    )
});

/// Keeps the [`Installation`]s of one application (`client_id`) in Redis, one hash per
/// portal `member_id`, shared by every process of the application; use it with a
/// [`ClientPool`](crate::ClientPool) or [`Installation::client`].
///
/// - An installation is the hash `{prefix}:installation:{client_id}:{member_id}`
///   ([`key`](Self::key)) with two fields: `installation`, the [`Installation`] as JSON
///   without its tokens, and `tokens`, its [`Tokens`] as JSON (secrets verbatim, the
///   `application_token` too). [`put`](InstallationStore::put) writes both in one `HSET`.
/// - [`update_tokens_if`](InstallationStore::update_tokens_if) is one Lua script: it writes
///   the `tokens` field only if the stored `refresh_token` is the spent one.
/// - The refresh lock is `{prefix}:refresh-lock:{client_id}:{member_id}`
///   ([`lock_key`](Self::lock_key)), taken and released as by [`RedisTokenStore`] (the
///   same key, so a `RedisTokenStore` of the same installation shares it).
///
/// `Debug` shows the prefix and `client_id`; never a token or the Redis URL.
#[derive(Clone)]
pub struct RedisInstallationStore {
    conn: ConnectionManager,
    prefix: String,
    client_id: String,
}

impl RedisInstallationStore {
    /// Connects to the Redis at `url` ([`connect`]) and keeps the installations of the
    /// application `client_id` there.
    ///
    /// # Errors
    /// As for [`connect`].
    pub async fn connect(url: &str, client_id: &str) -> Result<RedisInstallationStore, StoreError> {
        Ok(RedisInstallationStore::new(connect(url).await?, client_id))
    }

    /// A store on an existing connection for the application `client_id`.
    pub fn new(conn: ConnectionManager, client_id: impl Into<String>) -> RedisInstallationStore {
        RedisInstallationStore {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
            client_id: client_id.into(),
        }
    }

    /// Sets the key prefix (default [`DEFAULT_PREFIX`], `bitrix24`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisInstallationStore {
        self.prefix = prefix.into();
        self
    }

    /// The key of the installation of `member_id`:
    /// `{prefix}:installation:{client_id}:{member_id}`.
    pub fn key(&self, member_id: &str) -> String {
        format!(
            "{}:installation:{}:{member_id}",
            self.prefix, self.client_id
        )
    }

    /// The key of the refresh lock of `member_id`:
    /// `{prefix}:refresh-lock:{client_id}:{member_id}`.
    pub fn lock_key(&self, member_id: &str) -> String {
        lock_key(&self.prefix, &self.client_id, member_id)
    }

    async fn update(
        &self,
        member_id: &str,
        spent: Option<&Secret>,
        tokens: &Tokens,
    ) -> Result<bool, StoreError> {
        let json = encode(tokens, "tokens")?;
        let reply: i64 = UPDATE_TOKENS
            .key(self.key(member_id))
            .arg(if spent.is_some() { "1" } else { "0" })
            .arg(json)
            .arg(spent.map_or("", Secret::expose))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| failed("updating the installation's tokens failed", e))?;
        match reply {
            1 => Ok(true),
            0 => Ok(false),
            -2 => Err(StoreError::from(InstallError::UnknownInstallation)),
            _ => Err(StoreError::from(
                "Redis: the installation's stored tokens are not a JSON object; they were not \
                 overwritten",
            )),
        }
    }
}

impl fmt::Debug for RedisInstallationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInstallationStore")
            .field("prefix", &self.prefix)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl InstallationStore for RedisInstallationStore {
    fn get<'a>(
        &'a self,
        member_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Installation>, StoreError>> {
        Box::pin(async move {
            let (installation, tokens): (Option<Vec<u8>>, Option<Vec<u8>>) = ::redis::cmd("HMGET")
                .arg(self.key(member_id))
                .arg("installation")
                .arg("tokens")
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("loading the installation failed", e))?;
            let Some(installation) = installation else {
                return Ok(None);
            };
            let mut fields: serde_json::Map<String, serde_json::Value> =
                decode(&installation, "installation")?;
            let tokens = tokens.ok_or_else(|| {
                StoreError::from("Redis: the stored installation has no tokens field")
            })?;
            let tokens: Tokens = decode(&tokens, "installation's tokens")?;
            fields.insert("tokens".to_owned(), serde_json::to_value(tokens)?);
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| {
                StoreError::from(format!(
                    "Redis: the stored installation could not be decoded ({:?} error)",
                    e.classify()
                ))
            })
        })
    }

    /// One `HSET` of both fields.
    fn put(&self, installation: Installation) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut fields = match serde_json::to_value(&installation) {
                Ok(serde_json::Value::Object(fields)) => fields,
                _ => return Err(StoreError::from("could not encode the installation")),
            };
            fields.remove("tokens");
            let meta = encode(&fields, "installation")?;
            let tokens = encode(&installation.tokens, "tokens")?;
            let _: Value = ::redis::cmd("HSET")
                .arg(self.key(&installation.member_id))
                .arg("installation")
                .arg(meta)
                .arg("tokens")
                .arg(tokens)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("saving the installation failed", e))?;
            Ok(())
        })
    }

    /// `DEL` of the installation's hash.
    fn remove<'a>(&'a self, member_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let removed: i64 = ::redis::cmd("DEL")
                .arg(self.key(member_id))
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| failed("removing the installation failed", e))?;
            Ok(removed > 0)
        })
    }

    /// One Lua script: writes the `tokens` field if the installation exists
    /// ([`InstallError::UnknownInstallation`] otherwise).
    fn update_tokens<'a>(
        &'a self,
        member_id: &'a str,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.update(member_id, None, tokens).await.map(|_| ()) })
    }

    /// One Lua script: writes the `tokens` field only if the stored `refresh_token` is
    /// `spent`; [`InstallError::UnknownInstallation`] when no installation is stored.
    fn update_tokens_if<'a>(
        &'a self,
        member_id: &'a str,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.update(member_id, Some(spent), tokens).await })
    }

    /// As [`RedisTokenStore`]'s lock, at [`lock_key`](Self::lock_key).
    fn lock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<RefreshLease>, StoreError>> {
        Box::pin(async move { take_lock(&self.conn, &self.lock_key(member_id), ttl).await })
    }

    /// Deletes the lock only if it still holds `lease`'s id (one Lua script).
    fn unlock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        lease: RefreshLease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { release_lock(&self.conn, &self.lock_key(member_id), &lease).await })
    }
}

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
            let interval = u64::try_from(bucket.interval.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_INTERVAL_MICROS);
            let tolerance = interval
                .saturating_mul(u64::from(bucket.burst.max(1) - 1))
                .min(MAX_TOLERANCE_MICROS);
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
