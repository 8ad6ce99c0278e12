//! Auth (webhook, OAuth), the OAuth server, the envelope and request parsing.

mod common;

use bitrix24::{Client, ErrorKind};
use bitrix24_testkit::{AppSpec, FakePortal, RequestAuth};
use common::*;
use serde_json::json;

#[tokio::test]
async fn webhook_calls_work_with_the_typed_client() {
    let portal = FakePortal::start().await;
    let client = Client::webhook(portal.webhook_url(1)).unwrap();
    let me = client.user().current().await.unwrap();
    assert_eq!(me.id, 1);
    assert_eq!(me.name.as_deref(), Some("Alex"));
    let profile = client.basic().profile().await.unwrap();
    assert_eq!(profile.id, 1);
    let scopes = client.basic().scope().await.unwrap();
    assert!(scopes.contains(&"crm".to_owned()));
    let log = portal.requests();
    assert_eq!(log[0].method, "user.current");
    assert_eq!(log[0].auth, RequestAuth::Webhook { user_id: 1 });
}

#[tokio::test]
async fn envelope_has_every_time_key_and_user_matches_the_fixture_types() {
    let portal = FakePortal::start().await;
    let (status, body) = get(&format!("{}user.current", portal.webhook_url(1))).await;
    assert_eq!(status, 200);
    let time = body["time"].as_object().unwrap();
    for key in [
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating",
        "operating_reset_at",
    ] {
        assert!(time.contains_key(key), "time.{key} missing");
    }
    assert!(time["operating_reset_at"].is_i64());
    let _: bitrix24::Time = serde_json::from_value(body["time"].clone()).unwrap();
    // The user object: same types as the batch fixture's `me`.
    let me = &fixture("batch-response-one-failed.200.json")["result"]["result"]["me"];
    for (k, v) in me.as_object().unwrap() {
        assert_same_shape(k, &body["result"][k], v);
    }
}

#[tokio::test]
async fn wrong_webhook_code_no_auth_and_unknown_token_are_401() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let (status, body) = get(&url
        .replace(&url.split('/').nth(5).unwrap().to_string(), "wrongcode")
        .replace("wrongcode/", "wrongcode/user.current"))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("NO_AUTH_FOUND"))
    );
    let (status, body) = get(&format!("{}user.current", portal.rest_url())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("NO_AUTH_FOUND"))
    );
    let (status, body) = post_json(
        &format!("{}user.current", portal.rest_url()),
        json!({"auth": "nope"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    portal.revoke_webhook(1);
    let (status, _) = get(&format!("{url}user.current")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn unknown_method_is_404_and_names_are_case_insensitive_with_optional_json_suffix() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let (status, body) = get(&format!("{url}no.such.method")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("ERROR_METHOD_NOT_FOUND"))
    );
    let (status, body) = get(&format!("{url}USER.Current.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["ID"], "1");
    // PHP SDK style trailing slash.
    let (status, _) = get(&format!("{url}server.time/")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn json_form_multipart_and_query_bodies_with_php_brackets() {
    let portal = FakePortal::start().await;
    let url = format!("{}crm.deal.list", portal.webhook_url(1));
    let http = http();
    let form = "filter%5B%3EID%5D=10&filter%5B%3C%3DID%5D=12&select%5B%5D=ID&select%5B%5D=TITLE&order%5BID%5D=DESC";
    let r: serde_json::Value = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["result"],
        json!([{"ID": "12", "TITLE": "Deal #12"}, {"ID": "11", "TITLE": "Deal #11"}])
    );
    let r: serde_json::Value = http
        .get(format!("{url}?{form}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["total"], 2);
    let r: serde_json::Value = http
        .post(&url)
        .json(&json!({"filter": {">ID": 10, "<=ID": 12}, "select": ["ID"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], json!([{"ID": "11"}, {"ID": "12"}]));
    let multipart = reqwest::multipart::Form::new()
        .percent_encode_noop()
        .text("filter[>ID]", "10")
        .text("filter[<=ID]", "11")
        .text("select[]", "TITLE");
    let r: serde_json::Value = http
        .post(&url)
        .multipart(multipart)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], json!([{"TITLE": "Deal #11"}]));
    let (status, body) = {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
}

#[tokio::test]
async fn oauth_app_tokens_work_with_the_client_and_auth_in_query_or_body() {
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    let info = client.app().info().await.unwrap();
    assert_eq!(info.id, Some(1));
    let me = client.user().current().await.unwrap();
    assert_eq!(me.id, 1);
    let token = app.tokens.access_token.expose();
    let (status, _) = get(&format!("{}user.current?auth={token}", portal.rest_url())).await;
    assert_eq!(status, 200);
    let r = http()
        .post(format!("{}user.current", portal.rest_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("auth={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let last = portal.requests().pop().unwrap();
    assert_eq!(
        last.auth,
        RequestAuth::OAuth {
            client_id: app.client_id.clone(),
            user_id: 1
        }
    );
    assert!(last.params.get("auth").is_none(), "auth is not logged");
}

#[tokio::test]
async fn expired_tokens_are_refreshed_once_by_the_client() {
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    client.user().current().await.unwrap();
    portal.expire_tokens();
    let (status, body) = get(&format!(
        "{}user.current?auth={}",
        portal.rest_url(),
        app.tokens.access_token.expose()
    ))
    .await;
    assert_eq!(status, 401);
    assert_eq!(body, fixture("error-expired-token.401.json"));
    let calls: Vec<_> = (0..5).map(|_| client.user().current()).collect();
    for c in calls {
        c.await.unwrap();
    }
    let refreshes = portal.token_requests();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(
        (
            refreshes[0].grant_type.as_str(),
            refreshes[0].via.as_str(),
            refreshes[0].status
        ),
        ("refresh_token", "POST", 200)
    );
    // Token lifetime on the virtual clock.
    portal.advance(std::time::Duration::from_secs(3601));
    client.user().current().await.unwrap();
    assert_eq!(portal.token_requests().len(), 2);
}

#[tokio::test]
async fn oauth_server_grants_and_errors_match_the_fixtures() {
    let portal = FakePortal::builder()
        .token_lifetime(std::time::Duration::from_secs(1800))
        .start()
        .await;
    let app = portal
        .install_app(AppSpec::default().scopes(&["crm", "imbot", "im", "user"]))
        .await;
    let url = portal.oauth_token_url();
    // authorization_code over GET, shaped like the fixture (no expires/user_id).
    let code = portal.authorization_code(&app.client_id, 1);
    let (status, body) = get(&format!(
        "{url}?grant_type=authorization_code&client_id={}&client_secret={}&code={code}",
        app.client_id, app.client_secret
    ))
    .await;
    assert_eq!(status, 200);
    assert_same_shape(
        "auth-code",
        &body,
        &fixture("token-response-authorization-code.200.json"),
    );
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["client_endpoint"], portal.rest_url());
    assert_eq!(body["scope"], "crm,imbot,im,user");
    // The code is single use.
    let (status, body) = get(&format!(
        "{url}?grant_type=authorization_code&client_id={}&client_secret={}&code={code}",
        app.client_id, app.client_secret
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // refresh_token over POST form, shaped like the fixture (with expires/user_id).
    let refresh = app.tokens.refresh_token.expose().to_owned();
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={refresh}",
        app.client_id, app.client_secret
    );
    let r = http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_same_shape(
        "refresh",
        &body,
        &fixture("token-response-refresh.200.json"),
    );
    let tokens = bitrix24::Tokens::from_token_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(tokens.client_endpoint, portal.rest_url());
    // Second use of the same refresh token.
    let r = http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_same_shape(
        "invalid_grant",
        &body,
        &fixture("oauth-error-invalid-grant.400.json"),
    );
    assert_eq!(body["error"], "invalid_grant");
    // Bad secret, unknown client.
    let (status, body) = get(&format!(
        "{url}?grant_type=refresh_token&client_id={}&client_secret=bad&refresh_token={}",
        app.client_id,
        tokens.refresh_token.expose()
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    let (status, body) = get(&format!(
        "{url}?grant_type=refresh_token&client_id=local.nope&client_secret=x&refresh_token=y"
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (200, Some("wrong_client"))
    );
}

#[tokio::test]
async fn a_reused_refresh_token_surfaces_as_invalid_grant_in_the_client() {
    let portal = FakePortal::start().await;
    let app = portal.install_app(AppSpec::default()).await;
    // Someone else spends the refresh token first.
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        app.client_id,
        app.client_secret,
        app.tokens.refresh_token.expose()
    );
    let r = http()
        .post(portal.oauth_token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    portal.expire_tokens();
    let client = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    let err = client.user().current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidGrant, "{err}");
}

#[tokio::test]
async fn insufficient_scope_is_403() {
    let portal = FakePortal::builder()
        .webhook_scopes(&["user"])
        .start()
        .await;
    let (status, body) = get(&format!("{}crm.deal.list", portal.webhook_url(1))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
}

#[tokio::test]
async fn malformed_requests_get_documented_errors_not_panics() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let deep = format!("a{}=1", "[x]".repeat(100));
    let r = http()
        .post(format!("{url}user.current"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, body) = get(&format!("{url}crm.deal.get?id=abc")).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("ID is not defined or invalid."))
    );
    let (status, _) = get(&format!(
        "{url}crm.deal.list?start=99999999999999999999999&filter[>ID]=-5&order[ID]=sideways"
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) = post_json(
        &format!("{url}batch"),
        json!({"cmd": {"a": 5, "b": {"x": 1}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["result"]["result_error"]["a"]["error"],
        "INVALID_REQUEST"
    );
    let (status, body) = post_json(
        &format!("{url}imbot.message.add"),
        json!({"CLIENT_ID": "c", "DIALOG_ID": "1", "MESSAGE": "x", "KEYBOARD": "{bad"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BOT_ID_ERROR"))
    );
    let (status, _) = get(&format!("{}a/b/c/d/e", portal.rest_url())).await;
    assert_eq!(status, 404);
    let (status, body) =
        post_json(&format!("{url}crm.item.list"), json!({"entityTypeId": "x"})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NOT_FOUND")));
    let r = http()
        .post(format!("{url}user.current"))
        .header("content-type", "application/json")
        .body("[1,2,3]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&format!("{url}user.current")).await.0, 200);
}
