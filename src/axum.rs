//! [axum](https://docs.rs/axum) integration (feature `axum`): an extractor that hands a
//! handler a parsed, verified event.
//!
//! ```rust,ignore
//! use std::sync::Arc;
//! use axum::{http::StatusCode, routing::post, Router};
//! use bitrix24::{axum::VerifiedEvent, events::Event, InstallationStore, MemoryInstallationStore};
//!
//! async fn on_event(event: VerifiedEvent) -> StatusCode {
//!     if let Event::ImbotMessageAdd(message) = event.event {
//!         // Answer at once, work in the background: Bitrix24 waits for nobody.
//!         tokio::spawn(async move { /* reply with event.installation.client(...) */ });
//!     }
//!     StatusCode::OK
//! }
//!
//! let store: Arc<dyn InstallationStore> = Arc::new(MemoryInstallationStore::new());
//! let app: Router = Router::new().route("/bitrix24", post(on_event)).with_state(store);
//! ```
//!
//! The router's state must give an `Arc<dyn InstallationStore>` (directly, or through
//! [`FromRef`] from your own state type).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub use crate::receive::VerifiedEvent;
use crate::receive::{receive_event, ReceiveError};
use crate::InstallationStore;

/// Reads the body (at most axum's body limit, 2 MB by default), parses it as an event,
/// verifies it and keeps the installation store up to date, as [`receive_event`] does.
///
/// On refusal the request never reaches the handler: the reason is logged (`tracing`, at
/// `warn`, without any token) and answered with [`EventRejection`].
impl<S> FromRequest<S> for VerifiedEvent
where
    S: Send + Sync,
    Arc<dyn InstallationStore>: FromRef<S>,
{
    type Rejection = EventRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            tracing::warn!(error = %e, "bitrix24 event refused: body not readable");
            EventRejection {
                status: e.status(),
                error: None,
            }
        })?;
        let store = Arc::<dyn InstallationStore>::from_ref(state);
        match receive_event(&*store, &content_type, &body).await {
            Ok(event) => {
                tracing::debug!(event = event.event.code(), member_id = %event.installation.member_id, "bitrix24 event verified");
                Ok(event)
            }
            Err(error) => {
                tracing::warn!(%error, "bitrix24 event refused");
                Err(EventRejection::from(error))
            }
        }
    }
}

/// Why [`VerifiedEvent`] refused a request. Answers `401` for an event that could not be
/// verified (unknown `member_id`, wrong or missing `application_token`), `400` for a body that
/// is not an event, `500` when the installation store failed. Bitrix24 does not retry, so
/// the status only serves your logs.
#[derive(Debug)]
pub struct EventRejection {
    status: StatusCode,
    error: Option<ReceiveError>,
}

impl EventRejection {
    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason, unless the body could not be read.
    pub fn error(&self) -> Option<&ReceiveError> {
        self.error.as_ref()
    }
}

impl From<ReceiveError> for EventRejection {
    fn from(error: ReceiveError) -> Self {
        let status = if error.is_unauthorized() {
            StatusCode::UNAUTHORIZED
        } else if matches!(error, ReceiveError::Event(_)) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        EventRejection {
            status,
            error: Some(error),
        }
    }
}

impl IntoResponse for EventRejection {
    fn into_response(self) -> Response {
        self.status.into_response()
    }
}
