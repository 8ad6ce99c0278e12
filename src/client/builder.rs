//! Building a client: the auth choice, settings, and the validation of every URL it is given.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use url::Url;

use super::auth::{AuthState, OAuthState};
use super::limit::{LimiterFallback, Limits, RateLimit, SharedLimiter};
use super::policy::{Retry, DEFAULT_CALL_TIMEOUT};
use super::transport::DEFAULT_MAX_RESPONSE_BYTES;
use super::{Client, Inner, DEFAULT_REQUEST_TIMEOUT};
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
    request_timeout: Duration,
    user_agent: String,
    http: Option<reqwest::Client>,
    rate_limit: RateLimit,
    retry: Retry,
    call_timeout: Duration,
    max_response_bytes: usize,
    /// The limits of a portal shared with other clients (a [`ClientPool`](crate::ClientPool)).
    shared_limits: Option<Arc<Limits>>,
    /// The rate budget shared with other processes.
    shared_limiter: Option<Arc<dyn SharedLimiter>>,
    /// What to do when it fails.
    limiter_fallback: LimiterFallback,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("webhook", &self.webhook.as_ref().map(|_| "[redacted]"))
            .field("oauth", &self.oauth.as_ref().map(|(app, _)| &app.client_id))
            .field("timeout", &self.call_timeout)
            .field("request_timeout", &self.request_timeout)
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
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: super::transport::USER_AGENT.to_owned(),
            http: None,
            rate_limit: RateLimit::standard(),
            retry: Retry::default(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            shared_limits: None,
            shared_limiter: None,
            limiter_fallback: LimiterFallback::Fail,
        }
    }
}

impl ClientBuilder {
    /// Authorize with an incoming webhook URL, `https://{portal}/rest/{user_id}/{code}/`
    /// (trailing slash optional), as the portal shows it when the webhook is created
    /// (<https://apidocs.bitrix24.com/local-integrations/local-webhooks.html>). No token
    /// refresh happens for webhooks.
    ///
    /// The URL is checked by [`build`](Self::build): it must be `https` (plain `http` only
    /// on a loopback host, as the code travels in the path), and end with the code: no
    /// method name, query string or fragment after it.
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
    ///
    /// When the store is empty (a [`FileTokenStore`](crate::FileTokenStore) whose file does
    /// not exist yet), the tokens given to [`oauth`](Self::oauth) are written to it before the
    /// client's first request ([`TokenStore::save_if_absent`]); stored tokens are never
    /// replaced that way.
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

    /// The deadline of a whole call (default 120 s): the wait for the rate limit, redirects,
    /// a token refresh and every retry included. A call still running then fails with
    /// [`ErrorKind::Timeout`]. Any request can set its own with `.timeout(..)`, which means
    /// the same. See [`request_timeout`](Self::request_timeout) for one HTTP request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Timeout of one HTTP request (default 30 s; Bitrix24 cuts requests at 60 s): each
    /// attempt, redirect hop and token refresh.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
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

    /// Takes every request from a bucket shared with other processes (`RedisLimiter`, feature
    /// `redis`), so that several workers calling one portal together stay under its limit
    /// ([`rate_limit`](Self::rate_limit) gives the bucket's size), and shares the methods'
    /// operating-time state there. The portal's key is the host of its REST address
    /// (`portal.bitrix24.com`), so webhook and OAuth clients of one portal share a bucket.
    ///
    /// When the limiter fails, calls fail unsent with
    /// [`ErrorKind::Limiter`](crate::ErrorKind::Limiter), unless
    /// [`limiter_fallback`](Self::limiter_fallback) says otherwise.
    pub fn shared_limiter(mut self, limiter: Arc<dyn SharedLimiter>) -> Self {
        self.shared_limiter = Some(limiter);
        self
    }

    /// What happens when the [`shared_limiter`](Self::shared_limiter) fails (default
    /// [`LimiterFallback::Fail`]: the call fails unsent; never unlimited).
    pub fn limiter_fallback(mut self, fallback: LimiterFallback) -> Self {
        self.limiter_fallback = fallback;
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
    /// [`ErrorKind::InvalidInput`] when no auth was chosen; when the webhook URL is not an
    /// `https://host/rest/{user_id}/{code}/` URL (plain `http` to a host that is not
    /// loopback, no `/rest/` segment, no or a non-numeric user id, no code, a method name
    /// after the code, a query string or a fragment: the message says which, never showing
    /// the code); when `client_endpoint` is not an `http(s)` URL or the OAuth server not an
    /// `https` one (plain `http` only on loopback). [`ErrorKind::Transport`] if the HTTP
    /// client cannot be built.
    pub fn build(self) -> Result<Client, Error> {
        let http = match self.http {
            Some(h) => h,
            None => super::transport::default_http_client()?,
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
            // The default store is made holding the tokens; a given one is offered them
            // before the first request (`auth::seed_store`).
            let seeded = self.store.is_none();
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
                seeded: std::sync::atomic::AtomicBool::new(seeded),
            })
        } else {
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_message("choose webhook(...) or oauth(...) before build()"));
        };
        let limits = match (self.shared_limits, self.shared_limiter) {
            (Some(limits), _) => limits,
            (None, Some(backend)) => {
                let endpoint = match &auth {
                    AuthState::Webhook { base, .. } => {
                        base.read().unwrap_or_else(|e| e.into_inner()).clone()
                    }
                    AuthState::OAuth(o) => {
                        parse_endpoint(&o.current().1.client_endpoint, "client_endpoint")?
                    }
                };
                let portal = endpoint.host_str().unwrap_or_default().to_ascii_lowercase();
                Arc::new(Limits::with_shared(
                    &self.rate_limit,
                    backend,
                    portal,
                    self.limiter_fallback,
                ))
            }
            (None, None) => Arc::new(Limits::new(&self.rate_limit)),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                timeout: self.request_timeout,
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

/// Whether `url`'s host is a loopback address (127.0.0.0/8, `::1`) or `localhost`: the only
/// hosts plain http may carry a secret to (a local test server), as nothing crosses a network.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The OAuth server the client secret is sent to: https, or plain http only on a loopback
/// host (a local test server), so the secret never crosses a network in clear text.
pub(super) fn parse_oauth_server(raw: &str, what: &str) -> Result<Url, Error> {
    let url = parse_http_url(raw, what)?;
    if url.scheme() != "https" && !is_loopback(&url) {
        return Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
            "{what} must be an https URL (plain http is allowed only on a loopback host)"
        )));
    }
    Ok(url)
}

/// The shape every webhook message below refers to.
const WEBHOOK_SHAPE: &str = "https://{portal}/rest/{user_id}/{code}/";

/// Validates an incoming webhook URL, `https://{portal}/rest/{user_id}/{code}/`
/// (<https://apidocs.bitrix24.com/local-integrations/local-webhooks.html>), and normalizes it
/// to end with `/`.
///
/// Plain `http` is refused unless the host is a loopback one: the webhook code travels in
/// the path of every call, so it would cross the network in clear text. Each malformed shape
/// gets its own message (no `/rest/` segment, no or a non-numeric user id, no code, a method
/// name after the code, a query string, a fragment); no message ever contains the URL or a
/// part of its path, as any of them may be the code.
pub(super) fn parse_webhook(raw: &str) -> Result<Url, Error> {
    let invalid = |what: &str| {
        Error::new(ErrorKind::InvalidInput)
            .with_message(format!("webhook URL {what}; expected {WEBHOOK_SHAPE}"))
    };
    let mut url = parse_http_url(raw, "webhook URL")?;
    if url.scheme() != "https" && !is_loopback(&url) {
        return Err(invalid(
            "must use https: the webhook code travels in the URL path, and plain http is \
             allowed only on a loopback host (127.0.0.1, ::1, localhost)",
        ));
    }
    if url.query().is_some() {
        return Err(invalid(
            "must not have a query string (`?...`): the client adds each method's parameters \
             itself",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment (`#...`)"));
    }
    let mut segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    // One trailing slash is fine (and added below when missing).
    if segments.last() == Some(&"") {
        segments.pop();
    }
    let Some(rest) = segments.iter().position(|s| *s == "rest") else {
        return Err(invalid("has no `/rest/` segment in its path"));
    };
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid("has an empty path segment (`//`)"));
    }
    let after = &segments[rest + 1..];
    let Some(user_id) = after.first() else {
        return Err(invalid("has no user id after `/rest/`"));
    };
    let numeric = user_id.len() <= 19 && user_id.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        // Not echoed: with the user id left out, this segment is the code.
        return Err(invalid(
            "has a segment after `/rest/` that is not a numeric user id (the id of the user \
             who created the webhook comes first, then the code)",
        ));
    }
    if after.len() < 2 {
        return Err(invalid("has no webhook code after the user id"));
    }
    if after.len() > 2 {
        return Err(invalid(&format!(
            "has {} path segment(s) after the webhook code, like a method name \
             (`user.current`, `profile.json`) pasted with it: give the URL that ends with the \
             code; the client appends each method's name itself",
            after.len() - 2
        )));
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

    /// A code long enough for the redaction rules (6+ characters) to matter.
    const CODE: &str = "s3cr3tc0de9";

    /// The error for `url`, checked to be `InvalidInput` without the code in any text.
    fn refused(url: &str) -> String {
        let e = parse_webhook(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{url}: {e:?}");
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(!shown.contains(CODE), "{url}: {shown}");
        assert!(!debug.contains(CODE), "{url}: {debug}");
        shown
    }

    #[test]
    fn webhook_urls_normalize() {
        let a = parse_webhook(&format!("https://acme.bitrix24.com/rest/1/{CODE}")).unwrap();
        let b = parse_webhook(&format!("https://acme.bitrix24.com/rest/1/{CODE}/")).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            join_method(&a, "user.current").unwrap().as_str(),
            format!("https://acme.bitrix24.com/rest/1/{CODE}/user.current")
        );
        assert!(join_method(&a, "../x").is_err());
        // A portal under a path prefix (self-hosted) keeps it.
        let prefixed = parse_webhook(&format!("https://b24.example.com/crm/rest/17/{CODE}/"));
        assert_eq!(prefixed.unwrap().path(), format!("/crm/rest/17/{CODE}/"));
    }

    #[test]
    fn plain_http_is_only_for_loopback_hosts() {
        for ok in [
            "http://127.0.0.1:8090",
            "http://127.1.2.3",
            "http://[::1]:8090",
            "http://localhost:8090",
            "http://LOCALHOST",
        ] {
            let url = format!("{ok}/rest/1/{CODE}/");
            assert!(parse_webhook(&url).is_ok(), "{url}");
        }
        for bad in [
            "http://acme.bitrix24.com",
            "http://10.0.0.5",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://128.0.0.1",
        ] {
            let text = refused(&format!("{bad}/rest/1/{CODE}/"));
            assert!(text.contains("must use https"), "{bad}: {text}");
            assert!(text.contains("loopback"), "{bad}: {text}");
        }
    }

    #[test]
    fn each_malformed_shape_says_what_is_wrong() {
        let cases: &[(String, &str)] = &[
            (
                format!("https://acme.bitrix24.com/{CODE}/"),
                "no `/rest/` segment",
            ),
            (
                format!("https://acme.bitrix24.com/api/1/{CODE}/"),
                "no `/rest/` segment",
            ),
            ("https://acme.bitrix24.com/rest/".to_owned(), "no user id"),
            ("https://acme.bitrix24.com/rest".to_owned(), "no user id"),
            (
                format!("https://acme.bitrix24.com/rest/{CODE}/"),
                "not a numeric user id",
            ),
            (
                format!("https://acme.bitrix24.com/rest/one/{CODE}/"),
                "not a numeric user id",
            ),
            (
                format!("https://acme.bitrix24.com/rest/+1/{CODE}/"),
                "not a numeric user id",
            ),
            (
                "https://acme.bitrix24.com/rest/1/".to_owned(),
                "no webhook code",
            ),
            (
                "https://acme.bitrix24.com/rest/1".to_owned(),
                "no webhook code",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1//{CODE}/"),
                "empty path segment",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/user.current"),
                "after the webhook code",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/profile.json"),
                "after the webhook code",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/crm.deal.get/"),
                "after the webhook code",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/?auth={CODE}"),
                "query string",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/?"),
                "query string",
            ),
            (
                format!("https://acme.bitrix24.com/rest/1/{CODE}/#{CODE}"),
                "fragment",
            ),
            (format!("acme.bitrix24.com/rest/1/{CODE}"), "not a URL"),
            (
                format!("ftp://acme.bitrix24.com/rest/1/{CODE}/"),
                "http(s) URL",
            ),
            (format!("mailto:{CODE}@acme.bitrix24.com"), "http(s) URL"),
        ];
        for (url, expected) in cases {
            let text = refused(url);
            assert!(
                text.contains(expected),
                "{url}: {text:?} lacks {expected:?}"
            );
        }
    }
}
