//! Receiving an event delivery: parse, verify, keep installations up to date.
//!
//! [`receive_event`] is what an event endpoint does with a POST body before trusting it; the
//! `axum` feature wraps it as an extractor (`bitrix24::axum::VerifiedEvent`). Bitrix24 does not retry a
//! delivery (PROTOCOL.md 7.1), so answer quickly and log refusals rather than relying on the
//! status code reaching anyone.

use std::fmt;

use serde_json::Value;

use crate::event_body::EventError;
use crate::events::Event;
use crate::install::{verify, verify_application_token, InstallError, Installation};
use crate::InstallationStore;

/// An event whose `auth[application_token]` matched the installation stored for its
/// `auth[member_id]`, with that installation.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedEvent {
    /// The typed event.
    pub event: Event,
    /// The installation it belongs to: for `ONAPPINSTALL` the one just stored, for
    /// `ONAPPUNINSTALL` the one just removed, otherwise the stored one (whose tokens a
    /// [`Client`](crate::Client) can use, see [`Installation::client`]).
    pub installation: Installation,
}

/// Why a delivery was refused. `Display` and `Debug` never contain a token.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The body is not an event (malformed form or JSON, no `event`, fields of the wrong type).
    Event(EventError),
    /// The event could not be verified, or its installation could not be stored or removed:
    /// no `auth[member_id]`/`auth[application_token]`
    /// ([`MissingField`](InstallError::MissingField)), an unknown `member_id`
    /// ([`UnknownInstallation`](InstallError::UnknownInstallation)), a wrong token
    /// ([`Forged`](InstallError::Forged)), or a failing store.
    Install(InstallError),
}

impl ReceiveError {
    /// Whether the event was refused as not authentic (unknown portal, wrong or missing
    /// token), as opposed to malformed or a failing store.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            ReceiveError::Install(
                InstallError::UnknownInstallation
                    | InstallError::Forged
                    | InstallError::MissingField(_)
            )
        )
    }
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Event(e) => e.fmt(f),
            ReceiveError::Install(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReceiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReceiveError::Event(e) => Some(e),
            ReceiveError::Install(e) => Some(e),
        }
    }
}

impl From<EventError> for ReceiveError {
    fn from(e: EventError) -> Self {
        ReceiveError::Event(e)
    }
}

impl From<InstallError> for ReceiveError {
    fn from(e: InstallError) -> Self {
        ReceiveError::Install(e)
    }
}

/// Parses a delivery body ([`Event::parse`]) and verifies it against `store`:
///
/// - `ONAPPINSTALL` stores the installation it carries ([`Installation::from_install_auth`]).
///   When one is already stored for that `member_id`, the new event must present the stored
///   `application_token` (a reinstall over a live installation), so that a forged install
///   cannot replace a real one; after `ONAPPUNINSTALL` a fresh install is accepted.
/// - `ONAPPUNINSTALL` is verified, then removes the installation.
/// - Every other event (unknown kinds included) is verified: its `auth[application_token]`
///   must equal, compared in constant time, the one stored for its `auth[member_id]`.
///
/// # Errors
/// [`ReceiveError::Event`] for a body that is not an event; [`ReceiveError::Install`] when
/// the event cannot be verified or the store fails. Nothing is stored or removed then.
pub async fn receive_event<S: InstallationStore + ?Sized>(
    store: &S,
    content_type: &str,
    body: &[u8],
) -> Result<VerifiedEvent, ReceiveError> {
    let event = Event::parse(content_type, body)?;
    let auth = auth_tree(&event);
    let text = |key: &'static str| -> Result<String, InstallError> {
        match auth.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(InstallError::MissingField(key)),
        }
    };
    let member_id = text("member_id")?;
    let token = text("application_token")?;

    let installation = match &event {
        Event::AppInstall(_) => {
            let installation = Installation::from_install_auth(&auth)?;
            if let Some(stored) = store.get(&member_id).await.map_err(InstallError::Store)? {
                if !verify_application_token(&stored.application_token, &token) {
                    return Err(InstallError::Forged.into());
                }
            }
            store
                .put(installation.clone())
                .await
                .map_err(InstallError::Store)?;
            installation
        }
        Event::AppUninstall(_) => {
            let installation = verify(store, &member_id, &token).await?;
            store
                .remove(&member_id)
                .await
                .map_err(InstallError::Store)?;
            installation
        }
        _ => verify(store, &member_id, &token).await?,
    };
    Ok(VerifiedEvent {
        event,
        installation,
    })
}

/// The event's `auth` block as a JSON object of strings (an empty object when absent).
fn auth_tree(event: &Event) -> Value {
    let tree = match event {
        Event::Unknown(u) => u.raw.get("auth").cloned(),
        other => other
            .auth()
            .and_then(|a| serde_json::to_value(a).ok())
            .map(|v| match v {
                // Typed fields serialize as numbers; keep every scalar a string.
                Value::Object(m) => Value::Object(
                    m.into_iter()
                        .map(|(k, v)| match v {
                            Value::Number(n) => (k, Value::String(n.to_string())),
                            v => (k, v),
                        })
                        .collect(),
                ),
                v => v,
            }),
    };
    match tree {
        Some(v @ Value::Object(_)) => v,
        _ => Value::Object(Default::default()),
    }
}
