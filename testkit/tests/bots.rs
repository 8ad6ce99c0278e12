//! Chat bots and events: registration, ONIMBOTMESSAGEADD as PROTOCOL.md 7.8 and the fixture,
//! replies read back, ONIMBOTJOINCHAT, ONIMBOTDELETE, ONAPPINSTALL, event.bind, imbot.v2.

#![allow(deprecated)]

mod common;

use bitrix24::types::{BotProperties, Keyboard, KeyboardButton};
use bitrix24::Client;
use bitrix24_testkit::{AppSpec, FakePortal};
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn onappinstall_is_delivered_like_the_fixture() {
    let sink = EventSink::start().await;
    let portal = FakePortal::start().await;
    let app = portal
        .install_app(AppSpec::default().handler_url(sink.url("install")))
        .await;
    let got = sink.on("/install");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content_type, "application/x-www-form-urlencoded");
    let form = got[0].form();
    let want = bitrix24::php::decode(
        fixture_text("event-onappinstall.form-urlencoded.txt")
            .trim()
            .as_bytes(),
        Default::default(),
    )
    .unwrap();
    let (mut g, mut w) = (Vec::new(), Vec::new());
    leaves("", &form, &mut g);
    leaves("", &want, &mut w);
    let keys = |v: &[(String, Value)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&g), keys(&w), "same keys in the same order");
    assert!(g.iter().all(|(_, v)| v.is_string()));
    assert_eq!(
        form["auth"]["application_token"],
        app.application_token.as_str()
    );
    assert_eq!(
        form["auth"]["refresh_token"],
        app.tokens.refresh_token.expose()
    );
    assert_eq!(app.install_event.unwrap().status, Some(200));
}

#[tokio::test]
async fn a_bot_hears_a_user_and_its_reply_can_be_read_back() {
    let sink = EventSink::start().await;
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    let bot_id = client
        .imbot()
        .register("helpdesk_bot", BotProperties::new().name("Helpdesk"))
        .event_handler(sink.url("bot"))
        .await
        .unwrap();
    let bots = client.imbot().bot_list().await.unwrap();
    assert_eq!(
        bots[&bot_id.to_string()].code.as_deref(),
        Some("helpdesk_bot")
    );

    let message_id = portal
        .user_says(
            1,
            &bot_id.to_string(),
            "Hello bot, what is the status of order #4521?",
        )
        .await;
    let got = sink.on("/bot");
    assert_eq!(got.len(), 1);
    let form = got[0].form();
    assert_eq!(form["event"], "ONIMBOTMESSAGEADD");
    // Same key paths as the fixture (bot id and values differ), every leaf a string.
    let want = bitrix24::php::decode(
        fixture_text("event-onimbotmessageadd.form-urlencoded.txt")
            .trim()
            .as_bytes(),
        Default::default(),
    )
    .unwrap();
    let normalize = |v: &Value| {
        let mut out = Vec::new();
        leaves("", v, &mut out);
        out.into_iter()
            .map(|(k, v)| {
                assert!(v.is_string(), "{k} is not a string");
                k.replace(&format!("[BOT][{bot_id}]"), "[BOT][id]")
                    .replace("[BOT][41]", "[BOT][id]")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(normalize(&form), normalize(&want));
    let params = &form["data"]["PARAMS"];
    assert_eq!(params["MESSAGE_ID"], message_id.to_string());
    assert_eq!(params["DIALOG_ID"], "1");
    assert_eq!(params["TO_USER_ID"], bot_id.to_string());
    let bot_auth = &form["data"]["BOT"][bot_id.to_string()];
    assert_eq!(bot_auth["AUTH"], {
        let mut a = bot_auth.clone();
        for k in ["AUTH", "BOT_ID", "BOT_CODE"] {
            a.as_object_mut().unwrap().remove(k);
        }
        a
    });
    assert_eq!(
        form["auth"]["application_token"],
        app.application_token.as_str()
    );

    // The bot answers with the tokens from the event, as a real bot does.
    let tokens = bitrix24::Tokens::new(
        bot_auth["access_token"].as_str().unwrap(),
        bot_auth["refresh_token"].as_str().unwrap(),
        bot_auth["client_endpoint"].as_str().unwrap(),
    )
    .server_endpoint(bot_auth["server_endpoint"].as_str().unwrap());
    let bot_client = Client::builder()
        .oauth(app.app.clone(), tokens)
        .build()
        .unwrap();
    let keyboard = Keyboard::new(vec![KeyboardButton::new().text("Track").command("track")]);
    let reply = bot_client
        .imbot()
        .message_add("Order #4521 ships today")
        .dialog_id(params["DIALOG_ID"].as_str().unwrap())
        .bot_id(bot_id)
        .keyboard(keyboard)
        .await
        .unwrap();
    let dialog = portal.messages("1");
    assert_eq!(dialog.len(), 2);
    assert_eq!(
        (dialog[1].id, dialog[1].author_id, dialog[1].text.as_str()),
        (reply, bot_id, "Order #4521 ships today")
    );
    assert_eq!(
        dialog[1].keyboard.as_ref().unwrap()["BUTTONS"][0]["COMMAND"],
        "track"
    );
    // Update, like, delete.
    let base = portal.rest_url();
    let token = bot_auth["access_token"].as_str().unwrap();
    let (_, r) = post_json(&format!("{base}imbot.message.update"), json!({"auth": token, "BOT_ID": bot_id, "MESSAGE_ID": reply, "MESSAGE": "Ships tomorrow", "KEYBOARD": "N"})).await;
    assert_eq!(r["result"], true);
    let (_, r) = post_json(
        &format!("{base}imbot.message.like"),
        json!({"auth": token, "BOT_ID": bot_id, "MESSAGE_ID": message_id}),
    )
    .await;
    assert_eq!(r["result"], true);
    let m = portal.messages(&bot_id.to_string());
    assert_eq!(
        (m[1].text.as_str(), m[1].keyboard.clone()),
        ("Ships tomorrow", None)
    );
    assert!(m[0].likes.contains(&bot_id));
    let (_, r) = post_json(
        &format!("{base}imbot.message.delete"),
        json!({"auth": token, "BOT_ID": bot_id, "MESSAGE_ID": reply}),
    )
    .await;
    assert_eq!(r["result"], true);
    assert!(portal.messages("1")[1].deleted);
    // Another app cannot touch this bot.
    let other = portal.install_app(AppSpec::default()).await;
    let (status, r) = post_json(&format!("{base}imbot.message.add"), json!({"auth": other.tokens.access_token.expose(), "BOT_ID": bot_id, "DIALOG_ID": "1", "MESSAGE": "x"})).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("BOT_ID_ERROR")));
}

#[tokio::test]
async fn join_delete_group_mentions_and_webhook_bots() {
    let sink = EventSink::start().await;
    let portal = FakePortal::start().await;
    let hook = portal.webhook_url(1);
    // A bot registered through a webhook needs CLIENT_ID on every call.
    let (status, r) = post_json(
        &format!("{hook}imbot.register"),
        json!({"CODE": "x", "EVENT_HANDLER": sink.url("h"), "PROPERTIES": {"NAME": "X"}}),
    )
    .await;
    assert_eq!((status, r["error"].as_str()), (403, Some("ACCESS_DENIED")));
    let (_, r) = post_json(&format!("{hook}imbot.register"), json!({"CODE": "echo", "CLIENT_ID": "my-bot", "EVENT_MESSAGE_ADD": sink.url("add"), "EVENT_WELCOME_MESSAGE": sink.url("join"), "EVENT_BOT_DELETE": sink.url("delete"), "PROPERTIES": {"NAME": "Echo"}})).await;
    let bot_id = r["result"].as_u64().unwrap();
    portal.open_dialog(2, bot_id).await;
    let join = sink.on("/join");
    assert_eq!(join.len(), 1);
    let f = join[0].form();
    assert_eq!(f["event"], "ONIMBOTJOINCHAT");
    assert_eq!(f["data"]["PARAMS"]["DIALOG_ID"], "2");
    assert_eq!(f["data"]["USER"]["ID"], "2");
    assert!(f["auth"]["application_token"].is_string());
    assert!(
        f["auth"].get("access_token").is_none(),
        "webhook bots get no tokens"
    );
    // Group chat: a B bot hears only mentions.
    let chat = portal.create_chat(3, "Support", &[bot_id, 4]).await;
    assert_eq!(sink.on("/join").len(), 2);
    portal
        .user_says(4, &format!("chat{chat}"), "just chatting")
        .await;
    assert_eq!(sink.on("/add").len(), 0);
    portal
        .user_says(
            4,
            &format!("chat{chat}"),
            &format!("[USER={bot_id}]Echo[/USER] ping"),
        )
        .await;
    let add = sink.on("/add");
    assert_eq!(add.len(), 1);
    let p = add[0].form()["data"]["PARAMS"].clone();
    assert_eq!(
        (
            p["DIALOG_ID"].as_str(),
            p["MESSAGE"].as_str(),
            p["CHAT_TYPE"].as_str()
        ),
        (Some(&*format!("chat{chat}")), Some("ping"), Some("C"))
    );
    assert_eq!(p["MENTIONED_LIST"][bot_id.to_string()], bot_id.to_string());
    // The bot answers in the chat, then leaves.
    let (_, r) = post_json(
        &format!("{hook}imbot.message.add"),
        json!({"CLIENT_ID": "my-bot", "DIALOG_ID": format!("chat{chat}"), "MESSAGE": "pong"}),
    )
    .await;
    assert!(r["result"].is_u64());
    assert_eq!(
        portal.messages(&format!("chat{chat}")).last().unwrap().text,
        "pong"
    );
    let (_, r) = post_json(
        &format!("{hook}imbot.chat.user.list"),
        json!({"CLIENT_ID": "my-bot", "CHAT_ID": chat}),
    )
    .await;
    assert_eq!(r["result"], json!([3, bot_id, 4]));
    // A human's im.message.add reaches the bot too.
    let (_, r) = post_json(
        &format!("{}im.message.add", portal.webhook_url(2)),
        json!({"DIALOG_ID": bot_id.to_string(), "MESSAGE": "hi from REST"}),
    )
    .await;
    assert!(r["result"].is_u64());
    assert_eq!(sink.on("/add").len(), 2);
    // Unregister: ONIMBOTDELETE with BOT_ID and BOT_CODE.
    let (_, r) = post_json(
        &format!("{hook}imbot.unregister"),
        json!({"CLIENT_ID": "my-bot", "BOT_ID": bot_id}),
    )
    .await;
    assert_eq!(r["result"], true);
    let del = sink.on("/delete");
    assert_eq!(del.len(), 1);
    let f = del[0].form();
    assert_eq!(
        (
            f["event"].as_str(),
            f["data"]["BOT_ID"].clone(),
            f["data"]["BOT_CODE"].as_str()
        ),
        (
            Some("ONIMBOTDELETE"),
            json!(bot_id.to_string()),
            Some("echo")
        )
    );
    assert!(portal.bots().is_empty());
}

#[tokio::test]
async fn event_bind_get_unbind_and_crm_events() {
    let sink = EventSink::start().await;
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let base = portal.rest_url();
    let token = app.tokens.access_token.expose();
    let (status, r) = post_json(
        &format!("{}event.bind", portal.webhook_url(1)),
        json!({"event": "ONCRMDEALADD", "handler": sink.url("deal")}),
    )
    .await;
    assert_eq!(
        (status, r["error"].as_str()),
        (403, Some("WRONG_AUTH_TYPE"))
    );
    let (status, r) = post_json(
        &format!("{base}event.bind"),
        json!({"auth": token, "event": "ONNOSUCHTHING", "handler": sink.url("x")}),
    )
    .await;
    assert_eq!(
        (status, r["error"].as_str()),
        (400, Some("ERROR_EVENT_NOT_FOUND"))
    );
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    assert!(client
        .event()
        .bind("ONCRMDEALADD")
        .handler(sink.url("deal"))
        .await
        .unwrap());
    let handlers = client.event().get().await.unwrap();
    assert_eq!(
        (handlers[0].event.as_str(), handlers[0].handler.as_deref()),
        ("ONCRMDEALADD", Some(&*sink.url("deal")))
    );
    let (_, r) = post_json(
        &format!("{base}crm.deal.add"),
        json!({"auth": token, "fields": {"TITLE": "From test"}}),
    )
    .await;
    let id = r["result"].as_u64().unwrap();
    let got = sink.on("/deal");
    assert_eq!(got.len(), 1);
    let f = got[0].form();
    assert_eq!(
        (f["event"].as_str(), f["data"]["FIELDS"]["ID"].clone()),
        (Some("ONCRMDEALADD"), json!(id.to_string()))
    );
    assert_eq!(
        f["auth"]["application_token"],
        app.application_token.as_str()
    );
    let unbound = client
        .event()
        .unbind("ONCRMDEALADD")
        .handler(sink.url("deal"))
        .await
        .unwrap();
    assert_eq!(unbound.count, 1);
    post_json(
        &format!("{base}crm.deal.add"),
        json!({"auth": token, "fields": {"TITLE": "Unheard"}}),
    )
    .await;
    assert_eq!(sink.on("/deal").len(), 1);
}

#[tokio::test]
async fn imbot_v2_fetch_mode_register_send_and_event_get() {
    let portal = FakePortal::start().await;
    let hook = portal.webhook_url(1);
    let fields = json!({"fields": {"code": "v2bot", "botToken": "tok", "properties": {"name": "Vee"}, "eventMode": "fetch"}});
    let (_, r) = post_json(&format!("{hook}imbot.v2.Bot.register"), fields.clone()).await;
    let bot_id = r["result"]["bot"]["id"].as_u64().unwrap();
    assert_eq!(r["result"]["users"][0]["bot"], true);
    let (_, again) = post_json(&format!("{hook}imbot.v2.Bot.register"), fields).await;
    assert_eq!(
        again["result"]["bot"]["id"], bot_id,
        "register is idempotent per code"
    );
    portal.user_says(2, &bot_id.to_string(), "hello v2").await;
    let (_, events) = post_json(
        &format!("{hook}imbot.v2.Event.get"),
        json!({"botId": bot_id, "botToken": "tok", "offset": 0}),
    )
    .await;
    let e = &events["result"]["events"][0];
    assert_eq!(
        (e["type"].as_str(), e["data"]["message"]["text"].as_str()),
        (Some("ONIMBOTV2MESSAGEADD"), Some("hello v2"))
    );
    let next = events["result"]["nextOffset"].as_u64().unwrap();
    let (_, r) = post_json(&format!("{hook}imbot.v2.Chat.Message.send"), json!({"botId": bot_id, "botToken": "tok", "dialogId": "2", "fields": {"message": "hi back"}})).await;
    let mid = r["result"]["id"].as_u64().unwrap();
    assert_eq!(portal.messages("2").last().unwrap().text, "hi back");
    let (_, r) = post_json(&format!("{hook}imbot.v2.Chat.Message.update"), json!({"botId": bot_id, "botToken": "tok", "messageId": mid, "fields": {"message": "edited"}})).await;
    assert_eq!(r["result"]["result"], true);
    let (_, r) = post_json(
        &format!("{hook}imbot.v2.Chat.Message.get"),
        json!({"botId": bot_id, "botToken": "tok", "messageId": mid}),
    )
    .await;
    assert_eq!(r["result"]["message"]["text"], "edited");
    let (_, events) = post_json(
        &format!("{hook}imbot.v2.Event.get"),
        json!({"botId": bot_id, "botToken": "tok", "offset": next}),
    )
    .await;
    assert_eq!(events["result"]["events"], json!([]));
    let (_, list) = post_json(
        &format!("{hook}imbot.v2.Bot.list"),
        json!({"botToken": "tok"}),
    )
    .await;
    assert_eq!(list["result"]["bots"][0]["code"], "v2bot");
    let (_, r) = post_json(
        &format!("{hook}imbot.v2.Chat.Message.delete"),
        json!({"botId": bot_id, "botToken": "tok", "messageId": mid}),
    )
    .await;
    assert_eq!(r["result"]["result"], true);
    let (_, r) = post_json(
        &format!("{hook}imbot.v2.Bot.unregister"),
        json!({"botId": bot_id, "botToken": "tok"}),
    )
    .await;
    assert_eq!(r["result"]["result"], true);
}
