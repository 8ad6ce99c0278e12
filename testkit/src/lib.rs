#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod events;
mod faults;
mod im;
mod limits;
mod methods;
mod oauth;
mod order;
mod portal;
mod server;
mod state;
mod store;
mod util;

pub use faults::Fault;
pub use im::Message;
pub use portal::{
    AppSpec, Delivery, FakePortal, FakePortalBuilder, InstalledApp, LoggedRequest, Plan,
    RequestAuth, TokenRequest,
};
