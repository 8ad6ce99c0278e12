//! The README's "test your own bot" example, verbatim: keep the two in sync.
#![allow(deprecated)] // classic imbot.* methods are deprecated upstream

use axum::{body::Bytes, routing::post, Router};
use bitrix24::{types::BotProperties, Client, OAuthApp, Tokens};
use bitrix24_testkit::{AppSpec, FakePortal};

/// The bot under test: answers every message with its length. Parses the event exactly as it
/// would in production (PHP form body), replies with the bot's own tokens from the event.
async fn bot_handler(app: OAuthApp, body: Bytes) -> &'static str {
    let event = bitrix24::php::decode(&body, Default::default()).unwrap();
    if event["event"] != "ONIMBOTMESSAGEADD" {
        return "ignored";
    }
    let (bot_id, bot) = event["data"]["BOT"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let tokens = Tokens::new(
        bot["access_token"].as_str().unwrap(),
        bot["refresh_token"].as_str().unwrap(),
        bot["client_endpoint"].as_str().unwrap(),
    )
    .server_endpoint(bot["server_endpoint"].as_str().unwrap());
    let client = Client::builder().oauth(app, tokens).build().unwrap();
    let params = &event["data"]["PARAMS"];
    let text = params["MESSAGE"].as_str().unwrap();
    client
        .imbot()
        .message_add(format!("{} characters", text.len()))
        .dialog_id(params["DIALOG_ID"].as_str().unwrap())
        .bot_id(bot_id.parse::<u64>().unwrap())
        .await
        .unwrap();
    "ok"
}

#[tokio::test]
async fn my_bot_answers_with_the_length() {
    // 1. A portal, and our app installed on it.
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;

    // 2. The bot's HTTP handler on a local port.
    let oauth_app = app.app.clone();
    let router = Router::new().route(
        "/bot",
        post(move |body: Bytes| bot_handler(oauth_app.clone(), body)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler_url = format!("http://{}/bot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // 3. Register the bot, as the app's installer would.
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    let bot_id = client
        .imbot()
        .register("length_bot", BotProperties::new().name("Length"))
        .event_handler(&handler_url)
        .await
        .unwrap();

    // 4. User 1 writes to the bot; the event is delivered (and answered) before this returns.
    portal.user_says(1, &bot_id.to_string(), "hello").await;

    // 5. Read back what the bot said.
    let dialog = portal.messages(&bot_id.to_string());
    assert_eq!(dialog.last().unwrap().author_id, bot_id);
    assert_eq!(dialog.last().unwrap().text, "5 characters");
}
