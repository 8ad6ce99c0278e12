//! Incoming events: every shared fixture event parses into the right typed variant with the
//! right values, form and JSON bodies alike; unknown events are kept; bad bodies are typed
//! errors; nothing secret shows in `Debug`.

mod common;

use bitrix24::events::{Event, EventError, Limits};
use bitrix24::php::FormError;
use common::fixture;

const FORM: &str = "application/x-www-form-urlencoded";

fn message_add() -> Event {
    Event::parse(
        FORM,
        fixture("event-onimbotmessageadd.form-urlencoded.txt")
            .trim_end()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn onimbotmessageadd_is_typed_with_the_fixture_values() {
    let event = message_add();
    assert_eq!(event.code(), "ONIMBOTMESSAGEADD");
    let Event::ImbotMessageAdd(e) = &event else {
        panic!("wrong variant: {event:?}")
    };
    assert_eq!((e.event_handler_id, e.ts), (Some(88), Some(1787219700)));
    let p = &e.data.params;
    assert_eq!(
        p.message.as_deref(),
        Some("Hello bot, what is the status of order #4521?")
    );
    assert_eq!(p.dialog_id.as_deref(), Some("17"));
    assert_eq!(
        (p.from_user_id, p.to_user_id, p.message_id),
        (Some(17), Some(41), Some(55120))
    );
    assert_eq!(p.system, Some(false));
    assert_eq!(p.chat_type.as_deref(), Some("P"));
    let user = e.data.user.as_ref().unwrap();
    assert_eq!(
        (user.id, user.name.as_deref()),
        (Some(17), Some("Alex Example"))
    );
    assert_eq!(user.work_position, None, "an empty string is absent");

    // The bot's own token set, to answer as the bot.
    let bot = &e.data.bot["41"];
    assert_eq!(
        (bot.bot_id, bot.bot_code.as_deref()),
        (Some(41), Some("helpdesk_bot"))
    );
    assert_eq!(
        bot.access_token.as_ref().unwrap().expose(),
        "7kfamvr8n4yujrsorvz0bq06k4xtjcodv08x0t2d"
    );
    assert_eq!(bot.auth.as_ref().unwrap().user_id, Some(41));
    // And the human user's, from `auth`.
    let auth = event.auth().unwrap();
    assert_eq!(auth.user_id, Some(17));
    assert_eq!(
        auth.application_token.as_ref().unwrap().expose(),
        "32a0973b65c0ad0c4ac528a2cee6c6a2"
    );
    let tokens = auth.tokens().expect("the user's tokens build a client");
    assert_eq!(
        tokens.refresh_token.expose(),
        "ldx2qnu4yjdcsjwvfhys8jb5c8cv1gss2qg7jixa"
    );
    assert_eq!(
        tokens.client_endpoint,
        "https://example-portal.bitrix24.com/rest/"
    );
    assert_eq!(
        tokens.member_id.as_deref(),
        Some("a01d276d6e1de6f73e98e1cb4926b0e9")
    );
}

#[test]
fn a_json_body_gives_the_same_event() {
    let json = fixture("event-onimbotmessageadd.as-json.json");
    assert_eq!(
        Event::parse("application/json", json.as_bytes()).unwrap(),
        message_add()
    );
    // A JSON body sent without a JSON content type is recognised too.
    assert_eq!(Event::parse(FORM, json.as_bytes()).unwrap(), message_add());
}

#[test]
fn onappinstall_is_typed_and_carries_the_installation() {
    let body = fixture("event-onappinstall.form-urlencoded.txt");
    let event = Event::parse(FORM, body.trim_end().as_bytes()).unwrap();
    let Event::AppInstall(e) = &event else {
        panic!("wrong variant: {event:?}")
    };
    assert_eq!(e.data.version, Some(1));
    assert_eq!((e.data.active, e.data.installed), (Some(true), Some(true)));
    assert_eq!(e.data.language_id.as_deref(), Some("en"));
    let auth = e.auth.as_ref().unwrap();
    assert_eq!(
        auth.member_id.as_deref(),
        Some("a01d276d6e1de6f73e98e1cb4926b0e9")
    );
    assert_eq!(auth.scope.as_deref(), Some("imbot,im,crm"));
    let tokens = auth.tokens().unwrap();
    assert_eq!(
        tokens.access_token.expose(),
        "ld4g7ckjnfd2233j62i4jdlrxidk5fagytswnboc"
    );
    assert_eq!(tokens.expires, Some(1787222600));
}

#[test]
fn events_without_tokens_and_unknown_events() {
    let e = Event::parse(FORM, b"event=ONAPPUNINSTALL&data[LANGUAGE_ID]=en&data[CLEAN]=1&auth[application_token]=abc123def456&auth[member_id]=m").unwrap();
    let Event::AppUninstall(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.data.clean, Some(true));
    assert!(
        e.auth().unwrap().tokens().is_none(),
        "uninstall carries no tokens"
    );

    let e = Event::parse(FORM, b"event=onCrmDealAdd&data[FIELDS][ID]=7405&ts=1").unwrap();
    let Event::Unknown(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.event, "ONCRMDEALADD");
    assert_eq!(u.raw["data"]["FIELDS"]["ID"], "7405");
    assert_eq!(e.code(), "ONCRMDEALADD");
}

#[test]
fn bad_bodies_are_typed_errors() {
    let big = vec![b'a'; 2 * 1024 * 1024];
    assert!(matches!(
        Event::parse(FORM, &big),
        Err(EventError::Form(FormError::TooLarge { .. }))
    ));
    let deep = format!("event=X&a{}=1", "[x]".repeat(100));
    assert!(matches!(
        Event::parse(FORM, deep.as_bytes()),
        Err(EventError::Form(FormError::TooDeep { .. }))
    ));
    assert_eq!(
        Event::parse(FORM, b"data[x]=1"),
        Err(EventError::MissingEvent)
    );
    assert!(matches!(
        Event::parse("application/json", b"{\"event\":"),
        Err(EventError::Json(_))
    ));
    assert!(matches!(
        Event::parse("application/json", b"[1]"),
        Err(EventError::Json(_))
    ));
    let limits = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    assert!(Event::parse_with(FORM, &[b'x'; 65], limits).is_err());

    let wrong = Event::parse(
        FORM,
        b"event=ONIMBOTDELETE&data[BOT_ID]=s3cr3t-not-a-number",
    )
    .unwrap_err();
    let EventError::Decode { event, path, .. } = &wrong else {
        panic!("{wrong:?}")
    };
    assert_eq!(
        (event.as_str(), path.as_str()),
        ("ONIMBOTDELETE", "data.BOT_ID")
    );
    assert!(
        !wrong.to_string().contains("s3cr3t"),
        "the value is not quoted: {wrong}"
    );
}

#[test]
fn debug_output_shows_no_tokens() {
    let shown = format!("{:?}", message_add());
    for secret in [
        "7kfamvr8n4yujrsorvz0bq06k4xtjcodv08x0t2d",
        "mrtfoi25pws7vza73obdxjg4wo7giwk20u0tkmia",
        "9qaxupgaoemevkga7ifyfam6010rc3gz7qu38bhv",
        "32a0973b65c0ad0c4ac528a2cee6c6a2",
    ] {
        assert!(!shown.contains(secret), "Debug shows {secret}");
    }
    let unknown = Event::parse(FORM, b"event=X&auth[access_token]=tok-123456789").unwrap();
    assert!(!format!("{unknown:?}").contains("tok-123456789"));
}
