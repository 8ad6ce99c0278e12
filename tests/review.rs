//! Regressions found by the review of the generated API: credentials printed by `Debug`,
//! tolerant decoding that changed values, checks made before sending.
#![allow(deprecated)] // the classic imbot.* methods are deprecated by Bitrix24

mod common;

use bitrix24::imbot::{ImbotMessageAdd, ImbotV2BotRegister, ImbotV2ChatMessageSend};
use bitrix24::types::{BotV2Properties, BotV2RegisterFields};

const SECRET: &str = "s3cr3t-credential-value";

/// Webhook callers authenticate bot calls with `CLIENT_ID` (classic) or `botToken` (2.0):
/// whoever holds it with the webhook acts as the bot, so a request's `Debug` (logs, panics,
/// `tracing` fields) must not show it.
#[test]
fn bot_credentials_are_not_printed_by_debug() {
    let shown = [
        format!("{:?}", ImbotMessageAdd::new("hi").client_id(SECRET)),
        format!(
            "{:?}",
            ImbotV2ChatMessageSend::new(1, "chat1").bot_token(SECRET)
        ),
        format!(
            "{:?}",
            ImbotV2BotRegister::new(
                BotV2RegisterFields::new("echo", BotV2Properties::new()).bot_token(SECRET)
            )
        ),
        format!(
            "{:?}",
            bitrix24::im::ImNotifySystemAdd::new(1, "hi").client_id(SECRET)
        ),
    ];
    for s in shown {
        assert!(!s.contains(SECRET), "{s}");
        assert!(s.contains("[redacted]"), "{s}");
    }
}

/// PHP sends `false` for "no value" (`"idle": false`, `"last_activity_date": false`,
/// `"phones": false` in `im.*` users). An optional string must read it as `None`, not as the
/// text `"N"`, and an optional struct as `None`, not as an empty struct.
#[test]
fn false_is_no_value_for_optional_strings_and_structs() {
    use bitrix24::types::ImDepartmentColleaguesListItem;
    use bitrix24::FromWire;
    let item = ImDepartmentColleaguesListItem::from_wire(&serde_json::json!({
        "id": 7, "name": "Anna", "idle": false, "last_activity_date": false,
        "status": "online", "phones": false
    }))
    .unwrap();
    assert_eq!(item.idle, None);
    assert_eq!(item.last_activity_date, None);
    assert_eq!(item.phones, None);
    assert_eq!(item.status.as_deref(), Some("online"));
}

/// A result that does not decode is shown as a body snippet in the error. The answer may
/// carry credentials of its own (SIP passwords of `voximplant.sip.get`, a bot's token): the
/// snippet must not show them, whatever the client knows about its own token.
#[tokio::test]
async fn decode_error_snippets_hide_credentials_of_the_answer() {
    use bitrix24::{Access, Method, MethodMeta, Params};
    use common::*;
    struct SipGet(Params);
    impl Method for SipGet {
        const META: &'static MethodMeta = &MethodMeta::new("voximplant.sip.get", Access::Read);
        type Output = Vec<u64>;
        fn params(&self) -> &Params {
            &self.0
        }
    }
    let server = wiremock::MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/voximplant.sip.get",
        json_response(
            200,
            format!(r#"{{"result":[{{"ID":"5","PASSWORD":"{SECRET}","botToken":"{SECRET}"}}]}}"#),
        ),
    )
    .await;
    mount_catch_all(&server).await;
    let client = bitrix24::Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    let e = client.call(&SipGet(Params::new())).await.unwrap_err();
    assert_eq!(e.kind(), bitrix24::ErrorKind::Decode, "{e:?}");
    assert!(e.body_snippet().unwrap().contains("PASSWORD"), "{e:?}");
    assert_no_secrets(&e, &[SECRET]);
}

/// A credential set through the untyped escape hatch (a method the spec gives no such param)
/// is not printed either: `Debug` hides values of parameters named like credentials.
#[test]
fn credentials_set_by_name_are_not_printed() {
    let req = bitrix24::user::UserCurrent::new()
        .param("botToken", SECRET)
        .param("password", SECRET);
    let shown = format!("{req:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let p = bitrix24::Params::from_value(serde_json::json!({"CLIENT_ID": SECRET})).unwrap();
    assert!(!format!("{p:?}").contains(SECRET));
}
