// There is no `imbot.message.send`; the spec only has what methods.toml declares.

async fn reply(client: &bitrix24::Client) -> Result<u64, bitrix24::Error> {
    client.imbot().message_send("chat42", "Hello").await
}

fn main() {}
