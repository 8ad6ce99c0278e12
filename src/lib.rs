#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod method;
mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod client;
pub mod codes;
mod error;
mod event;
mod install;
pub mod php;
mod receive;
pub mod wire;

pub use auth::{
    BoxFuture, FileTokenStore, MemoryTokenStore, OAuthApp, Secret, StoreError, TokenStore, Tokens,
};
pub use client::{Client, ClientBuilder, RawResponse, DEFAULT_OAUTH_SERVER, DEFAULT_TIMEOUT};
pub use error::{Error, ErrorKind};
pub use install::{
    token_store_for, verify, verify_application_token, FileInstallationStore, InstallError,
    Installation, InstallationStore, MemoryInstallationStore,
};
pub use method::Method;
pub use receive::{receive_event, ReceiveError, VerifiedEvent};
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
#[allow(dead_code, missing_docs, deprecated, unused_imports)]
mod obstacle_snapshot {
    include!("../codegen/tests/snapshots/obstacle.rs");

    #[cfg(test)]
    mod tests {
        use super::obstacle::*;
        use super::types::*;
        use serde_json::json;

        #[test]
        fn awkward_names_round_trip_through_serde() {
            let wire = json!({
                "ID": "17", "id": "seventeen", "type": "T", "self": "S", "crate": "-3",
                "send": "Y", "new": 1, "UF_CRM_1476661442": "custom", "entityTypeId": 2,
                "1st": "1.5", "ORDER": [], "order": {"0": "4", "1": 5}, "kind": "LIGHT_BLUE",
                "UF_CRM_NEW": "kept"
            });
            let o: Obstacle = serde_json::from_value(wire).unwrap();
            assert_eq!(o.id, 17);
            assert_eq!(o.id_lower.as_deref(), Some("seventeen"));
            assert_eq!(o.r#type.as_deref(), Some("T"));
            assert_eq!(o.self_.as_deref(), Some("S"));
            assert_eq!(o.crate_, Some(-3));
            assert_eq!((o.send_value, o.new_value), (Some(true), Some(true)));
            assert_eq!(o.uf_crm_1476661442.as_deref(), Some("custom"));
            assert_eq!((o.entity_type_id, o._1st), (Some(2), Some(1.5)));
            assert_eq!(o.order, Some(Default::default()));
            assert_eq!(o.order_lower, Some(vec![4, 5]));
            assert_eq!(o.kind, Some(Weird::LightBlue));
            assert_eq!(o.extra["UF_CRM_NEW"], "kept");

            let back = serde_json::to_value(&o).unwrap();
            assert_eq!(
                back,
                json!({
                    "ID": 17, "id": "seventeen", "type": "T", "self": "S", "crate": -3,
                    "send": "Y", "new": true, "UF_CRM_1476661442": "custom", "entityTypeId": 2,
                    "1st": 1.5, "ORDER": {}, "order": [4, 5], "kind": "LIGHT_BLUE",
                    "UF_CRM_NEW": "kept"
                })
            );
            let again: Obstacle = serde_json::from_value(back).unwrap();
            assert_eq!(again, o);
        }

        #[test]
        fn unknown_enum_values_are_kept() {
            let w: Weird = serde_json::from_value(json!("BRAND_NEW")).unwrap();
            assert_eq!(w, Weird::Other("BRAND_NEW".into()));
            assert_eq!(serde_json::to_value(&w).unwrap(), json!("BRAND_NEW"));
            assert_eq!(
                serde_json::from_value::<Weird>(json!("OTHER")).unwrap(),
                Weird::OtherValue
            );
            assert_eq!(
                serde_json::from_value::<Weird>(json!(2)).unwrap(),
                Weird::V2
            );
        }

        #[test]
        fn requests_serialize_wire_names_and_skip_unset() {
            let req = ObstacleTypeList::new(7)
                .r#type("x")
                .order_lower("asc")
                .set_start(None);
            assert_eq!(
                serde_json::to_value(&req).unwrap(),
                json!({"entityTypeId": 7, "type": "x", "order": "asc"})
            );
            let req = ObstacleItemProductrowSet::new(false).send_value(Weird::Other("NEW".into()));
            assert_eq!(
                serde_json::to_value(&req).unwrap(),
                json!({"UF_CRM_1476661442": "N", "send": "NEW"})
            );
            assert_eq!(
                <ObstacleTypeList as crate::Method>::NAME,
                "obstacle.type.list"
            );
            let read_only = [
                <ObstacleTypeList as crate::Method>::READ_ONLY,
                <ObstacleV2ChatMessageSend as crate::Method>::READ_ONLY,
            ];
            assert_eq!(read_only, [true, false]);
        }
    }
}
