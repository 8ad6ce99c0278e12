//! The client and its one `call` path.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;
use url::Url;

use crate::auth::{BoxFuture, MemoryTokenStore, OAuthApp, TokenResponse, TokenStore, Tokens};
use crate::codes;
use crate::error::{Error, ErrorKind};
use crate::meta::{ApiVersion, Method, MethodMeta};
use crate::params::Params;
use crate::wire::{Envelope, FromWire, Time};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default OAuth server, used when the tokens carry no `server_endpoint`.
pub const DEFAULT_OAUTH_SERVER: &str = "https://oauth.bitrix.info";
/// Redirect hops followed for one call (portal renames answer 301/302).
const MAX_REDIRECTS: usize = 5;

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A Bitrix24 REST client for one portal, authorized by an incoming webhook or by an OAuth
/// application's tokens.
///
/// Cheap to clone (an `Arc`): build it once and share it. Every typed method
/// (`client.imbot().message_add(..)`) and [`call_raw`](Self::call_raw) go through the same
/// [`call`](Self::call) path, which attaches auth, sends a JSON `POST`, classifies the answer,
/// refreshes an expired OAuth token once (one refresh for any number of concurrent calls),
/// persists it and retries the call once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    timeout: Duration,
    user_agent: String,
    auth: Auth,
}

enum Auth {
    Webhook { base: RwLock<Url> },
    OAuth(OAuthState),
}

struct OAuthState {
    app: OAuthApp,
    /// The current tokens and their generation (bumped on every change).
    tokens: RwLock<(u64, Arc<Tokens>)>,
    /// Held while a refresh is in flight: the single-flight gate.
    refresh: tokio::sync::Mutex<()>,
    store: Arc<dyn TokenStore>,
    /// Overrides the OAuth server taken from `server_endpoint`.
    oauth_server: Option<Url>,
    /// Refresh attempts finished so far, and the error of the last one if it failed: calls
    /// that waited for a refresh that failed get its error instead of trying again at once.
    attempts: std::sync::Mutex<(u64, Option<Error>)>,
    /// The token generation made by a refresh that `invalid_token` triggered: if that token
    /// is refused as invalid too, refreshing again would not help.
    invalid_token_generation: std::sync::Mutex<Option<u64>>,
}

impl OAuthState {
    fn current(&self) -> (u64, Arc<Tokens>) {
        let g = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        (g.0, g.1.clone())
    }

    /// Installs a new token pair: bumps the generation, so that calls that failed with the
    /// old pair know a refresh already happened.
    fn replace(&self, tokens: Tokens) -> u64 {
        let mut g = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        *g = (g.0 + 1, Arc::new(tokens));
        g.0
    }

    fn invalid_token_generation(&self) -> Option<u64> {
        *self
            .invalid_token_generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn set_invalid_token_generation(&self, generation: u64) {
        *self
            .invalid_token_generation
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(generation);
    }

    /// Changes fields other than the token pair (the portal address).
    fn set_keeping_generation(&self, tokens: Tokens) {
        let mut g = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        g.1 = Arc::new(tokens);
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.inner.auth {
            Auth::Webhook { base } => {
                let base = base.read().unwrap_or_else(|e| e.into_inner());
                format!("webhook({})", base.host_str().unwrap_or(""))
            }
            Auth::OAuth(o) => format!("oauth(client_id={})", o.app.client_id),
        };
        f.debug_struct("Client")
            .field("auth", &auth)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

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
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("webhook", &self.webhook.as_ref().map(|_| "[redacted]"))
            .field("oauth", &self.oauth.as_ref().map(|(app, _)| &app.client_id))
            .field("timeout", &self.timeout)
            .finish()
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

    /// Timeout of one HTTP request (default 30 s; Bitrix24 cuts requests at 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
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
            Auth::Webhook {
                base: RwLock::new(parse_webhook(&raw)?),
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
            Auth::OAuth(OAuthState {
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
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                timeout: self.timeout,
                user_agent: self.user_agent,
                auth,
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
fn parse_endpoint(raw: &str, what: &str) -> Result<Url, Error> {
    let url = parse_http_url(raw, what)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_message(format!("{what} must not have a query or fragment")));
    }
    Ok(url)
}

/// The OAuth server the client secret is sent to: https, or plain http only on a loopback
/// host (a local test server), so the secret never crosses a network in clear text.
fn parse_oauth_server(raw: &str, what: &str) -> Result<Url, Error> {
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
fn parse_webhook(raw: &str) -> Result<Url, Error> {
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

/// The raw answer of [`Client::call_raw`]: `result` plus the envelope's paging and timing data.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RawResponse {
    /// The `result` value as sent (`null` when absent).
    pub result: Value,
    /// `total` of a list method: the number of matching records (0 with `start=-1`).
    pub total: Option<u64>,
    /// `next` of a list method: the `start` to pass for the next page; `None` on the last page.
    pub next: Option<u64>,
    /// The `time` object: timings and the per-method operating-time budget.
    pub time: Option<Time>,
}

/// A successful HTTP answer whose body is a Bitrix24 success envelope, and the secret (access
/// token or webhook code) to keep out of any later decode error.
pub(crate) struct Answer {
    body: Vec<u8>,
    secret: String,
}

/// What one POST (after following redirects) brought back.
struct Posted {
    status: u16,
    body: Vec<u8>,
    /// Where the last redirect pointed, if the request was redirected.
    moved_to: Option<Url>,
}

impl Client {
    /// A client authorized by an incoming webhook, e.g.
    /// `https://acme.bitrix24.com/rest/1/k3y/` (trailing slash optional).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a URL that is not `http(s)://host/rest/{user_id}/{code}`.
    pub fn webhook(url: impl Into<String>) -> Result<Client, Error> {
        Client::builder().webhook(url).build()
    }

    /// A client authorized by an OAuth application and its tokens, kept in memory. Use
    /// [`Client::builder`] to persist refreshed tokens in a [`TokenStore`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `tokens.client_endpoint` is not an http(s) URL.
    pub fn oauth(app: OAuthApp, tokens: Tokens) -> Result<Client, Error> {
        Client::builder().oauth(app, tokens).build()
    }

    /// A builder for timeouts, token stores, a custom HTTP client and the like.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The current OAuth tokens (after any refresh), or `None` for a webhook client.
    pub fn tokens(&self) -> Option<Tokens> {
        match &self.inner.auth {
            Auth::OAuth(o) => Some((*o.current().1).clone()),
            Auth::Webhook { .. } => None,
        }
    }

    /// Calls a method with a typed request and decodes its `result`.
    ///
    /// This is the one path every generated method takes (`client.crm().deal_get(1).await`
    /// is `client.call(&CrmDealGet::new(1))`): check the method's conditional requirements,
    /// POST JSON to `{client_endpoint}{method}` (OAuth, `auth` in the body) or
    /// `{webhook}{method}`; re-POST to the new address on a 301/302 portal rename; on
    /// `expired_token` (or, once, `invalid_token`) refresh the OAuth token, save it and retry
    /// exactly once. The refresh runs to completion (request, save, swap) even if this call is
    /// cancelled, so a rotated token pair is never lost.
    ///
    /// The parameters are taken when this is called; the returned future owns everything it
    /// needs (`'static`, `Send`), so it can be spawned.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: a conditional requirement is not met (`imbot.message.add`
    ///   without `DIALOG_ID` nor `FROM_USER_ID` + `TO_USER_ID`), or a REST 3.0 method (not
    ///   supported yet);
    /// - [`ErrorKind::Api`]: the answer carried an `error` code (any HTTP status, even 200);
    /// - [`ErrorKind::Http`]: a non-JSON answer (HTML 502/429 page), an error status without
    ///   code, a redirect that cannot be followed (https to http, a loop);
    /// - [`ErrorKind::Decode`]: `result` is missing or does not match `M::Output` (with the
    ///   JSON path);
    /// - [`ErrorKind::Transport`] / [`ErrorKind::Timeout`];
    /// - refresh failures: [`ErrorKind::InvalidGrant`], [`ErrorKind::InvalidClient`],
    ///   [`ErrorKind::WrongClient`], [`ErrorKind::AppUnavailable`], [`ErrorKind::OAuthServer`],
    ///   [`ErrorKind::TokenStore`].
    pub fn call<M: Method>(&self, request: &M) -> ResponseFuture<M::Output> {
        ResponseFuture::new(
            M::META.name,
            self.clone().start(M::META, request.wire_params().clone()),
        )
    }

    /// The non-generic part of every typed call: checks, sends, classifies; the caller
    /// decodes. One boxed future type for all methods.
    pub(crate) fn start(
        self,
        meta: &'static MethodMeta,
        mut params: Params,
    ) -> BoxFuture<'static, Result<Answer, Error>> {
        Box::pin(async move {
            // The client attaches auth itself; a caller's `auth` (a `.param(..)`, a request
            // of one's own) would be sent as a second key, and PHP keeps the last one.
            params.remove("auth");
            if meta.api != ApiVersion::V2 {
                return Err(Error::new(ErrorKind::InvalidInput)
                    .with_method(meta.name)
                    .with_message("REST 3.0 methods are not supported by this version"));
            }
            if let Some(name) = params.unsendable() {
                // JSON has no NaN: it would go out as `null` and clear the field.
                return Err(Error::new(ErrorKind::InvalidInput)
                    .with_method(meta.name)
                    .with_message(format!(
                        "parameter `{name}` is not a finite number (NaN or infinite)"
                    )));
            }
            meta.check(&params).map_err(|m| {
                Error::new(ErrorKind::InvalidInput)
                    .with_method(meta.name)
                    .with_message(m)
            })?;
            let body = serde_json::to_vec(&params).map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .with_method(meta.name)
                    .with_message(e.to_string())
            })?;
            self.execute(meta.name, &body).await
        })
    }

    /// Calls any method by name with JSON parameters, on the same path as [`call`](Self::call)
    /// (auth, redirects, refresh, errors). `params` must be a JSON object (or `null`); an
    /// `auth` key in it is dropped, as the client sets auth itself.
    ///
    /// ```no_run
    /// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
    /// let page = client.call_raw("crm.deal.list", serde_json::json!({"select": ["ID", "TITLE"]})).await?;
    /// println!("{} of {:?}, next page at {:?}", page.result, page.total, page.next);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As for [`call`](Self::call); a missing `result` is `null` here, not an error.
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<RawResponse, Error> {
        let params = match params {
            Value::Null => b"{}".to_vec(),
            Value::Object(mut map) => {
                // The client attaches auth itself; a caller's `auth` would be sent twice.
                map.remove("auth");
                serde_json::to_vec(&map).expect("a JSON map serializes")
            }
            _ => {
                return Err(Error::new(ErrorKind::InvalidInput)
                    .with_method(method)
                    .with_message("params must be a JSON object"))
            }
        };
        let answer = self.execute(method, &params).await?;
        let env = Envelope::parse(&answer.body)
            .ok_or_else(|| decode_error(method, &answer, ".", "not a JSON object"))?;
        let result = match env.result {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| decode_error(method, &answer, ".", e))?,
            None => Value::Null,
        };
        Ok(RawResponse {
            result,
            total: env.total(),
            next: env.next(),
            time: env.time(),
        })
    }

    /// Sends `params` (a serialized JSON object) to `method` with auth, following renames and
    /// refreshing an expired token once.
    async fn execute(&self, method: &str, params: &[u8]) -> Result<Answer, Error> {
        let mut refreshed = false;
        loop {
            let (url, body, generation, secret) = match &self.inner.auth {
                Auth::Webhook { base } => {
                    let base = base.read().unwrap_or_else(|e| e.into_inner()).clone();
                    let code = webhook_code(&base);
                    (join_method(&base, method)?, params.to_vec(), 0, code)
                }
                Auth::OAuth(o) => {
                    let (generation, tokens) = o.current();
                    if !refreshed && tokens.expired_at(unix_now()) {
                        tracing::debug!(
                            method,
                            "access token expired locally; refreshing before the call"
                        );
                        self.refresh(generation, method, false).await?;
                        refreshed = true;
                        continue;
                    }
                    let base = parse_endpoint(&tokens.client_endpoint, "client_endpoint")?;
                    let body =
                        with_auth(params, tokens.access_token.expose()).ok_or_else(|| {
                            Error::new(ErrorKind::InvalidInput)
                                .with_method(method)
                                .with_message("params must be a JSON object")
                        })?;
                    let token = tokens.access_token.expose().to_owned();
                    (join_method(&base, method)?, body, generation, token)
                }
            };
            let posted = self.post(method, url.clone(), body, &secret).await?;
            let result = classify(method, posted.status, posted.body, &secret);
            // A redirect is adopted only once a Bitrix24 envelope came back from its target:
            // a login page or captive portal must not move the client.
            let is_envelope = match &result {
                Ok(_) => true,
                Err(e) => e.kind() == ErrorKind::Api,
            };
            if let (Some(to), true) = (&posted.moved_to, is_envelope) {
                self.portal_moved(&url, to).await;
            }
            match result {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    let Auth::OAuth(o) = &self.inner.auth else {
                        return Err(e);
                    };
                    let invalid_token = e.is_code(codes::INVALID_TOKEN);
                    if refreshed || !(e.is_expired_token() || invalid_token) {
                        return Err(e);
                    }
                    if invalid_token && o.invalid_token_generation() == Some(generation) {
                        // This token came from a refresh made for `invalid_token` and is
                        // refused the same way: another refresh would not help.
                        return Err(e);
                    }
                    tracing::debug!(
                        method,
                        code = e.code().unwrap_or(""),
                        "refreshing the access token and retrying once"
                    );
                    self.refresh(generation, method, invalid_token).await?;
                    refreshed = true;
                }
            }
        }
    }

    /// POSTs `body` to `url`; on 301/302/303/307/308 re-POSTs the same body to `Location`
    /// (never from https down to http).
    async fn post(
        &self,
        method: &str,
        mut url: Url,
        body: Vec<u8>,
        secret: &str,
    ) -> Result<Posted, Error> {
        let mut moved_to = None;
        let http_error = |message: &str| {
            Error::new(ErrorKind::Http)
                .with_method(method)
                .with_message(message)
        };
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .inner
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .header(reqwest::header::USER_AGENT, &self.inner.user_agent)
                .timeout(self.inner.timeout)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| transport(method, e).redact(&[secret]))?;
            if response.url() != &url {
                return Err(http_error(
                    "the HTTP client followed a redirect by itself (it must be built with \
                     redirect::Policy::none()); the request may have been re-sent as a GET",
                ));
            }
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .filter(|n| matches!(n.scheme(), "http" | "https"));
                let Some(next) = next else {
                    return Err(http_error("a redirect without a usable http(s) Location")
                        .with_status(status));
                };
                if url.scheme() == "https" && next.scheme() == "http" {
                    return Err(
                        http_error("refusing to follow a redirect from https to http")
                            .with_status(status),
                    );
                }
                if next == url {
                    return Err(http_error("a redirect to the same address").with_status(status));
                }
                moved_to = Some(next.clone());
                url = next;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport(method, e).redact(&[secret]))?;
            return Ok(Posted {
                status,
                body: bytes.to_vec(),
                moved_to,
            });
        }
        Err(http_error(&format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Moves the base address to the scheme, host and port of `to` after a redirect whose
    /// target answered like a Bitrix24 portal.
    async fn portal_moved(&self, from: &Url, to: &Url) {
        if from.origin() == to.origin() {
            return;
        }
        tracing::warn!(
            old_host = from.host_str().unwrap_or(""),
            new_host = to.host_str().unwrap_or(""),
            "Bitrix24 portal moved; using the new address from now on"
        );
        let rebase = |u: &mut Url| {
            let _ = u.set_scheme(to.scheme());
            let _ = u.set_host(to.host_str());
            let _ = u.set_port(to.port());
        };
        match &self.inner.auth {
            Auth::Webhook { base } => {
                let mut base = base.write().unwrap_or_else(|e| e.into_inner());
                if base.origin() == from.origin() {
                    rebase(&mut base);
                }
            }
            Auth::OAuth(o) => {
                // Under the refresh gate, so that a refresh in flight is not overwritten with
                // the old (spent) pair; the generation stays, as the token did not change.
                let _gate = o.refresh.lock().await;
                let (_, tokens) = o.current();
                let Ok(mut endpoint) = Url::parse(&tokens.client_endpoint) else {
                    return;
                };
                if endpoint.origin() != from.origin() {
                    return;
                }
                rebase(&mut endpoint);
                let mut moved = (*tokens).clone();
                moved.client_endpoint = endpoint.to_string();
                if let Some(host) = to.host_str() {
                    moved.domain = Some(host.to_owned());
                }
                if let Err(e) = o.store.save(&moved).await {
                    let secrets = [moved.access_token.expose(), moved.refresh_token.expose()];
                    tracing::warn!(
                        error = %crate::error::redact_text(&e.to_string(), &secrets),
                        "could not save the portal's new address in the token store"
                    );
                }
                o.set_keeping_generation(moved);
            }
        }
    }

    /// Refreshes the access token unless another call already did since `seen` (single
    /// flight: one request to the OAuth server however many calls wait here). The refresh
    /// runs in its own task, so that cancelling the waiting call cannot lose a rotated pair.
    async fn refresh(&self, seen: u64, method: &str, invalid_token: bool) -> Result<(), Error> {
        let client = self.clone();
        let owned = method.to_owned();
        let task =
            tokio::spawn(async move { client.refresh_flight(seen, &owned, invalid_token).await });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(Error::new(ErrorKind::OAuthServer)
                .with_method(method)
                .with_message(format!("the token refresh task failed: {e}"))),
        }
    }

    async fn refresh_flight(
        &self,
        seen: u64,
        method: &str,
        invalid_token: bool,
    ) -> Result<(), Error> {
        let Auth::OAuth(o) = &self.inner.auth else {
            return Ok(());
        };
        let attempts_before = o.attempts.lock().unwrap_or_else(|e| e.into_inner()).0;
        let _gate = o.refresh.lock().await;
        let (generation, current) = o.current();
        if generation != seen {
            return Ok(());
        }
        {
            let attempts = o.attempts.lock().unwrap_or_else(|e| e.into_inner());
            if attempts.0 != attempts_before {
                if let Some(e) = &attempts.1 {
                    return Err(e.clone().with_method(method));
                }
            }
        }
        let secrets = [
            o.app.client_secret.expose(),
            current.refresh_token.expose(),
            current.access_token.expose(),
        ];
        let result = self
            .request_tokens(o, &current, method)
            .await
            .map_err(|e| e.redact(&secrets));
        {
            let mut attempts = o.attempts.lock().unwrap_or_else(|e| e.into_inner());
            attempts.0 += 1;
            attempts.1 = result.as_ref().err().cloned();
        }
        let fresh = match result {
            Ok(fresh) => fresh,
            Err(e) => {
                if e.kind() == ErrorKind::InvalidGrant {
                    // Another process may have rotated the pair: use what the store has now.
                    if let Ok(Some(stored)) = o.store.load().await {
                        if stored.refresh_token != current.refresh_token {
                            tracing::info!(
                                method,
                                "refresh token was rotated elsewhere; using the stored pair"
                            );
                            o.replace(stored);
                            return Ok(());
                        }
                    }
                }
                return Err(e);
            }
        };
        let saved = o.store.save(&fresh).await;
        let all_secrets = [
            secrets[0],
            secrets[1],
            secrets[2],
            fresh.access_token.expose(),
            fresh.refresh_token.expose(),
        ];
        let saved = saved.map_err(|e| {
            Error::new(ErrorKind::TokenStore)
                .with_method(method)
                .with_message(format!("refreshed tokens could not be saved: {e}"))
                .redact(&all_secrets)
        });
        let new_generation = o.replace(fresh);
        if invalid_token {
            o.set_invalid_token_generation(new_generation);
        }
        saved
    }

    /// The refresh request itself: POST form `grant_type=refresh_token` to `{server}/oauth/token/`.
    async fn request_tokens(
        &self,
        o: &OAuthState,
        current: &Tokens,
        method: &str,
    ) -> Result<Tokens, Error> {
        let mut url = match &o.oauth_server {
            Some(s) => s.clone(),
            None => parse_oauth_server(
                current
                    .server_endpoint
                    .as_deref()
                    .unwrap_or(DEFAULT_OAUTH_SERVER),
                "server_endpoint",
            )?,
        };
        url.set_path("/oauth/token/");
        url.set_query(None);
        url.set_fragment(None);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &o.app.client_id)
            .append_pair("client_secret", o.app.client_secret.expose())
            .append_pair("refresh_token", current.refresh_token.expose())
            .finish();
        let response = self
            .inner
            .http
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, &self.inner.user_agent)
            .timeout(self.inner.timeout)
            .body(form)
            .send()
            .await
            .map_err(|e| transport(method, e))?;
        let status = response.status().as_u16();
        let oauth_error = |kind| Error::new(kind).with_method(method).with_status(status);
        if response.url() != &url {
            return Err(oauth_error(ErrorKind::OAuthServer).with_message(
                "the HTTP client followed a redirect of the token refresh; build it with \
                 redirect::Policy::none()",
            ));
        }
        let body = response.bytes().await.map_err(|e| transport(method, e))?;
        let secrets = [
            o.app.client_secret.expose(),
            current.refresh_token.expose(),
            current.access_token.expose(),
        ];
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let Some(json) = json.filter(Value::is_object) else {
            return Err(oauth_error(ErrorKind::OAuthServer).with_snippet(&body, &secrets));
        };
        if let Some(code) = json
            .get("error")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        {
            let description = json
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let kind = match code.to_ascii_lowercase().as_str() {
                c if c == codes::INVALID_GRANT || c == "bad_verification_code" => {
                    ErrorKind::InvalidGrant
                }
                c if c == codes::INVALID_CLIENT => ErrorKind::InvalidClient,
                c if c == codes::WRONG_CLIENT => ErrorKind::WrongClient,
                c if c.eq_ignore_ascii_case(codes::PAYMENT_REQUIRED)
                    || c.eq_ignore_ascii_case(codes::NOT_INSTALLED) =>
                {
                    ErrorKind::AppUnavailable
                }
                _ => ErrorKind::OAuthServer,
            };
            return Err(oauth_error(kind)
                .with_code(code.to_owned())
                .with_description(description));
        }
        if !(200..300).contains(&status) {
            return Err(oauth_error(ErrorKind::OAuthServer).with_snippet(&body, &secrets));
        }
        let response = TokenResponse::from_json(&json).ok_or_else(|| {
            oauth_error(ErrorKind::OAuthServer)
                .with_message("the answer holds no access_token and refresh_token")
        })?;
        Ok(response.into_tokens(Some(current)))
    }
}

fn transport(method: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    };
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    Error::new(kind).with_method(method).with_message(text)
}

/// `base` + the method name, verbatim.
fn join_method(base: &Url, method: &str) -> Result<Url, Error> {
    if method.is_empty() || method.contains(['/', '?', '#', '\\']) || method.contains("..") {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_method(method)
            .with_message("bad method name"));
    }
    let mut url = base.clone();
    let path = format!(
        "{}{}{method}",
        url.path(),
        if url.path().ends_with('/') { "" } else { "/" }
    );
    url.set_path(&path);
    Ok(url)
}

/// Inserts `"auth": token` first into the serialized JSON object `params`.
fn with_auth(params: &[u8], token: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(params).ok()?.trim_start();
    let rest = text.strip_prefix('{')?;
    let token = serde_json::to_string(token).ok()?;
    let mut out = Vec::with_capacity(params.len() + token.len() + 10);
    out.extend_from_slice(b"{\"auth\":");
    out.extend_from_slice(token.as_bytes());
    if !rest.trim_start().starts_with('}') {
        out.push(b',');
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

/// Classifies an answer: the `error` code first (any status, case kept), the HTTP status
/// second; only a JSON object is an envelope. `secret` (the access token or webhook code) is
/// removed from any text kept.
fn classify(method: &str, status: u16, body: Vec<u8>, secret: &str) -> Result<Answer, Error> {
    let http = |body: &[u8]| {
        Error::new(ErrorKind::Http)
            .with_method(method)
            .with_status(status)
            .with_snippet(body, &[secret])
    };
    let Some(env) = Envelope::parse(&body) else {
        return Err(http(&body));
    };
    if let Some((code, description)) = env.error() {
        return Err(Error::api(method, status, code, description).redact(&[secret]));
    }
    if !(200..300).contains(&status) {
        return Err(http(&body));
    }
    drop(env);
    Ok(Answer {
        body,
        secret: secret.to_owned(),
    })
}

/// The webhook code: the last segment of a webhook base URL.
fn webhook_code(base: &Url) -> String {
    base.path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
        .unwrap_or("")
        .to_owned()
}

fn decode_error(method: &str, answer: &Answer, path: &str, e: impl fmt::Display) -> Error {
    // The answer may carry credentials of its own (a SIP password, a bot token): the
    // snippet shows their keys, not their values.
    let masked = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .map(|mut v| {
            crate::error::mask_secrets(&mut v);
            v.to_string().into_bytes()
        });
    Error::new(ErrorKind::Decode)
        .with_method(method)
        .with_status(200)
        .with_path(path.to_owned())
        .with_message(e.to_string())
        .with_snippet(masked.as_deref().unwrap_or(&answer.body), &[&answer.secret])
        .redact(&[&answer.secret])
}

/// Decodes the envelope's `result` as `T`, with the JSON path of a mismatch.
pub(crate) fn decode_answer<T: FromWire>(method: &str, answer: &Answer) -> Result<T, Error> {
    let value = result_value(method, answer)?;
    let value = match value {
        Some(v) => v,
        None => {
            return T::absent()
                .ok_or_else(|| decode_error(method, answer, ".", "the answer has no `result`"))
        }
    };
    T::from_wire(&value).map_err(|e| decode_error(method, answer, &e.path(), e.message()))
}

/// The envelope's `result` as a JSON value (`None` when the key is absent).
fn result_value(method: &str, answer: &Answer) -> Result<Option<Value>, Error> {
    let env = Envelope::parse(&answer.body)
        .ok_or_else(|| decode_error(method, answer, ".", "not a JSON object"))?;
    match env.result {
        Some(raw) => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| decode_error(method, answer, ".", e)),
        None => Ok(None),
    }
}

/// The future of a typed call: sends through the client's shared path, then decodes
/// `result` as `T`.
///
/// `Send`, `'static` and `Unpin` whatever `T` is; made by [`Client::call`] and by `.await`ing
/// (or `.send()`ing) a request from a client group (`client.crm().deal_get(1)`).
#[must_use = "a request does nothing until it is awaited"]
pub struct ResponseFuture<T> {
    inner: BoxFuture<'static, Result<Answer, Error>>,
    method: &'static str,
    _output: PhantomData<fn() -> T>,
}

impl<T> ResponseFuture<T> {
    pub(crate) fn new(
        method: &'static str,
        inner: BoxFuture<'static, Result<Answer, Error>>,
    ) -> Self {
        ResponseFuture {
            inner,
            method,
            _output: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<T: FromWire> Future for ResponseFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = match self.inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(answer)) => answer,
        };
        Poll::Ready(decode_answer(self.method, &answer))
    }
}

/// Sends a generated request's parameters; used by the code `bitrix24-codegen` emits.
pub fn send<T: FromWire>(
    client: Client,
    meta: &'static MethodMeta,
    params: Params,
) -> ResponseFuture<T> {
    ResponseFuture::new(meta.name, client.start(meta, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn is<T: Send + Sync + Clone>() {}
        is::<Client>();
    }

    #[test]
    fn auth_goes_first_into_the_object() {
        assert_eq!(with_auth(b"{}", "t").unwrap(), br#"{"auth":"t"}"#);
        assert_eq!(
            with_auth(br#"{"A":1}"#, "t").unwrap(),
            br#"{"auth":"t","A":1}"#
        );
        assert!(with_auth(b"[1]", "t").is_none());
    }

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

    #[test]
    fn classify_puts_the_code_first() {
        let e = classify(
            "m",
            200,
            br#"{"error":"ACCESS_DENIED","error_description":"no"}"#.to_vec(),
            "",
        )
        .err()
        .unwrap();
        assert_eq!(
            (e.kind(), e.code(), e.status()),
            (ErrorKind::Api, Some("ACCESS_DENIED"), Some(200))
        );
        let e = classify("m", 502, b"<html>Bad gateway</html>".to_vec(), "")
            .err()
            .unwrap();
        assert_eq!(
            (e.kind(), e.status(), e.body_snippet()),
            (ErrorKind::Http, Some(502), Some("<html>Bad gateway</html>"))
        );
        assert!(classify("m", 200, br#"{"result":true}"#.to_vec(), "").is_ok());
    }

    #[test]
    fn decode_errors_keep_the_path() {
        let answer = Answer {
            body: br#"{"result":[1,"x"]}"#.to_vec(),
            secret: String::new(),
        };
        let e = decode_answer::<Vec<u64>>("m", &answer).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert_eq!(e.json_path(), Some("[1]"));
        assert!(
            e.to_string()
                .starts_with("m: cannot decode the result at `[1]`"),
            "{e}"
        );
    }
}
