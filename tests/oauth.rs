//! OAuth clients: `auth` in the body, wire encoding, refresh-and-retry, single flight, refresh
//! failures, no refresh where the protocol forbids it, portal renames.

#![allow(deprecated)] // the classic imbot.* methods are deprecated by Bitrix24

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitrix24::types::{BotColor, BotProperties};
use bitrix24::{BoxFuture, Client, ErrorKind, StoreError, TokenStore, Tokens};
use common::*;
use serde_json::json;
use tokio::sync::oneshot;
use wiremock::{MockServer, Request, ResponseTemplate};

/// An OAuth server that must not be called (only the catch-all is mounted).
async fn idle_oauth_server() -> MockServer {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    server
}

/// A portal answering `POST /rest/{method}` with `response`.
async fn portal(method: &str, response: impl wiremock::Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    mount_post(&server, &format!("/rest/{method}"), response).await;
    mount_catch_all(&server).await;
    server
}

/// The probe's log as short strings: `api:<token>`, `save:<access token>`, `load`.
fn timeline(probe: &Probe) -> Vec<String> {
    probe
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Api { auth, .. } => format!("api:{}", auth.unwrap_or_default()),
            Event::Save { tokens, .. } => format!("save:{}", tokens.access_token.expose()),
            Event::Load => "load".to_owned(),
        })
        .collect()
}

fn expired() -> ResponseTemplate {
    fixture_response("error-expired-token.401.json")
}

// ---------------------------------------------------------------------------------------
// Request shape
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_travels_in_the_json_body_and_values_use_the_spec_wire_format() {
    let api = portal(
        "imbot.message.add",
        json_response(200, r#"{"result":9001}"#),
    )
    .await;
    let oauth = idle_oauth_server().await;
    let client = Client::oauth(app(), old_tokens(&api, &oauth)).unwrap();

    let id = client
        .imbot()
        .message_add("hi")
        .dialog_id("chat42")
        .system(true)
        .url_preview(false)
        .bot_id(7)
        .await
        .unwrap();
    assert_eq!(id, 9001);
    let id = client
        .imbot()
        .message_add("plain")
        .dialog_id("17")
        .system(false)
        .url_preview(true)
        .skip_connector(true)
        .await
        .unwrap();
    assert_eq!(id, 9001);

    let reqs = requests(&api).await;
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_rest_post(r, "/rest/imbot.message.add");
        let raw = String::from_utf8(r.body.clone()).unwrap();
        for secret in [CLIENT_SECRET, OLD_REFRESH] {
            assert!(
                !raw.contains(secret),
                "only the access token goes to the portal"
            );
        }
    }
    assert_eq!(
        body_json(&reqs[0]),
        json!({
            "auth": OLD_ACCESS,
            "DIALOG_ID": "chat42",
            "MESSAGE": "hi",
            "SYSTEM": "Y",
            "URL_PREVIEW": "N",
            "BOT_ID": 7
        }),
        "exact keys: nothing for unset optionals"
    );
    let raw = String::from_utf8(reqs[0].body.clone()).unwrap();
    assert!(
        raw.contains(r#""BOT_ID":7"#),
        "BOT_ID is a JSON number: {raw}"
    );
    assert_eq!(
        body_json(&reqs[1]),
        json!({
            "auth": OLD_ACCESS,
            "DIALOG_ID": "17",
            "MESSAGE": "plain",
            "SYSTEM": "N",
            "URL_PREVIEW": "Y",
            "SKIP_CONNECTOR": "Y"
        })
    );
    assert!(requests(&oauth).await.is_empty());
}

#[tokio::test]
async fn message_text_survives_byte_for_byte() {
    let text = "Привет, мир! Ёжик 👋🏽🚀 naïve & a=b?c[d]#e+f %20 %2B \"quoted\" \\back\\ \n\ttab <b>bold</b> 'x'";
    let api = portal("imbot.message.add", json_response(200, r#"{"result":1}"#)).await;
    let oauth = idle_oauth_server().await;
    let client = Client::oauth(app(), old_tokens(&api, &oauth)).unwrap();

    client
        .imbot()
        .message_add(text)
        .dialog_id("chat42")
        .await
        .unwrap();

    let reqs = requests(&api).await;
    assert_eq!(reqs.len(), 1);
    let body = body_json(&reqs[0]);
    assert_eq!(body["MESSAGE"].as_str(), Some(text));
    let raw = &reqs[0].body;
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    for part in ["Привет, мир! Ёжик", "👋🏽🚀", "naïve & a=b?c[d]#e+f %20 %2B"]
    {
        assert!(
            contains(part),
            "raw UTF-8 {part:?} in {}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[tokio::test]
async fn typed_struct_params_use_wire_names() {
    let api = portal("imbot.register", json_response(200, r#"{"result":"41"}"#)).await;
    let oauth = idle_oauth_server().await;
    let client = Client::oauth(app(), old_tokens(&api, &oauth)).unwrap();

    let bot_id = client
        .imbot()
        .register(
            "helpdesk_bot",
            BotProperties::new().name("Bot").color(BotColor::Red),
        )
        .event_handler("https://app.example.com/bot?x=1&y=2")
        .await
        .unwrap();
    assert_eq!(bot_id, 41);

    let reqs = requests(&api).await;
    assert_eq!(reqs.len(), 1);
    assert_rest_post(&reqs[0], "/rest/imbot.register");
    assert_eq!(
        body_json(&reqs[0]),
        json!({
            "auth": OLD_ACCESS,
            "CODE": "helpdesk_bot",
            "EVENT_HANDLER": "https://app.example.com/bot?x=1&y=2",
            "PROPERTIES": {"NAME": "Bot", "COLOR": "RED"}
        })
    );
}

// ---------------------------------------------------------------------------------------
// Refresh and retry
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn expired_token_is_refreshed_once_saved_and_the_call_retried() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth);
    // A slow store: if the client used the new token before the save completed, the API
    // would see it with `saves_done == 0`.
    let store = RecordingStore::new(probe.clone(), Some(old.clone()))
        .save_delay(Duration::from_millis(50))
        .into_arc();
    let client = oauth_client(old, &store);

    let me = client.user().current().await.unwrap();
    assert_eq!(me.id, 17);

    let refreshes = requests(&oauth).await;
    assert_eq!(refreshes.len(), 1, "exactly one refresh: {refreshes:?}");
    assert_refresh_request(&refreshes[0], OLD_REFRESH);

    assert_eq!(
        timeline(&probe),
        vec![
            format!("api:{OLD_ACCESS}"),
            // Under the refresh lock, then the compare-and-swap's own load.
            "load".to_owned(),
            "load".to_owned(),
            format!("save:{NEW_ACCESS}"),
            format!("api:{NEW_ACCESS}"),
        ],
        "the new pair is saved before it is used"
    );
    assert_eq!(
        probe.api_calls(),
        vec![
            (Some(OLD_ACCESS.to_owned()), 0),
            (Some(NEW_ACCESS.to_owned()), 1)
        ]
    );

    let now = client.tokens().expect("oauth client has tokens");
    assert_eq!(now.access_token.expose(), NEW_ACCESS);
    assert_eq!(now.refresh_token.expose(), NEW_REFRESH);
    assert_eq!(now.client_endpoint, rest_endpoint(&api));
    assert_eq!(now.server_endpoint, Some(rest_endpoint(&oauth)));
    assert_eq!(now.member_id.as_deref(), Some(MEMBER_ID));
    assert_eq!(now.scope.as_deref(), Some("crm,imbot,im,user"));
    assert!(now.expires.unwrap() > unix_now());
    assert_eq!(store.current(), Some(now.clone()));
    assert_eq!(probe.saves(), vec![now]);

    // The retried call is the same call: same path, same body apart from `auth`.
    let reqs = requests(&api).await;
    assert_eq!(reqs.len(), 2);
    let (mut a, mut b) = (body_json(&reqs[0]), body_json(&reqs[1]));
    a.as_object_mut().unwrap().remove("auth");
    b.as_object_mut().unwrap().remove("auth");
    assert_eq!(a, b);
    assert_eq!(reqs[0].url.path(), reqs[1].url.path());
    for r in &reqs {
        let raw = String::from_utf8_lossy(&r.body);
        for secret in [CLIENT_SECRET, OLD_REFRESH, NEW_REFRESH] {
            assert!(
                !raw.contains(secret),
                "refresh material never goes to the portal"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_is_not_used_by_any_call_before_its_save_completes() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let old = old_tokens(&api, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(old.clone()))
        .hold_first_save(started_tx, release_rx)
        .into_arc();
    let client = oauth_client(old, &store);

    // Call A refreshes and its save hangs; call B starts while the save is in progress.
    let a = {
        let c = client.clone();
        tokio::spawn(async move { c.user().current().await })
    };
    tokio::time::timeout(Duration::from_secs(5), started_rx)
        .await
        .expect("call A reaches the store")
        .unwrap();
    let mut b = {
        let c = client.clone();
        tokio::spawn(async move { c.user().current().await })
    };
    let b_early = tokio::time::timeout(Duration::from_millis(300), &mut b).await;
    release_tx.send(()).unwrap();
    let a = a.await.unwrap();
    let b = match b_early {
        Ok(done) => done.unwrap(),
        Err(_) => b.await.unwrap(),
    };
    assert_eq!(a.expect("call A").id, 17);
    assert_eq!(b.expect("call B").id, 17);
    assert_eq!(requests(&oauth).await.len(), 1);
    let calls = probe.api_calls();
    assert!(
        calls
            .iter()
            .filter(|(t, _)| t.as_deref() == Some(NEW_ACCESS))
            .all(|(_, saves)| *saves == 1),
        "the new token reached the portal before it was saved: {:?}",
        timeline(&probe)
    );
}

#[tokio::test]
async fn expired_token_after_the_refresh_is_an_error_not_a_loop() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![(OLD_ACCESS, expired()), (NEW_ACCESS, expired())],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
    let client = oauth_client(old, &store);

    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert!(e.is_expired_token(), "{e:?}");
    assert!(e.is_auth());
    assert_eq!(e.status(), Some(401));
    assert_eq!(requests(&api).await.len(), 2, "the call and one retry");
    assert_eq!(requests(&oauth).await.len(), 1, "one refresh");
    assert_eq!(
        timeline(&probe),
        vec![
            format!("api:{OLD_ACCESS}"),
            // Under the refresh lock, then the compare-and-swap's own load.
            "load".to_owned(),
            "load".to_owned(),
            format!("save:{NEW_ACCESS}"),
            format!("api:{NEW_ACCESS}"),
        ]
    );
}

#[tokio::test]
async fn invalid_token_is_refreshed_once_too() {
    let probe = Probe::new();
    let invalid = json_response(
        401,
        r#"{"error":"invalid_token","error_description":"Unable to get application by token"}"#,
    );
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, invalid),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
    let client = oauth_client(old, &store);

    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(requests(&oauth).await.len(), 1);
    assert_eq!(
        timeline(&probe),
        vec![
            format!("api:{OLD_ACCESS}"),
            // Under the refresh lock, then the compare-and-swap's own load.
            "load".to_owned(),
            "load".to_owned(),
            format!("save:{NEW_ACCESS}"),
            format!("api:{NEW_ACCESS}"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_calls_on_an_expired_token_share_one_refresh() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    // A slow OAuth server, so that the calls pile up behind the one refresh.
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth))
            .set_delay(Duration::from_millis(150)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(old.clone()))
        .save_delay(Duration::from_millis(30))
        .into_arc();
    let client = oauth_client(old, &store);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = client.clone();
        set.spawn(async move { c.user().current().await });
    }
    let mut ok = 0;
    while let Some(joined) = set.join_next().await {
        let me = joined.expect("task").expect("call succeeds");
        assert_eq!(me.id, 17);
        ok += 1;
    }
    assert_eq!(ok, 20);

    let refreshes = requests(&oauth).await;
    assert_eq!(
        refreshes.len(),
        1,
        "single flight: {} refreshes",
        refreshes.len()
    );
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    assert_eq!(
        probe.saves().len(),
        1,
        "exactly one save: {:?}",
        timeline(&probe)
    );

    let calls = probe.api_calls();
    let with_new: Vec<_> = calls
        .iter()
        .filter(|(a, _)| a.as_deref() == Some(NEW_ACCESS))
        .collect();
    let with_old = calls
        .iter()
        .filter(|(a, _)| a.as_deref() == Some(OLD_ACCESS))
        .count();
    assert_eq!(with_new.len(), 20, "every call succeeds with the new token");
    assert!(
        with_old >= 2,
        "the calls did collide on the old token (else this test proves nothing): {with_old}"
    );
    assert_eq!(with_old + with_new.len(), calls.len(), "no other token");
    assert!(
        with_new.iter().all(|(_, saves)| *saves == 1),
        "the new token is only used once saved: {calls:?}"
    );
    assert_eq!(client.tokens().unwrap().access_token.expose(), NEW_ACCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locally_expired_token_is_refreshed_before_the_first_call() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth))
            .set_delay(Duration::from_millis(50)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth).expires(unix_now() - 60);
    let store = RecordingStore::new(probe.clone(), Some(old.clone()))
        .save_delay(Duration::from_millis(20))
        .into_arc();
    let client = oauth_client(old, &store);

    // One call first, then a burst.
    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(
        timeline(&probe),
        vec![
            "load".to_owned(),
            "load".to_owned(),
            format!("save:{NEW_ACCESS}"),
            format!("api:{NEW_ACCESS}")
        ],
        "the API never sees the locally expired token"
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let c = client.clone();
        set.spawn(async move { c.user().current().await });
    }
    while let Some(joined) = set.join_next().await {
        assert_eq!(joined.unwrap().unwrap().id, 17);
    }
    let refreshes = requests(&oauth).await;
    assert_eq!(refreshes.len(), 1);
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    assert_eq!(probe.saves().len(), 1);
    assert!(probe
        .api_calls()
        .iter()
        .all(|(a, _)| a.as_deref() == Some(NEW_ACCESS)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_on_a_locally_expired_token_share_one_refresh() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![(NEW_ACCESS, json_response(200, USER_OK))],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth))
            .set_delay(Duration::from_millis(100)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth).expires(unix_now() - 1);
    let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
    let client = oauth_client(old, &store);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = client.clone();
        set.spawn(async move { c.user().current().await });
    }
    while let Some(joined) = set.join_next().await {
        assert_eq!(joined.unwrap().unwrap().id, 17);
    }
    assert_eq!(requests(&oauth).await.len(), 1);
    assert_eq!(probe.saves().len(), 1);
    let calls = probe.api_calls();
    assert_eq!(calls.len(), 20);
    assert!(calls
        .iter()
        .all(|(a, s)| a.as_deref() == Some(NEW_ACCESS) && *s == 1));
}

// ---------------------------------------------------------------------------------------
// Refresh failures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_failures_have_distinct_kinds_and_never_show_secrets() {
    let cases: Vec<(&str, ResponseTemplate, ErrorKind, Option<&str>, u16)> = vec![
        (
            "400 invalid_grant (fixture)",
            fixture_response("oauth-error-invalid-grant.400.json"),
            ErrorKind::InvalidGrant,
            Some("invalid_grant"),
            400,
        ),
        (
            "401 invalid_client",
            json_response(
                401,
                json!({
                    "error": "invalid_client",
                    "error_description": format!("Unknown client {CLIENT_ID} with secret {CLIENT_SECRET}")
                })
                .to_string(),
            ),
            ErrorKind::InvalidClient,
            Some("invalid_client"),
            401,
        ),
        (
            "200 wrong_client",
            json_response(
                200,
                json!({
                    "error": "wrong_client",
                    "error_description": format!("Wrong client for refresh_token={OLD_REFRESH}")
                })
                .to_string(),
            ),
            ErrorKind::WrongClient,
            Some("wrong_client"),
            200,
        ),
        (
            "503 HTML",
            ResponseTemplate::new(503).set_body_raw(
                format!(
                    "<html><head><title>503 Service Unavailable</title></head><body>\
                     <h1>503 Service Unavailable</h1><pre>client_secret={CLIENT_SECRET} \
                     refresh_token={OLD_REFRESH} auth={OLD_ACCESS}</pre></body></html>"
                )
                .into_bytes(),
                "text/html",
            ),
            ErrorKind::OAuthServer,
            None,
            503,
        ),
    ];
    let mut kinds = HashSet::new();
    for (name, answer, kind, code, status) in cases {
        let probe = Probe::new();
        let api = portal(
            "user.current",
            by_token(probe.clone(), vec![(OLD_ACCESS, expired())]),
        )
        .await;
        let oauth = oauth_server(answer).await;
        let old = old_tokens(&api, &oauth);
        let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
        let client = oauth_client(old.clone(), &store);

        let e = client.user().current().await.unwrap_err();
        assert_eq!(e.kind(), kind, "{name}: {e:?}");
        assert_eq!(e.code(), code, "{name}");
        assert_eq!(e.status(), Some(status), "{name}");
        assert_eq!(e.method_name(), Some("user.current"), "{name}");
        assert_eq!(
            e.is_reauthorization_required(),
            kind != ErrorKind::OAuthServer,
            "{name}"
        );
        assert_no_secrets(&e, &[CLIENT_SECRET, OLD_REFRESH, OLD_ACCESS]);
        if kind == ErrorKind::OAuthServer {
            assert!(
                e.body_snippet()
                    .unwrap_or("")
                    .contains("503 Service Unavailable"),
                "{name}: {e:?}"
            );
        }
        kinds.insert(kind);

        assert_eq!(
            requests(&oauth).await.len(),
            1,
            "{name}: one refresh attempt"
        );
        assert_refresh_request(&requests(&oauth).await[0], OLD_REFRESH);
        assert_eq!(
            requests(&api).await.len(),
            1,
            "{name}: no retry without a new token"
        );
        assert!(probe.saves().is_empty(), "{name}");
        assert_eq!(client.tokens(), Some(old), "{name}: tokens unchanged");
    }
    assert_eq!(kinds.len(), 4, "four distinct kinds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_share_one_failed_refresh() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(probe.clone(), vec![(OLD_ACCESS, expired())]),
    )
    .await;
    // Slow, so that every call is waiting for this one refresh when it fails.
    let oauth = oauth_server(
        fixture_response("oauth-error-invalid-grant.400.json")
            .set_delay(Duration::from_millis(200)),
    )
    .await;
    let old = old_tokens(&api, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
    let client = oauth_client(old.clone(), &store);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let c = client.clone();
        set.spawn(async move { c.user().current().await });
    }
    while let Some(joined) = set.join_next().await {
        let e = joined.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidGrant, "{e:?}");
        assert_eq!(e.method_name(), Some("user.current"));
        assert_no_secrets(&e, &[CLIENT_SECRET, OLD_REFRESH, OLD_ACCESS]);
    }
    let refreshes = requests(&oauth).await;
    assert_eq!(refreshes.len(), 1, "the waiters get the same failure");
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    assert_eq!(
        requests(&api).await.len(),
        10,
        "each call sent once, none retried"
    );
    assert!(probe.saves().is_empty());
    assert_eq!(client.tokens(), Some(old));
}

#[tokio::test]
async fn oauth_server_snippets_never_show_part_of_a_secret() {
    // The HTML page echoes the client secret right where the 200-character snippet ends, so
    // the snippet would hold all of the secret but its last character.
    let prefix = "E".repeat(200 - (CLIENT_SECRET.len() - 1));
    let page = format!("{prefix}{CLIENT_SECRET} and more text after it");
    let api = portal("user.current", expired()).await;
    let oauth =
        oauth_server(ResponseTemplate::new(502).set_body_raw(page.into_bytes(), "text/html")).await;
    let client = Client::oauth(app(), old_tokens(&api, &oauth)).unwrap();

    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthServer, "{e:?}");
    let cut = &CLIENT_SECRET[..CLIENT_SECRET.len() - 1];
    assert_no_secrets(&e, &[CLIENT_SECRET, cut]);
}

#[tokio::test]
async fn a_pair_rotated_by_another_process_is_adopted_under_the_lock_without_a_refresh() {
    const ROTATED_ACCESS: &str = "rotated-access-5c7e9a1b3d";
    const ROTATED_REFRESH: &str = "rotated-refresh-2f4a6c8e0b";
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (ROTATED_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = oauth_server(fixture_response("oauth-error-invalid-grant.400.json")).await;
    let rotated = Tokens::new(ROTATED_ACCESS, ROTATED_REFRESH, rest_endpoint(&api))
        .server_endpoint(rest_endpoint(&oauth))
        .member_id(MEMBER_ID);
    let store = RecordingStore::new(probe.clone(), Some(rotated.clone())).into_arc();
    let client = oauth_client(old_tokens(&api, &oauth), &store);

    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert!(
        requests(&oauth).await.is_empty(),
        "the stored pair is newer: nothing to refresh"
    );
    assert_eq!(
        timeline(&probe),
        vec![
            format!("api:{OLD_ACCESS}"),
            "load".to_owned(),
            format!("api:{ROTATED_ACCESS}"),
        ]
    );
    assert_eq!(client.tokens(), Some(rotated));
    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert!(requests(&oauth).await.is_empty());
}

/// A store with no real lock: it still holds the old pair when the client looks under the
/// (default) lock, and another process's pair lands just after.
struct RotatesAfterFirstLoad {
    old: Tokens,
    rotated: Tokens,
    loads: std::sync::atomic::AtomicUsize,
}

impl TokenStore for RotatesAfterFirstLoad {
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        let n = self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let t = if n == 0 { &self.old } else { &self.rotated };
        let t = t.clone();
        Box::pin(async move { Ok(Some(t)) })
    }

    fn save<'a>(&'a self, _: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Err("must not save".into()) })
    }
}

#[tokio::test]
async fn invalid_grant_adopts_a_pair_rotated_by_another_process() {
    const ROTATED_ACCESS: &str = "rotated-access-5c7e9a1b3d";
    const ROTATED_REFRESH: &str = "rotated-refresh-2f4a6c8e0b";
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (ROTATED_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = oauth_server(fixture_response("oauth-error-invalid-grant.400.json")).await;
    let old = old_tokens(&api, &oauth);
    let rotated = Tokens::new(ROTATED_ACCESS, ROTATED_REFRESH, rest_endpoint(&api))
        .server_endpoint(rest_endpoint(&oauth))
        .member_id(MEMBER_ID);
    let store = Arc::new(RotatesAfterFirstLoad {
        old: old.clone(),
        rotated: rotated.clone(),
        loads: Default::default(),
    });
    let client = Client::builder()
        .oauth(app(), old)
        .token_store_arc(store.clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    assert_eq!(client.user().current().await.unwrap().id, 17);
    let refreshes = requests(&oauth).await;
    assert_eq!(refreshes.len(), 1, "no second refresh");
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    assert_eq!(
        timeline(&probe),
        vec![format!("api:{OLD_ACCESS}"), format!("api:{ROTATED_ACCESS}")]
    );
    assert_eq!(client.tokens(), Some(rotated));
    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(requests(&oauth).await.len(), 1);
}

#[tokio::test]
async fn a_failed_save_does_not_show_the_new_tokens_and_they_are_still_used() {
    let probe = Probe::new();
    let api = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let old = old_tokens(&api, &oauth);
    // A storage driver that echoes the row it failed to write (some do).
    let store = RecordingStore::new(probe.clone(), Some(old.clone()))
        .fail_save(|t| {
            format!(
                "INSERT INTO tokens VALUES ('{}', '{}') failed: disk full",
                t.access_token.expose(),
                t.refresh_token.expose()
            )
        })
        .into_arc();
    let client = oauth_client(old, &store);

    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TokenStore, "{e:?}");
    assert_no_secrets(
        &e,
        &[
            CLIENT_SECRET,
            OLD_ACCESS,
            OLD_REFRESH,
            NEW_ACCESS,
            NEW_REFRESH,
        ],
    );
    // Documented: the refreshed tokens are still used in memory.
    assert_eq!(client.tokens().unwrap().access_token.expose(), NEW_ACCESS);
    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(requests(&oauth).await.len(), 1, "no second refresh");
    assert_eq!(
        probe.api_calls().last().unwrap().0.as_deref(),
        Some(NEW_ACCESS)
    );
}

// ---------------------------------------------------------------------------------------
// 401s that must not refresh
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn method_confirm_waiting_and_no_auth_found_never_refresh() {
    type Check = fn(&bitrix24::Error) -> bool;
    let cases: Vec<(&str, ResponseTemplate, Check)> = vec![
        (
            "METHOD_CONFIRM_WAITING",
            fixture_response("error-method-confirm-waiting.401.json"),
            |e| e.is_method_confirm_waiting(),
        ),
        (
            "NO_AUTH_FOUND",
            json_response(
                401,
                r#"{"error":"NO_AUTH_FOUND","error_description":"Wrong authorization data"}"#,
            ),
            |e| e.is_code("NO_AUTH_FOUND") && e.is_auth(),
        ),
    ];
    for (name, answer, check) in cases {
        let probe = Probe::new();
        let api = portal(
            "user.current",
            by_token(probe.clone(), vec![(OLD_ACCESS, answer)]),
        )
        .await;
        let oauth = oauth_server(json_response(200, refresh_response_body(&api, &api))).await;
        let old = old_tokens(&api, &oauth);
        let store = RecordingStore::new(probe.clone(), Some(old.clone())).into_arc();
        let client = oauth_client(old.clone(), &store);

        let e = client.user().current().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api, "{name}: {e:?}");
        assert!(check(&e), "{name}: {e:?}");
        assert_eq!(e.code(), Some(name));
        assert_eq!(e.status(), Some(401));
        assert!(
            requests(&oauth).await.is_empty(),
            "{name}: no refresh at all"
        );
        assert_eq!(requests(&api).await.len(), 1, "{name}: no retry");
        assert_eq!(
            timeline(&probe),
            vec![format!("api:{OLD_ACCESS}")],
            "{name}"
        );
        assert_eq!(client.tokens(), Some(old));
    }
}

// ---------------------------------------------------------------------------------------
// Portal renames
// ---------------------------------------------------------------------------------------

/// A renamed portal: every `POST /rest/{method}` answers 302 to the same path on `to`.
async fn renamed_portal(method: &str, to: &MockServer) -> MockServer {
    portal(
        method,
        ResponseTemplate::new(302).insert_header("Location", format!("{}/rest/{method}", to.uri())),
    )
    .await
}

#[tokio::test]
async fn oauth_client_follows_a_portal_rename_and_keeps_the_new_endpoint() {
    let probe = Probe::new();
    let new = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![(OLD_ACCESS, json_response(200, USER_OK))],
        ),
    )
    .await;
    let old_host = renamed_portal("user.current", &new).await;
    let oauth = idle_oauth_server().await;
    let tokens = old_tokens(&old_host, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(tokens.clone())).into_arc();
    let client = oauth_client(tokens, &store);

    assert_eq!(client.user().current().await.unwrap().id, 17);
    let first = requests(&old_host).await;
    let moved = requests(&new).await;
    assert_eq!((first.len(), moved.len()), (1, 1));
    assert_rest_post(&moved[0], "/rest/user.current");
    assert_eq!(
        moved[0].body, first[0].body,
        "the same body (with auth) is re-POSTed"
    );
    assert_eq!(auth_of(&moved[0]).as_deref(), Some(OLD_ACCESS));

    let now = client.tokens().unwrap();
    assert_eq!(now.client_endpoint, rest_endpoint(&new));
    assert_eq!(
        now.access_token.expose(),
        OLD_ACCESS,
        "a move is not a refresh"
    );
    assert_eq!(
        store.current().map(|t| t.client_endpoint),
        Some(rest_endpoint(&new)),
        "the new address is persisted"
    );

    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(
        requests(&old_host).await.len(),
        1,
        "the old host sees nothing more"
    );
    assert_eq!(requests(&new).await.len(), 2);
    assert!(requests(&oauth).await.is_empty());
}

#[tokio::test]
async fn expired_token_on_a_renamed_portal_is_still_refreshed() {
    let probe = Probe::new();
    let new = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, expired()),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let old_host = renamed_portal("user.current", &new).await;
    let oauth = MockServer::start().await;
    // The OAuth server already knows the new address.
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&new, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    let tokens = old_tokens(&old_host, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(tokens.clone())).into_arc();
    let client = oauth_client(tokens, &store);

    let result = client.user().current().await;
    let refreshes = requests(&oauth).await;
    assert_eq!(
        refreshes.len(),
        1,
        "an expired token must be refreshed even when the call was redirected; got {result:?}, timeline {:?}",
        timeline(&probe)
    );
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    assert_eq!(result.expect("the retried call succeeds").id, 17);
    assert_eq!(client.tokens().unwrap().access_token.expose(), NEW_ACCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_move_never_brings_back_a_spent_refresh_token() {
    // Call X is redirected (portal renamed) and persists the new address through a slow
    // store; meanwhile call Y refreshes the token. Whatever the order, the client must not
    // end up holding (or storing) the refresh token it has already spent: refresh tokens are
    // single use, so that would force the user to re-authorize.
    let probe = Probe::new();
    let new = portal(
        "user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, json_response(200, USER_OK)),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    let old_host = MockServer::start().await;
    let seen = Arc::new(AtomicUsize::new(0));
    let (probe2, seen2, location) = (
        probe.clone(),
        seen.clone(),
        format!("{}/rest/user.current", new.uri()),
    );
    // First request: the rename redirect. Later ones: by token (expired / fine).
    let answer = move |req: &Request| {
        let auth = probe2.record_api(req);
        if seen2.fetch_add(1, Ordering::SeqCst) == 0 {
            return ResponseTemplate::new(302).insert_header("Location", location.as_str());
        }
        match auth.as_deref() {
            Some(OLD_ACCESS) => expired(),
            Some(NEW_ACCESS) => json_response(200, USER_OK),
            _ => ResponseTemplate::new(500).set_body_string(CATCH_ALL_BODY),
        }
    };
    mount_post(&old_host, "/rest/user.current", answer).await;
    mount_catch_all(&old_host).await;
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&old_host, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;

    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let tokens = old_tokens(&old_host, &oauth);
    let store = RecordingStore::new(probe.clone(), Some(tokens.clone()))
        .hold_first_save(started_tx, release_rx)
        .into_arc();
    let client = oauth_client(tokens, &store);

    let x = {
        let c = client.clone();
        tokio::spawn(async move { c.user().current().await })
    };
    tokio::time::timeout(Duration::from_secs(5), started_rx)
        .await
        .expect("call X reaches the store")
        .unwrap();
    let mut y = {
        let c = client.clone();
        tokio::spawn(async move { c.user().current().await })
    };
    // Let Y run (it may also legitimately wait for X), then let X's save complete.
    let y_early = tokio::time::timeout(Duration::from_millis(500), &mut y).await;
    release_tx.send(()).unwrap();
    let x = x.await.unwrap();
    let y = match y_early {
        Ok(done) => done.unwrap(),
        Err(_) => y.await.unwrap(),
    };
    assert_eq!(x.expect("call X succeeds").id, 17);
    assert_eq!(y.expect("call Y succeeds").id, 17);

    let spent: Vec<String> = requests(&oauth)
        .await
        .iter()
        .flat_map(form_pairs)
        .filter(|(k, _)| k == "refresh_token")
        .map(|(_, v)| v)
        .collect();
    let held = client.tokens().unwrap();
    let stored = store.current().unwrap();
    assert!(
        !spent.contains(&held.refresh_token.expose().to_owned()),
        "the client holds a spent refresh token; timeline {:?}",
        timeline(&probe)
    );
    assert!(
        !spent.contains(&stored.refresh_token.expose().to_owned()),
        "the store holds a spent refresh token; timeline {:?}",
        timeline(&probe)
    );
    assert_eq!(held, stored, "memory and store agree");
}
