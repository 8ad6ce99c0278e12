//! Regressions found by the review of the generated API: credentials printed by `Debug`,
//! tolerant decoding that changed values, checks made before sending.

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
