//! OAuth credentials, tokens and where they are kept.
//!
//! Follows the Bitrix24 OAuth docs (<https://apidocs.bitrix24.com/settings/oauth/index.html>,
//! <https://apidocs.bitrix24.com/settings/oauth/auto-renewal.html>) and PROTOCOL.md section 1.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::wire::{As, FromWire, Int, Opt, Str};

/// A boxed `Send` future, as returned by [`TokenStore`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A secret string (token, client secret, webhook code). `Debug` and `Display` print
/// `[redacted]`; serde writes it verbatim, so that a [`TokenStore`] can persist it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An OAuth application's credentials: `client_id` (`local.xxxx` or `app.xxxx`) and
/// `client_secret`, from the app's settings on the portal or in the partner area.
///
/// The secret is only ever sent to the OAuth server, in the body of a token refresh or of an
/// authorization-code exchange ([`exchange_code`](Self::exchange_code)).
#[derive(Clone, Debug)]
pub struct OAuthApp {
    /// The application's `client_id`.
    pub client_id: String,
    /// The application's `client_secret`.
    pub client_secret: Secret,
}

impl OAuthApp {
    /// Credentials from the app's `client_id` and `client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        OAuthApp {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// Exchanges an authorization code (the `code` the portal hands to the app's redirect
    /// URL; it lives 30 seconds and works once) for the installation's first tokens, at
    /// [`DEFAULT_OAUTH_SERVER`](crate::DEFAULT_OAUTH_SERVER) (`https://oauth.bitrix.info`).
    /// Use [`AuthorizationCode`](crate::AuthorizationCode) for another OAuth server, a
    /// timeout or an HTTP client of your own.
    /// Docs: <https://apidocs.bitrix24.com/settings/oauth/index.html>.
    ///
    /// ```no_run
    /// # async fn f(code: &str) -> Result<(), bitrix24::Error> {
    /// let app = bitrix24::OAuthApp::new("app.6570a8e5d0c1f2.12345678", "client-secret");
    /// let tokens = app.exchange_code(code).await?;
    /// let client = bitrix24::Client::oauth(app, tokens)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As for [`AuthorizationCode::exchange`](crate::AuthorizationCode::exchange):
    /// [`ErrorKind::InvalidGrant`](crate::ErrorKind::InvalidGrant) for a wrong, expired or
    /// used code, [`InvalidClient`](crate::ErrorKind::InvalidClient),
    /// [`WrongClient`](crate::ErrorKind::WrongClient),
    /// [`AppUnavailable`](crate::ErrorKind::AppUnavailable),
    /// [`OAuthServer`](crate::ErrorKind::OAuthServer), transport errors and
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for an empty code. Neither the
    /// client secret nor the code is ever in an error.
    pub fn exchange_code(
        &self,
        code: impl Into<Secret>,
    ) -> impl Future<Output = Result<Tokens, crate::Error>> + Send + 'static {
        crate::AuthorizationCode::new(self.clone(), code).exchange()
    }
}

/// The OAuth token set of one installation (one portal, one user), as the OAuth server returns
/// it and as a [`TokenStore`] persists it (PROTOCOL.md 1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tokens {
    /// Access token for REST calls; lives one hour.
    pub access_token: Secret,
    /// Refresh token; lives 180 days and is single use: every refresh returns a new one.
    pub refresh_token: Secret,
    /// Expiry of `access_token`, unix time in seconds, when known. The client refreshes before
    /// sending once this has passed.
    #[serde(
        default,
        with = "As::<Opt<Int>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<i64>,
    /// The portal's REST base URL, e.g. `https://portal.bitrix24.com/rest/`.
    #[serde(with = "As::<Str>")]
    pub client_endpoint: String,
    /// The OAuth server's REST base URL, e.g. `https://oauth.bitrix.info/rest/`; the refresh
    /// goes to its host (`/oauth/token/`). `None` means `https://oauth.bitrix.info`.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_endpoint: Option<String>,
    /// The portal's stable id; survives portal renames.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub member_id: Option<String>,
    /// The portal's host name (`portal.bitrix24.com`) as events and the install callback
    /// give it. (A token response's own `domain` is the OAuth server; it is not copied here.)
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<String>,
    /// Comma-separated scopes granted, when known.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub scope: Option<String>,
}

impl Tokens {
    /// A token set from its two tokens and the portal's REST base (`client_endpoint`).
    /// Set the other fields with the setters.
    pub fn new(
        access_token: impl Into<Secret>,
        refresh_token: impl Into<Secret>,
        client_endpoint: impl Into<String>,
    ) -> Self {
        Tokens {
            access_token: access_token.into(),
            refresh_token: refresh_token.into(),
            expires: None,
            client_endpoint: client_endpoint.into(),
            server_endpoint: None,
            member_id: None,
            domain: None,
            scope: None,
        }
    }

    /// Sets [`expires`](Self::expires) (unix seconds).
    pub fn expires(mut self, unix_seconds: i64) -> Self {
        self.expires = Some(unix_seconds);
        self
    }

    /// Sets [`server_endpoint`](Self::server_endpoint).
    pub fn server_endpoint(mut self, url: impl Into<String>) -> Self {
        self.server_endpoint = Some(url.into());
        self
    }

    /// Sets [`member_id`](Self::member_id).
    pub fn member_id(mut self, member_id: impl Into<String>) -> Self {
        self.member_id = Some(member_id.into());
        self
    }

    /// Sets [`scope`](Self::scope) (comma-separated scope codes).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets [`domain`](Self::domain).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Decodes an OAuth server token response (`grant_type=authorization_code` or
    /// `refresh_token`). `expires` is computed as now + `expires_in` (the local clock), or
    /// taken from the response's `expires` when `expires_in` is missing.
    ///
    /// # Errors
    /// A [`serde_json::Error`] when the body has no `access_token`, `refresh_token` or
    /// `client_endpoint`.
    pub fn from_token_response(body: &[u8]) -> Result<Tokens, serde_json::Error> {
        use serde::de::Error as _;
        let json: serde_json::Value = serde_json::from_slice(body)?;
        let response = TokenResponse::from_json(&json).ok_or_else(|| {
            serde_json::Error::custom("a token response needs access_token and refresh_token")
        })?;
        let tokens = response.into_tokens(None);
        if tokens.client_endpoint.is_empty() {
            return Err(serde_json::Error::custom(
                "a token response needs client_endpoint",
            ));
        }
        Ok(tokens)
    }

    /// Whether `expires` has passed at `now` (unix seconds).
    pub(crate) fn expired_at(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// The longest `expires_in` taken at face value (one day); larger or negative values are
/// clamped, so that a broken or hostile answer can neither overflow, push the expiry out
/// indefinitely, nor cause a refresh on every call.
const MAX_EXPIRES_IN: i64 = 86_400;

/// The unix time (seconds) an access token with lifetime `expires_in` (seconds) expires,
/// on the local clock, with `expires_in` clamped to `0..=MAX_EXPIRES_IN`.
pub(crate) fn expiry_after(expires_in: i64) -> i64 {
    crate::client::unix_now().saturating_add(expires_in.clamp(0, MAX_EXPIRES_IN))
}

/// The body of a successful answer of `/oauth/token/`: the two tokens are required, every
/// other field is read leniently (an odd value is ignored rather than losing the new pair).
pub(crate) struct TokenResponse {
    access_token: Secret,
    refresh_token: Secret,
    expires: Option<i64>,
    expires_in: Option<i64>,
    client_endpoint: Option<String>,
    server_endpoint: Option<String>,
    member_id: Option<String>,
    scope: Option<String>,
}

impl TokenResponse {
    /// Reads a token answer; `None` without a non-empty `access_token` and `refresh_token`.
    pub(crate) fn from_json(json: &serde_json::Value) -> Option<TokenResponse> {
        let text = |key: &str| -> Option<String> {
            match json.get(key)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let int = |key: &str| -> Option<i64> { i64::from_wire(json.get(key)?).ok() };
        Some(TokenResponse {
            access_token: Secret::new(text("access_token")?),
            refresh_token: Secret::new(text("refresh_token")?),
            expires: int("expires"),
            expires_in: int("expires_in"),
            client_endpoint: text("client_endpoint"),
            server_endpoint: text("server_endpoint"),
            member_id: text("member_id"),
            scope: text("scope"),
        })
    }

    /// The new token set; fields the response lacks are kept from `previous`.
    pub(crate) fn into_tokens(self, previous: Option<&Tokens>) -> Tokens {
        // `expires_in` against the local clock first: the server's absolute `expires` would be
        // off by any clock skew between the two machines.
        let expires = self.expires_in.map(expiry_after).or(self.expires);
        Tokens {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires,
            client_endpoint: self
                .client_endpoint
                .or_else(|| previous.map(|p| p.client_endpoint.clone()))
                .unwrap_or_default(),
            server_endpoint: self
                .server_endpoint
                .or_else(|| previous.and_then(|p| p.server_endpoint.clone())),
            member_id: self
                .member_id
                .or_else(|| previous.and_then(|p| p.member_id.clone())),
            domain: previous.and_then(|p| p.domain.clone()),
            scope: self
                .scope
                .or_else(|| previous.and_then(|p| p.scope.clone())),
        }
    }
}

/// The error a [`TokenStore`] returns.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// A held refresh lock: while a client holds one, no other client sharing the store (in
/// this process or another) refreshes its tokens. Made by [`TokenStore::lock_refresh`] and
/// handed back to [`TokenStore::unlock_refresh`].
///
/// The id is unique per lease (process id, time and a counter), so that a store releasing
/// a lock can check that it is still this lease's: a lease that outlived its expiry must
/// not release the lock a later holder took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLease {
    id: String,
}

impl RefreshLease {
    /// A lease with a new unique id.
    pub fn new() -> RefreshLease {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        RefreshLease {
            id: format!("{}-{nanos:x}-{n}", std::process::id()),
        }
    }

    /// The lease's id (the value a store keeps in its lock, e.g. the Redis key's value).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Default for RefreshLease {
    fn default() -> Self {
        RefreshLease::new()
    }
}

/// Where an OAuth client keeps its tokens, so that a rotated pair survives restarts and is
/// shared between processes.
///
/// # How a client refreshes
/// Refresh tokens are single use, so of several processes that see `expired_token` at once
/// only one may spend the pair; the others must adopt what it stores. A client refreshes
/// like this (one refresh in flight per client; [`Client`](crate::Client) clones share it):
///
/// 1. [`lock_refresh`](Self::lock_refresh) with a time to live. While another holder has
///    the lock, the client [`load`](Self::load)s every few tens of milliseconds and adopts
///    the stored pair as soon as its refresh token differs from the one it holds (the
///    holder's new pair); otherwise it tries the lock again, up to a little over the time
///    to live (so a holder that died frees it by expiry).
/// 2. Holding the lock, it loads again: a pair that differs from its own is adopted, and
///    nothing is refreshed.
/// 3. Otherwise it refreshes and saves with [`save_if_current`](Self::save_if_current), so
///    that a pair stored meanwhile by someone else (a reinstall) is never overwritten with
///    an older one: then the stored pair is adopted.
/// 4. It releases the lock ([`unlock_refresh`](Self::unlock_refresh)); the new access token
///    is used only after the save returned.
///
/// Before its first request it calls [`save_if_absent`](Self::save_if_absent) with the
/// tokens it was built with, so that an empty store (a [`FileTokenStore`] whose file does
/// not exist yet) holds them from the start. A refresh that answers `invalid_grant` loads
/// once more, in case the pair was rotated elsewhere.
///
/// The defaults of the lock and the compare-and-swap keep simple stores working: the lock is
/// always granted (so only the client's own single flight applies) and the compare-and-swap
/// is a load, a compare and a save. Those are right for one process; a store shared by
/// processes ([`FileTokenStore`], `RedisTokenStore`, an installation in PostgreSQL)
/// overrides them.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored tokens, or `None` when nothing is stored yet.
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>>;
    /// Replaces the stored tokens. Must be durable when it returns `Ok`.
    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Stores `tokens` only if the store holds none yet, answering whether it wrote them.
    /// It must never replace stored tokens (another process may have rotated them), so a
    /// check-then-write is only right where nothing else writes at the same time; make it
    /// one atomic step where you can.
    ///
    /// A client built with this store calls it once, before its first request, unless a
    /// refresh already saved a newer pair; a failure fails that one call with
    /// [`ErrorKind::TokenStore`](crate::ErrorKind::TokenStore) (nothing was sent), and later
    /// calls go ahead. The default does nothing and answers `Ok(false)`: a store that is
    /// always filled before a client is built (an installation store) need not implement it.
    fn save_if_absent<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = tokens;
        Box::pin(async { Ok(false) })
    }

    /// Takes the store's refresh lock for at most `ttl` (after which it expires by itself,
    /// so that a holder that died cannot block the others for ever). `Ok(None)` when another
    /// holder has it now; the client then waits and tries again.
    ///
    /// The default grants every request at once: right for a store used by one process.
    fn lock_refresh(
        &self,
        ttl: std::time::Duration,
    ) -> BoxFuture<'_, Result<Option<RefreshLease>, StoreError>> {
        let _ = ttl;
        Box::pin(async { Ok(Some(RefreshLease::new())) })
    }

    /// Releases a lock taken by [`lock_refresh`](Self::lock_refresh), if `lease` still holds
    /// it (after its expiry another holder may have it; that one's lock must stay). A
    /// failure is logged by the client and otherwise ignored: the lock expires.
    fn unlock_refresh(&self, lease: RefreshLease) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = lease;
        Box::pin(async { Ok(()) })
    }

    /// Saves `tokens` only if the stored refresh token is still `spent` (the one the refresh
    /// used) or nothing is stored, answering whether it wrote. `false` means another process
    /// stored a newer pair, which must not be overwritten.
    ///
    /// The client calls it holding the refresh lock. The default is [`load`](Self::load),
    /// a compare and [`save`](Self::save): not atomic, so only right for one process.
    fn save_if_current<'a>(
        &'a self,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            match self.load().await? {
                Some(stored) if stored.refresh_token != *spent => Ok(false),
                _ => {
                    self.save(tokens).await?;
                    Ok(true)
                }
            }
        })
    }
}

/// Keeps tokens in memory only (the default store): a restart loses rotated tokens.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<Option<Tokens>>,
}

impl MemoryTokenStore {
    /// A store holding `tokens`.
    pub fn new(tokens: Option<Tokens>) -> Self {
        MemoryTokenStore {
            tokens: Mutex::new(tokens),
        }
    }

    /// The tokens held now.
    pub fn get(&self) -> Option<Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        let t = self.get();
        Box::pin(async move { Ok(t) })
    }

    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.clone());
        Box::pin(async { Ok(()) })
    }

    fn save_if_absent<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut held = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let wrote = held.is_none();
        if wrote {
            *held = Some(tokens.clone());
        }
        Box::pin(async move { Ok(wrote) })
    }
}

/// Keeps tokens in a JSON file. Writes are atomic: a temporary file in the same directory is
/// written, flushed to disk and renamed over the target, so a crash never leaves a torn file.
/// On Unix the file is created with mode `0600`.
///
/// When the file does not exist yet, a client built with this store writes the tokens it was
/// given to it before its first request ([`TokenStore::save_if_absent`]), so that another
/// process can start from the file at once; an existing file is never overwritten that way
/// (the file is linked into place in one step that fails if it exists).
///
/// Processes on one machine may share the file: the refresh lock is an exclusive OS lock
/// (`flock` on Unix, `LockFileEx` on Windows, through the `fs4` crate) on a file next to it,
/// `<path>.lock`, which is never deleted. The OS releases it when its holder exits or dies,
/// so the lock's time to live is not needed; a holder that lives releases it after its
/// refresh, which is bounded by the client's request timeout. Across machines (a network
/// file system), use `RedisTokenStore` or an installation in PostgreSQL instead.
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    path: PathBuf,
    /// The open lock files of the leases this store handed out, by lease id: closing one
    /// releases its lock.
    leases: std::sync::Arc<Mutex<std::collections::HashMap<String, std::fs::File>>>,
}

impl FileTokenStore {
    /// A store at `path` (created by the first save, or before a client's first request).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileTokenStore {
            path: path.into(),
            leases: Default::default(),
        }
    }

    /// The lock file next to the token file: `<path>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Options creating a new file, mode 0600 on Unix.
fn create_new_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Writes `bytes` to a new temporary file next to `path`, flushed to disk; returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let tmp = parent_dir(path).join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = create_new_options().open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Makes a rename or link in `dir` durable (best effort: not every platform allows it).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes `bytes` to `path` atomically (temporary file + fsync + rename), mode 0600 on Unix.
pub(crate) async fn write_atomic(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let tmp = write_temp(&path, &bytes)?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(parent_dir(&path));
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Writes `bytes` to `path` only if `path` does not exist, answering whether it wrote. The
/// complete temporary file is hard-linked into place, which fails if the target exists, so
/// neither a torn file nor a replaced one is possible. Where hard links are not supported,
/// the file is created exclusively (`O_EXCL`) and written in place.
pub(crate) async fn write_new(path: &Path, bytes: Vec<u8>) -> std::io::Result<bool> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        if path.exists() {
            return Ok(false);
        }
        let tmp = write_temp(&path, &bytes)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        let wrote = match linked {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(_) => {
                use std::io::Write;
                match create_new_options().open(&path) {
                    Ok(mut f) => {
                        let written = f.write_all(&bytes).and_then(|()| f.sync_all());
                        if let Err(e) = written {
                            let _ = std::fs::remove_file(&path);
                            return Err(e);
                        }
                        true
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e),
                }
            }
        };
        if wrote {
            sync_dir(parent_dir(&path));
        }
        Ok(wrote)
    })
    .await
    .map_err(std::io::Error::other)?
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        Box::pin(async move {
            match tokio::fs::read(&self.path).await {
                Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec_pretty(tokens)?;
            write_atomic(&self.path, bytes).await?;
            Ok(())
        })
    }

    /// Creates the file with `tokens` if it does not exist; an existing file (even one that
    /// does not parse) is left alone.
    fn save_if_absent<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec_pretty(tokens)?;
            Ok(write_new(&self.path, bytes).await?)
        })
    }

    /// Tries the exclusive OS lock on [`lock_path`](Self::lock_path) (created, mode `0600`
    /// on Unix, if missing) without blocking; `ttl` is not used (the OS frees the lock of a
    /// holder that died).
    fn lock_refresh(
        &self,
        ttl: std::time::Duration,
    ) -> BoxFuture<'_, Result<Option<RefreshLease>, StoreError>> {
        let _ = ttl;
        Box::pin(async move {
            let path = self.lock_path();
            let file = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let mut options = std::fs::OpenOptions::new();
                options.read(true).write(true).create(true).truncate(false);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let file = options.open(&path)?;
                match fs4::FileExt::try_lock(&file) {
                    Ok(()) => Ok(Some(file)),
                    Err(fs4::TryLockError::WouldBlock) => Ok(None),
                    Err(fs4::TryLockError::Error(e)) => Err(e.into()),
                }
            })
            .await
            .map_err(|e| StoreError::from(e.to_string()))??;
            Ok(file.map(|file| {
                let lease = RefreshLease::new();
                self.leases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(lease.id().to_owned(), file);
                lease
            }))
        })
    }

    /// Closes the lease's lock file, which releases the lock.
    fn unlock_refresh(&self, lease: RefreshLease) -> BoxFuture<'_, Result<(), StoreError>> {
        let file = self
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(lease.id());
        Box::pin(async move {
            if let Some(file) = file {
                fs4::FileExt::unlock(&file)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let t = Tokens::new(
            "ACCESS-SECRET",
            "REFRESH-SECRET",
            "https://p.bitrix24.com/rest/",
        );
        let app = OAuthApp::new("local.1", "CLIENT-SECRET");
        let dbg = format!("{t:?} {app:?} {}", t.access_token);
        for s in ["ACCESS-SECRET", "REFRESH-SECRET", "CLIENT-SECRET"] {
            assert!(!dbg.contains(s), "{dbg}");
        }
    }

    #[tokio::test]
    async fn file_store_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("tokens.json"));
        assert!(store.load().await.unwrap().is_none());
        let t = Tokens::new("a", "r", "https://p.bitrix24.com/rest/")
            .expires(100)
            .member_id("m");
        store.save(&t).await.unwrap();
        store.save(&t).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(t));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("tokens.json")],
            "no temp files left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn save_if_absent_creates_but_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("tokens.json"));
        let first = Tokens::new("a1", "r1", "https://p.bitrix24.com/rest/");
        let second = Tokens::new("a2", "r2", "https://p.bitrix24.com/rest/");
        assert!(store.save_if_absent(&first).await.unwrap());
        assert!(!store.save_if_absent(&second).await.unwrap());
        assert_eq!(store.load().await.unwrap(), Some(first.clone()));
        // A plain save still replaces.
        store.save(&second).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(second.clone()));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["tokens.json"], "no temp files left");

        let memory = MemoryTokenStore::new(None);
        assert!(memory.save_if_absent(&first).await.unwrap());
        assert!(!memory.save_if_absent(&second).await.unwrap());
        assert_eq!(memory.get(), Some(first));
    }

    #[test]
    fn token_responses_decode() {
        let refresh =
            br#"{"access_token":"a","refresh_token":"r","expires":1787223142,"expires_in":3600,
            "client_endpoint":"https://p/rest/","server_endpoint":"https://oauth.bitrix.info/rest/",
            "domain":"oauth.bitrix.info","member_id":"m","user_id":17}"#;
        let t = Tokens::from_token_response(refresh).unwrap();
        let now = crate::client::unix_now();
        assert!(
            (now + 3590..=now + 3610).contains(&t.expires.unwrap()),
            "expires_in wins"
        );
        assert_eq!(
            t.domain, None,
            "the token response's domain is the OAuth server, not the portal"
        );
        let code = br#"{"access_token":"a","refresh_token":"r","expires_in":"3600","client_endpoint":"https://p/rest/"}"#;
        let t = Tokens::from_token_response(code).unwrap();
        assert!((now + 3590..=now + 3610).contains(&t.expires.unwrap()));
        let absolute = br#"{"access_token":"a","refresh_token":"r","expires":1787223142,"client_endpoint":"https://p/rest/"}"#;
        let t = Tokens::from_token_response(absolute).unwrap();
        assert_eq!(t.expires, Some(1787223142));
    }
}
