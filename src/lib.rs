#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod client;
pub mod codes;
mod error;
mod event_body;
mod install;
mod meta;
mod params;
pub mod php;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod receive;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod wire;

pub use auth::{
    BoxFuture, FileTokenStore, MemoryTokenStore, OAuthApp, RefreshLease, Secret, StoreError,
    TokenStore, Tokens,
};
pub use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
pub use client::{
    AuthorizationCode, Batch, BatchRef, BatchResults, BucketSpec, CallMany, Client, ClientBuilder,
    ClientPool, ClientPoolBuilder, Decode, Handle, LimiterFallback, ListMode, ListProgress,
    ListStream, MethodBudget, Outcome, RateLimit, RawCall, RawResponse, Response, ResponseFuture,
    Retry, SharedLimiter, DEFAULT_CALL_MANY_CONCURRENCY, DEFAULT_CALL_TIMEOUT,
    DEFAULT_LIST_CONCURRENCY, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_OAUTH_SERVER,
    DEFAULT_OPERATING_BUDGET, DEFAULT_REQUEST_TIMEOUT, MAX_BATCH_COMMANDS,
};
pub use error::{Cause, CauseKind, Error, ErrorKind, RetryClass};
pub use install::{
    token_store_for, verify, verify_application_token, FileInstallationStore, InstallError,
    Installation, InstallationStore, MemoryInstallationStore,
};
pub use meta::{Access, ApiVersion, BoolForm, ListMethod, ListModel, Method, MethodMeta};
pub use params::{Arg, IntoArg, Params, ToWire};
pub use receive::{receive_event, ReceiveError, VerifiedEvent};
pub use wire::{FromWire, Time, WireError};

// The generated API, at the crate root: one module per method group (`crm`, `imbot`, ...)
// with request types and a group reachable from the client (`client.crm()`), `types` shared
// by them, and `events`. A group whose feature is off is declared but configured out, so
// that naming it makes rustc point at the feature.
include!(concat!(env!("OUT_DIR"), "/methods.rs"));

/// Items the code `bitrix24-codegen` emits relies on, in this crate and in users' crates
/// that generate methods from their own spec. Not part of the public API: it changes with
/// the generator, which is released together with this crate.
#[doc(hidden)]
pub mod __private {
    pub use crate::client::{send, send_with_meta};
    pub use crate::event_body::{
        decode_body, typed as typed_event, EventAuth, EventError, EventOf, UnknownEvent,
    };
    pub use crate::meta::{
        Access, ApiVersion, BoolForm, ListMethod, ListModel, Method, MethodMeta,
    };
    pub use crate::params::{put, put_yn, Arg, IntoArg, Params, ToWire};
    pub use crate::php::Limits;
    pub use crate::wire::{enum_str, Fields, FromWire, WireError};
    pub use crate::{Client, Error, ListStream, ResponseFuture, Secret};
    pub use crate::{Response, Retry};
    pub use chrono;
    pub use serde_json;
    pub use serde_json::{Map, Value};
}

/// The committed snapshot of the obstacle-course spec, compiled as part of the crate so that
/// generated code for awkward names is proven to build and behave, without a warning (users
/// compile it with `-D warnings`).
#[cfg(test)]
#[deny(warnings)]
#[allow(dead_code, missing_docs, deprecated, unused_imports)]
mod obstacle_snapshot {
    include!("../codegen/tests/snapshots/obstacle.rs");

    #[cfg(test)]
    mod tests {
        use super::obstacle::*;
        use super::types::*;
        use crate::{Access, ApiVersion, BoolForm, FromWire, Method, ToWire};
        use serde_json::json;

        #[test]
        fn awkward_names_round_trip() {
            let wire = json!({
                "ID": "17", "id": "seventeen", "type": "T", "self": "S", "crate": "-3",
                "send": "Y", "new": 1, "UF_CRM_1476661442": "custom", "entityTypeId": 2,
                "1st": "1.5", "ORDER": [], "order": {"0": "4", "1": 5}, "kind": "LIGHT_BLUE",
                "field": "f", "UF_CRM_NEW": "kept"
            });
            let o = Obstacle::from_wire(&wire).unwrap();
            assert_eq!(o.id, 17);
            assert_eq!(o.id_lower.as_deref(), Some("seventeen"));
            assert_eq!(o.r#type.as_deref(), Some("T"));
            assert_eq!(o.self_.as_deref(), Some("S"));
            assert_eq!(o.crate_, Some(-3));
            assert_eq!((o.send_value, o.new_value), (Some(true), Some(true)));
            assert_eq!(o.uf_crm_1476661442.as_deref(), Some("custom"));
            assert_eq!((o.entity_type_id, o._1st), (Some(2), Some(1.5)));
            assert_eq!(o.order, Some(Default::default()), "[] is PHP's empty map");
            assert_eq!(o.order_lower, Some(vec![4, 5]));
            assert_eq!(o.kind, Some(Weird::LightBlue));
            assert_eq!(o.field_value.as_deref(), Some("f"));
            assert_eq!(o.extra.len(), 1);
            assert_eq!(o.extra["UF_CRM_NEW"], "kept");

            // Used in params too, so it encodes: wire names, Y/N, numbers as numbers.
            let back = o.to_wire();
            assert_eq!(
                back,
                json!({
                    "ID": 17, "id": "seventeen", "type": "T", "self": "S", "crate": -3,
                    "send": "Y", "new": true, "UF_CRM_1476661442": "custom", "entityTypeId": 2,
                    "1st": 1.5, "ORDER": {}, "order": [4, 5], "kind": "LIGHT_BLUE", "field": "f",
                    "UF_CRM_NEW": "kept"
                })
            );
            assert_eq!(Obstacle::from_wire(&back).unwrap(), o);
        }

        #[test]
        fn values_that_do_not_fit_stay_in_extra_and_empty_arrays_are_nothing() {
            let o = ObstacleOnly::from_wire(&json!({"id": 3, "user": [], "when": "yesterday"}))
                .unwrap();
            assert_eq!((o.id, o.user.is_none(), o.when), (3, true, None));
            assert_eq!(o.extra["when"], "yesterday");
            let nested = ObstacleOnly::from_wire(&json!({"id": 3, "user": {"ID": "x"}}));
            assert_eq!(nested.unwrap().extra["user"], json!({"ID": "x"}));
            let e = Vec::<ObstacleOnly>::from_wire(&json!([{"id": 1}, {"ID": 2}])).unwrap_err();
            assert_eq!(e.to_string(), "at `[1]`: missing field `id`");
            let empty = ObstacleOnly::from_wire(&json!([])).unwrap_err();
            assert_eq!(empty.message(), "missing field `id`");
        }

        #[test]
        fn secrets_stay_secret_inside_structs_lists_and_maps() {
            let req = ObstacleItemProductrowSet::new(true)
                .rows([Obstacle::new(1).token("s3cr3t-1")])
                .tokens(["s3cr3t-2"])
                .keys([("k", "s3cr3t-3")])
                .more([ObstacleFields::new("t").key("s3cr3t-4")]);
            let shown = format!("{req:?}");
            for s in ["s3cr3t-1", "s3cr3t-2", "s3cr3t-3", "s3cr3t-4"] {
                assert!(!shown.contains(s), "{s} in {shown}");
            }
            assert_eq!(req.wire_params().get("tokens"), Some(&json!(["s3cr3t-2"])));
            assert_eq!(
                req.wire_params().get("rows").unwrap()[0]["token"],
                "s3cr3t-1"
            );
            // The escape hatch replacing a typed secret does not make it printable.
            let req = ObstacleV2ChatMessageSend::new(1, ObstacleFields::new("t"))
                .bot_token("old")
                .extra("botToken", "s3cr3t-5");
            assert!(!format!("{req:?}").contains("s3cr3t-5"), "{req:?}");
            assert_eq!(req.wire_params().get("botToken"), Some(&json!("s3cr3t-5")));
        }

        #[test]
        fn names_like_the_generated_locals_still_work() {
            let req = ObstacleLocalGet::new(7, ObstacleLocal::new(8));
            assert_eq!(
                req.wire_params().to_value(),
                json!({"p": 7, "data": {"p": 8}})
            );
            let empty = ObstacleEmpty::from_wire(&json!({"x": 1})).unwrap();
            assert_eq!(empty.extra["x"], 1);
        }

        #[test]
        fn unknown_enum_values_are_kept() {
            let w = Weird::from_wire(&json!("BRAND_NEW")).unwrap();
            assert_eq!(w, Weird::Other("BRAND_NEW".into()));
            assert_eq!(w.to_wire(), json!("BRAND_NEW"));
            assert_eq!(
                Weird::from_wire(&json!("OTHER")).unwrap(),
                Weird::OtherValue
            );
            assert_eq!(Weird::from_wire(&json!(2)).unwrap(), Weird::V2);
        }

        #[test]
        fn requests_hold_wire_names_and_encoded_values() {
            let req = ObstacleTypeList::new(7)
                .r#type("x")
                .order_lower("asc")
                .select(["ID", "TITLE"])
                .order([("ID", "DESC")])
                .params(json!({"IMAGE": "Y"}));
            assert_eq!(
                req.wire_params().to_value(),
                json!({"entityTypeId": 7, "type": "x", "order": "asc",
                       "select": ["ID", "TITLE"], "ORDER": {"ID": "DESC"},
                       "params": {"IMAGE": "Y"}})
            );
            let when = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00+03:00").unwrap();
            let req = ObstacleItemProductrowSet::new(false)
                .send_value(Weird::Other("NEW".into()))
                ._1st(chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap())
                .self_(when.with_timezone(&chrono::Utc))
                .new_value([("a", 1u64)])
                .field_value(json!({"k": [1]}))
                .extra("EXTRA", 5);
            assert_eq!(
                req.wire_params().to_value(),
                json!({"UF_CRM_1476661442": "N", "send": "NEW", "1st": "2024-05-01",
                       "self": "2024-05-01T07:00:00+00:00", "new": {"a": 1},
                       "field": {"k": [1]}, "EXTRA": 5})
            );
            let fields = ObstacleFields::new("T")
                .opened(true)
                .contact_ids([1, 2])
                .r#type(Weird::Type)
                .param(4)
                .field("UF_CRM_5", "custom");
            let req = ObstacleV2ChatMessageSend::new(39, fields)
                .bot_token("s3cr3t")
                .dialog_id("chat1");
            assert_eq!(
                req.wire_params().to_value(),
                json!({"botId": 39, "fields": {"TITLE": "T", "OPENED": "Y", "CONTACT_IDS": [1, 2],
                       "type": "type", "param": 4, "UF_CRM_5": "custom"},
                       "botToken": "s3cr3t", "dialogId": "chat1"})
            );
            assert!(!format!("{req:?}").contains("s3cr3t"), "{req:?}");
        }

        #[test]
        fn every_method_carries_its_metadata() {
            let list = <ObstacleTypeList as Method>::META;
            assert_eq!(
                (list.name, list.group, list.access),
                ("obstacle.type.list", "obstacle", Access::Read)
            );
            let model = list.list.unwrap();
            assert_eq!(
                (model.items, model.id, model.fast_scan, model.start),
                ("", "ID", true, "start")
            );
            assert_eq!(model.order, "order", "the first param spelled like `order`");
            let set = <ObstacleItemProductrowSet as Method>::META;
            assert_eq!((set.access, set.batch), (Access::Write, false));
            assert_eq!(set.deprecated, Some("obstacle.v2.Chat.Message.send"));
            let send = <ObstacleV2ChatMessageSend as Method>::META;
            assert_eq!(
                send.requires,
                &[&["dialogId"][..], &["fromUserId", "toUserId"][..]]
            );
            assert!(send
                .check(ObstacleV2ChatMessageSend::new(1, ObstacleFields::new("t")).wire_params())
                .is_err());
            assert_eq!(send.query_bool, BoolForm::YesNo);
            assert_eq!(list.query_bool, BoolForm::OneZero, "the default");
            use super::obstacle_type::*;
            let events = <ObstacleEventsGet as Method>::META;
            assert_eq!(events.access, Access::ReadWithEffects);
            assert_eq!(events.list.unwrap().filter, "FILTER");
            assert_eq!(<ObstacleNextGet as Method>::META.api, ApiVersion::V3);
        }

        #[test]
        fn list_requests_know_their_item_type_and_stream() {
            use super::obstacle_type::ObstacleEventsGet;
            use crate::{ListMethod, ListStream};
            use std::any::TypeId;
            fn item<M: ListMethod>() -> TypeId
            where
                M::Item: 'static,
            {
                TypeId::of::<M::Item>()
            }
            assert_eq!(item::<ObstacleTypeList>(), TypeId::of::<Obstacle>());
            assert_eq!(item::<ObstacleItemList>(), TypeId::of::<ObstacleOnly>());
            assert_eq!(
                item::<ObstacleEventsGet>(),
                TypeId::of::<serde_json::Value>()
            );
            assert_eq!(
                <ObstacleItemList as Method>::META.list.unwrap().items,
                "items"
            );
            // A wire param named `stream` has the setter `stream_value`; `stream()` makes the
            // list stream of the request bound to a client.
            let client =
                crate::Client::webhook("https://example.bitrix24.com/rest/1/k3y/").unwrap();
            let req = client.obstacle().item_list().stream_value(true);
            assert_eq!(req.wire_params().get("stream"), Some(&json!(true)));
            let _stream: ListStream<ObstacleOnly> = req.stream();
            let _all = client.obstacle().type_list(7).collect_all();
        }
    }
}
