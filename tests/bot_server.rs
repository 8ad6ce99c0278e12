//! A bot server built on `bitrix24::axum::VerifiedEvent`, end to end over HTTP against the
//! fake portal (`bitrix24-testkit`): install, register, message, reply; and the events it
//! must refuse (wrong `application_token`, unknown `member_id`, after uninstall).
#![allow(deprecated)] // classic imbot.* methods are deprecated upstream

use std::sync::{Arc, OnceLock};

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    routing::post,
    Router,
};
use bitrix24::axum::VerifiedEvent;
use bitrix24::events::Event;
use bitrix24::types::BotProperties;
use bitrix24::{InstallationStore, MemoryInstallationStore, OAuthApp};
use bitrix24_testkit::{AppSpec, FakePortal, InstalledApp};
use serde_json::{json, Value};

#[derive(Clone)]
struct TestBot {
    store: Arc<dyn InstallationStore>,
    app: Arc<OnceLock<OAuthApp>>,
    oauth_server: String,
}

impl FromRef<TestBot> for Arc<dyn InstallationStore> {
    fn from_ref(bot: &TestBot) -> Self {
        bot.store.clone()
    }
}

/// Echoes every message. It answers before returning, so that `user_says` (which awaits the
/// delivery) returns after the reply; a production bot would answer 200 first.
async fn on_event(State(bot): State<TestBot>, verified: VerifiedEvent) -> StatusCode {
    if let Event::ImbotMessageAdd(message) = verified.event {
        let app = bot.app.get().unwrap().clone();
        let client = verified
            .installation
            .client(app, bot.store.clone(), Some(&bot.oauth_server))
            .unwrap();
        let params = &message.data.params;
        let bot_id: u64 = message.data.bot.keys().next().unwrap().parse().unwrap();
        client
            .imbot()
            .message_add(format!(
                "echo: {}",
                params.message.clone().unwrap_or_default()
            ))
            .dialog_id(params.dialog_id.clone().unwrap())
            .bot_id(bot_id)
            .await
            .unwrap();
    }
    StatusCode::OK
}

struct Harness {
    portal: FakePortal,
    store: Arc<MemoryInstallationStore>,
    app: InstalledApp,
    handler_url: String,
    bot_id: u64,
}

/// Portal, bot server, install (ONAPPINSTALL over HTTP), bot registration.
async fn setup() -> Harness {
    let portal = FakePortal::start().await;
    let store = Arc::new(MemoryInstallationStore::new());
    let bot = TestBot {
        store: store.clone(),
        app: Arc::new(OnceLock::new()),
        oauth_server: portal
            .oauth_token_url()
            .trim_end_matches("/oauth/token/")
            .to_owned(),
    };
    let router = Router::new()
        .route("/bot", post(on_event))
        .with_state(bot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler_url = format!("http://{}/bot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = portal
        .install_app(AppSpec::new().handler_url(&handler_url))
        .await;
    assert_eq!(app.install_event.as_ref().unwrap().status, Some(200));
    bot.app.set(app.app.clone()).unwrap();

    let installation = store.get(&app.member_id).await.unwrap().unwrap();
    assert_eq!(
        installation.application_token.expose(),
        app.application_token
    );
    let client = installation
        .client(app.app.clone(), store.clone(), Some(&bot.oauth_server))
        .unwrap();
    let bot_id = client
        .imbot()
        .register("echo", BotProperties::new().name("Echo"))
        .event_handler(&handler_url)
        .await
        .unwrap();
    Harness {
        portal,
        store,
        app,
        handler_url,
        bot_id,
    }
}

impl Harness {
    async fn post(&self, body: String) -> u16 {
        reqwest::Client::new()
            .post(&self.handler_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The decoded body of the last delivery of `event`.
    fn last_delivery(&self, event: &str) -> Value {
        self.portal
            .deliveries()
            .into_iter()
            .rev()
            .find(|d| d.event == event)
            .unwrap()
            .form()
    }

    fn dialog(&self) -> Vec<String> {
        self.portal
            .messages(&self.bot_id.to_string())
            .into_iter()
            .map(|m| m.text)
            .collect()
    }
}

#[tokio::test]
async fn install_register_message_reply_is_recorded() {
    let h = setup().await;
    h.portal.user_says(2, &h.bot_id.to_string(), "ping").await;
    assert_eq!(h.dialog(), ["ping", "echo: ping"]);
    let last = h.portal.messages(&h.bot_id.to_string()).pop().unwrap();
    assert_eq!(last.author_id, h.bot_id);
    assert!(h.portal.deliveries().iter().all(|d| d.status == Some(200)));

    // After an expiry the reply still arrives, with one refresh saved into the store.
    let before = h.store.get(&h.app.member_id).await.unwrap().unwrap();
    h.portal.expire_tokens();
    h.portal.user_says(2, &h.bot_id.to_string(), "pong").await;
    assert_eq!(h.dialog().last().unwrap(), "echo: pong");
    let refreshes = h
        .portal
        .token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token")
        .count();
    assert_eq!(refreshes, 1);
    let after = h.store.get(&h.app.member_id).await.unwrap().unwrap();
    assert_ne!(
        before.tokens.access_token.expose(),
        after.tokens.access_token.expose()
    );
}

#[tokio::test]
async fn an_event_with_a_wrong_application_token_is_rejected_and_nothing_is_called() {
    let h = setup().await;
    h.portal.user_says(2, &h.bot_id.to_string(), "ping").await;
    let mut event = h.last_delivery("ONIMBOTMESSAGEADD");
    let forged = "f".repeat(h.app.application_token.len());
    event["auth"]["application_token"] = json!(forged);
    event["data"]["PARAMS"]["MESSAGE"] = json!("forged");
    h.portal.clear_requests();

    assert_eq!(h.post(bitrix24::php::encode(&event)).await, 401);
    assert!(h.portal.requests().is_empty(), "{:?}", h.portal.requests());
    assert_eq!(h.dialog(), ["ping", "echo: ping"]);

    // The same event with the right token is accepted (the forgery was the only difference).
    event["auth"]["application_token"] = json!(h.app.application_token);
    assert_eq!(h.post(bitrix24::php::encode(&event)).await, 200);
    assert_eq!(h.dialog().last().unwrap(), "echo: forged");
}

#[tokio::test]
async fn an_event_for_an_unknown_member_id_is_rejected() {
    let h = setup().await;
    h.portal.user_says(2, &h.bot_id.to_string(), "ping").await;
    let mut event = h.last_delivery("ONIMBOTMESSAGEADD");
    event["auth"]["member_id"] = json!("0123456789abcdef0123456789abcdef");
    h.portal.clear_requests();

    assert_eq!(h.post(bitrix24::php::encode(&event)).await, 401);
    assert!(h.portal.requests().is_empty());
    assert_eq!(h.dialog().len(), 2);

    // No auth at all, and a body that is not an event.
    event.as_object_mut().unwrap().remove("auth");
    assert_eq!(h.post(bitrix24::php::encode(&event)).await, 401);
    assert_eq!(h.post("not an event".into()).await, 400);
    assert!(h.portal.requests().is_empty());
}

#[tokio::test]
async fn a_forged_install_does_not_replace_the_stored_installation() {
    let h = setup().await;
    let mut install = h.last_delivery("ONAPPINSTALL");
    install["auth"]["application_token"] = json!("f".repeat(32));
    install["auth"]["access_token"] = json!("attacker-token");
    assert_eq!(h.post(bitrix24::php::encode(&install)).await, 401);
    let stored = h.store.get(&h.app.member_id).await.unwrap().unwrap();
    assert_eq!(stored.application_token.expose(), h.app.application_token);
    assert_ne!(stored.tokens.access_token.expose(), "attacker-token");
}

#[tokio::test]
async fn after_uninstall_messages_are_rejected() {
    let h = setup().await;
    let uninstall = json!({
        "event": "ONAPPUNINSTALL",
        "event_handler_id": "7",
        "data": {"LANGUAGE_ID": "en", "CLEAN": "0"},
        "ts": "1787223142",
        "auth": {
            "domain": "example.bitrix24.com",
            "member_id": h.app.member_id,
            "application_token": h.app.application_token,
        },
    });
    // A forged uninstall removes nothing.
    let mut forged = uninstall.clone();
    forged["auth"]["application_token"] = json!("f".repeat(32));
    assert_eq!(h.post(bitrix24::php::encode(&forged)).await, 401);
    assert!(h.store.get(&h.app.member_id).await.unwrap().is_some());

    assert_eq!(h.post(bitrix24::php::encode(&uninstall)).await, 200);
    assert!(h.store.get(&h.app.member_id).await.unwrap().is_none());

    h.portal.clear_requests();
    h.portal
        .user_says(2, &h.bot_id.to_string(), "anyone?")
        .await;
    let delivery = h.portal.deliveries().pop().unwrap();
    assert_eq!(delivery.event, "ONIMBOTMESSAGEADD");
    assert_eq!(delivery.status, Some(401));
    assert!(h.portal.requests().is_empty());
    assert_eq!(h.dialog(), ["anyone?"]);
}
