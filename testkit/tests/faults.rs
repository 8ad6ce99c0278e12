//! Injected faults: 500, 502 HTML, dropped connection, slow body, latency, portal rename.

mod common;

use std::time::{Duration, Instant};

use bitrix24::{Client, ErrorKind, Retry};
use bitrix24_testkit::{AppSpec, FakePortal, Fault};
use common::*;

#[tokio::test]
async fn next_requests_fail_as_asked_then_recover() {
    let portal = FakePortal::start().await;
    // One call per fault: the client's own retries would use up several.
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .retry(Retry::never())
        .build()
        .unwrap();
    portal.fail_next(2, Fault::InternalError);
    portal.fail_next(1, Fault::BadGateway);
    portal.fail_next(1, Fault::DropConnection);

    let e = client.user().current().await.unwrap_err();
    assert_eq!(
        (e.code(), e.status()),
        (Some("INTERNAL_SERVER_ERROR"), Some(500))
    );
    let (status, body) = get(&format!("{}user.current", portal.webhook_url(1))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("INTERNAL_SERVER_ERROR"))
    );
    let e = client.user().current().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Http, Some(502)));
    assert!(e.body_snippet().unwrap_or("").contains("Bad Gateway"));
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert_eq!(client.user().current().await.unwrap().id, 1);
}

#[tokio::test]
async fn slow_body_and_latency_delay_but_deliver() {
    let portal = FakePortal::start().await;
    let client = Client::webhook(portal.webhook_url(1)).unwrap();
    portal.fail_next(1, Fault::SlowBody(Duration::from_millis(80)));
    let t = Instant::now();
    assert_eq!(client.user().current().await.unwrap().id, 1);
    assert!(t.elapsed() >= Duration::from_millis(70));
    portal.set_latency(Duration::from_millis(30));
    let t = Instant::now();
    client.basic().profile().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn a_renamed_portal_redirects_and_the_client_follows() {
    let portal = FakePortal::start().await;
    let old = portal.base_url();
    let hook = Client::webhook(portal.webhook_url(1)).unwrap();
    let app = portal.install_app(AppSpec::default()).await;
    let oauth = Client::builder()
        .oauth(app.app.clone(), app.tokens.clone())
        .build()
        .unwrap();
    let old_hook_url = portal.webhook_url(1);
    let new = portal.rename().await;
    assert_ne!(old, new);
    assert_eq!(portal.base_url(), new);
    let r = http()
        .post(format!("{old_hook_url}user.current"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&new) && location.ends_with("/user.current"),
        "{location}"
    );
    assert_eq!(hook.user().current().await.unwrap().id, 1);
    assert_eq!(oauth.user().current().await.unwrap().id, 1);
    assert!(oauth.tokens().unwrap().client_endpoint.starts_with(&new));
    // The OAuth server stays where it was, and refresh still works after the move.
    portal.expire_tokens();
    assert_eq!(oauth.user().current().await.unwrap().id, 1);
    assert_eq!(portal.token_requests().len(), 1);
}
