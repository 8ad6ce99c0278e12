//! The client and its one `call` path, in layers:
//!
//! - [`builder`]: the auth choice, settings, URL validation;
//! - `policy`: the per-method operating-time budget, the retry loop, the deadline;
//! - `auth`: the access token, refreshed once in a single flight; portal renames;
//! - `transport`: one HTTP request at a time under the portal's rate limit (`limit`), the
//!   JSON `POST`, redirects, the size cap, classification of the answer;
//! - `decode`: the typed `result`, with or without `total` / `next` / `time`.
//!
//! One non-generic [`Call`] (method, read or write, body, per-request options) travels down
//! the layers; only the last step, decoding, is generic.

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

mod auth;
mod batch;
mod builder;
mod code;
mod decode;
mod limit;
mod list;
mod many;
mod policy;
mod pool;
mod transport;

pub use batch::{Batch, BatchRef, BatchResults, Handle, Outcome, MAX_BATCH_COMMANDS};
pub use builder::ClientBuilder;
pub use code::AuthorizationCode;
pub use decode::Answer;
pub use decode::{Decode, Response, ResponseFuture};
pub use limit::{
    BucketSpec, LimiterFallback, MethodBudget, RateLimit, SharedLimiter, DEFAULT_OPERATING_BUDGET,
};
pub use list::{ListMode, ListProgress, ListStream, DEFAULT_LIST_CONCURRENCY};
pub use many::{CallMany, DEFAULT_CALL_MANY_CONCURRENCY};
pub(crate) use policy::CallOptions;
pub use policy::{Retry, DEFAULT_CALL_TIMEOUT};
pub use pool::{ClientPool, ClientPoolBuilder};
pub use transport::DEFAULT_MAX_RESPONSE_BYTES;

use crate::auth::{BoxFuture, OAuthApp, Tokens};
use crate::error::{Error, ErrorKind};
use crate::meta::{Access, ApiVersion, Method, MethodMeta};
use crate::params::Params;
use crate::wire::{FromWire, Time};
use auth::AuthState;

/// Default timeout of one HTTP request (30 s); see
/// [`ClientBuilder::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default OAuth server, used when the tokens carry no `server_endpoint`.
pub const DEFAULT_OAUTH_SERVER: &str = "https://oauth.bitrix.info";

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A Bitrix24 REST client for one portal, authorized by an incoming webhook or by an OAuth
/// application's tokens.
///
/// Cheap to clone (an `Arc`): build it once and share it; clones share the connection pool,
/// the token and its refresh, and the portal's rate limit. Every typed method
/// (`client.imbot().message_add(..)`) and [`call_raw`](Self::call_raw) go through the same
/// path:
///
/// 1. wait for the method's operating-time budget and for the portal's request-rate bucket
///    ([`RateLimit`]);
/// 2. attach auth and `POST` JSON; re-POST to a renamed portal;
/// 3. classify the answer; on `expired_token` refresh the OAuth token once (one refresh for
///    any number of concurrent calls), persist it and send again;
/// 4. retry what is safe to retry ([`Retry`]), within the call's deadline;
/// 5. decode `result`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// Timeout of one HTTP request.
    timeout: Duration,
    /// Default deadline of a whole call.
    call_timeout: Duration,
    user_agent: String,
    auth: AuthState,
    limits: Arc<limit::Limits>,
    retry: Retry,
    max_response_bytes: usize,
}

/// One call on its way down the layers: everything but the decoding, which is generic.
pub(crate) struct Call {
    /// The method's wire name, verbatim.
    method: Cow<'static, str>,
    /// Read or write: decides what may be retried.
    access: Access,
    /// The parameters as a serialized JSON object, without `auth` (shared, not copied, by
    /// every attempt).
    body: bytes::Bytes,
    options: CallOptions,
}

impl Call {
    /// Whether the method only reads, so that sending it twice is harmless. A read with
    /// side effects (`event.offline.get` deletes what it returns) is not: a lost answer
    /// would lose what it read.
    fn access_is_read(&self) -> bool {
        self.access.is_idempotent()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.inner.auth {
            AuthState::Webhook { base, .. } => {
                let base = base.read().unwrap_or_else(|e| e.into_inner());
                format!("webhook({})", base.host_str().unwrap_or(""))
            }
            AuthState::OAuth(o) => format!("oauth(client_id={})", o.app.client_id),
        };
        f.debug_struct("Client")
            .field("auth", &auth)
            .field("timeout", &self.inner.call_timeout)
            .field("request_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
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

impl Client {
    /// A client authorized by an incoming webhook, e.g.
    /// `https://acme.bitrix24.com/rest/1/k3y/` (trailing slash optional).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a URL that is not `https://host/rest/{user_id}/{code}`
    /// (plain `http` only on a loopback host).
    pub fn webhook(url: impl Into<String>) -> Result<Client, Error> {
        Client::builder().webhook(url).build()
    }

    /// A client authorized by an OAuth application and its tokens, kept in memory. Use
    /// [`Client::builder`] to persist refreshed tokens in a [`TokenStore`](crate::TokenStore).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `tokens.client_endpoint` is not an http(s) URL.
    pub fn oauth(app: OAuthApp, tokens: Tokens) -> Result<Client, Error> {
        Client::builder().oauth(app, tokens).build()
    }

    /// A builder for timeouts, rate limits, retries, token stores, a custom HTTP client and
    /// the like.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The current OAuth tokens (after any refresh), or `None` for a webhook client.
    pub fn tokens(&self) -> Option<Tokens> {
        match &self.inner.auth {
            AuthState::OAuth(o) => Some((*o.current().1).clone()),
            AuthState::Webhook { .. } => None,
        }
    }

    /// Calls a method with a typed request and decodes its `result`.
    ///
    /// This is the one path every generated method takes (`client.crm().deal_get(1).await`
    /// is `client.call(&CrmDealGet::new(1))`): check the method's conditional requirements;
    /// wait for the rate limit and the method's operating-time budget; POST JSON to
    /// `{client_endpoint}{method}` (OAuth, `auth` in the body) or `{webhook}{method}`;
    /// re-POST to the new address on a 301/302 portal rename; on `expired_token` (or, once,
    /// `invalid_token`) refresh the OAuth token, save it and send again; retry what
    /// [`Retry`] allows for the method's access (reads; writes only when the portal did not
    /// run them); all within the call's deadline. The refresh runs to completion (request,
    /// save, swap) even if this call is cancelled, so a rotated token pair is never lost.
    ///
    /// The parameters are taken when this is called; the returned future owns everything it
    /// needs (`'static`, `Send`), so it can be spawned.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: a conditional requirement is not met (`imbot.message.add`
    ///   without `DIALOG_ID` nor `FROM_USER_ID` + `TO_USER_ID`), or a REST 3.0 method (not
    ///   supported yet);
    /// - [`ErrorKind::Api`]: the answer carried an `error` code (any HTTP status, even 200);
    ///   `QUERY_LIMIT_EXCEEDED` and `OPERATION_TIME_LIMIT` only when waiting them out would
    ///   pass the deadline;
    /// - [`ErrorKind::Http`]: a non-JSON answer (HTML 502/429 page), an error status without
    ///   code, a redirect that cannot be followed (https to http, a loop);
    /// - [`ErrorKind::PortalUnavailable`]: the portal redirects REST calls to itself or to a
    ///   page that is not REST (see [`Error::location`]);
    /// - [`ErrorKind::TooLarge`]: the answer exceeds the client's size cap;
    /// - [`ErrorKind::Decode`]: `result` is missing or does not match `M::Output` (with the
    ///   JSON path);
    /// - [`ErrorKind::Transport`] / [`ErrorKind::Timeout`] (see [`Error::maybe_executed`]);
    /// - refresh failures: [`ErrorKind::InvalidGrant`], [`ErrorKind::InvalidClient`],
    ///   [`ErrorKind::WrongClient`], [`ErrorKind::AppUnavailable`], [`ErrorKind::OAuthServer`],
    ///   [`ErrorKind::TokenStore`].
    pub fn call<M: Method>(&self, request: &M) -> ResponseFuture<M::Output> {
        send(self.clone(), M::META, request.wire_params().clone())
    }

    /// Like [`call`](Self::call), answering with the decoded `result` and the envelope's
    /// `total`, `next` and `time` ([`Response`]).
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn call_with_meta<M: Method>(&self, request: &M) -> ResponseFuture<Response<M::Output>> {
        self.call(request).with_meta()
    }

    /// Calls any method by name with JSON parameters, on the same path as [`call`](Self::call)
    /// (rate limit, auth, redirects, refresh, retries, errors). `params` must be a JSON object
    /// (or `null`); an `auth` key in it is dropped, as the client sets auth itself.
    ///
    /// The client cannot know what an unknown method does, so it treats it as a write (never
    /// retried once it may have run) unless told [`read`](RawCall::read).
    ///
    /// ```no_run
    /// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
    /// let page = client
    ///     .call_raw("crm.deal.list", serde_json::json!({"select": ["ID", "TITLE"]}))
    ///     .read()
    ///     .await?;
    /// println!("{} of {:?}, next page at {:?}", page.result, page.total, page.next);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As for [`call`](Self::call); a missing `result` is `null` here, not an error.
    pub fn call_raw(&self, method: impl Into<String>, params: Value) -> RawCall {
        RawCall {
            client: self.clone(),
            method: method.into(),
            params,
            access: Access::Write,
            options: CallOptions::default(),
        }
    }
}

/// A raw call being prepared: made by [`Client::call_raw`], sent by `.await`.
#[must_use = "a call does nothing until it is awaited"]
pub struct RawCall {
    client: Client,
    method: String,
    params: Value,
    access: Access,
    options: CallOptions,
}

impl fmt::Debug for RawCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The parameters may hold secrets: only the method is shown.
        f.debug_struct("RawCall")
            .field("method", &self.method)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl RawCall {
    /// Marks the method as a read: it is retried after failures where it may have run.
    pub fn read(mut self) -> RawCall {
        self.access = Access::Read;
        self
    }

    /// How this call is retried (default: the client's [`Retry`]).
    pub fn retry(mut self, retry: Retry) -> RawCall {
        self.options.retry = Some(retry);
        self
    }

    /// The deadline of this whole call (default: the client's
    /// [`timeout`](ClientBuilder::timeout)).
    pub fn timeout(mut self, timeout: Duration) -> RawCall {
        self.options.timeout = Some(timeout);
        self
    }
}

impl IntoFuture for RawCall {
    type Output = Result<RawResponse, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<RawResponse, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let method = self.method;
            let body = match self.params {
                Value::Null => b"{}".to_vec(),
                Value::Object(mut map) => {
                    // The client attaches auth itself; a caller's `auth` would be sent twice.
                    map.remove("auth");
                    serde_json::to_vec(&map).map_err(|e| {
                        Error::new(ErrorKind::InvalidInput)
                            .with_method(&method)
                            .with_message(e.to_string())
                    })?
                }
                _ => {
                    return Err(Error::new(ErrorKind::InvalidInput)
                        .with_method(&method)
                        .with_message("params must be a JSON object"))
                }
            };
            let call = Call {
                method: Cow::Owned(method),
                access: self.access,
                body: body.into(),
                options: self.options,
            };
            let answer = policy::run(&self.client.inner, &call).await?;
            let time = answer.time();
            Ok(RawResponse {
                result: answer.result.unwrap_or(Value::Null),
                total: answer.total,
                next: answer.next,
                time,
            })
        })
    }
}

/// The non-generic part of every typed call: checks, then the layers; the caller decodes.
/// One boxed future type for all methods.
fn start(
    client: Client,
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
        if params.refs().next().is_some() {
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_method(meta.name)
                .with_message(
                    "a batch reference ($result[..]) only means something inside its batch",
                ));
        }
        let body = serde_json::to_vec(&params).map_err(|e| {
            Error::new(ErrorKind::InvalidInput)
                .with_method(meta.name)
                .with_message(e.to_string())
        })?;
        let call = Call {
            method: Cow::Borrowed(meta.name),
            access: meta.access,
            body: body.into(),
            options: params.take_options(),
        };
        policy::run(&client.inner, &call).await
    })
}

/// Sends a generated request's parameters; used by the code `bitrix24-codegen` emits.
pub fn send<T: FromWire>(
    client: Client,
    meta: &'static MethodMeta,
    params: Params,
) -> ResponseFuture<T> {
    ResponseFuture::new(meta.name, start(client, meta, params))
}

/// Like [`send`], keeping `total`, `next` and `time`; used by the code `bitrix24-codegen`
/// emits for `send_with_meta()`.
pub fn send_with_meta<T: FromWire>(
    client: Client,
    meta: &'static MethodMeta,
    params: Params,
) -> ResponseFuture<Response<T>> {
    send::<T>(client, meta, params).with_meta()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn is<T: Send + Sync + Clone>() {}
        is::<Client>();
        fn send<T: Send + 'static>() {}
        send::<RawCall>();
        send::<ResponseFuture<Value>>();
    }
}
