//! Regressions found by review: a cancelled refresh, odd token answers, secrets in decode
//! errors, redirects to non-portal pages, lenient envelope metadata, `invalid_token` loops,
//! and an OAuth server in clear text.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitrix24::{Client, ErrorKind, Tokens};
use common::*;
use wiremock::{MockServer, Request, ResponseTemplate};

/// Cancelling a call while its refresh is in flight must not lose the rotated pair: the
/// refresh finishes (saved and used) and the next call works with the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_does_not_lose_the_rotated_pair() {
    let api = MockServer::start().await;
    let probe = Probe::new();
    mount_post(
        &api,
        "/rest/user.current",
        by_token(
            probe.clone(),
            vec![
                (OLD_ACCESS, fixture_response("error-expired-token.401.json")),
                (NEW_ACCESS, json_response(200, USER_OK)),
            ],
        ),
    )
    .await;
    mount_catch_all(&api).await;
    let rotated = Arc::new(AtomicUsize::new(0));
    let oauth = MockServer::start().await;
    let body = refresh_response_body(&api, &oauth);
    let count = rotated.clone();
    mount_post(&oauth, "/oauth/token/", move |_: &Request| {
        count.fetch_add(1, Ordering::SeqCst);
        // The OAuth server has rotated; its answer arrives after the caller gave up.
        ResponseTemplate::new(200)
            .set_body_string(body.clone())
            .set_delay(Duration::from_millis(300))
    })
    .await;
    mount_catch_all(&oauth).await;
    let store = RecordingStore::new(probe.clone(), None).into_arc();
    let client = oauth_client(old_tokens(&api, &oauth), &store);

    let gave_up = tokio::time::timeout(Duration::from_millis(100), client.user().current()).await;
    assert!(gave_up.is_err(), "the call was cancelled mid-refresh");
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        store.current().map(|t| t.refresh_token.expose().to_owned()),
        Some(NEW_REFRESH.to_owned()),
        "the rotated pair was saved although its caller was gone"
    );
    let me = client
        .user()
        .current()
        .await
        .expect("the next call uses the new token");
    assert_eq!(me.id, 17);
    assert_eq!(rotated.load(Ordering::SeqCst), 1, "no second refresh");
}

#[test]
fn absurd_expires_in_neither_panics_nor_storms() {
    for expires_in in ["9223372036854775807", "-5", "\"x\""] {
        let body = format!(
            r#"{{"access_token":"a","refresh_token":"r","expires_in":{expires_in},"client_endpoint":"https://p/rest/"}}"#
        );
        let t = Tokens::from_token_response(body.as_bytes()).expect(&body);
        if let Some(e) = t.expires {
            let now = unix_now();
            assert!(e >= now && e <= now + 86_400 + 5, "{expires_in} -> {e}");
        }
    }
    let odd = br#"{"access_token":"a","refresh_token":"r","scope":["crm"],"client_endpoint":"https://p/rest/"}"#;
    assert!(
        Tokens::from_token_response(odd).is_ok(),
        "an odd optional field must not throw away the new pair"
    );
}

#[tokio::test]
async fn decode_errors_never_show_the_webhook_code() {
    let api = MockServer::start().await;
    mount_post(
        &api,
        "/rest/1/SECRETCODE123/user.current",
        json_response(
            200,
            r#"{"result":{"ID":"https://p/rest/1/SECRETCODE123/"}}"#,
        ),
    )
    .await;
    mount_catch_all(&api).await;
    let client = Client::webhook(format!("{}/rest/1/SECRETCODE123/", api.uri())).unwrap();
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert_no_secrets(&e, &["SECRETCODE123"]);
}

#[tokio::test]
async fn a_secret_at_the_edge_of_a_huge_body_is_still_redacted() {
    let api = MockServer::start().await;
    let page = format!("{}SECRETCODE123", " ".repeat(65_530));
    mount_post(
        &api,
        "/rest/1/SECRETCODE123/user.current",
        ResponseTemplate::new(502).set_body_string(page),
    )
    .await;
    mount_catch_all(&api).await;
    let client = Client::webhook(format!("{}/rest/1/SECRETCODE123/", api.uri())).unwrap();
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Http);
    assert_no_secrets(&e, &["SECRET"]);
}

#[tokio::test]
async fn a_redirect_to_a_page_that_is_not_a_portal_does_not_move_the_client() {
    let login = MockServer::start().await;
    mount_post(
        &login,
        "/rest/1/k3y/user.current",
        ResponseTemplate::new(200).set_body_string("<html>Log in to the Wi-Fi</html>"),
    )
    .await;
    mount_catch_all(&login).await;
    let api = MockServer::start().await;
    let location = format!("{}/rest/1/k3y/user.current", login.uri());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    mount_post(&api, "/rest/1/k3y/user.current", move |_: &Request| {
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            ResponseTemplate::new(302).insert_header("Location", location.as_str())
        } else {
            json_response(200, USER_OK)
        }
    })
    .await;
    mount_catch_all(&api).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", api.uri())).unwrap();

    let e = client.user().current().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Http, Some(200)));
    let me = client
        .user()
        .current()
        .await
        .expect("still the old address");
    assert_eq!(me.id, 17);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn odd_metadata_does_not_fail_a_call_that_ran() {
    let api = MockServer::start().await;
    let bodies = [
        r#"{"result":[],"total":-1}"#,
        r#"{"result":[],"total":1.5,"next":"abc"}"#,
        r#"{"result":[],"time":"x"}"#,
        r#"{"result":[],"time":{"start":"n/a"}}"#,
    ];
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    mount_post(&api, "/rest/1/k3y/user.get", move |_: &Request| {
        json_response(200, bodies[c.fetch_add(1, Ordering::SeqCst) % bodies.len()])
    })
    .await;
    mount_post(&api, "/rest/1/k3y/scope", json_response(200, "[]")).await;
    mount_post(
        &api,
        "/rest/1/k3y/profile",
        json_response(200, r#"{"time":{}}"#),
    )
    .await;
    mount_catch_all(&api).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", api.uri())).unwrap();
    for body in bodies {
        let users = client
            .user()
            .get()
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(users.is_empty());
    }
    let e = client.basic().scope().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Http, "a JSON array is not an envelope");
    let e = client.basic().profile().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "a success without `result`");
}

/// `invalid_token` refreshes at most once: when the refreshed token is refused the same way,
/// later calls do not refresh again.
#[tokio::test]
async fn invalid_token_refreshes_at_most_once() {
    let api = MockServer::start().await;
    mount_post(
        &api,
        "/rest/user.current",
        json_response(
            401,
            r#"{"error":"invalid_token","error_description":"Unable to get application by token"}"#,
        ),
    )
    .await;
    mount_catch_all(&api).await;
    let oauth = MockServer::start().await;
    let body = refresh_response_body(&api, &oauth);
    mount_post(&oauth, "/oauth/token/", json_response(200, body)).await;
    mount_catch_all(&oauth).await;
    let store = RecordingStore::new(Probe::new(), None).into_arc();
    let client = oauth_client(old_tokens(&api, &oauth), &store);
    for _ in 0..3 {
        let e = client.user().current().await.unwrap_err();
        assert!(e.is_code("invalid_token"));
    }
    let refreshes = requests(&oauth).await.len();
    assert_eq!(
        refreshes, 1,
        "one refresh for invalid_token, not one per call"
    );
    assert_eq!(
        requests(&api).await.len(),
        4,
        "2 for the first call, then 1 each"
    );
}

#[tokio::test]
async fn the_client_secret_never_goes_to_a_clear_text_oauth_server() {
    let api = MockServer::start().await;
    mount_post(
        &api,
        "/rest/user.current",
        fixture_response("error-expired-token.401.json"),
    )
    .await;
    mount_catch_all(&api).await;
    let tokens = Tokens::new(OLD_ACCESS, OLD_REFRESH, rest_endpoint(&api))
        .server_endpoint("http://oauth.example.com/rest/");
    let store = RecordingStore::new(Probe::new(), None).into_arc();
    let client = oauth_client(tokens, &store);
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("https"), "{e}");
    let refused = Client::builder()
        .oauth(app(), old_tokens(&api, &api))
        .oauth_server("http://oauth.example.com")
        .build()
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
}
