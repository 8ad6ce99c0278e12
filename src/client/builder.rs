//! Building a client: the auth choice, settings, and the validation of every URL it is given.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use url::Url;

use super::auth::{AuthState, OAuthState};
use super::limit::{Limits, RateLimit};
use super::policy::{Retry, DEFAULT_CALL_TIMEOUT};
use super::transport::DEFAULT_MAX_RESPONSE_BYTES;
use super::{Client, Inner, DEFAULT_TIMEOUT};
use crate::auth::{MemoryTokenStore, OAuthApp, TokenStore, Tokens};
use crate::error::{Error, ErrorKind};

/// Builds a [`Client`]: pick webhook or OAuth auth, then optional settings.
///
/// ```no_run
/// # fn f() -> Result<(), bitrix24::Error> {
/// use std::time::Duration;
/// let client = bitrix24::Client::builder()
///     .webhook("https://acme.bitrix24.com/rest/1/k3y/")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    webhook: Option<String>,
    oauth: Option<(OAuthApp, Tokens)>,
    store: Option<Arc<dyn TokenStore>>,
    oauth_server: Option<String>,
    timeout: Duration,
    user_agent: String,
    http: Option<reqwest::Client>,
    rate_limit: RateLimit,
    retry: Retry,
    call_timeout: Duration,
    max_response_bytes: usize,
    /// The limits of a portal shared with other clients (a [`ClientPool`](crate::ClientPool)).
    shared_limits: Option<Arc<Limits>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("webhook", &self.webhook.as_ref().map(|_| "[redacted]"))
            .field("oauth", &self.oauth.as_ref().map(|(app, _)| &app.client_id))
            .field("timeout", &self.timeout)
            .field("call_timeout", &self.call_timeout)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            webhook: None,
            oauth: None,
            store: None,
            oauth_server: None,
            timeout: DEFAULT_TIMEOUT,
            user_agent: concat!("bitrix24-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            http: None,
            rate_limit: RateLimit::standard(),
            retry: Retry::default(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            shared_limits: None,
        }
    }
}

impl ClientBuilder {
    /// Authorize with an incoming webhook URL, `https://{portal}/rest/{user_id}/{code}/`
    /// (trailing slash optional). No token refresh happens for webhooks.
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self.oauth = None;
        self
    }

    /// Authorize with an OAuth application and its current tokens. Calls go to
    /// `tokens.client_endpoint`; refreshes to the OAuth server of `tokens.server_endpoint`.
    pub fn oauth(mut self, app: OAuthApp, tokens: Tokens) -> Self {
        self.oauth = Some((app, tokens));
        self.webhook = None;
        self
    }

    /// Where refreshed tokens are saved (awaited before they are used). Default: in memory.
    pub fn token_store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Like [`token_store`](Self::token_store), for a store shared elsewhere.
    pub fn token_store_arc(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The OAuth server to refresh tokens at (`https://oauth.bitrix.info`), overriding the one
    /// taken from the tokens' `server_endpoint`.
    pub fn oauth_server(mut self, url: impl Into<String>) -> Self {
        self.oauth_server = Some(url.into());
        self
    }

    /// Timeout of one HTTP request (default 30 s; Bitrix24 cuts requests at 60 s). See
    /// [`call_timeout`](Self::call_timeout) for the whole call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of a whole call (default 120 s): the wait for the rate limit, redirects,
    /// a token refresh and every retry included. A call still running then fails with
    /// [`ErrorKind::Timeout`]. Any request can set its own with `.timeout(..)`.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The portal's plan limits the client keeps to (default [`RateLimit::standard`]: a burst
    /// of 50 requests, then 2 per second). Use [`RateLimit::enterprise`] on Enterprise plans
    /// and [`RateLimit::off`] for a portal without a limiter.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// How calls are retried (default [`Retry::default`]: up to 4 attempts, reads only, or
    /// writes the portal certainly did not run). Any request can set its own with
    /// `.retry(..)`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The largest answer read, bytes (default 64 MiB); a larger one is
    /// [`ErrorKind::TooLarge`] instead of a growing allocation.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Shares the limits (bucket, operating-time state) of another client for the same
    /// portal.
    pub(crate) fn shared_limits(mut self, limits: Arc<Limits>) -> Self {
        self.shared_limits = Some(limits);
        self
    }

    /// The `User-Agent` header (default `bitrix24-rust/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Use this `reqwest::Client` (for proxies, custom TLS roots...). It must not follow
    /// redirects (`redirect::Policy::none()`): the client re-POSTs to a renamed portal itself,
    /// where an automatic redirect would turn the POST into a GET and drop the body.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when no auth was chosen, the webhook URL is not an
    /// `http(s)://host/rest/{user_id}/{code}` URL, or `client_endpoint` / the OAuth server
    /// is not an `http(s)` URL; [`ErrorKind::Transport`] if the HTTP client cannot be built.
    pub fn build(self) -> Result<Client, Error> {
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| {
                    Error::new(ErrorKind::Transport).with_message(e.without_url().to_string())
                })?,
        };
        let auth = if let Some(raw) = self.webhook {
            {
                let base = parse_webhook(&raw)?;
                AuthState::Webhook {
                    code: super::auth::webhook_code(&base),
                    base: RwLock::new(base),
                }
            }
        } else if let Some((app, tokens)) = self.oauth {
            parse_endpoint(&tokens.client_endpoint, "client_endpoint")?;
            let oauth_server = self
                .oauth_server
                .map(|s| parse_oauth_server(&s, "OAuth server"))
                .transpose()?;
            let store = self
                .store
                .unwrap_or_else(|| Arc::new(MemoryTokenStore::new(Some(tokens.clone()))));
            AuthState::OAuth(OAuthState {
                app,
                tokens: RwLock::new((0, Arc::new(tokens))),
                refresh: tokio::sync::Mutex::new(()),
                store,
                oauth_server,
                attempts: std::sync::Mutex::new((0, None)),
                invalid_token_generation: std::sync::Mutex::new(None),
            })
        } else {
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_message("choose webhook(...) or oauth(...) before build()"));
        };
        let limits = self
            .shared_limits
            .unwrap_or_else(|| Arc::new(Limits::new(&self.rate_limit)));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                timeout: self.timeout,
                call_timeout: self.call_timeout,
                user_agent: self.user_agent,
                auth,
                limits,
                retry: self.retry,
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }
}

fn parse_http_url(raw: &str, what: &str) -> Result<Url, Error> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        Error::new(ErrorKind::InvalidInput).with_message(format!("{what} is not a URL ({e})"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_message(format!("{what} must be an http(s) URL with a host")));
    }
    Ok(url)
}

/// A portal REST base (`client_endpoint`): http(s), a host, no query or fragment (they would
/// add parameters to every call).
pub(super) fn parse_endpoint(raw: &str, what: &str) -> Result<Url, Error> {
    let url = parse_http_url(raw, what)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_message(format!("{what} must not have a query or fragment")));
    }
    Ok(url)
}

/// The OAuth server the client secret is sent to: https, or plain http only on a loopback
/// host (a local test server), so the secret never crosses a network in clear text.
pub(super) fn parse_oauth_server(raw: &str, what: &str) -> Result<Url, Error> {
    let url = parse_http_url(raw, what)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        return Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
            "{what} must be an https URL (plain http is allowed only on a loopback host)"
        )));
    }
    Ok(url)
}

/// Validates a webhook URL and normalizes it to end with `/`. The message never contains the
/// URL (it holds the webhook code).
pub(super) fn parse_webhook(raw: &str) -> Result<Url, Error> {
    let mut url = parse_http_url(raw, "webhook URL")?;
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let ok = segments.len() >= 3
        && segments[segments.len() - 3] == "rest"
        && segments[segments.len() - 2].parse::<u64>().is_ok();
    if !ok || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_message("webhook URL must look like https://{portal}/rest/{user_id}/{code}/"));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::super::transport::join_method;
    use super::*;

    #[test]
    fn webhook_urls_normalize() {
        let a = parse_webhook("https://acme.bitrix24.com/rest/1/k3y").unwrap();
        let b = parse_webhook("https://acme.bitrix24.com/rest/1/k3y/").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            join_method(&a, "user.current").unwrap().as_str(),
            "https://acme.bitrix24.com/rest/1/k3y/user.current"
        );
        for bad in [
            "acme.bitrix24.com/rest/1/k3y",
            "https://acme.bitrix24.com/",
            "ftp://a/rest/1/k",
            "https://a/rest/x/k/",
        ] {
            let e = parse_webhook(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(!e.to_string().contains("k3y"));
        }
        assert!(join_method(&a, "../x").is_err());
    }
}
