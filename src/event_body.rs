//! Incoming events: the envelope every event shares, and the decoding of a delivery body.
//!
//! Bitrix24 POSTs events as `application/x-www-form-urlencoded` bodies built by PHP's
//! `http_build_query` (every scalar a string), with `event`, `event_handler_id`, `data[...]`,
//! `ts` and `auth[...]` (PROTOCOL.md 7.1-7.3); chat-bots 2.0 may send JSON. The typed
//! [`Event`](crate::events::Event) enum is generated from the `[[event]]` entries of
//! `methods.toml`; this module holds what it is made of.
//! Docs: <https://apidocs.bitrix24.com/api-reference/events/index.html>

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Secret, Tokens};
use crate::php::{FormError, Limits};
use crate::wire::{As, Fields, FromWire, Int, Opt, Same, Str, WireError};

/// The `auth[...]` block of an event: the token set of the user whose action fired it
/// (PROTOCOL.md 7.3). Every field is optional: uninstall and automation events carry no
/// tokens, outgoing-webhook subscriptions only endpoints and `application_token`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventAuth {
    /// Access token of that user (one hour).
    #[serde(
        default,
        with = "As::<Opt<Same>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token: Option<Secret>,
    /// Refresh token, on events that need long access (`ONAPPINSTALL`, bot events).
    #[serde(
        default,
        with = "As::<Opt<Same>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Secret>,
    /// Expiry of `access_token`, unix seconds.
    #[serde(
        default,
        with = "As::<Opt<Int>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<i64>,
    /// Lifetime of `access_token`, seconds.
    #[serde(
        default,
        with = "As::<Opt<Int>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<i64>,
    /// Granted scopes (comma- or space-separated: the docs disagree, PROTOCOL.md 7.7).
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub scope: Option<String>,
    /// The portal's host name.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<String>,
    /// The OAuth server's REST base as the event names it. Untrusted: never send the client
    /// secret there; refresh at the OAuth server you configured.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_endpoint: Option<String>,
    /// App status letter (`L`, `F`, `D`, `T`, `P`, `S`).
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<String>,
    /// The portal's REST base, e.g. `https://portal.bitrix24.com/rest/`.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_endpoint: Option<String>,
    /// The portal's stable id.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub member_id: Option<String>,
    /// The user the tokens belong to.
    #[serde(
        default,
        with = "As::<Opt<Int>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<u64>,
    /// The app's `application_token`: compare it with the one stored at install to verify
    /// the event (constant time).
    #[serde(
        default,
        with = "As::<Opt<Same>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub application_token: Option<Secret>,
}

impl EventAuth {
    /// The token set as credentials a [`Client`](crate::Client) can be built from, when the
    /// event carries an access token, a refresh token and the portal's endpoint.
    pub fn tokens(&self) -> Option<Tokens> {
        let mut t = Tokens::new(
            self.access_token.clone()?,
            self.refresh_token.clone()?,
            self.client_endpoint.clone()?,
        );
        t.expires = self
            .expires
            .or_else(|| self.expires_in.map(crate::auth::expiry_after));
        t.server_endpoint = self.server_endpoint.clone();
        t.member_id = self.member_id.clone();
        t.domain = self.domain.clone();
        t.scope = self.scope.clone();
        Some(t)
    }
}

/// One delivered event of a known kind: the shared envelope plus its typed `data`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EventOf<D> {
    /// The event code in upper case (`ONIMBOTMESSAGEADD`).
    pub event: String,
    /// Id of the handler registration that received it.
    pub event_handler_id: Option<u64>,
    /// Unix time (seconds) the queue sent it.
    pub ts: Option<i64>,
    /// The event's own data.
    pub data: D,
    /// The token set of the user whose action fired the event, if any.
    pub auth: Option<EventAuth>,
}

/// An event this version has no type for: its code and the decoded tree, kept whole.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct UnknownEvent {
    /// The event code (`ONCRMDEALADD`), upper-cased.
    pub event: String,
    /// The whole decoded body (`event`, `data`, `auth`, ...); every scalar is a string for
    /// form bodies.
    pub raw: Value,
}

impl UnknownEvent {
    /// An event of code `event` (upper-cased) with its whole decoded tree.
    pub fn new(event: impl Into<String>, raw: Value) -> UnknownEvent {
        UnknownEvent {
            event: event.into().to_ascii_uppercase(),
            raw,
        }
    }
}

impl fmt::Debug for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The raw tree holds tokens: show its shape, not its values.
        let keys: Vec<&str> = self
            .raw
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("UnknownEvent")
            .field("event", &self.event)
            .field("keys", &keys)
            .finish()
    }
}

/// Why an event body was refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EventError {
    /// The form body broke a limit (size, nesting, pairs).
    Form(FormError),
    /// The body claimed JSON but is not a JSON object (the message never quotes the body).
    Json(String),
    /// The body has no `event` field.
    MissingEvent,
    /// A known event whose fields do not match its type.
    Decode {
        /// The event code.
        event: String,
        /// JSON path of the offending field.
        path: String,
        /// What was wrong.
        message: String,
    },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Form(e) => write!(f, "event body refused: {e}"),
            EventError::Json(m) => write!(f, "event body is not a JSON object: {m}"),
            EventError::MissingEvent => f.write_str("event body has no `event` field"),
            EventError::Decode {
                event,
                path,
                message,
            } => {
                write!(f, "{event}: field `{path}`: {message}")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// Decodes a delivery body into a tree: JSON when `content_type` says so (or the body starts
/// with `{`), PHP bracket form otherwise. Returns the upper-cased event code and the tree.
pub fn decode_body(
    content_type: &str,
    body: &[u8],
    limits: Limits,
) -> Result<(String, Value), EventError> {
    if body.len() > limits.max_bytes {
        return Err(EventError::Form(FormError::TooLarge {
            size: body.len(),
            max: limits.max_bytes,
        }));
    }
    let looks_json = content_type.to_ascii_lowercase().contains("json")
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let tree = if looks_json {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            EventError::Json(format!(
                "line {}, column {}: {}",
                e.line(),
                e.column(),
                e.classify_name()
            ))
        })?;
        if !v.is_object() {
            return Err(EventError::Json("top level is not an object".into()));
        }
        v
    } else {
        crate::php::decode(body, limits).map_err(EventError::Form)?
    };
    let code = match tree.get("event") {
        Some(Value::String(s)) if !s.is_empty() => s.to_ascii_uppercase(),
        _ => return Err(EventError::MissingEvent),
    };
    Ok((code, tree))
}

/// Decodes the tree of a known event into its typed form.
pub fn typed<D: FromWire>(event: &str, tree: Value) -> Result<EventOf<D>, EventError> {
    let decode_error = |e: WireError| EventError::Decode {
        event: event.to_owned(),
        path: e.path(),
        message: e.message().to_owned(),
    };
    let mut fields = Fields::new(&tree).map_err(decode_error)?;
    let event_handler_id = fields.opt("event_handler_id");
    let ts = fields.opt("ts");
    if tree.get("data").is_none() && D::absent().is_none() {
        return Err(EventError::Decode {
            event: event.to_owned(),
            path: "data".into(),
            message: "missing".into(),
        });
    }
    let data = fields.req::<D>("data").map_err(decode_error)?;
    let auth = match tree.get("auth") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(auth) => Some(EventAuth::deserialize(auth).map_err(|e| {
            EventError::Decode {
                event: event.to_owned(),
                path: "auth".into(),
                // serde's message may quote the bad value; keep only its kind.
                message: e
                    .to_string()
                    .split(':')
                    .next()
                    .unwrap_or("invalid value")
                    .to_owned(),
            }
        })?),
    };
    Ok(EventOf {
        event: event.to_owned(),
        event_handler_id,
        ts,
        data,
        auth,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}
