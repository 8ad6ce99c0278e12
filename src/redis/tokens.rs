//! [`RedisTokenStore`]: one installation's tokens, with the refresh lock.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{Script, Value};

use super::{
    connect, decode, encode, failed, lock_key, release_lock, take_lock, ConnectionManager,
    DEFAULT_PREFIX,
};
use crate::auth::{BoxFuture, RefreshLease, Secret, StoreError, TokenStore, Tokens};

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
    /// same as [`RedisInstallationStore::lock_key`](super::RedisInstallationStore::lock_key) for that installation).
    pub fn lock_key(&self) -> String {
        lock_key(&self.prefix, &self.client_id, &self.member_id)
    }
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
