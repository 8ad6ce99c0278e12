//! Webhook clients: URL forms, request shape, decoding, no refresh, portal renames, `call_raw`.

#![allow(deprecated)] // the classic imbot.* methods are deprecated by Bitrix24

mod common;

use bitrix24::{Client, ErrorKind};
use common::*;
use serde_json::json;
use wiremock::MockServer;

/// A webhook mock: `user.current` and `imbot.message.add` answered, everything else 500.
async fn webhook_portal(message_add_answer: &str) -> MockServer {
    let server = MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/user.current",
        json_response(200, USER_OK),
    )
    .await;
    mount_post(
        &server,
        "/rest/1/k3y/imbot.message.add",
        json_response(200, message_add_answer),
    )
    .await;
    mount_catch_all(&server).await;
    server
}

#[tokio::test]
async fn webhook_posts_json_to_the_method_url_with_or_without_trailing_slash() {
    for suffix in ["/rest/1/k3y/", "/rest/1/k3y"] {
        let server = webhook_portal(r#"{"result":42}"#).await;
        let client = Client::webhook(format!("{}{suffix}", server.uri())).unwrap();
        assert!(client.tokens().is_none());

        let me = client.user().current().await.unwrap();
        assert_eq!(me.id, 17);
        assert_eq!(me.name.as_deref(), Some("Alex"));
        assert_eq!(me.active, Some(true));
        assert_eq!(me.is_online, Some(true));

        let id: u64 = client
            .imbot()
            .message_add("hi")
            .dialog_id("chat42")
            .await
            .unwrap();
        assert_eq!(id, 42);

        let reqs = requests(&server).await;
        assert_eq!(reqs.len(), 2, "{suffix}: {reqs:?}");
        assert_rest_post(&reqs[0], "/rest/1/k3y/user.current");
        assert_rest_post(&reqs[1], "/rest/1/k3y/imbot.message.add");
        for r in &reqs {
            let body = body_json(r);
            assert!(
                body.get("auth").is_none(),
                "webhook bodies carry no auth: {body}"
            );
            assert_eq!(
                header(r, "accept").as_deref(),
                Some("application/json"),
                "PROTOCOL 2.2"
            );
            assert!(
                header(r, "user-agent").is_some_and(|ua| ua.starts_with("bitrix24-rust/")),
                "a real User-Agent"
            );
        }
        assert_eq!(body_json(&reqs[0]), json!({}));
        assert_eq!(
            body_json(&reqs[1]),
            json!({"DIALOG_ID": "chat42", "MESSAGE": "hi"})
        );
    }
}

#[tokio::test]
async fn message_add_decodes_an_id_sent_as_a_string() {
    let server = webhook_portal(r#"{"result":"42","time":{"start":1.0}}"#).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    let id = client
        .imbot()
        .message_add("hi")
        .dialog_id("chat42")
        .await
        .unwrap();
    assert_eq!(id, 42u64);
}

#[test]
fn bad_webhook_urls_are_invalid_input_and_never_show_the_code() {
    for bad in [
        "",
        "k3y",
        "acme.bitrix24.com/rest/1/k3y",
        "https://acme.bitrix24.com/k3y/",
        "https://acme.bitrix24.com/rest/k3y/",
        "https://acme.bitrix24.com/rest/one/k3y/",
        "https://acme.bitrix24.com/rest/1/k3y/user.current",
        "https://acme.bitrix24.com/rest/1/k3y/?token=k3y",
        "https://acme.bitrix24.com/rest/1/k3y/#k3y",
        "ftp://acme.bitrix24.com/rest/1/k3y/",
        "https://acme.bitrix24.com:99999/rest/1/k3y/",
        "mailto:k3y@acme.bitrix24.com",
        // The code would cross the network in clear text.
        "http://acme.bitrix24.com/rest/1/k3y/",
        "http://192.168.1.10/rest/1/k3y/",
    ] {
        let e = Client::webhook(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e:?}");
        let e2 = Client::builder().webhook(bad).build().unwrap_err();
        assert_eq!(e2.kind(), ErrorKind::InvalidInput);
        for e in [e, e2] {
            assert!(!format!("{e}").contains("k3y"), "{bad:?}: {e}");
            assert!(!format!("{e:?}").contains("k3y"), "{bad:?}: {e:?}");
        }
    }
    // Plain http is fine on a loopback host (a local test portal).
    for local in [
        "http://127.0.0.1:8090",
        "http://[::1]:8090",
        "http://localhost:8090",
    ] {
        assert!(
            Client::webhook(format!("{local}/rest/1/k3y/")).is_ok(),
            "{local}"
        );
    }
    // A good one does not show its code either.
    let client = Client::webhook("https://acme.bitrix24.com/rest/1/k3y/").unwrap();
    assert!(!format!("{client:?}").contains("k3y"), "{client:?}");
    let builder = Client::builder().webhook("https://acme.bitrix24.com/rest/1/k3y/");
    assert!(!format!("{builder:?}").contains("k3y"), "{builder:?}");
}

#[tokio::test]
async fn transport_errors_never_show_the_webhook_code() {
    // A port nothing listens on: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::webhook(format!("http://127.0.0.1:{port}/rest/1/k3y/")).unwrap();
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e:?}");
    assert!(e.is_transport());
    assert_eq!(e.method_name(), Some("user.current"));
    assert!(!format!("{e}").contains("k3y"), "{e}");
    assert!(!format!("{e:?}").contains("k3y"), "{e:?}");
}

#[tokio::test]
async fn webhook_never_refreshes_on_expired_token() {
    let server = MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/user.current",
        fixture_response("error-expired-token.401.json"),
    )
    .await;
    mount_catch_all(&server).await;
    let client = Client::webhook(format!("{}/rest/1/k3y", server.uri())).unwrap();

    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert!(e.is_expired_token());
    assert_eq!(e.status(), Some(401));
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1, "one call, no refresh, no retry: {reqs:?}");
    assert_rest_post(&reqs[0], "/rest/1/k3y/user.current");
}

#[tokio::test]
async fn webhook_follows_a_portal_rename_and_then_calls_the_new_host_directly() {
    let old = MockServer::start().await;
    let new = MockServer::start().await;
    mount_post(
        &old,
        "/rest/1/k3y/user.current",
        wiremock::ResponseTemplate::new(302)
            .insert_header("Location", format!("{}/rest/1/k3y/user.current", new.uri())),
    )
    .await;
    mount_catch_all(&old).await;
    mount_post(
        &new,
        "/rest/1/k3y/user.current",
        json_response(200, USER_OK),
    )
    .await;
    mount_post(
        &new,
        "/rest/1/k3y/imbot.message.add",
        json_response(200, r#"{"result":7}"#),
    )
    .await;
    mount_catch_all(&new).await;

    let client = Client::webhook(format!("{}/rest/1/k3y/", old.uri())).unwrap();
    let me = client.user().current().await.unwrap();
    assert_eq!(me.id, 17);

    let first = requests(&old).await;
    let moved = requests(&new).await;
    assert_eq!(first.len(), 1);
    assert_eq!(moved.len(), 1);
    assert_rest_post(&moved[0], "/rest/1/k3y/user.current");
    assert_eq!(moved[0].body, first[0].body, "the same body is re-POSTed");

    // Later calls go straight to the new host.
    assert_eq!(client.user().current().await.unwrap().id, 17);
    assert_eq!(
        client
            .imbot()
            .message_add("x")
            .dialog_id("5")
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        requests(&old).await.len(),
        1,
        "the old host sees nothing more"
    );
    let moved = requests(&new).await;
    assert_eq!(moved.len(), 3);
    assert_rest_post(&moved[1], "/rest/1/k3y/user.current");
    assert_rest_post(&moved[2], "/rest/1/k3y/imbot.message.add");
}

#[tokio::test]
async fn call_raw_returns_result_and_paging() {
    let server = MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/crm.deal.list",
        fixture_response("list-response-crm-deal-list.200.json"),
    )
    .await;
    mount_catch_all(&server).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();

    let params = json!({
        "select": ["ID", "TITLE", "OPPORTUNITY"],
        "filter": {">OPPORTUNITY": 1000, "STAGE_ID": "NEW"},
        "order": {"ID": "ASC"},
        "start": 0
    });
    let page = client
        .call_raw("crm.deal.list", params.clone())
        .await
        .unwrap();
    let items = page.result.as_array().expect("result is an array");
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["ID"], "1001");
    assert_eq!(items[49]["TITLE"], "Deal #1050");
    assert_eq!(page.total, Some(137));
    assert_eq!(page.next, Some(50));
    let time = page.time.expect("time");
    assert_eq!(time.start, Some(1787219542.104381));
    assert_eq!(time.duration, Some(0.231887));
    assert_eq!(time.operating, Some(0.118151));
    assert_eq!(time.operating_reset_at, Some(1787220142));
    assert_eq!(
        time.date_start.as_deref(),
        Some("2026-08-20T11:52:22+02:00")
    );

    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1);
    assert_rest_post(&reqs[0], "/rest/1/k3y/crm.deal.list");
    assert_eq!(body_json(&reqs[0]), params, "params are sent as given");
}

#[tokio::test]
async fn call_raw_rejects_params_that_are_not_an_object() {
    let server = MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/crm.deal.list",
        json_response(200, r#"{"result":[]}"#),
    )
    .await;
    mount_catch_all(&server).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();

    for bad in [json!([1, {"ID": 2}]), json!("x"), json!(5), json!(true)] {
        let e = client
            .call_raw("crm.deal.list", bad.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e:?}");
        assert_eq!(e.method_name(), Some("crm.deal.list"));
    }
    assert!(requests(&server).await.is_empty(), "nothing is sent");

    // `null` means "no parameters".
    let page = client
        .call_raw("crm.deal.list", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(page.result, json!([]));
    assert_eq!((page.total, page.next), (None, None));
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(body_json(&reqs[0]), json!({}));
}

#[tokio::test]
async fn bad_method_names_are_rejected_before_sending() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    for bad in [
        "",
        "../2/other/user.current",
        "user.current?x=1",
        "a/b",
        "a#b",
    ] {
        let e = client.call_raw(bad, json!({})).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e:?}");
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn typed_request_bodies_keep_the_order_parameters_and_map_keys_were_set_in() {
    // PHP reads `order` in the order sent: the first key sorts first. Neither the top level
    // nor the map is alphabetical here, and the body must say so byte for byte (the
    // workspace does not turn on serde_json's `preserve_order`).
    let (client, server) = answering(
        "crm.deal.list",
        json_response(200, r#"{"result":[],"total":0}"#),
    )
    .await;
    let deals = client
        .crm()
        .deal_list()
        .start(50)
        .order([("TITLE", "ASC"), ("ID", "DESC"), ("BEGINDATE", "ASC")])
        .select(["TITLE", "ID"])
        .await
        .unwrap();
    assert!(deals.is_empty());
    let reqs = requests(&server).await;
    let raw = String::from_utf8(reqs[0].body.clone()).unwrap();
    assert_eq!(
        raw,
        r#"{"start":50,"order":{"TITLE":"ASC","ID":"DESC","BEGINDATE":"ASC"},"select":["TITLE","ID"]}"#
    );
}
