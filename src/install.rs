//! Installations: what `ONAPPINSTALL` brings for one portal, where it is kept, and how later
//! events are checked against it.
//!
//! When an application is installed on a portal, Bitrix24 posts an `ONAPPINSTALL` event
//! (<https://apidocs.bitrix24.com/api-reference/common/events/on-app-install.html>) whose
//! `auth[...]` fields carry the portal's `member_id`, the installation's
//! `application_token` and an OAuth token pair (PROTOCOL.md 1.9, 7.3, 7.7). Keep them in an
//! [`InstallationStore`]:
//!
//! - every later event for that portal carries the same `auth[application_token]`; compare it
//!   with [`verify`] before trusting the event
//!   (<https://apidocs.bitrix24.com/api-reference/events/safe-event-handlers.html>);
//! - a [`ClientPool`](crate::ClientPool) keeps one [`Client`] per portal that refreshes with
//!   the app's credentials and writes every rotated token pair back into the store; use it in
//!   event handlers. [`Installation::client`] builds a single, fresh one.
//!
//! An `ONAPPINSTALL` event cannot itself be checked this way (it is where the token comes
//! from). Before letting one overwrite an installation already stored for its `member_id`,
//! [`verify`] it against the stored token, or confirm the new tokens some other way (for
//! example by calling `app.info`), so that a forged install cannot replace a real one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{
    write_atomic, BoxFuture, OAuthApp, RefreshLease, Secret, StoreError, TokenStore, Tokens,
};
use crate::client::{Client, DEFAULT_OAUTH_SERVER};
use crate::error::Error;

/// One application installation on one portal, as `ONAPPINSTALL` delivers it
/// (<https://apidocs.bitrix24.com/api-reference/common/events/on-app-install.html>).
///
/// `Debug` never shows a token: `application_token` and the OAuth tokens are [`Secret`]s.
/// Serde writes them verbatim so that an [`InstallationStore`] can persist them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Installation {
    /// The portal's stable id (`auth[member_id]`); survives portal renames. The key of an
    /// [`InstallationStore`].
    pub member_id: String,
    /// The installation's `auth[application_token]`: every later event for this portal
    /// carries it, and [`verify`] compares against it. Never log it.
    pub application_token: Secret,
    /// The portal's host name (`auth[domain]`, e.g. `portal.bitrix24.com`). When the event
    /// has none, the host of `client_endpoint`.
    pub domain: String,
    /// The OAuth token set: access and refresh tokens, `expires` (unix seconds), the
    /// portal's `client_endpoint`, `server_endpoint`, `member_id`, `domain` and `scope`.
    pub tokens: Tokens,
    /// The application's status letter (`auth[status]`): `L` local, `F` free, `D` demo,
    /// `T` trial, `P` paid, `S` subscription. Informational only; the trusted value comes
    /// from `app.info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Installation {
    /// An installation from its parts; `status` starts as `None`.
    pub fn new(
        member_id: impl Into<String>,
        application_token: impl Into<Secret>,
        domain: impl Into<String>,
        tokens: Tokens,
    ) -> Self {
        Installation {
            member_id: member_id.into(),
            application_token: application_token.into(),
            domain: domain.into(),
            tokens,
            status: None,
        }
    }

    /// Sets [`status`](Self::status).
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Reads the `auth` object of a decoded `ONAPPINSTALL` event
    /// (`bitrix24::php::decode(body, Limits::default())?["auth"]`), PROTOCOL.md 7.3 and 7.7.
    ///
    /// Every scalar is expected as a string (numbers are accepted too). `expires` (unix
    /// seconds) is used when present; otherwise it is now + `expires_in` (seconds, clamped to
    /// 0..=86 400, saturating). `domain` falls back to the host of `client_endpoint`.
    ///
    /// # Errors
    /// [`InstallError::MissingField`] when `member_id`, `application_token`, `access_token`,
    /// `refresh_token` or `client_endpoint` is absent or empty (or `auth` is not an object);
    /// [`InstallError::InvalidField`] when `expires` or `expires_in` is not an integer.
    /// Neither error contains a field's value.
    pub fn from_install_auth(auth: &Value) -> Result<Installation, InstallError> {
        let obj = auth.as_object().ok_or(InstallError::MissingField("auth"))?;
        let text = |key: &str| -> Option<String> {
            match obj.get(key)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let required = |key: &'static str| text(key).ok_or(InstallError::MissingField(key));
        let int = |key: &'static str| -> Result<Option<i64>, InstallError> {
            match text(key) {
                None => Ok(None),
                Some(s) => s
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| InstallError::InvalidField(key)),
            }
        };

        let member_id = required("member_id")?;
        let application_token = Secret::new(required("application_token")?);
        let access_token = required("access_token")?;
        let refresh_token = required("refresh_token")?;
        let client_endpoint = required("client_endpoint")?;
        let expires = match int("expires")? {
            Some(e) => Some(e),
            None => int("expires_in")?.map(crate::auth::expiry_after),
        };
        let domain = text("domain")
            .or_else(|| {
                url::Url::parse(&client_endpoint)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
            })
            .unwrap_or_default();

        let mut tokens = Tokens::new(access_token, refresh_token, client_endpoint)
            .member_id(member_id.clone())
            .domain(domain.clone());
        tokens.expires = expires;
        tokens.server_endpoint = text("server_endpoint");
        tokens.scope = text("scope");
        Ok(Installation {
            member_id,
            application_token,
            domain,
            tokens,
            status: text("status"),
        })
    }

    /// A [`Client`] for this installation: calls go to `tokens.client_endpoint`, refreshes use
    /// `app`'s credentials, and every rotated token pair is saved into `store` under this
    /// installation's `member_id` (through [`token_store_for`]).
    ///
    /// The client secret goes only to `oauth_server` (default [`DEFAULT_OAUTH_SERVER`],
    /// `https://oauth.bitrix.info`), never to the `server_endpoint` an event named: event
    /// bodies are not trusted with the secret.
    ///
    /// Each call builds a new client with its own refresh gate and rate-limit bucket: two
    /// clients for one portal on an expired token would both spend the single-use refresh
    /// token. Where several events for a portal can run at once, take clients from a
    /// [`ClientPool`](crate::ClientPool) instead.
    ///
    /// # Errors
    /// An [`Error`] of kind [`InvalidInput`](crate::ErrorKind::InvalidInput) when
    /// `client_endpoint` is not an http(s) URL or `oauth_server` is not https (plain http only
    /// on a loopback host); [`Transport`](crate::ErrorKind::Transport) when the HTTP client
    /// cannot be built.
    pub fn client(
        &self,
        app: OAuthApp,
        store: Arc<dyn InstallationStore>,
        oauth_server: Option<&str>,
    ) -> Result<Client, Error> {
        Client::builder()
            .oauth(app, self.tokens.clone())
            .token_store(token_store_for(store, self.member_id.clone()))
            // Always set: otherwise the refresh would go to the event's `server_endpoint`.
            .oauth_server(oauth_server.unwrap_or(DEFAULT_OAUTH_SERVER))
            .build()
    }
}

/// Why an installation could not be read, found or trusted. `Display` and `Debug` never
/// contain a token.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// A required `auth[...]` field (named here) is absent or empty.
    MissingField(&'static str),
    /// An `auth[...]` field (named here) has a value of the wrong shape.
    InvalidField(&'static str),
    /// No installation is stored for the event's `member_id`: the app was never installed
    /// there (or was uninstalled), or the event is forged.
    UnknownInstallation,
    /// The presented `application_token` differs from the stored one: the event did not come
    /// from the portal (<https://apidocs.bitrix24.com/api-reference/events/safe-event-handlers.html>).
    Forged,
    /// The [`InstallationStore`] failed.
    Store(StoreError),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::MissingField(k) => write!(f, "install event lacks auth[{k}]"),
            InstallError::InvalidField(k) => write!(f, "install event has an invalid auth[{k}]"),
            InstallError::UnknownInstallation => {
                f.write_str("no installation is stored for this member_id")
            }
            InstallError::Forged => {
                f.write_str("application_token does not match the stored installation")
            }
            InstallError::Store(e) => write!(f, "installation store failed: {e}"),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InstallError::Store(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Where installations are kept, keyed by `member_id`, so that they survive restarts. Methods
/// return boxed futures, like [`TokenStore`].
pub trait InstallationStore: Send + Sync + 'static {
    /// The installation stored for `member_id`, or `None`.
    fn get<'a>(
        &'a self,
        member_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Installation>, StoreError>>;

    /// Stores `installation`, replacing any stored under its `member_id`. Must be durable when
    /// it returns `Ok`.
    fn put(&self, installation: Installation) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Removes the installation of `member_id` (on `ONAPPUNINSTALL`); `true` when one was
    /// stored.
    fn remove<'a>(&'a self, member_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Replaces the tokens of the installation of `member_id`, keeping its other fields.
    /// Errors when none is stored. The default is [`get`](Self::get) then
    /// [`put`](Self::put); stores that can do it atomically should override it.
    fn update_tokens<'a>(
        &'a self,
        member_id: &'a str,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut installation = self
                .get(member_id)
                .await?
                .ok_or_else(|| StoreError::from(InstallError::UnknownInstallation))?;
            installation.tokens = tokens.clone();
            self.put(installation).await
        })
    }

    /// Replaces the tokens of the installation of `member_id` only if its stored refresh
    /// token is still `spent`, answering whether it wrote; errors when none is stored. This
    /// is how a client saves a refreshed pair ([`TokenStore::save_if_current`]): a slower
    /// process must not overwrite a newer pair. The default is [`get`](Self::get), a compare
    /// and [`put`](Self::put), which is only atomic within one process; a store shared by
    /// processes makes it one conditional write (`bitrix24::postgres::PgInstallationStore`,
    /// feature `postgres`: an `UPDATE ... WHERE refresh_token = $spent`).
    fn update_tokens_if<'a>(
        &'a self,
        member_id: &'a str,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut installation = self
                .get(member_id)
                .await?
                .ok_or_else(|| StoreError::from(InstallError::UnknownInstallation))?;
            if installation.tokens.refresh_token != *spent {
                return Ok(false);
            }
            installation.tokens = tokens.clone();
            self.put(installation).await?;
            Ok(true)
        })
    }

    /// Takes the refresh lock of the installation of `member_id` for at most `ttl`
    /// ([`TokenStore::lock_refresh`]); `Ok(None)` while another holder has it. The default
    /// grants it at once: right for one process.
    fn lock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<RefreshLease>, StoreError>> {
        let _ = (member_id, ttl);
        Box::pin(async { Ok(Some(RefreshLease::new())) })
    }

    /// Releases a lock taken by [`lock_refresh`](Self::lock_refresh) if `lease` still holds
    /// it ([`TokenStore::unlock_refresh`]). The default does nothing.
    fn unlock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        lease: RefreshLease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (member_id, lease);
        Box::pin(async { Ok(()) })
    }
}

/// Keeps installations in memory only: a restart loses them.
#[derive(Debug, Default)]
pub struct MemoryInstallationStore {
    map: std::sync::Mutex<HashMap<String, Installation>>,
}

impl MemoryInstallationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Installation>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl InstallationStore for MemoryInstallationStore {
    fn get<'a>(
        &'a self,
        member_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Installation>, StoreError>> {
        let found = self.lock().get(member_id).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn put(&self, installation: Installation) -> BoxFuture<'_, Result<(), StoreError>> {
        self.lock()
            .insert(installation.member_id.clone(), installation);
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(&'a self, member_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let removed = self.lock().remove(member_id).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn update_tokens<'a>(
        &'a self,
        member_id: &'a str,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = match self.lock().get_mut(member_id) {
            Some(i) => {
                i.tokens = tokens.clone();
                Ok(())
            }
            None => Err(StoreError::from(InstallError::UnknownInstallation)),
        };
        Box::pin(async move { result })
    }
}

/// Keeps all installations in one JSON file, an object mapping `member_id` to
/// [`Installation`]. Writes are atomic (temporary file, fsync, rename; mode `0600` on Unix),
/// and read-modify-write cycles are serialized by an in-process lock shared by clones of the
/// store, so that concurrent puts never lose each other's entries. Use one store (or its
/// clones) per file: separate stores or processes on the same file are not coordinated.
#[derive(Clone, Debug)]
pub struct FileInstallationStore {
    path: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl FileInstallationStore {
    /// A store at `path` (created on the first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileInstallationStore {
            path: path.into(),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole map; empty when the file does not exist yet.
    async fn read_all(&self) -> Result<BTreeMap<String, Installation>, StoreError> {
        match tokio::fs::read(&self.path).await {
            // The message leaves out serde's text, which may quote a stored token.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::from(format!(
                    "installation file is not a valid installation map ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_all(&self, map: &BTreeMap<String, Installation>) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(map)?;
        write_atomic(&self.path, bytes).await?;
        Ok(())
    }
}

impl InstallationStore for FileInstallationStore {
    fn get<'a>(
        &'a self,
        member_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Installation>, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            Ok(self.read_all().await?.remove(member_id))
        })
    }

    fn put(&self, installation: Installation) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            let mut map = self.read_all().await?;
            map.insert(installation.member_id.clone(), installation);
            self.write_all(&map).await
        })
    }

    fn remove<'a>(&'a self, member_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            let mut map = self.read_all().await?;
            if map.remove(member_id).is_none() {
                return Ok(false);
            }
            self.write_all(&map).await?;
            Ok(true)
        })
    }

    fn update_tokens<'a>(
        &'a self,
        member_id: &'a str,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            let mut map = self.read_all().await?;
            let installation = map
                .get_mut(member_id)
                .ok_or_else(|| StoreError::from(InstallError::UnknownInstallation))?;
            installation.tokens = tokens.clone();
            self.write_all(&map).await
        })
    }
}

/// The [`TokenStore`] of one installation: `load` returns the tokens of the installation of
/// `member_id`, `save` replaces them (through [`InstallationStore::update_tokens`]).
struct InstallationTokenStore {
    store: Arc<dyn InstallationStore>,
    member_id: String,
}

impl TokenStore for InstallationTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .store
                .get(&self.member_id)
                .await?
                .map(|installation| installation.tokens))
        })
    }

    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.update_tokens(&self.member_id, tokens)
    }

    fn save_if_current<'a>(
        &'a self,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.store.update_tokens_if(&self.member_id, spent, tokens)
    }

    fn lock_refresh(
        &self,
        ttl: std::time::Duration,
    ) -> BoxFuture<'_, Result<Option<RefreshLease>, StoreError>> {
        self.store.lock_refresh(&self.member_id, ttl)
    }

    fn unlock_refresh(&self, lease: RefreshLease) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store.unlock_refresh(&self.member_id, lease)
    }
}

/// Uses the installation of `member_id` in `store` as a client's [`TokenStore`]: `load`
/// returns its tokens (`None` when it is not stored), `save` writes rotated tokens into it
/// and fails when it is no longer stored (the app was uninstalled).
///
/// Pass it to [`ClientBuilder::token_store`](crate::ClientBuilder::token_store);
/// [`Installation::client`] does this for you.
pub fn token_store_for(
    store: Arc<dyn InstallationStore>,
    member_id: impl Into<String>,
) -> impl TokenStore {
    InstallationTokenStore {
        store,
        member_id: member_id.into(),
    }
}

/// Whether `presented` (an event's `auth[application_token]`) equals the `stored` token, in
/// time that depends only on the lengths: lengths are compared first, then every byte pair is
/// XOR-folded with no early exit. An empty stored token never matches.
///
/// See <https://apidocs.bitrix24.com/api-reference/events/safe-event-handlers.html>.
pub fn verify_application_token(stored: &Secret, presented: &str) -> bool {
    let a = stored.expose().as_bytes();
    let b = presented.as_bytes();
    if a.is_empty() || a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Checks an event: looks up the installation of its `auth[member_id]` in `store` and compares
/// its `auth[application_token]` with the stored one ([`verify_application_token`]). Returns
/// the installation when the event is authentic.
///
/// See <https://apidocs.bitrix24.com/api-reference/events/safe-event-handlers.html>.
///
/// # Errors
/// [`InstallError::UnknownInstallation`] when nothing is stored for `member_id`;
/// [`InstallError::Forged`] when the token differs; [`InstallError::Store`] when the store
/// fails.
pub async fn verify<S: InstallationStore + ?Sized>(
    store: &S,
    member_id: &str,
    presented_token: &str,
) -> Result<Installation, InstallError> {
    let installation = store
        .get(member_id)
        .await
        .map_err(InstallError::Store)?
        .ok_or(InstallError::UnknownInstallation)?;
    if verify_application_token(&installation.application_token, presented_token) {
        Ok(installation)
    } else {
        Err(InstallError::Forged)
    }
}
