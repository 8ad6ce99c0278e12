// `imbot.message.add` requires DIALOG_ID and MESSAGE.
#![allow(deprecated)]

async fn reply(client: &bitrix24::Client) -> Result<u64, bitrix24::Error> {
    client.imbot().message_add("chat42").await
}

fn main() {}
