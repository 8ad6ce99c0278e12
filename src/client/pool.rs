//! One client per installation: the clients of an application installed on many portals.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::limit::{LimiterFallback, Limits, RateLimit, SharedLimiter};
use super::policy::{Retry, DEFAULT_CALL_TIMEOUT};
use super::{Client, DEFAULT_OAUTH_SERVER, DEFAULT_REQUEST_TIMEOUT};
use crate::auth::OAuthApp;
use crate::error::{Error, ErrorKind};
use crate::install::{token_store_for, Installation, InstallationStore};

/// The [`Client`]s of one OAuth application, one per portal (`member_id`), built on demand
/// from an [`InstallationStore`] and kept.
///
/// Building a client per event would give each its own refresh gate: two events for one
/// portal on an expired token would then spend the same single-use refresh token twice, and
/// one of them would fail with `invalid_grant`. The pool hands out the same client for a
/// portal every time, so its calls share one refresh (persisted into the store before it is
/// used) and one request-rate bucket; all portals share one HTTP connection pool.
///
/// ```no_run
/// # async fn f(store: std::sync::Arc<dyn bitrix24::InstallationStore>) -> Result<(), bitrix24::Error> {
/// use bitrix24::{ClientPool, OAuthApp, RateLimit};
/// let pool = ClientPool::builder(OAuthApp::new("app.123", "secret"), store)
///     .rate_limit(RateLimit::enterprise())
///     .build();
/// let client = pool.client("a1b2c3...member_id").await?;
/// let me = client.user().current().await?;
/// # let _ = me; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    app: OAuthApp,
    store: Arc<dyn InstallationStore>,
    oauth_server: String,
    /// Shared by every portal's client; `None` when it could not be made.
    http: Option<reqwest::Client>,
    rate_limit: RateLimit,
    /// The rate budget shared with other processes, and what to do when it fails.
    shared_limiter: Option<Arc<dyn SharedLimiter>>,
    limiter_fallback: LimiterFallback,
    retry: Retry,
    timeout: Duration,
    call_timeout: Duration,
    /// Per `member_id`: the client and the `application_token` it was built for (a reinstall
    /// brings a new one, and new tokens).
    clients: Mutex<HashMap<String, (Client, String)>>,
}

/// Settings of a [`ClientPool`]: made by [`ClientPool::builder`], finished by
/// [`build`](Self::build).
#[must_use]
pub struct ClientPoolBuilder {
    inner: PoolInner,
}

impl fmt::Debug for ClientPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPoolBuilder")
            .field("client_id", &self.inner.app.client_id)
            .field("oauth_server", &self.inner.oauth_server)
            .field("rate_limit", &self.inner.rate_limit)
            .finish_non_exhaustive()
    }
}

impl ClientPoolBuilder {
    /// The OAuth server refreshes go to (default `https://oauth.bitrix.info`; https, or http
    /// on a loopback host, checked when a client is made).
    pub fn oauth_server(mut self, url: impl Into<String>) -> Self {
        self.inner.oauth_server = url.into();
        self
    }

    /// The plan limits of every portal; each portal gets its own bucket.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.inner.rate_limit = limit;
        self
    }

    /// Takes every portal's requests from a bucket shared with other processes (one per
    /// portal, keyed by host), as
    /// [`ClientBuilder::shared_limiter`](crate::ClientBuilder::shared_limiter).
    pub fn shared_limiter(mut self, limiter: Arc<dyn SharedLimiter>) -> Self {
        self.inner.shared_limiter = Some(limiter);
        self
    }

    /// What happens when the shared limiter fails, as
    /// [`ClientBuilder::limiter_fallback`](crate::ClientBuilder::limiter_fallback).
    pub fn limiter_fallback(mut self, fallback: LimiterFallback) -> Self {
        self.inner.limiter_fallback = fallback;
        self
    }

    /// How calls are retried.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.inner.retry = retry;
        self
    }

    /// Deadline of a whole call (default 120 s), as
    /// [`ClientBuilder::timeout`](crate::ClientBuilder::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner.call_timeout = timeout;
        self
    }

    /// Timeout of one HTTP request (default 30 s), as
    /// [`ClientBuilder::request_timeout`](crate::ClientBuilder::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.inner.timeout = timeout;
        self
    }

    /// Uses this `reqwest::Client` for every portal; it must not follow redirects (see
    /// [`ClientBuilder::http_client`](crate::ClientBuilder::http_client)). By default the
    /// pool makes one, shared by all its portals.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.inner.http = Some(http);
        self
    }

    /// The pool. If the shared HTTP client cannot be made (no TLS backend), each client is
    /// built with its own and reports the failure then.
    pub fn build(mut self) -> ClientPool {
        if self.inner.http.is_none() {
            self.inner.http = super::transport::default_http_client().ok();
        }
        ClientPool {
            inner: Arc::new(self.inner),
        }
    }
}

impl fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clients().len();
        f.debug_struct("ClientPool")
            .field("client_id", &self.inner.app.client_id)
            .field("portals", &n)
            .finish_non_exhaustive()
    }
}

impl ClientPool {
    /// A pool for `app`, whose installations are kept in `store`, with the default
    /// settings: refreshes at [`DEFAULT_OAUTH_SERVER`] (never at a `server_endpoint` an event
    /// named), [`RateLimit::standard`] for every portal, [`Retry::default`]. Use
    /// [`ClientPool::builder`] for others.
    pub fn new(app: OAuthApp, store: Arc<dyn InstallationStore>) -> ClientPool {
        ClientPool::builder(app, store).build()
    }

    /// A builder for the pool's settings.
    pub fn builder(app: OAuthApp, store: Arc<dyn InstallationStore>) -> ClientPoolBuilder {
        ClientPoolBuilder {
            inner: PoolInner {
                app,
                store,
                oauth_server: DEFAULT_OAUTH_SERVER.to_owned(),
                http: None,
                rate_limit: RateLimit::standard(),
                shared_limiter: None,
                limiter_fallback: LimiterFallback::Fail,
                retry: Retry::default(),
                timeout: DEFAULT_REQUEST_TIMEOUT,
                call_timeout: DEFAULT_CALL_TIMEOUT,
                clients: Mutex::new(HashMap::new()),
            },
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Client, String)>> {
        self.inner.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client of the portal `member_id`, loading its installation from the store the
    /// first time.
    ///
    /// # Errors
    /// [`ErrorKind::TokenStore`] when the store fails, [`ErrorKind::InvalidInput`] when no
    /// installation is stored for `member_id` or its `client_endpoint` is not a URL.
    pub async fn client(&self, member_id: &str) -> Result<Client, Error> {
        if let Some((client, _)) = self.clients().get(member_id) {
            return Ok(client.clone());
        }
        let installation = self
            .inner
            .store
            .get(member_id)
            .await
            .map_err(|e| {
                let text = e.to_string();
                Error::new(ErrorKind::TokenStore)
                    .with_message(format!("the installation store failed: {text}"))
                    .with_cause(crate::error::Cause::new(
                        crate::error::CauseKind::TokenStore,
                        text,
                    ))
            })?
            .ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput)
                    .with_message("no installation is stored for this member_id")
            })?;
        self.client_for(&installation)
    }

    /// The client of `installation`'s portal: the one already made for it, or a new one
    /// built from it. A reinstall (another `application_token`) replaces the old client.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the installation's `client_endpoint` is not a URL.
    pub fn client_for(&self, installation: &Installation) -> Result<Client, Error> {
        let token = installation.application_token.expose();
        let mut clients = self.clients();
        // A reinstall keeps the portal's limits: the portal still counts the same way.
        let mut limits = None;
        if let Some((client, seen)) = clients.get(&installation.member_id) {
            if seen == token {
                return Ok(client.clone());
            }
            limits = Some(client.inner.limits.clone());
        }
        let inner = &self.inner;
        let mut builder = Client::builder();
        match (limits, &inner.shared_limiter) {
            (Some(limits), _) => builder = builder.shared_limits(limits),
            (None, Some(shared)) => {
                builder = builder
                    .shared_limiter(shared.clone())
                    .limiter_fallback(inner.limiter_fallback)
            }
            (None, None) => {
                builder = builder.shared_limits(Arc::new(Limits::new(&inner.rate_limit)))
            }
        }
        if let Some(http) = &inner.http {
            builder = builder.http_client(http.clone());
        }
        let client = builder
            .oauth(inner.app.clone(), installation.tokens.clone())
            .token_store(token_store_for(
                inner.store.clone(),
                installation.member_id.clone(),
            ))
            .oauth_server(inner.oauth_server.clone())
            .request_timeout(inner.timeout)
            .timeout(inner.call_timeout)
            .retry(inner.retry.clone())
            .rate_limit(inner.rate_limit.clone())
            .build()?;
        clients.insert(
            installation.member_id.clone(),
            (client.clone(), token.to_owned()),
        );
        Ok(client)
    }

    /// Drops the client of `member_id` (after `ONAPPUNINSTALL`); `true` when there was one.
    pub fn forget(&self, member_id: &str) -> bool {
        self.clients().remove(member_id).is_some()
    }

    /// How many portals have a client in the pool.
    pub fn len(&self) -> usize {
        self.clients().len()
    }

    /// Whether the pool holds no client yet.
    pub fn is_empty(&self) -> bool {
        self.clients().is_empty()
    }
}
