//! Every REST and token payload in the shared fixtures (`tests/fixtures/shared/`, a copy of
//! the project's `shared/fixtures/`) decodes through the public API.

mod common;

use std::collections::BTreeMap;

use bitrix24::{Client, ErrorKind, Time, Tokens};
use common::*;
use serde_json::{json, Value};
use wiremock::MockServer;

/// Fixtures decoded by the tests of this crate (here and in webhook/oauth/errors).
const COVERED: &[&str] = &[
    "batch-request.json",
    "batch-response-halt-empty-maps.200.json",
    "batch-response-one-failed.200.json",
    "error-empty-code-not-found.400.json",
    "error-expired-token.401.json",
    "error-method-confirm-waiting.401.json",
    "error-numeric-code.400.json",
    "error-operation-time-limit.429.json",
    "error-overload-limit.503.json",
    "error-query-limit-exceeded.503.json",
    "list-response-crm-deal-list.200.json",
    "response-time-without-operating.200.json",
    "list-response-crm-item-list-start-minus1.200.json",
    "oauth-error-invalid-grant.400.json",
    "rest-v3-error-validation.400.json",
    "token-response-authorization-code.200.json",
    "token-response-refresh.200.json",
];

/// Fixtures that are not REST or token answers (inbound events; the crate has no event
/// parser yet) and the README.
const NOT_RESPONSES: &[&str] = &[
    "README.md",
    "event-onappinstall.form-urlencoded.txt",
    "event-onimbotmessageadd.as-json.json",
    "event-onimbotmessageadd.decoded.txt",
    "event-onimbotmessageadd.form-urlencoded.txt",
];

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/shared exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_is_either_decoded_or_known_not_to_be_a_response() {
    for name in fixture_names() {
        assert!(
            COVERED.contains(&name.as_str()) || NOT_RESPONSES.contains(&name.as_str()),
            "new fixture {name}: add a decoding test for it"
        );
    }
    for name in COVERED.iter().chain(NOT_RESPONSES) {
        assert!(
            fixtures_dir().join(name).is_file(),
            "missing fixture {name}"
        );
    }
}

#[test]
fn fixture_copies_match_the_shared_originals() {
    // Only where the project's shared directory sits next to the crate (not in users' CI).
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if !shared.is_dir() {
        eprintln!("no {}; skipping the comparison", shared.display());
        return;
    }
    let mut originals: Vec<String> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    originals.sort();
    assert_eq!(fixture_names(), originals, "same files");
    for name in originals {
        assert_eq!(
            std::fs::read(fixtures_dir().join(&name)).unwrap(),
            std::fs::read(shared.join(&name)).unwrap(),
            "{name} differs from the shared original: copy it again"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Token responses
// ---------------------------------------------------------------------------------------

#[test]
fn token_responses_decode() {
    let t =
        Tokens::from_token_response(fixture("token-response-refresh.200.json").as_bytes()).unwrap();
    assert_eq!(t.access_token.expose(), "d7302e7zdytx4i9h468r4mbejmhk7k6h");
    assert_eq!(t.refresh_token.expose(), "431b42bgof65nhe9ik5ubszw0j7vgdm2");
    // `expires_in` (3600) against the local clock wins over the server's absolute `expires`,
    // which would carry any clock skew between the machines.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires = t.expires.unwrap();
    assert!(
        (now + 3590..=now + 3610).contains(&expires),
        "{expires} vs {now}"
    );
    assert_eq!(
        t.client_endpoint,
        "https://example-portal.bitrix24.com/rest/"
    );
    assert_eq!(
        t.server_endpoint.as_deref(),
        Some("https://oauth.bitrix.info/rest/")
    );
    assert_eq!(t.member_id.as_deref(), Some(MEMBER_ID));
    assert_eq!(t.scope.as_deref(), Some("crm,imbot,im,user"));
    assert_eq!(
        t.domain, None,
        "a token response's `domain` is the OAuth server, not the portal"
    );
    assert!(!format!("{t:?}").contains("d7302e7zdytx4i9h468r4mbejmhk7k6h"));

    let before = unix_now();
    let t = Tokens::from_token_response(
        fixture("token-response-authorization-code.200.json").as_bytes(),
    )
    .unwrap();
    let after = unix_now();
    assert_eq!(t.access_token.expose(), "qs4a5oz8tr6teqdrxl1wnp25af55bfx0");
    assert_eq!(t.refresh_token.expose(), "mf9hr7gdlu3ep8xgx5y5jx73i0ostwhl");
    let expires = t.expires.expect("computed from expires_in");
    assert!(
        (before + 3600..=after + 3600).contains(&expires),
        "{expires} vs now {before}"
    );
    assert_eq!(
        t.client_endpoint,
        "https://example-portal.bitrix24.com/rest/"
    );
    assert_eq!(t.member_id.as_deref(), Some(MEMBER_ID));
    assert_eq!(t.domain, None);

    // Tokens round-trip through serde (what a TokenStore persists).
    let back: Tokens = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);

    // An OAuth error body is not a token response.
    assert!(
        Tokens::from_token_response(fixture("oauth-error-invalid-grant.400.json").as_bytes())
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// REST answers through a mock portal
// ---------------------------------------------------------------------------------------

/// A webhook client whose portal answers `POST /rest/1/k3y/{method}` with the fixture.
async fn replaying(method: &str, fixture_name: &str) -> (Client, MockServer) {
    answering(method, fixture_response(fixture_name)).await
}

#[tokio::test]
async fn error_fixtures_give_their_code_and_status() {
    for (name, code, description) in [
        (
            "error-expired-token.401.json",
            "expired_token",
            "The access token provided has expired.",
        ),
        (
            "error-method-confirm-waiting.401.json",
            "METHOD_CONFIRM_WAITING",
            "Waiting for confirmation",
        ),
        (
            "error-operation-time-limit.429.json",
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        ),
        (
            "error-query-limit-exceeded.503.json",
            "QUERY_LIMIT_EXCEEDED",
            "Too many requests",
        ),
        (
            "error-overload-limit.503.json",
            "OVERLOAD_LIMIT",
            "REST API is blocked due to overload",
        ),
        // An empty code is still an API error (the description says what happened).
        ("error-empty-code-not-found.400.json", "", "Not found"),
        // A numeric code is kept as text.
        (
            "error-numeric-code.400.json",
            "100",
            "Unknown field definition `I_D` (I_D) for \\Bitrix\\Crm\\Model\\Dynamic\\Type Entity.",
        ),
        (
            "oauth-error-invalid-grant.400.json",
            "invalid_grant",
            "Invalid refresh token",
        ),
        (
            "rest-v3-error-validation.400.json",
            "BITRIX_REST_V3_EXCEPTION_VALIDATION_REQUESTVALIDATIONEXCEPTION",
            "Error validating request object",
        ),
    ] {
        let (client, server) = replaying("some.method", name).await;
        // A deadline too short to wait out a rate limit: the error as the portal sent it.
        let e = client
            .call_raw("some.method", json!({"id": 1}))
            .timeout(std::time::Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api, "{name}: {e:?}");
        assert_eq!(e.code(), Some(code), "{name}");
        assert_eq!(e.description(), Some(description), "{name}");
        assert_eq!(e.status(), Some(fixture_status(name)), "{name}");
        assert_eq!(requests(&server).await.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_time_without_operating_decodes_with_the_budget_fields_absent() {
    let (client, _s) = replaying("server.time", "response-time-without-operating.200.json").await;
    let r = client.call_raw("server.time", json!({})).await.unwrap();
    assert_eq!(r.result, json!(1));
    let time = r.time.expect("time");
    assert_eq!((time.duration, time.processing), (Some(0.1), Some(0.05)));
    assert_eq!((time.operating, time.operating_reset_at), (None, None));
}

#[tokio::test]
async fn list_fixtures_decode() {
    let (client, _s) = replaying("crm.deal.list", "list-response-crm-deal-list.200.json").await;
    let page = client.call_raw("crm.deal.list", json!({})).await.unwrap();
    let deals = page.result.as_array().expect("an array");
    assert_eq!(deals.len(), 50);
    assert_eq!(deals[0]["OPPORTUNITY"], "65229.00");
    assert_eq!((page.total, page.next), (Some(137), Some(50)));
    let time = page.time.expect("time");
    assert_eq!(time.operating_reset_at, Some(1787220142));
    assert_eq!(time.processing, Some(0.118204));
    assert_eq!(
        time.date_finish.as_deref(),
        Some("2026-08-20T11:52:22+02:00")
    );
    // The raw view of the page; tests/typed_results.rs decodes the same fixture into
    // `types::Deal`s.

    let (client, _s) = replaying(
        "crm.item.list",
        "list-response-crm-item-list-start-minus1.200.json",
    )
    .await;
    let page = client
        .call_raw("crm.item.list", json!({"entityTypeId": 1, "start": -1}))
        .await
        .unwrap();
    let items = page.result["items"].as_array().expect("result.items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["id"], 2003);
    assert_eq!(page.total, Some(0), "start=-1 counts nothing");
    assert_eq!(page.next, None);
    let time = page.time.expect("time");
    assert_eq!(time.operating_reset_at, Some(1787220201));
    assert_eq!(time.operating, Some(0.021877));
}

#[tokio::test]
async fn batch_responses_decode() {
    let (client, server) = replaying("batch", "batch-response-one-failed.200.json").await;
    let mut request = fixture_json("batch-request.json");
    request.as_object_mut().unwrap().remove("auth");
    let page = client.call_raw("batch", request.clone()).await.unwrap();
    assert_eq!(body_json(&requests(&server).await[0]), request);

    let r = &page.result;
    assert_eq!(r["result"]["me"]["ID"], "17");
    assert_eq!(r["result"]["leads"].as_array().unwrap().len(), 50);
    assert_eq!(r["result_error"]["deal"]["error"], "");
    assert_eq!(r["result_error"]["deal"]["error_description"], "Not found");
    assert_eq!(r["result_total"]["leads"], 412);
    assert_eq!(r["result_next"]["leads"], 50);
    let leads_time: Time = serde_json::from_value(r["result_time"]["leads"].clone()).unwrap();
    assert_eq!(leads_time.duration, Some(0.061245));
    assert_eq!(page.time.unwrap().duration, Some(0.108766));
    assert_eq!((page.total, page.next), (None, None));

    // The `me` sub-result is a `user.current` result: it decodes into the typed user.
    let me: bitrix24::types::User = bitrix24::wire::decode(&r["result"]["me"]).unwrap();
    assert_eq!(me.id, 17);
    assert_eq!(me.active, Some(true));
    assert_eq!(me.is_online, Some(true));
    assert_eq!(me.last_name.as_deref(), Some("Example"));
    assert_eq!(me.uf_department, Some(vec![1]));

    let (client, _s) = replaying("batch", "batch-response-halt-empty-maps.200.json").await;
    let page = client
        .call_raw(
            "batch",
            json!({"halt": 1, "cmd": {"new_deal": "crm.deal.add?fields[TITLE]=x"}}),
        )
        .await
        .unwrap();
    let r = &page.result;
    assert_eq!(r["result_error"]["new_deal"]["error"], "insufficient_scope");
    for key in ["result", "result_total", "result_next", "result_time"] {
        assert_eq!(r[key], json!([]), "{key} is PHP's empty array");
        // A map reads `[]` as an empty map.
        let m: BTreeMap<String, Value> = bitrix24::wire::decode(&r[key]).unwrap();
        assert!(m.is_empty(), "{key}");
    }
    let errors: BTreeMap<String, Value> = bitrix24::wire::decode(&r["result_error"]).unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["new_deal"]);
    assert!(
        page.time.unwrap().operating.is_none(),
        "missing time keys are None"
    );
}

#[tokio::test]
async fn the_batch_request_fixture_is_what_an_oauth_client_sends() {
    let fixture = fixture_json("batch-request.json");
    let access = fixture["auth"].as_str().unwrap().to_owned();
    let api = MockServer::start().await;
    mount_post(
        &api,
        "/rest/batch",
        fixture_response("batch-response-one-failed.200.json"),
    )
    .await;
    mount_catch_all(&api).await;
    let oauth = MockServer::start().await;
    mount_catch_all(&oauth).await;
    let tokens = Tokens::new(access, "some-refresh-token", rest_endpoint(&api))
        .server_endpoint(rest_endpoint(&oauth));
    let client = Client::oauth(app(), tokens).unwrap();

    let mut params = fixture.clone();
    params.as_object_mut().unwrap().remove("auth");
    let page = client.call_raw("batch", params).await.unwrap();
    assert_eq!(page.result["result_total"]["leads"], 412);

    let reqs = requests(&api).await;
    assert_eq!(reqs.len(), 1);
    assert_rest_post(&reqs[0], "/rest/batch");
    assert_eq!(
        body_json(&reqs[0]),
        fixture,
        "the request is the fixture, auth included"
    );
    let raw = String::from_utf8(reqs[0].body.clone()).unwrap();
    assert!(
        raw.contains("select%5B0%5D=ID&select%5B1%5D=TITLE"),
        "cmd strings are sent verbatim: {raw}"
    );
    assert!(requests(&oauth).await.is_empty());
}
