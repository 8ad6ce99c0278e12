//! Calls a real Bitrix24 portal through an incoming webhook.
//!
//! Needs `B24_WEBHOOK_URL`: an incoming webhook of your portal, created under
//! Developer resources -> Other -> Incoming webhook, with the `user` scope (add `im` to send a
//! message), e.g. `https://your-portal.bitrix24.com/rest/1/abcdef0123456789/`.
//! Optionally `B24_DIALOG_ID` (`"1"` for a private chat with user 1, `"chat42"` for a group
//! chat) to send one message there with `im.message.add`.
//!
//! ```sh
//! B24_WEBHOOK_URL=https://your-portal.bitrix24.com/rest/1/abcdef0123456789/ \
//!     cargo run --example quickstart
//! ```

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("B24_WEBHOOK_URL") else {
        eprintln!(
            "quickstart calls a real Bitrix24 portal and needs B24_WEBHOOK_URL, an incoming webhook \
             URL with the `user` scope, e.g.\n\n  B24_WEBHOOK_URL=https://your-portal.bitrix24.com/rest/1/abcdef0123456789/ \
             cargo run --example quickstart\n\nSet B24_DIALOG_ID too (e.g. 1 or chat42, webhook with the `im` scope) to send a message."
        );
        return ExitCode::from(2);
    };
    match run(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `Display` is `method: CODE: description`; it never contains the webhook code.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str) -> Result<(), bitrix24::Error> {
    let client = bitrix24::Client::webhook(url)?;

    // Typed call: the result is a `bitrix24::types::User`.
    let me = client.user().current().await?;
    println!(
        "connected as user {} ({} {})",
        me.id,
        me.name.as_deref().unwrap_or(""),
        me.last_name.as_deref().unwrap_or("")
    );

    // Granted scopes of this webhook: `scope` returns a list of strings.
    let scopes = client.basic().scope().await?;
    println!("scopes: {}", scopes.join(", "));

    if let Ok(dialog_id) = std::env::var("B24_DIALOG_ID") {
        let id = client
            .im()
            .message_add(dialog_id)
            .message("Hello from the bitrix24 Rust SDK")
            .await?;
        println!("sent message {id}");
    }

    // The untyped escape hatch, on the same path: any method, JSON in, JSON out.
    let raw = client
        .call_raw("server.time", serde_json::json!({}))
        .await?;
    println!("portal time: {}", raw.result);
    Ok(())
}
