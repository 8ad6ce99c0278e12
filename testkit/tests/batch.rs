//! `batch`: shapes of the fixtures, halt, references, the cap, nested batch.

mod common;

use bitrix24_testkit::FakePortal;
use common::*;
use serde_json::json;

#[tokio::test]
async fn the_fixture_request_gives_the_fixture_response_shape() {
    let portal = FakePortal::start().await;
    let mut request = fixture("batch-request.json");
    request.as_object_mut().unwrap().remove("auth");
    let (status, body) = post_json(&format!("{}batch", portal.webhook_url(1)), request).await;
    assert_eq!(status, 200);
    let want = fixture("batch-response-one-failed.200.json");
    assert_covers("", &body, &want);
    assert_eq!(
        body["result"]["result_error"]["deal"],
        json!({"error": "", "error_description": "Not found"})
    );
    assert_eq!(body["result"]["result_total"]["leads"], 412);
    assert_eq!(body["result"]["result_next"]["leads"], 50);
    assert_eq!(
        body["result"]["result"]["leads"][0],
        json!({"ID": "1", "TITLE": "Lead #1"})
    );
}

#[tokio::test]
async fn halt_stops_and_empty_maps_are_arrays() {
    let portal = FakePortal::builder()
        .webhook_scopes(&["user"])
        .start()
        .await;
    // Raw text: the commands run in the order sent, and `json!` would sort them.
    let (status, body, _) = post_text(
        &format!("{}batch", portal.webhook_url(1)),
        "application/json",
        r#"{"halt": 1, "cmd": {"new_deal": "crm.deal.add?fields[TITLE]=x", "me": "user.current"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_covers(
        "",
        &body,
        &fixture("batch-response-halt-empty-maps.200.json"),
    );
    assert_eq!(body["result"]["result"], json!([]));
    assert_eq!(
        body["result"]["result_error"]["new_deal"]["error"],
        "insufficient_scope"
    );
}

#[tokio::test]
async fn list_commands_references_cap_and_nested_batch() {
    let portal = FakePortal::start().await;
    let url = format!("{}batch", portal.webhook_url(1));
    let (_, body) = post_json(
        &url,
        json!({"cmd": ["user.current", "user.get?ID=$result[0][ID]", "department.get?ID=$result[0][UF_DEPARTMENT][0]", "crm.deal.get?id=$result[3][ID]"]}),
    )
    .await;
    let r = &body["result"];
    assert_eq!(r["result"][0]["ID"], "1");
    assert_eq!(r["result"][1][0]["ID"], "1");
    assert_eq!(r["result"][2][0]["ID"], "1");
    assert_eq!(r["result_error"]["3"]["error"], "");
    // All succeeded in list mode: arrays.
    let (_, body) = post_json(&url, json!({"cmd": ["server.time", "profile"]})).await;
    assert!(body["result"]["result"].is_array());
    assert_eq!(body["result"]["result_error"], json!([]));
    // PHP-style form body with the batch in it.
    let form =
        bitrix24::php::encode(&json!({"cmd": {"a": "crm.deal.list?filter[>ID]=135&select[]=ID"}}));
    let r = http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["result"]["result"]["a"],
        json!([{"ID": "136"}, {"ID": "137"}])
    );
    assert_eq!(body["result"]["result_total"]["a"], 2);
    // Nested batch.
    let (_, body) = post_json(&url, json!({"cmd": {"inner": "batch?cmd[0]=server.time"}})).await;
    assert_eq!(
        body["result"]["result_error"]["inner"]["error"],
        "ERROR_BATCH_METHOD_NOT_ALLOWED"
    );
    // The cap.
    let cmds: Vec<String> = (0..51).map(|_| "server.time".to_owned()).collect();
    let (status, body) = post_json(&url, json!({"cmd": cmds})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("ERROR_BATCH_LENGTH_EXCEEDED"))
    );
    let cmds: Vec<String> = (0..50).map(|_| "server.time".to_owned()).collect();
    let (status, _) = post_json(&url, json!({"cmd": cmds})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn commands_run_and_are_answered_in_the_order_sent() {
    let portal = FakePortal::start().await;
    let url = format!("{}batch", portal.webhook_url(1));
    // Not alphabetical, and `a_deal` needs `z_me` to have run first.
    let json = r#"{"cmd": {"z_me": "user.current", "a_deal": "crm.deal.get?id=$result[z_me][ID]", "m_time": "server.time"}}"#;
    let form =
        "cmd%5Bz_me%5D=user.current&cmd%5Ba_deal%5D=crm.deal.get%3Fid%3D%24result%5Bz_me%5D%5BID%5D\
                &cmd%5Bm_time%5D=server.time";
    for (content_type, body) in [
        ("application/json", json),
        ("application/x-www-form-urlencoded", form),
    ] {
        let (status, answer, text) = post_text(&url, content_type, body).await;
        assert_eq!(status, 200, "{content_type}: {text}");
        let r = &answer["result"];
        assert_eq!(r["result"]["a_deal"]["ID"], "1", "{content_type}: {text}");
        assert_eq!(r["result_error"], json!([]), "{content_type}: {text}");
        // The answer lists the commands in the order they ran, as PHP's arrays do.
        for map in ["result", "result_time"] {
            let at = |key: &str| {
                let start = text.find(&format!(r#""{map}":{{"#)).unwrap();
                start + text[start..].find(&format!(r#""{key}":"#)).unwrap()
            };
            assert!(
                at("z_me") < at("a_deal") && at("a_deal") < at("m_time"),
                "{content_type} {map}: {text}"
            );
        }
    }
    // The log keeps what was sent.
    let logged = portal.requests();
    assert_eq!(logged.last().unwrap().method, "batch");
}

#[tokio::test]
async fn more_than_ten_list_commands_stay_a_list_in_order() {
    let portal = FakePortal::start().await;
    let cmds: Vec<String> = (1..=12).map(|i| format!("crm.deal.get?id={i}")).collect();
    let (status, body) = post_json(
        &format!("{}batch", portal.webhook_url(1)),
        json!({"cmd": cmds}),
    )
    .await;
    assert_eq!(status, 200);
    let results = body["result"]["result"].as_array().expect("a list");
    let ids: Vec<&str> = results.iter().map(|r| r["ID"].as_str().unwrap()).collect();
    let want: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    assert!(body["result"]["result_time"].is_array());
}
