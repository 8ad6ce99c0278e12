//! The limit and error faults, the two dropped connections, targeted faults and what the
//! request log says about each (raw HTTP, so the tests see the wire, not a client's view).

mod common;

use std::time::Duration;

use bitrix24_testkit::{FakePortal, Fault, LoggedRequest};
use common::*;
use serde_json::{json, Value};

/// Contacts the portal has now (`total` of `crm.contact.list`; the check itself is logged).
async fn contacts(portal: &FakePortal) -> u64 {
    let (status, body) = post_json(
        &format!("{}crm.contact.list", portal.webhook_url(1)),
        json!({"select": ["ID"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["total"].as_u64().unwrap()
}

/// `crm.contact.add` with this name, over the webhook.
async fn add_contact(portal: &FakePortal, name: &str) -> (u16, Value) {
    post_json(
        &format!("{}crm.contact.add", portal.webhook_url(1)),
        json!({"fields": {"NAME": name}}),
    )
    .await
}

/// The last logged request to `method`.
fn last(portal: &FakePortal, method: &str) -> LoggedRequest {
    portal
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == method)
        .unwrap_or_else(|| panic!("no {method} in {:?}", portal.requests()))
}

/// Asserts that a fault answers exactly `status` and `body`, that the `crm.contact.add` it
/// hit did not run (no contact, log says not executed, with `error`), and that the next add
/// works.
async fn refuses(fault: Fault, status: u16, body: Value, error: &str) {
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    portal.fail_next(1, fault.clone());
    let got = add_contact(&portal, "Refused").await;
    assert_eq!(got, (status, body), "{fault:?}");
    let log = last(&portal, "crm.contact.add");
    assert_eq!(
        (log.status, log.error.as_deref(), log.executed),
        (status, Some(error), false),
        "{fault:?}"
    );
    assert_eq!(log.params["fields"]["NAME"], "Refused");
    assert_eq!(
        contacts(&portal).await,
        before,
        "{fault:?} created a contact"
    );
    let (status, _) = add_contact(&portal, "Accepted").await;
    assert_eq!(status, 200);
    let log = last(&portal, "crm.contact.add");
    assert_eq!((log.status, log.error, log.executed), (200, None, true));
    assert_eq!(contacts(&portal).await, before + 1);
}

#[tokio::test]
async fn query_limit_exceeded_refuses_before_running() {
    refuses(
        Fault::QueryLimitExceeded,
        503,
        json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
        "QUERY_LIMIT_EXCEEDED",
    )
    .await;
}

#[tokio::test]
async fn query_limit_fault_answers_as_the_bucket_does_and_does_not_fill_it() {
    // A bucket of one that never drains: one real request fits, the second is refused.
    let portal = FakePortal::builder().rate_limit(1, 0.0).start().await;
    let url = format!("{}server.time", portal.webhook_url(1));
    portal.fail_next(3, Fault::QueryLimitExceeded);
    let mut faulted = Vec::new();
    for _ in 0..3 {
        faulted.push(post_json(&url, json!({})).await);
    }
    // The faults took nothing from the bucket: the real request still fits.
    assert_eq!(post_json(&url, json!({})).await.0, 200);
    let real = post_json(&url, json!({})).await;
    assert_eq!(real.0, 503);
    for f in faulted {
        assert_eq!(f, real);
    }
    assert_eq!(real.1, fixture("error-query-limit-exceeded.503.json"));
    let log = last(&portal, "server.time");
    assert_eq!(
        (log.status, log.error.as_deref(), log.executed),
        (503, Some("QUERY_LIMIT_EXCEEDED"), false)
    );
}

#[tokio::test]
async fn overload_limit_refuses_before_running() {
    refuses(
        Fault::OverloadLimit,
        503,
        json!({"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload."}),
        "OVERLOAD_LIMIT",
    )
    .await;
    assert_eq!(
        fixture("error-overload-limit.503.json")["error"],
        "OVERLOAD_LIMIT"
    );
}

#[tokio::test]
async fn operation_time_limit_refuses_before_running() {
    refuses(
        Fault::OperationTimeLimit,
        429,
        json!({"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked due to operation time limit."}),
        "OPERATION_TIME_LIMIT",
    )
    .await;
}

#[tokio::test]
async fn operation_time_limit_fault_is_the_simulations_answer_without_time() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .call_cost(Duration::from_secs(300))
        .operating_limit(Duration::from_secs(480))
        .start()
        .await;
    let before = contacts(&portal).await;
    // Two adds of 300 s each: the second crosses 480 s but completes (checked before the call).
    for name in ["One", "Two"] {
        let (status, body) = add_contact(&portal, name).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            last(&portal, "crm.contact.add").error,
            None,
            "{name} should have run"
        );
    }
    // (Counting contacts costs 300 s of `crm.contact.list` too: done only twice.)
    let (status, real) = add_contact(&portal, "Three").await;
    assert_eq!(status, 429);
    assert_eq!(real, fixture("error-operation-time-limit.429.json"));
    // The simulation's error answer is `{error, error_description}` only: no `time`.
    assert_eq!(real.as_object().unwrap().len(), 2, "{real}");
    assert!(real.get("time").is_none());
    let log = last(&portal, "crm.contact.add");
    assert_eq!(
        (log.status, log.error.as_deref(), log.executed),
        (429, Some("OPERATION_TIME_LIMIT"), false)
    );
    assert_eq!(contacts(&portal).await, before + 2, "the refused add ran");

    // The fault answers byte for byte the same, on a method that is not blocked.
    portal.fail_next(1, Fault::OperationTimeLimit);
    let (status, faulted) =
        post_json(&format!("{}profile", portal.webhook_url(1)), json!({})).await;
    assert_eq!((status, &faulted), (429, &real));
    assert_eq!(
        (
            last(&portal, "profile").executed,
            last(&portal, "profile").status
        ),
        (false, 429)
    );
    assert_eq!(
        post_json(&format!("{}profile", portal.webhook_url(1)), json!({}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn numeric_error_code_is_a_json_number() {
    refuses(
        Fault::NumericErrorCode,
        400,
        json!({"error": 100, "error_description": "Invalid parameters"}),
        "100",
    )
    .await;
    let portal = FakePortal::start().await;
    portal.fail_next(1, Fault::NumericErrorCode);
    let (_, body) = add_contact(&portal, "X").await;
    assert!(body["error"].is_u64(), "{body}");
    assert_eq!(
        body["error"],
        fixture("error-numeric-code.400.json")["error"]
    );
}

#[tokio::test]
async fn empty_error_code_is_an_empty_string() {
    refuses(
        Fault::EmptyErrorCode,
        400,
        fixture("error-empty-code-not-found.400.json"),
        "",
    )
    .await;
}

#[tokio::test]
async fn internal_error_and_bad_gateway_are_logged_as_not_executed() {
    refuses(
        Fault::InternalError,
        500,
        json!({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}),
        "INTERNAL_SERVER_ERROR",
    )
    .await;
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    portal.fail_next(1, Fault::BadGateway);
    let (status, body) = add_contact(&portal, "X").await;
    assert_eq!(status, 502);
    assert!(body.as_str().unwrap().contains("502 Bad Gateway"), "{body}");
    let log = last(&portal, "crm.contact.add");
    assert_eq!((log.status, log.error, log.executed), (502, None, false));
    assert_eq!(contacts(&portal).await, before);
}

#[tokio::test]
async fn redirect_answers_302_with_the_location_and_does_not_run() {
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    let url = format!("{}crm.contact.add", portal.webhook_url(1));
    let coupon = format!("{}/bitrix/coupon_activation.php", portal.base_url());
    portal.fail_next(
        1,
        Fault::Redirect {
            location: coupon.clone(),
        },
    );
    portal.fail_next(
        1,
        Fault::Redirect {
            location: url.clone(),
        },
    );
    portal.fail_next(
        1,
        Fault::Redirect {
            location: "/bitrix/coupon_activation.php".into(),
        },
    );
    for want in [
        coupon.as_str(),
        url.as_str(),
        "/bitrix/coupon_activation.php",
    ] {
        let r = http()
            .post(&url)
            .json(&json!({"fields": {"NAME": "Moved"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], want);
        assert_eq!(r.text().await.unwrap(), "");
        let log = last(&portal, "crm.contact.add");
        assert_eq!((log.status, log.error, log.executed), (302, None, false));
        assert_eq!(log.params["fields"]["NAME"], "Moved");
    }
    assert_eq!(contacts(&portal).await, before);
    // Queue empty: the same request now runs.
    assert_eq!(add_contact(&portal, "Here").await.0, 200);
    assert_eq!(contacts(&portal).await, before + 1);
}

#[tokio::test]
async fn drop_connection_reads_the_request_and_does_not_run_it() {
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    // Big enough to need many reads: the fault drops only after all of it arrived.
    let name = "N".repeat(512 * 1024);
    portal.fail_next(1, Fault::DropConnection);
    let sent = http()
        .post(format!("{}crm.contact.add", portal.webhook_url(1)))
        .json(&json!({"fields": {"NAME": name}}))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let err = sent.expect_err("a dropped connection has no answer");
    assert!(!err.is_timeout(), "{err}");
    let log = last(&portal, "crm.contact.add");
    assert_eq!((log.status, log.error, log.executed), (0, None, false));
    assert_eq!(
        log.params["fields"]["NAME"].as_str().map(str::len),
        Some(name.len())
    );
    assert_eq!(
        contacts(&portal).await,
        before,
        "DropConnection ran the write"
    );
}

#[tokio::test]
async fn drop_after_executing_runs_the_write_then_drops() {
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    portal.fail_next(1, Fault::DropAfterExecuting);
    let sent = http()
        .post(format!("{}crm.contact.add", portal.webhook_url(1)))
        .json(&json!({"fields": {"NAME": "Ghost"}}))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let err = sent.expect_err("a dropped connection has no answer");
    assert!(!err.is_timeout(), "{err}");
    let log = last(&portal, "crm.contact.add");
    assert_eq!((log.status, log.error, log.executed), (0, None, true));
    // The contact exists although the caller never heard of it.
    assert_eq!(contacts(&portal).await, before + 1);
    let (status, body) = post_json(
        &format!("{}crm.contact.list", portal.webhook_url(1)),
        json!({"filter": {"NAME": "Ghost"}, "select": ["ID", "NAME"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["result"][0]["NAME"], "Ghost");

    // A method that fails when it runs: executed, and the unsent answer's error is logged.
    portal.fail_next(1, Fault::DropAfterExecuting);
    let sent = http()
        .post(format!("{}crm.deal.get", portal.webhook_url(1)))
        .json(&json!({"id": 999_999}))
        .send()
        .await;
    assert!(sent.is_err());
    let log = last(&portal, "crm.deal.get");
    assert_eq!(
        (log.status, log.error.as_deref(), log.executed),
        (0, Some(""), true)
    );
}

#[tokio::test]
async fn targeted_faults_hit_only_their_method_and_come_first() {
    let portal = FakePortal::start().await;
    let hook = portal.webhook_url(1);
    let user = format!("{hook}user.current");
    // Any spelling of the wire name.
    portal.fail_next_for("CRM.Contact.Add.json", 2, Fault::NumericErrorCode);
    portal.fail_next(1, Fault::EmptyErrorCode);
    // Another method passes the targeted faults by and takes the shared one.
    assert_eq!(post_json(&user, json!({})).await.0, 400);
    assert_eq!(last(&portal, "user.current").error.as_deref(), Some(""));
    assert_eq!(post_json(&user, json!({})).await.0, 200);

    portal.fail_next(1, Fault::InternalError);
    let (status, body) = add_contact(&portal, "A").await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!(100)),
        "targeted first"
    );
    // The `.json` form of the URL takes the second.
    let (status, body) = post_json(
        &format!("{hook}crm.contact.add.json"),
        json!({"fields": {"NAME": "B"}}),
    )
    .await;
    assert_eq!((status, &body["error"]), (400, &json!(100)));
    // Targeted queue empty: the shared fault was kept for the next request.
    assert_eq!(add_contact(&portal, "C").await.0, 500);
    assert_eq!(add_contact(&portal, "D").await.0, 200);
    let adds: Vec<(u16, Option<String>, bool)> = portal
        .requests()
        .into_iter()
        .filter(|r| r.method.eq_ignore_ascii_case("crm.contact.add"))
        .map(|r| (r.status, r.error, r.executed))
        .collect();
    assert_eq!(
        adds,
        vec![
            (400, Some("100".into()), false),
            (400, Some("100".into()), false),
            (500, Some("INTERNAL_SERVER_ERROR".into()), false),
            (200, None, true),
        ]
    );
}

#[tokio::test]
async fn targeted_faults_match_the_http_request_not_batch_commands() {
    let portal = FakePortal::start().await;
    let app = portal
        .install_app(bitrix24_testkit::AppSpec::default())
        .await;
    let before = contacts(&portal).await;
    portal.fail_next_for("crm.contact.add", 1, Fault::QueryLimitExceeded);
    // A batch that adds a contact is a `batch` request: the fault waits.
    let (status, body) = post_json(
        &format!("{}batch", portal.webhook_url(1)),
        json!({"cmd": {"a": "crm.contact.add?fields[NAME]=Batched"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(contacts(&portal).await, before + 1);
    // An OAuth call to the method takes it.
    let (status, body) = post_json(
        &format!("{}crm.contact.add.json", portal.rest_url()),
        json!({"auth": app.tokens.access_token.expose(), "fields": {"NAME": "OAuth"}}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("QUERY_LIMIT_EXCEEDED"))
    );
    let log = last(&portal, "crm.contact.add");
    assert!(
        matches!(log.auth, bitrix24_testkit::RequestAuth::OAuth { .. }),
        "{log:?}"
    );
    assert!(!log.executed);
    assert_eq!(contacts(&portal).await, before + 1);
    portal.fail_next_for("batch", 1, Fault::OverloadLimit);
    let (status, _) = post_json(
        &format!("{}batch", portal.webhook_url(1)),
        json!({"cmd": {"a": "crm.contact.add?fields[NAME]=Batched"}}),
    )
    .await;
    assert_eq!(status, 503);
    assert!(!last(&portal, "batch").executed);
    assert_eq!(contacts(&portal).await, before + 1);
}

#[tokio::test]
async fn the_log_tells_refused_from_executed_without_faults() {
    let portal = FakePortal::builder().rate_limit(3, 0.0).start().await;
    let hook = portal.webhook_url(1);
    // A method that ran and failed.
    let (status, _) = post_json(&format!("{hook}crm.deal.get"), json!({"id": 999_999})).await;
    assert_eq!(status, 400);
    let log = last(&portal, "crm.deal.get");
    assert_eq!((log.error.as_deref(), log.executed), (Some(""), true));
    // Unknown method: not run.
    let (status, _) = post_json(&format!("{hook}no.such.method"), json!({})).await;
    assert_eq!(status, 404);
    let log = last(&portal, "no.such.method");
    assert_eq!(
        (log.error.as_deref(), log.executed),
        (Some("ERROR_METHOD_NOT_FOUND"), false)
    );
    // Bad webhook code: not run, no bucket taken.
    let bad = hook.replace("/rest/1/", "/rest/1/x");
    let (status, _) = post_json(&format!("{bad}crm.contact.add"), json!({})).await;
    assert_eq!(status, 401);
    let log = last(&portal, "crm.contact.add");
    assert_eq!(
        (log.error.as_deref(), log.executed),
        (Some("NO_AUTH_FOUND"), false)
    );
    // The bucket of 3 (two taken above): one more fits, then refused and not run.
    assert_eq!(post_json(&format!("{hook}profile"), json!({})).await.0, 200);
    assert!(last(&portal, "profile").executed);
    let (status, _) = add_contact(&portal, "Late").await;
    assert_eq!(status, 503);
    let log = last(&portal, "crm.contact.add");
    assert_eq!(
        (log.status, log.error.as_deref(), log.executed),
        (503, Some("QUERY_LIMIT_EXCEEDED"), false)
    );
    // A slow body still runs the method.
    let portal = FakePortal::start().await;
    let before = contacts(&portal).await;
    portal.fail_next(1, Fault::SlowBody(Duration::from_millis(20)));
    assert_eq!(add_contact(&portal, "Slow").await.0, 200);
    assert!(last(&portal, "crm.contact.add").executed);
    assert_eq!(contacts(&portal).await, before + 1);
}
