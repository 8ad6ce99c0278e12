// `imbot.message.add` returns the new message id (u64), not a String.
#![allow(deprecated)]

async fn reply(client: &bitrix24::Client) -> Result<String, bitrix24::Error> {
    client.imbot().message_add("chat42", "Hello").await
}

fn main() {}
