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
