// `imbot.message.add` requires MESSAGE (DIALOG_ID, or FROM_USER_ID with TO_USER_ID, is
// checked before sending: see tests/typed_results.rs).
#![allow(deprecated)]

async fn reply(client: &bitrix24::Client) -> Result<u64, bitrix24::Error> {
    client.imbot().message_add().dialog_id("chat42").await
}

fn main() {}
