#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod method;
mod auth;
mod client;
mod error;
pub mod wire;

pub use auth::{
    BoxFuture, FileTokenStore, MemoryTokenStore, OAuthApp, Secret, StoreError, TokenStore, Tokens,
};
pub use client::{Client, ClientBuilder, RawResponse, DEFAULT_OAUTH_SERVER, DEFAULT_TIMEOUT};
pub use error::{Error, ErrorKind};
pub use method::Method;
pub use wire::Time;

/// The generated API: one module per scope (`imbot`, `user`, ...) with request types and
/// a group reachable from the client (`client.imbot()`), plus [`types`] shared by them.
#[allow(missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/methods.rs"));
}
pub use generated::*;

/// Items generated code relies on. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::auth::BoxFuture;
    pub use chrono;
    pub use serde_json;

    /// Wire adapters, re-exported for generated `#[serde(with = ...)]` paths.
    pub mod wire {
        pub use crate::wire::*;
    }
}

/// The committed snapshot of the obstacle-course spec, compiled as part of the crate so that
/// generated code for awkward names is proven to build.
#[cfg(test)]
#[allow(dead_code, missing_docs, deprecated)]
mod obstacle_snapshot {
    include!("../codegen/tests/snapshots/obstacle.rs");
}
