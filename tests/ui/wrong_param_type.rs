// BOT_ID is an id (u64), not a string.
#![allow(deprecated)]

async fn reply(client: &bitrix24::Client) -> Result<u64, bitrix24::Error> {
    client.imbot().message_add("Hello").dialog_id("chat42").bot_id("seven").await
}

fn main() {}
