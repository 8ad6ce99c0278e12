// `imbot.message.add` returns the new message id (u64), not a String.
#![allow(deprecated)]

async fn reply(client: &bitrix24::Client) -> Result<String, bitrix24::Error> {
    client.imbot().message_add("Hello").dialog_id("chat42").await
}

fn main() {}
