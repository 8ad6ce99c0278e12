//! The auth layer: attaches the access token (or uses the webhook base), refreshes an expired
//! OAuth token once in a single flight (one request to the OAuth server for any number of
//! waiting calls, persisted before it is used) and follows a renamed portal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::decode::Answer;
use super::policy::Progress;
use super::{builder, transport, unix_now, Call, Inner, DEFAULT_OAUTH_SERVER};
use crate::auth::{OAuthApp, Secret, StoreError, TokenResponse, TokenStore, Tokens};
use crate::codes;
use crate::error::{Cause, CauseKind, Error, ErrorKind};

/// How calls are authorized.
pub(super) enum AuthState {
    /// The webhook base URL (it moves with a renamed portal) and the webhook code in it.
    Webhook {
        base: RwLock<Url>,
        code: Arc<str>,
    },
    OAuth(OAuthState),
}

pub(super) struct OAuthState {
    pub(super) app: OAuthApp,
    /// The current tokens and their generation (bumped on every change).
    pub(super) tokens: RwLock<(u64, Arc<Tokens>)>,
    /// Held while a refresh is in flight: the single-flight gate.
    pub(super) refresh: tokio::sync::Mutex<()>,
    pub(super) store: Arc<dyn TokenStore>,
    /// Overrides the OAuth server taken from `server_endpoint`.
    pub(super) oauth_server: Option<Url>,
    /// Refresh attempts finished so far, and the error of the last one if it failed: calls
    /// that waited for a refresh that failed get its error instead of trying again at once.
    pub(super) attempts: std::sync::Mutex<(u64, Option<Error>)>,
    /// The token generation made by a refresh that `invalid_token` triggered: if that token
    /// is refused as invalid too, refreshing again would not help.
    pub(super) invalid_token_generation: std::sync::Mutex<Option<u64>>,
    /// Whether the store was offered the client's first tokens ([`seed_store`]); `true` from
    /// the start for the default in-memory store, which is made holding them.
    pub(super) seeded: AtomicBool,
}

impl OAuthState {
    pub(super) fn current(&self) -> (u64, Arc<Tokens>) {
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

/// Sends `call` with auth (the access token in the body, or the webhook base), following
/// renames; on `expired_token` (or, once, `invalid_token`) refreshes the token and sends again
/// once.
pub(super) async fn send(
    inner: &Arc<Inner>,
    call: &Call,
    progress: &mut Progress,
) -> Result<Answer, Error> {
    let method: &str = &call.method;
    let params: &[u8] = &call.body;
    if let AuthState::OAuth(o) = &inner.auth {
        if !o.seeded.load(Ordering::Acquire) {
            seed_store(o, method).await?;
        }
    }
    let mut refreshed = false;
    loop {
        let (url, body, generation, secret) = match &inner.auth {
            AuthState::Webhook { base, code } => {
                let base = base.read().unwrap_or_else(|e| e.into_inner()).clone();
                let code = code.clone();
                (
                    transport::join_method(&base, method)?,
                    call.body.clone(),
                    0,
                    code,
                )
            }
            AuthState::OAuth(o) => {
                let (generation, tokens) = o.current();
                if !refreshed && tokens.expired_at(unix_now()) {
                    tracing::debug!(
                        method,
                        "access token expired locally; refreshing before the call"
                    );
                    refresh(inner, generation, method, false).await?;
                    refreshed = true;
                    continue;
                }
                let base = builder::parse_endpoint(&tokens.client_endpoint, "client_endpoint")?;
                let body = with_auth(params, tokens.access_token.expose())
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidInput)
                            .with_method(method)
                            .with_message("params must be a JSON object")
                    })?
                    .into();
                let token: Arc<str> = Arc::from(tokens.access_token.expose());
                (
                    transport::join_method(&base, method)?,
                    body,
                    generation,
                    token,
                )
            }
        };
        let posted = transport::post(inner, method, url.clone(), body, &secret, progress).await?;
        let result = transport::classify(method, posted.status, posted.body, &secret);
        // A redirect is adopted only once a Bitrix24 envelope came back from its target:
        // a login page or captive portal must not move the client.
        let is_envelope = match &result {
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::Api,
        };
        if let (Some(to), true) = (&posted.moved_to, is_envelope) {
            portal_moved(inner, &url, to).await;
        }
        match result {
            Ok(answer) => return Ok(answer),
            Err(e) => {
                let AuthState::OAuth(o) = &inner.auth else {
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
                refresh(inner, generation, method, invalid_token).await?;
                refreshed = true;
            }
        }
    }
}

/// Before the client's first request: offers the tokens it was built with to its store
/// ([`TokenStore::save_if_absent`]), so that an empty store (a `FileTokenStore` whose file
/// does not exist yet) holds them and a second process can start from it.
///
/// This is the first place that can await the store (building is synchronous). It runs
/// once, under the refresh gate, so a refresh cannot interleave with it: concurrent first
/// calls wait for it, and a refresh that happened first (which saved a newer pair itself)
/// makes it a no-op. A store failure fails this one call, unsent, with
/// [`ErrorKind::TokenStore`]; later calls go ahead, as after a failed save of a refresh.
async fn seed_store(o: &OAuthState, method: &str) -> Result<(), Error> {
    let _gate = o.refresh.lock().await;
    if o.seeded.load(Ordering::Acquire) {
        return Ok(());
    }
    let (generation, tokens) = o.current();
    let result = if generation == 0 {
        o.store.save_if_absent(&tokens).await
    } else {
        Ok(false)
    };
    o.seeded.store(true, Ordering::Release);
    match result {
        Ok(wrote) => {
            if wrote {
                tracing::debug!(
                    method,
                    "the token store was empty; saved the client's tokens"
                );
            }
            Ok(())
        }
        Err(e) => {
            let secrets = [
                o.app.client_secret.expose(),
                tokens.access_token.expose(),
                tokens.refresh_token.expose(),
            ];
            Err(Error::new(ErrorKind::TokenStore)
                .with_method(method)
                .with_message(format!(
                    "the client's tokens could not be saved in the empty token store: {e}"
                ))
                .with_cause(Cause::new(CauseKind::TokenStore, store_error_text(&*e)))
                .redact(&secrets))
        }
    }
}

/// Moves the base address to the scheme, host and port of `to` after a redirect whose
/// target answered like a Bitrix24 portal.
async fn portal_moved(inner: &Inner, from: &Url, to: &Url) {
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
    match &inner.auth {
        AuthState::Webhook { base, .. } => {
            let mut base = base.write().unwrap_or_else(|e| e.into_inner());
            if base.origin() == from.origin() {
                rebase(&mut base);
            }
        }
        AuthState::OAuth(o) => {
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
            // Only over our own pair: one another process stored meanwhile is newer.
            match o.store.save_if_current(&tokens.refresh_token, &moved).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!(
                    "the token store holds a newer pair; the portal's new address is not saved"
                ),
                Err(e) => {
                    let secrets = [moved.access_token.expose(), moved.refresh_token.expose()];
                    tracing::warn!(
                        error = %crate::error::redact_text(&e.to_string(), &secrets),
                        "could not save the portal's new address in the token store"
                    );
                }
            }
            o.set_keeping_generation(moved);
        }
    }
}

/// Refreshes the access token unless another call already did since `seen` (single
/// flight: one request to the OAuth server however many calls wait here). The refresh
/// runs in its own task, so that cancelling the waiting call cannot lose a rotated pair.
async fn refresh(
    inner: &Arc<Inner>,
    seen: u64,
    method: &str,
    invalid_token: bool,
) -> Result<(), Error> {
    let inner = inner.clone();
    let owned = method.to_owned();
    let task =
        tokio::spawn(async move { refresh_flight(&inner, seen, &owned, invalid_token).await });
    match task.await {
        Ok(result) => result,
        Err(e) => Err(Error::new(ErrorKind::OAuthServer)
            .with_method(method)
            .with_message(format!("the token refresh task failed: {e}"))),
    }
}

async fn refresh_flight(
    inner: &Inner,
    seen: u64,
    method: &str,
    invalid_token: bool,
) -> Result<(), Error> {
    let AuthState::OAuth(o) = &inner.auth else {
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
    let result = refresh_shared(inner, o, &current, method).await;
    {
        let mut attempts = o.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.0 += 1;
        attempts.1 = result.as_ref().err().cloned();
    }
    match result? {
        Renewed::Adopted(stored) => {
            o.replace(stored);
            Ok(())
        }
        Renewed::Refreshed(fresh, saved) => {
            let new_generation = o.replace(fresh);
            if invalid_token {
                o.set_invalid_token_generation(new_generation);
            }
            saved
        }
    }
}

/// What a refresh under the store's lock ended with.
enum Renewed {
    /// Another client (another process) stored a newer pair: use it, nothing was refreshed.
    Adopted(Tokens),
    /// This client refreshed; the save's outcome (a failed save is reported to the call
    /// that triggered the refresh, and the pair is used all the same: it is the only valid
    /// one now).
    Refreshed(Tokens, Result<(), Error>),
}

/// How long the refresh lock lives: the token request's timeout plus time to save.
fn lock_ttl(inner: &Inner) -> Duration {
    inner.timeout.saturating_add(Duration::from_secs(10))
}

/// The cross-process part of a refresh ([`TokenStore`]'s protocol): take the store's lock
/// (adopting a pair someone else stores meanwhile), load again, refresh only if the stored
/// pair is still `current`, save with compare-and-swap, release.
async fn refresh_shared(
    inner: &Inner,
    o: &OAuthState,
    current: &Tokens,
    method: &str,
) -> Result<Renewed, Error> {
    let secrets = [
        o.app.client_secret.expose(),
        current.refresh_token.expose(),
        current.access_token.expose(),
    ];
    let store_error = |what: &str, e: StoreError| {
        Error::new(ErrorKind::TokenStore)
            .with_method(method)
            .with_message(format!("{what}: {e}"))
            .with_cause(Cause::new(CauseKind::TokenStore, store_error_text(&*e)))
            .never_executed()
            .redact(&secrets)
    };
    // A pair in the store that is not ours is newer: only a refresh (or a reinstall)
    // writes one, and never an older one over a newer.
    let newer =
        |stored: Option<Tokens>| stored.filter(|s| s.refresh_token != current.refresh_token);
    let ttl = lock_ttl(inner);
    let give_up = Instant::now() + ttl + Duration::from_secs(5);
    let mut pause = Duration::from_millis(10);
    let lease = loop {
        match o.store.lock_refresh(ttl).await {
            Ok(Some(lease)) => break lease,
            Ok(None) => {}
            Err(e) => {
                return Err(store_error(
                    "could not take the token store's refresh lock",
                    e,
                ))
            }
        }
        if let Ok(Some(stored)) = o.store.load().await.map(newer) {
            tracing::debug!(method, "another client refreshed the token; using its pair");
            return Ok(Renewed::Adopted(stored));
        }
        if Instant::now() >= give_up {
            return Err(Error::new(ErrorKind::TokenStore)
                .with_method(method)
                .with_message(format!(
                    "the token store's refresh lock stayed taken for {} s and no new pair \
                     was stored",
                    (ttl + Duration::from_secs(5)).as_secs()
                ))
                .never_executed());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    };
    let result = refresh_locked(inner, o, current, method, &store_error, newer).await;
    if let Err(e) = o.store.unlock_refresh(lease).await {
        tracing::warn!(
            error = %crate::error::redact_text(&e.to_string(), &secrets),
            "could not release the token store's refresh lock; it expires by itself"
        );
    }
    result
}

/// [`refresh_shared`] holding the lock.
async fn refresh_locked(
    inner: &Inner,
    o: &OAuthState,
    current: &Tokens,
    method: &str,
    store_error: &impl Fn(&str, StoreError) -> Error,
    newer: impl Fn(Option<Tokens>) -> Option<Tokens>,
) -> Result<Renewed, Error> {
    match o.store.load().await {
        Ok(stored) => {
            if let Some(stored) = newer(stored) {
                tracing::debug!(method, "the stored pair is newer than ours; using it");
                return Ok(Renewed::Adopted(stored));
            }
        }
        Err(e) => return Err(store_error("could not load the token store", e)),
    }
    let result = match refresh_server(o, current) {
        Ok(server) => {
            let request = TokenRequest {
                http: &inner.http,
                user_agent: &inner.user_agent,
                timeout: inner.timeout,
                server,
                app: &o.app,
                method: Some(method),
            };
            request_tokens(request, Grant::Refresh { current }).await
        }
        Err(e) => Err(e.with_method(method)),
    };
    let fresh = match result {
        Ok(fresh) => fresh,
        Err(e) => {
            if e.kind() == ErrorKind::InvalidGrant {
                // A store without a real lock: another process may have rotated the pair.
                if let Ok(Some(stored)) = o.store.load().await.map(&newer) {
                    tracing::info!(
                        method,
                        "refresh token was rotated elsewhere; using the stored pair"
                    );
                    return Ok(Renewed::Adopted(stored));
                }
            }
            return Err(e);
        }
    };
    let all_secrets = [
        o.app.client_secret.expose(),
        current.refresh_token.expose(),
        current.access_token.expose(),
        fresh.access_token.expose(),
        fresh.refresh_token.expose(),
    ];
    match o
        .store
        .save_if_current(&current.refresh_token, &fresh)
        .await
    {
        Ok(true) => Ok(Renewed::Refreshed(fresh, Ok(()))),
        Ok(false) => {
            // Someone stored another pair while we refreshed (a reinstall, or a lock that
            // expired under a slow refresh): never overwrite it; use it.
            match o.store.load().await {
                Ok(Some(stored)) => {
                    tracing::warn!(
                        method,
                        "the token store changed during the refresh; using the stored pair"
                    );
                    Ok(Renewed::Adopted(stored))
                }
                _ => Ok(Renewed::Refreshed(fresh, Ok(()))),
            }
        }
        Err(e) => {
            let error = Error::new(ErrorKind::TokenStore)
                .with_method(method)
                .with_message(format!("refreshed tokens could not be saved: {e}"))
                .with_cause(Cause::new(CauseKind::TokenStore, store_error_text(&*e)))
                .redact(&all_secrets);
            Ok(Renewed::Refreshed(fresh, Err(error)))
        }
    }
}

/// The OAuth server a refresh goes to: the client's setting, else the tokens'
/// `server_endpoint`, else [`DEFAULT_OAUTH_SERVER`]; https (or http on loopback) only.
fn refresh_server(o: &OAuthState, current: &Tokens) -> Result<Url, Error> {
    match &o.oauth_server {
        Some(s) => Ok(s.clone()),
        None => builder::parse_oauth_server(
            current
                .server_endpoint
                .as_deref()
                .unwrap_or(DEFAULT_OAUTH_SERVER),
            "server_endpoint",
        ),
    }
}

/// What a token request asks the OAuth server for (PROTOCOL.md 1.4, 1.5).
pub(super) enum Grant<'a> {
    /// `grant_type=refresh_token`: a new pair for `current`, whose other fields (the portal
    /// endpoint, `member_id`...) are kept where the answer lacks them.
    Refresh { current: &'a Tokens },
    /// `grant_type=authorization_code`: the first pair of an installation, for the code the
    /// portal handed to the app's redirect URL (it lives 30 seconds and works once).
    AuthorizationCode { code: &'a Secret },
}

impl Grant<'_> {
    fn grant_type(&self) -> &'static str {
        match self {
            Grant::Refresh { .. } => "refresh_token",
            Grant::AuthorizationCode { .. } => "authorization_code",
        }
    }

    /// The grant's own secrets: never in an error text.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Grant::Refresh { current } => vec![
                current.refresh_token.expose(),
                current.access_token.expose(),
            ],
            Grant::AuthorizationCode { code } => vec![code.expose()],
        }
    }
}

/// Where and how a token request is sent: the HTTP client (which must not follow
/// redirects), its headers and timeout, and the REST method it happens for (a refresh), if
/// any, for the error.
pub(super) struct TokenRequest<'a> {
    pub(super) http: &'a reqwest::Client,
    pub(super) user_agent: &'a str,
    pub(super) timeout: std::time::Duration,
    /// The OAuth server's base URL (validated by `builder::parse_oauth_server`); the request
    /// goes to its `/oauth/token/`.
    pub(super) server: Url,
    pub(super) app: &'a OAuthApp,
    pub(super) method: Option<&'a str>,
}

/// The one token request, for every grant: POST form `grant_type`, `client_id`,
/// `client_secret` and the grant's token or code to `{server}/oauth/token/`; the OAuth
/// server's error codes become typed errors (`invalid_grant` / `bad_verification_code`:
/// [`ErrorKind::InvalidGrant`], `invalid_client`, `wrong_client`, `PAYMENT_REQUIRED` /
/// `NOT_INSTALLED`, anything else [`ErrorKind::OAuthServer`]). The client secret and the
/// grant's secrets are removed from every text of the error.
pub(super) async fn request_tokens(
    req: TokenRequest<'_>,
    grant: Grant<'_>,
) -> Result<Tokens, Error> {
    let mut secrets = grant.secrets();
    secrets.push(req.app.client_secret.expose());
    request_tokens_unredacted(&req, &grant, &secrets)
        .await
        .map_err(|e| e.redact(&secrets))
}

async fn request_tokens_unredacted(
    req: &TokenRequest<'_>,
    grant: &Grant<'_>,
    secrets: &[&str],
) -> Result<Tokens, Error> {
    let mut url = req.server.clone();
    url.set_path("/oauth/token/");
    url.set_query(None);
    url.set_fragment(None);
    let (key, value) = match grant {
        Grant::Refresh { current } => ("refresh_token", current.refresh_token.expose()),
        Grant::AuthorizationCode { code } => ("code", code.expose()),
    };
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", grant.grant_type())
        .append_pair("client_id", &req.app.client_id)
        .append_pair("client_secret", req.app.client_secret.expose())
        .append_pair(key, value)
        .finish();
    let exchange = matches!(grant, Grant::AuthorizationCode { .. });
    let label = req.method.unwrap_or("");
    let with_context = |e: Error| {
        // A failure to reach the OAuth server says nothing ran on the portal: the call
        // that needed the token was refused before it ran.
        let e = e.never_executed();
        let e = if exchange { e.in_code_exchange() } else { e };
        match req.method {
            Some(m) => e.with_method(m),
            None => e.without_method(),
        }
    };
    let response = req
        .http
        .post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::USER_AGENT, req.user_agent)
        .timeout(req.timeout)
        .body(form)
        .send()
        .await
        .map_err(|e| with_context(transport::transport(label, &e, secrets)))?;
    let status = response.status().as_u16();
    let oauth_error = |kind| with_context(Error::new(kind).with_status(status));
    if response.url() != &url {
        return Err(oauth_error(ErrorKind::OAuthServer).with_message(
            "the HTTP client followed a redirect of the token request; build it with \
             redirect::Policy::none()",
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| with_context(transport::transport(label, &e, secrets)))?;
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let Some(json) = json.filter(Value::is_object) else {
        return Err(oauth_error(ErrorKind::OAuthServer).with_snippet(&body, secrets));
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
        return Err(oauth_error(ErrorKind::OAuthServer).with_snippet(&body, secrets));
    }
    let response = TokenResponse::from_json(&json).ok_or_else(|| {
        oauth_error(ErrorKind::OAuthServer)
            .with_message("the answer holds no access_token and refresh_token")
    })?;
    let previous = match grant {
        Grant::Refresh { current } => Some(*current),
        Grant::AuthorizationCode { .. } => None,
    };
    let tokens = response.into_tokens(previous);
    if tokens.client_endpoint.is_empty() {
        return Err(oauth_error(ErrorKind::OAuthServer)
            .with_message("the answer holds no client_endpoint (the portal's REST address)"));
    }
    Ok(tokens)
}

/// A store error's text with its whole chain of sources (redacted by the caller).
fn store_error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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

/// The webhook code: the last segment of a webhook base URL.
pub(super) fn webhook_code(base: &Url) -> Arc<str> {
    base.path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
        .unwrap_or("")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_goes_first_into_the_object() {
        assert_eq!(with_auth(b"{}", "t").unwrap(), br#"{"auth":"t"}"#);
        assert_eq!(
            with_auth(br#"{"A":1}"#, "t").unwrap(),
            br#"{"auth":"t","A":1}"#
        );
        assert!(with_auth(b"[1]", "t").is_none());
    }
}
