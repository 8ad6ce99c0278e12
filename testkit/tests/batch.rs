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
    // A reference to itself (not run yet) fails the command instead of becoming null.
    assert_eq!(r["result_error"]["3"]["error"], "INVALID_ARG_VALUE");
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

/// A chained scan as an SDK builds it: each page's `>ID` is the last row of the page before.
fn chained_pages(n: usize, halt: u8) -> serde_json::Value {
    let mut cmd = serde_json::Map::new();
    for i in 0..n {
        let after = if i == 0 {
            "0".to_owned()
        } else {
            format!("$result[p{}][49][ID]", i - 1)
        };
        cmd.insert(
            format!("p{i}"),
            json!(format!(
                "crm.deal.list?filter[>ID]={after}&order[ID]=ASC&select[]=ID&start=-1"
            )),
        );
    }
    json!({"halt": halt, "cmd": cmd})
}

#[tokio::test]
async fn a_reference_past_the_last_row_fails_the_command_instead_of_restarting_the_scan() {
    // 137 deals: pages of 50, 50, 37; the fourth page's reference has no row 49 to read.
    let portal = FakePortal::start().await;
    let url = format!("{}batch", portal.webhook_url(1));
    let (status, body) = post_json(&url, chained_pages(5, 0)).await;
    assert_eq!(status, 200);
    let r = &body["result"];
    let first_id = |k: &str| r["result"][k][0]["ID"].as_str().map(str::to_owned);
    assert_eq!(first_id("p0").as_deref(), Some("1"));
    assert_eq!(first_id("p1").as_deref(), Some("51"));
    assert_eq!(first_id("p2").as_deref(), Some("101"));
    assert_eq!(r["result"]["p2"].as_array().unwrap().len(), 37);
    // p3 refers to $result[p2][49][ID]: p2 has 37 rows. Before, the reference became null,
    // the filter was dropped and p3 restarted at deal 1.
    assert!(r["result"].get("p3").is_none(), "{body}");
    assert_eq!(r["result_error"]["p3"]["error"], "INVALID_ARG_VALUE");
    let d = r["result_error"]["p3"]["error_description"]
        .as_str()
        .unwrap();
    assert!(d.contains("$result[p2][49][ID]"), "{d}");
    assert!(d.contains("list of 37"), "{d}");
    // p4 refers to p3, which failed: it fails too, and neither has a time (neither ran).
    assert_eq!(r["result_error"]["p4"]["error"], "INVALID_ARG_VALUE");
    assert!(r["result_time"].get("p3").is_none() && r["result_time"].get("p4").is_none());

    // With halt the first failure stops the batch: p4 is in neither map.
    let (_, body) = post_json(&url, chained_pages(5, 1)).await;
    let r = &body["result"];
    assert_eq!(r["result_error"]["p3"]["error"], "INVALID_ARG_VALUE");
    assert!(r["result"].get("p4").is_none() && r["result_error"].get("p4").is_none());
}

#[tokio::test]
async fn a_reference_to_a_later_or_unknown_command_fails() {
    let portal = FakePortal::start().await;
    let url = format!("{}batch", portal.webhook_url(1));
    let (_, body, text) = post_text(
        &url,
        "application/json",
        r#"{"cmd": {"early": "crm.deal.get?id=$result[late][ID]", "late": "user.current", "ghost": "crm.deal.get?id=$result[nobody][ID]", "ok": "crm.deal.get?id=$result[late][ID]"}}"#,
    )
    .await;
    let r = &body["result"];
    for k in ["early", "ghost"] {
        assert_eq!(
            r["result_error"][k]["error"], "INVALID_ARG_VALUE",
            "{k}: {text}"
        );
        assert!(r["result"].get(k).is_none(), "{k}: {text}");
    }
    assert_eq!(r["result"]["ok"]["ID"], "1", "{text}");
    // A total or next that a command does not have cannot be referenced either.
    let (_, body) = post_json(
        &url,
        json!({"cmd": {"last": "crm.deal.list?start=100", "more": "crm.deal.list?start=$result_next[last]"}}),
    )
    .await;
    assert!(body["result"]["result_next"].get("last").is_none());
    assert_eq!(
        body["result"]["result_error"]["more"]["error"],
        "INVALID_ARG_VALUE"
    );
}

#[tokio::test]
async fn halt_is_php_truthiness() {
    let portal = FakePortal::builder()
        .webhook_scopes(&["user"])
        .start()
        .await;
    let url = format!("{}batch", portal.webhook_url(1));
    // The first command fails (no crm scope); does the second run?
    let ran_on = |halt: serde_json::Value| {
        let url = url.clone();
        async move {
            let mut body = json!({"cmd": ["crm.deal.get?id=1", "user.current"]});
            if !halt.is_null() {
                body["halt"] = halt;
            }
            let (status, answer) = post_json(&url, body).await;
            assert_eq!(status, 200);
            let r = &answer["result"];
            assert_eq!(
                r["result_error"][0]["error"], "insufficient_scope",
                "{answer}"
            );
            // An object keyed by position when the first is missing.
            r["result"].get("1").is_some_and(|u| u["ID"] == "1")
        }
    };
    for halt in [
        json!(true),
        json!(1),
        json!("1"),
        json!("Y"),
        json!("true"),
        json!("false"),
        json!("N"),
    ] {
        assert!(
            !ran_on(halt.clone()).await,
            "halt {halt} should stop the batch"
        );
    }
    for halt in [json!(false), json!(0), json!("0"), json!(""), json!(null)] {
        assert!(
            ran_on(halt.clone()).await,
            "halt {halt} should not stop the batch"
        );
    }
    // The same over a form body, where `halt=` is what a JSON null or false becomes.
    for (form, stops) in [("halt=false", true), ("halt=0", false), ("halt=", false)] {
        let body = format!("{form}&cmd%5B0%5D=crm.deal.get%3Fid%3D1&cmd%5B1%5D=user.current");
        let (_, answer, text) = post_text(&url, "application/x-www-form-urlencoded", &body).await;
        let ran = answer["result"]["result"].get("1").is_some();
        assert_eq!(ran, !stops, "{form}: {text}");
    }
}
