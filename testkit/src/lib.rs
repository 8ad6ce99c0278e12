//! `bitrix24-testkit`: a fake Bitrix24 portal that runs inside the test process.
//!
//! It speaks the REST wire protocol of `PROTOCOL.md` (sections 1-7): webhook and OAuth auth,
//! the `/oauth/token/` server, the response envelope and error statuses, both rate limits on
//! a virtual clock, `batch`, a seeded CRM/user/task store, chat bots (`imbot.*`,
//! `imbot.v2.*`), events delivered as PHP-encoded form POSTs, and injectable faults.
//!
//! ```no_run
//! # async fn demo() {
//! use bitrix24_testkit::FakePortal;
//! use std::time::Duration;
//!
//! let portal = FakePortal::builder()
//!     .rate_limit(50, 2.0)
//!     .latency(Duration::from_millis(0))
//!     .start()
//!     .await;
//! let client = bitrix24::Client::webhook(portal.webhook_url(1)).unwrap();
//! let me = client.user().current().await.unwrap();
//! assert_eq!(me.id, 1);
//! # }
//! ```
//!
//! Wire formats come from the `bitrix24` crate: [`bitrix24::php`] encodes and decodes form
//! bodies, [`bitrix24::codes`] gives error codes and statuses, [`bitrix24::wire::Time`] is the
//! `time` object.

#![warn(missing_docs)]

mod clock;
mod events;
mod faults;
mod im;
mod limits;
mod methods;
mod oauth;
mod portal;
mod server;
mod state;
mod store;
mod util;

pub use faults::Fault;
pub use im::Message;
pub use portal::{
    AppSpec, Delivery, FakePortal, FakePortalBuilder, InstalledApp, LoggedRequest, RequestAuth,
    TokenRequest,
};
