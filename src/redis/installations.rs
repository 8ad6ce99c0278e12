//! [`RedisInstallationStore`]: installations of an application, keyed by `member_id`.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{Script, Value};

use super::{
    connect, decode, encode, failed, lock_key, release_lock, take_lock, ConnectionManager,
    DEFAULT_PREFIX,
};
use crate::auth::{BoxFuture, RefreshLease, Secret, StoreError, Tokens};
use crate::install::{InstallError, Installation, InstallationStore};

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
///   ([`lock_key`](Self::lock_key)), taken and released as by [`RedisTokenStore`](super::RedisTokenStore) (the
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

    /// As [`RedisTokenStore`](super::RedisTokenStore)'s lock, at [`lock_key`](Self::lock_key).
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
