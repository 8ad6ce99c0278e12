//! The one error type of the crate.

use std::error::Error as StdError;

use crate::codes;
use std::fmt;

/// What went wrong, coarsely. Match on this, then read details through [`Error`]'s accessors
/// ([`Error::code`] for the portal's error code).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The portal (or REST 3.0) answered with an error code in the body, whatever the HTTP
    /// status, including HTTP 200 (`{"error": "ACCESS_DENIED", ...}`). Unknown codes land here
    /// too. See [`Error::code`], [`Error::description`], [`Error::status`].
    Api,
    /// The answer was not a Bitrix24 JSON envelope: an HTML error page (502, 429...), an empty
    /// body, or a non-success status without an `error` code. See [`Error::status`] and
    /// [`Error::body_snippet`].
    Http,
    /// The call succeeded but its `result` did not match the expected type. See
    /// [`Error::json_path`] and [`Error::body_snippet`].
    Decode,
    /// The request could not be sent or its answer not read (DNS, connect, TLS, reset).
    Transport,
    /// The request took longer than the client's timeout (default 30 s).
    Timeout,
    /// Token refresh answered `invalid_grant`: the refresh token is dead (expired after 180
    /// days, or already used). The user must re-authorize the app (full OAuth flow). From an
    /// authorization-code exchange ([`AuthorizationCode`](crate::AuthorizationCode)),
    /// `invalid_grant` or `bad_verification_code`: the code is wrong, older than its 30 s, or
    /// was already exchanged.
    InvalidGrant,
    /// Token refresh or code exchange answered `invalid_client`: the
    /// `client_id`/`client_secret` are wrong or the app is not installed. A configuration
    /// problem.
    InvalidClient,
    /// Token refresh or code exchange answered `wrong_client` (sometimes with HTTP 200): the
    /// `client_id` does not match the app that owns the tokens (or the code), or the app was
    /// deleted.
    WrongClient,
    /// Token refresh or code exchange answered `PAYMENT_REQUIRED` or `NOT_INSTALLED`: the
    /// app's paid period ended, or it was removed from the portal. The portal admin must act.
    AppUnavailable,
    /// The OAuth server answered a refresh or code exchange with something else: another
    /// error code, a non-JSON page (an HTML 503), or a body without tokens.
    OAuthServer,
    /// The [`TokenStore`](crate::TokenStore) failed to load or save tokens. After a failed save
    /// the new tokens are still used in memory, but were not persisted.
    TokenStore,
    /// Bad input from the caller: an unusable webhook URL or endpoint, parameters that do not
    /// serialize to a JSON object, an OAuth client without tokens.
    InvalidInput,
    /// The portal answers REST calls with a redirect that is not a rename: to its own host, or
    /// to a page that is not a REST path (an expired self-hosted license sends every call to
    /// a coupon page). Nothing ran; [`Error::location`] is where it pointed. Sent once, never
    /// followed.
    PortalUnavailable,
    /// The answer is larger than the client's cap
    /// ([`max_response_bytes`](crate::ClientBuilder::max_response_bytes), 64 MiB by default).
    /// The call ran.
    TooLarge,
    /// A batch command that did not run: the batch halted at an earlier failure
    /// ([`Outcome::NotRun`](crate::Outcome::NotRun)). Nothing of it reached the portal's
    /// method.
    NotRun,
    /// A list stream saw its cursor stop moving, so paging on would loop forever: in fast
    /// mode the method ignores the `>ID` (or `<ID`) filter it was given (scan it with
    /// `ListMode::Offset`); in offset mode an answer's `next` did not move past its page's
    /// `start` (the method ignores `start`).
    CursorStalled,
    /// The shared rate limiter ([`SharedLimiter`](crate::SharedLimiter), e.g. Redis) could
    /// not be asked for a request unit, so the request was not sent: the client never sends
    /// past a limiter it cannot reach (unless built with
    /// [`limiter_fallback`](crate::ClientBuilder::limiter_fallback)). Retried like a
    /// connection that never opened, then returned; calls succeed again once it is back.
    Limiter,
}

/// What the client may do after a failure, decided once for every error
/// ([`Error::retry_class`]). Whether a write is repeated also depends on
/// [`Error::maybe_executed`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// The portal refused the request before running it (`QUERY_LIMIT_EXCEEDED`, or a 429
    /// page): safe to send again after a pause, reads and writes alike.
    Throttled,
    /// The method is blocked by its operating-time budget (`OPERATION_TIME_LIMIT`) until
    /// [`Error::operating_reset_at`]; the request did not run.
    OperatingLimit,
    /// A transient failure: a timeout, a lost connection, a 5xx answer. The request may have
    /// run ([`Error::maybe_executed`]), so only reads are repeated, and writes only when
    /// the connection never opened.
    Transient,
    /// Never retried: `OVERLOAD_LIMIT` (a manual block by Bitrix24 support), auth errors,
    /// `ACCESS_DENIED`, `ERROR_METHOD_NOT_FOUND`, other 4xx, decode errors, bad input.
    Never,
}

/// The typed cause behind an [`Error`], from [`std::error::Error::source`]: what failed
/// below the call (connecting, waiting, reading the answer, the token store). Its text has
/// every secret the client knows of removed.
#[derive(Clone, Debug)]
pub struct Cause {
    kind: CauseKind,
    text: String,
}

/// What kind of failure a [`Cause`] is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CauseKind {
    /// The connection could not be opened (DNS, refused, TLS): nothing was sent.
    Connect,
    /// No answer within the request's timeout: the request may have run.
    Timeout,
    /// The answer was cut off or unreadable after the request went out.
    Body,
    /// Another failure of the HTTP request.
    Request,
    /// The [`TokenStore`](crate::TokenStore) failed; the text is the store's own, redacted.
    TokenStore,
    /// The [`SharedLimiter`](crate::SharedLimiter) failed; the text is its own.
    Limiter,
}

impl Cause {
    pub(crate) fn new(kind: CauseKind, text: impl Into<String>) -> Cause {
        Cause {
            kind,
            text: text.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> CauseKind {
        self.kind
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Cause {}

/// An error from a Bitrix24 call, a token refresh or the client's configuration.
///
/// `Display` is `method: CODE: description` for API errors (for example
/// `crm.deal.get: ACCESS_DENIED: Access denied`). No secret (access or refresh token, client
/// secret, webhook code) ever appears in `Display` or `Debug`.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    method: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    description: Option<String>,
    path: Option<String>,
    snippet: Option<String>,
    message: Option<String>,
    location: Option<String>,
    operating_reset_at: Option<i64>,
    /// Set where the layers know better than the kind and code whether the request ran.
    executed: Option<bool>,
    cause: Option<Cause>,
    /// The OAuth failure happened exchanging an authorization code, not refreshing.
    code_exchange: bool,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                method: None,
                status: None,
                code: None,
                description: None,
                path: None,
                snippet: None,
                message: None,
                location: None,
                operating_reset_at: None,
                executed: None,
                cause: None,
                code_exchange: false,
            }),
        }
    }

    pub(crate) fn api(method: &str, status: u16, code: String, description: String) -> Self {
        Error::new(ErrorKind::Api)
            .with_method(method)
            .with_status(status)
            .with_code(code)
            .with_description(description)
    }

    pub(crate) fn with_method(mut self, method: &str) -> Self {
        self.inner.method = Some(method.to_owned());
        self
    }
    /// Drops the method (an error of no REST method: an authorization-code exchange).
    pub(crate) fn without_method(mut self) -> Self {
        self.inner.method = None;
        self
    }
    /// Marks an OAuth error as one of an authorization-code exchange (for its wording).
    pub(crate) fn in_code_exchange(mut self) -> Self {
        self.inner.code_exchange = true;
        self
    }
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }
    pub(crate) fn with_code(mut self, code: String) -> Self {
        self.inner.code = Some(code);
        self
    }
    pub(crate) fn with_description(mut self, description: String) -> Self {
        self.inner.description = Some(description);
        self
    }
    pub(crate) fn with_path(mut self, path: String) -> Self {
        self.inner.path = Some(path);
        self
    }
    /// Keeps the start of `body` for diagnostics, with every secret in `secrets` replaced
    /// before the text is cut (a cut secret would no longer be recognised).
    pub(crate) fn with_snippet(mut self, body: &[u8], secrets: &[&str]) -> Self {
        // Redact the whole (bounded) body first: a secret cut in half is no longer found.
        let text = String::from_utf8_lossy(&body[..body.len().min(4 * 1024 * 1024)]);
        self.inner.snippet = Some(snippet(&redact_text(&text, secrets)));
        self
    }
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = Some(message.into());
        self
    }
    pub(crate) fn with_location(mut self, location: String) -> Self {
        self.inner.location = Some(location);
        self
    }
    pub(crate) fn with_operating_reset_at(mut self, unix_seconds: i64) -> Self {
        self.inner.operating_reset_at = Some(unix_seconds);
        self
    }
    /// Marks the request as possibly run when `maybe` (an earlier attempt may have run),
    /// keeping what the error itself says otherwise.
    pub(crate) fn or_maybe_executed(mut self, maybe: bool) -> Self {
        self.inner.executed = Some(self.maybe_executed() || maybe);
        self
    }
    /// Marks the request as certainly not run on the portal.
    pub(crate) fn never_executed(mut self) -> Self {
        self.inner.executed = Some(false);
        self
    }
    pub(crate) fn with_cause(mut self, cause: Cause) -> Self {
        self.inner.cause = Some(cause);
        self
    }
    /// Replaces every secret in `secrets` wherever it appears in the texts this error carries.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        let i = &mut *self.inner;
        for field in [
            &mut i.code,
            &mut i.description,
            &mut i.snippet,
            &mut i.message,
            &mut i.location,
        ] {
            if let Some(text) = field.as_mut() {
                *text = redact_text(text, secrets);
            }
        }
        if let Some(c) = i.cause.as_mut() {
            c.text = redact_text(&c.text, secrets);
        }
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The REST method the error belongs to (`imbot.message.add`), if any.
    pub fn method_name(&self) -> Option<&str> {
        self.inner.method.as_deref()
    }

    /// The HTTP status of the answer, if one arrived.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The error code from the portal or the OAuth server, verbatim (`ACCESS_DENIED`,
    /// `expired_token`, `invalid_grant`). It may be the empty string: some methods send
    /// `"error": ""` (PROTOCOL.md 3.3). Compare case-insensitively, or use the `is_*` helpers.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The portal's `error_description` (not meant for end users; may change between versions).
    pub fn description(&self) -> Option<&str> {
        self.inner.description.as_deref()
    }

    /// For [`ErrorKind::Decode`]: the JSON path inside `result` where decoding failed
    /// (`[0].ID`, `.` for the root).
    pub fn json_path(&self) -> Option<&str> {
        self.inner.path.as_deref()
    }

    /// The start of the response body (at most 200 characters, whitespace collapsed) for
    /// non-JSON answers and decode errors.
    pub fn body_snippet(&self) -> Option<&str> {
        self.inner.snippet.as_deref()
    }

    /// Whether the error code equals `code`, ignoring ASCII case.
    pub fn is_code(&self, code: &str) -> bool {
        self.code().is_some_and(|c| c.eq_ignore_ascii_case(code))
    }

    /// `expired_token`: the access token expired (the client refreshes and retries by itself
    /// once; seeing this means the retry failed too).
    pub fn is_expired_token(&self) -> bool {
        self.is_code(codes::EXPIRED_TOKEN)
    }

    /// `QUERY_LIMIT_EXCEEDED`: the portal's request-rate limit (HTTP 503); slow down.
    pub fn is_rate_limited(&self) -> bool {
        self.is_code(codes::QUERY_LIMIT_EXCEEDED)
    }

    /// `OPERATION_TIME_LIMIT`: this method is blocked for this app for a while (HTTP 429).
    pub fn is_operation_time_limit(&self) -> bool {
        self.is_code(codes::OPERATION_TIME_LIMIT)
    }

    /// `METHOD_CONFIRM_WAITING`: an admin must approve this method for the token first.
    pub fn is_method_confirm_waiting(&self) -> bool {
        self.is_code(codes::METHOD_CONFIRM_WAITING)
    }

    /// An authentication failure: `NO_AUTH_FOUND`, `expired_token`, `invalid_token`,
    /// `INVALID_CREDENTIALS`, `authorization_error`, or a refresh that failed.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::InvalidGrant
                | ErrorKind::InvalidClient
                | ErrorKind::WrongClient
                | ErrorKind::AppUnavailable
        ) || [
            "NO_AUTH_FOUND",
            "expired_token",
            "invalid_token",
            "INVALID_CREDENTIALS",
            "authorization_error",
        ]
        .iter()
        .any(|c| self.is_code(c))
    }

    /// The user (or portal admin) must act before calls can work again: re-authorize the
    /// app ([`ErrorKind::InvalidGrant`]), fix the app credentials, pay or reinstall.
    pub fn is_reauthorization_required(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::InvalidGrant
                | ErrorKind::InvalidClient
                | ErrorKind::WrongClient
                | ErrorKind::AppUnavailable
        )
    }

    /// A transport failure or timeout: nothing usable came back.
    pub fn is_transport(&self) -> bool {
        matches!(self.kind(), ErrorKind::Transport | ErrorKind::Timeout)
    }

    /// The record or object does not exist: `NOT_FOUND`, `ERROR_NOT_FOUND`,
    /// `ERROR_ENTITY_NOT_FOUND`, or an empty code whose description says "Not found" (as
    /// `crm.deal.get` answers,
    /// <https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-get.html>).
    pub fn is_not_found(&self) -> bool {
        if self.kind() != ErrorKind::Api {
            return false;
        }
        match self.code() {
            Some("") => self
                .description()
                .is_some_and(|d| d.to_ascii_lowercase().contains("not found")),
            Some(_) => ["NOT_FOUND", "ERROR_NOT_FOUND", "ERROR_ENTITY_NOT_FOUND"]
                .iter()
                .any(|c| self.is_code(c)),
            None => false,
        }
    }

    /// Where the portal redirected to, for [`ErrorKind::PortalUnavailable`] (with any
    /// secret removed).
    pub fn location(&self) -> Option<&str> {
        self.inner.location.as_deref()
    }

    /// For `OPERATION_TIME_LIMIT`: when the method may be called again, unix time in seconds
    /// (the portal's `time.operating_reset_at`, or the client's estimate when the portal
    /// sent none).
    pub fn operating_reset_at(&self) -> Option<i64> {
        self.inner.operating_reset_at
    }

    /// What the client does after this error (decided here, for every error, once); see
    /// [`RetryClass`]. By the time the caller sees an error, the client already retried what
    /// this allowed.
    pub fn retry_class(&self) -> RetryClass {
        let status = self.status().unwrap_or(0);
        match self.kind() {
            ErrorKind::Api => {
                if self.is_code(codes::QUERY_LIMIT_EXCEEDED) {
                    RetryClass::Throttled
                } else if self.is_code(codes::OPERATION_TIME_LIMIT) {
                    RetryClass::OperatingLimit
                } else if self.is_code(codes::OVERLOAD_LIMIT) || self.is_code(codes::PORTAL_DELETED)
                {
                    RetryClass::Never
                } else if self.is_server_failure() {
                    RetryClass::Transient
                } else {
                    RetryClass::Never
                }
            }
            ErrorKind::Http if status == 429 => RetryClass::Throttled,
            ErrorKind::Http if status >= 500 => RetryClass::Transient,
            ErrorKind::Transport | ErrorKind::Timeout | ErrorKind::Limiter => RetryClass::Transient,
            _ => RetryClass::Never,
        }
    }

    /// An API error of the server itself, during or after running the request: a 5xx status
    /// (other than the refusals `QUERY_LIMIT_EXCEEDED`, `OPERATION_TIME_LIMIT`,
    /// `OVERLOAD_LIMIT` and `PORTAL_DELETED`), or `INTERNAL_SERVER_ERROR` /
    /// `ERROR_UNEXPECTED_ANSWER` whatever the status.
    fn is_server_failure(&self) -> bool {
        let refusal = [
            codes::QUERY_LIMIT_EXCEEDED,
            codes::OPERATION_TIME_LIMIT,
            codes::OVERLOAD_LIMIT,
            codes::PORTAL_DELETED,
        ]
        .iter()
        .any(|c| self.is_code(c));
        !refusal
            && (self.status().unwrap_or(0) >= 500
                || self.is_code(codes::INTERNAL_SERVER_ERROR)
                || self.is_code(codes::ERROR_UNEXPECTED_ANSWER))
    }

    /// Whether the portal may have run the request: `false` only when it certainly did not
    /// (a refusal before running it, a connection that never opened, bad input, an auth
    /// error), so that sending a write again cannot duplicate it. `true` after a timeout, a
    /// lost connection, a 5xx or non-JSON answer, or a result that did not decode.
    pub fn maybe_executed(&self) -> bool {
        if let Some(e) = self.inner.executed {
            return e;
        }
        let status = self.status().unwrap_or(0);
        match self.kind() {
            ErrorKind::Api => self.is_server_failure(),
            ErrorKind::Http => status >= 500 || (200..300).contains(&status),
            ErrorKind::Decode | ErrorKind::TooLarge | ErrorKind::Timeout => true,
            ErrorKind::Transport => self
                .inner
                .cause
                .as_ref()
                .is_none_or(|c| c.kind != CauseKind::Connect),
            _ => false,
        }
    }
}

/// `text` with every secret replaced by `[redacted]`, verbatim and percent-encoded (as a
/// proxy or form echo would show it). Secrets shorter than 6 characters are not real tokens
/// and are skipped, so that redaction cannot garble ordinary text.
pub(crate) fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        for form in [s.to_string(), encoded] {
            if out.contains(&form) {
                out = out.replace(&form, "[redacted]");
            }
        }
    }
    out
}

/// Whether a JSON key or parameter name reads like a credential: `..token` (`access_token`,
/// `botToken`, `EVENT_TOKEN`), a password, a secret, `auth`, `CLIENT_ID` (the webhook
/// caller's bot credential) or `HASH` (an IFRAME signing secret). Case-insensitive; a few
/// harmless names (`BG_COLOR_TOKEN`) are caught too, which only hides them from `Debug`.
pub(crate) fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("token")
        || k.contains("password")
        || k.contains("passwd")
        || k.contains("secret")
        || matches!(k.as_str(), "auth" | "client_id" | "hash")
}

/// `value` with the value of every key that [`looks_secret`] replaced by `"[redacted]"`.
pub(crate) fn mask_secrets(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if looks_secret(k) && !v.is_null() {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// At most 200 characters of `text`, whitespace collapsed.
fn snippet(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= 200 {
            break;
        }
    }
    out.chars().take(200).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        if let Some(m) = &i.method {
            write!(f, "{m}: ")?;
        }
        let status = |f: &mut fmt::Formatter<'_>| match i.status {
            Some(s) => write!(f, " (HTTP {s})"),
            None => Ok(()),
        };
        let failed = if i.code_exchange {
            "authorization code exchange failed: "
        } else {
            "token refresh failed: "
        };
        let code_desc = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            let code = i.code.as_deref().unwrap_or("");
            let desc = i.description.as_deref().unwrap_or("");
            match (code.is_empty(), desc.is_empty()) {
                (false, false) => write!(f, "{code}: {desc}"),
                (false, true) => f.write_str(code),
                (true, false) => write!(f, "(empty error code): {desc}"),
                (true, true) => f.write_str("(empty error code)"),
            }
        };
        match i.kind {
            ErrorKind::Api => code_desc(f)?,
            ErrorKind::Http => {
                write!(f, "unexpected answer")?;
                status(f)?;
                if let Some(m) = &i.message {
                    write!(f, ": {m}")?;
                }
                if let Some(s) = &i.snippet {
                    write!(f, ": {s}")?;
                }
                return Ok(());
            }
            ErrorKind::Decode => {
                write!(
                    f,
                    "cannot decode the result at `{}`",
                    i.path.as_deref().unwrap_or(".")
                )?;
                if let Some(m) = &i.message {
                    write!(f, ": {m}")?;
                }
                if let Some(s) = &i.snippet {
                    write!(f, "; body starts: {s}")?;
                }
                return Ok(());
            }
            ErrorKind::Transport => f.write_str("transport error")?,
            ErrorKind::Timeout => f.write_str("request timed out")?,
            ErrorKind::InvalidGrant => {
                f.write_str(failed)?;
                code_desc(f)?;
                f.write_str(if i.code_exchange {
                    " (the authorization code is wrong, expired (it lives 30 s) or already used: \
                     start the authorization again)"
                } else {
                    " (the refresh token is no longer valid: the user must re-authorize the app)"
                })?;
            }
            ErrorKind::InvalidClient => {
                f.write_str(failed)?;
                code_desc(f)?;
                f.write_str(" (check client_id and client_secret)")?;
            }
            ErrorKind::WrongClient => {
                f.write_str(failed)?;
                code_desc(f)?;
                f.write_str(" (client_id does not match the app that owns the tokens)")?;
            }
            ErrorKind::AppUnavailable => {
                f.write_str(failed)?;
                code_desc(f)?;
                f.write_str(" (the app is unpaid or not installed on the portal)")?;
            }
            ErrorKind::OAuthServer => {
                f.write_str(failed)?;
                if i.code.is_some() {
                    code_desc(f)?;
                } else {
                    f.write_str("unexpected answer from the OAuth server")?;
                }
                status(f)?;
                if let Some(m) = &i.message {
                    write!(f, ": {m}")?;
                }
                if let Some(s) = &i.snippet {
                    write!(f, ": {s}")?;
                }
                return Ok(());
            }
            ErrorKind::TokenStore => f.write_str("token store failed")?,
            ErrorKind::InvalidInput => f.write_str("invalid input")?,
            ErrorKind::PortalUnavailable => {
                f.write_str("portal unavailable")?;
                status(f)?;
                if let Some(l) = &i.location {
                    write!(f, " to {l}")?;
                }
            }
            ErrorKind::TooLarge => f.write_str("answer too large")?,
            ErrorKind::NotRun => f.write_str("not run")?,
            ErrorKind::CursorStalled => f.write_str("list cursor stalled")?,
            ErrorKind::Limiter => f.write_str("shared rate limiter unavailable")?,
        }
        if !matches!(i.kind, ErrorKind::Api | ErrorKind::OAuthServer) {
            if let Some(m) = &i.message {
                write!(f, ": {m}")?;
            }
        }
        if i.kind == ErrorKind::Api {
            status(f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(v) = &i.method {
            d.field("method", v);
        }
        if let Some(v) = &i.status {
            d.field("status", v);
        }
        if let Some(v) = &i.code {
            d.field("code", v);
        }
        if let Some(v) = &i.description {
            d.field("description", v);
        }
        if let Some(v) = &i.path {
            d.field("json_path", v);
        }
        if let Some(v) = &i.snippet {
            d.field("body_snippet", v);
        }
        if let Some(v) = &i.message {
            d.field("message", v);
        }
        if let Some(v) = &i.location {
            d.field("location", v);
        }
        if let Some(v) = &i.operating_reset_at {
            d.field("operating_reset_at", v);
        }
        if let Some(v) = &i.cause {
            d.field("cause", v);
        }
        d.finish()
    }
}

/// `source()` is a [`Cause`] for transport and token-store failures: typed, with secrets
/// removed. Foreign error values (reqwest's, a store's) are not kept, as their text could
/// carry a token.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.cause.as_ref().map(|c| c as _)
    }
}
