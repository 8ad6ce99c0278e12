//! The leaky bucket (503) and the per-method operating time (429) on the virtual clock.

mod common;

use std::time::Duration;

use bitrix24::Client;
use bitrix24_testkit::{FakePortal, Plan};
use common::*;

#[tokio::test]
async fn leaky_bucket_refuses_past_the_burst_and_drains() {
    let portal = FakePortal::builder().rate_limit(5, 2.0).start().await;
    let url = format!("{}server.time", portal.webhook_url(1));
    for _ in 0..5 {
        assert_eq!(get(&url).await.0, 200);
    }
    let (status, body) = get(&url).await;
    assert_eq!(status, 503);
    assert_eq!(body, fixture("error-query-limit-exceeded.503.json"));
    // A deadline too short to wait the bucket out: the client answers the refusal instead
    // of waiting and succeeding (it waits `QUERY_LIMIT_EXCEEDED` out when it can).
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.user().current().await.unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    portal.advance(Duration::from_secs(1)); // drains 2
    assert_eq!(get(&url).await.0, 200);
    assert_eq!(get(&url).await.0, 200);
    assert_eq!(get(&url).await.0, 503);
}

#[tokio::test]
async fn rate_limit_can_be_off() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let url = format!("{}server.time", portal.webhook_url(1));
    for _ in 0..120 {
        assert_eq!(get(&url).await.0, 200);
    }
}

#[tokio::test]
async fn operating_time_blocks_one_method_until_the_window_slides() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .call_cost(Duration::from_secs(100))
        .operating_limit(Duration::from_secs(480))
        .start()
        .await;
    let url = portal.webhook_url(1);
    let start = portal.now();
    let mut last = serde_json::Value::Null;
    for i in 0..5 {
        let (status, body) = get(&format!("{url}user.current")).await;
        assert_eq!(status, 200, "call {i}");
        last = body;
        portal.advance(Duration::from_secs(61));
    }
    // 500 s used: the fifth call crossed the limit but completed.
    assert_eq!(last["time"]["operating"], 500.0);
    let reset_at = last["time"]["operating_reset_at"].as_i64().unwrap();
    assert!(
        (start + 600.0..start + 601.1).contains(&(reset_at as f64)),
        "{reset_at} vs {start}"
    );
    let (status, body) = get(&format!("{url}user.current")).await;
    assert_eq!(status, 429);
    assert_eq!(body, fixture("error-operation-time-limit.429.json"));
    let client = Client::webhook(portal.webhook_url(1)).unwrap();
    assert!(client
        .user()
        .current()
        .await
        .unwrap_err()
        .is_operation_time_limit());
    // Other methods keep working.
    assert_eq!(get(&format!("{url}profile")).await.0, 200);
    // The oldest bucket drops out at operating_reset_at.
    let wait = reset_at as f64 - portal.now();
    portal.advance(Duration::from_secs_f64(wait));
    let (status, body) = get(&format!("{url}user.current")).await;
    assert_eq!(status, 200);
    assert_eq!(body["time"]["operating"], 500.0);
}

#[tokio::test]
async fn time_scale_runs_the_clock_faster() {
    let portal = FakePortal::builder().time_scale(1000.0).start().await;
    let a = portal.now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(portal.now() - a >= 19.0);
}

#[tokio::test]
async fn plans_set_the_bucket() {
    assert_eq!(
        (Plan::Standard.burst(), Plan::Standard.drain_per_s()),
        (50, 2.0)
    );
    assert_eq!(
        (Plan::Enterprise.burst(), Plan::Enterprise.drain_per_s()),
        (250, 5.0)
    );
    assert_eq!(Plan::default(), Plan::Standard);
    for plan in [Plan::Standard, Plan::Enterprise] {
        // A stopped clock: only `advance` drains the bucket, however slow the requests.
        let portal = FakePortal::builder()
            .plan(plan)
            .time_scale(0.0)
            .start()
            .await;
        let url = format!("{}server.time", portal.webhook_url(1));
        for i in 0..plan.burst() {
            assert_eq!(get(&url).await.0, 200, "{plan:?} request {i}");
        }
        assert_eq!(get(&url).await.0, 503, "{plan:?} past the burst");
        portal.advance(Duration::from_secs(1));
        for _ in 0..plan.drain_per_s() as u32 {
            assert_eq!(get(&url).await.0, 200, "{plan:?} after draining");
        }
        assert_eq!(get(&url).await.0, 503, "{plan:?} drained only its rate");
    }
}
