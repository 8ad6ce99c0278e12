//! The policy layer against the fake portal: the client-side bucket, refusals waited out,
//! the per-method operating-time pause, what is retried and what never is, the deadline.

#![allow(deprecated)]

use std::time::{Duration, Instant};

use bitrix24::crm::CrmContactAdd;
use bitrix24::types::CrmContactAddFields;
use bitrix24::{codes, Client, ErrorKind, RateLimit, Retry, RetryClass};
use bitrix24_testkit::{FakePortal, Fault};

/// The fake portal's clock runs this much faster than real time, so that its 50 / 2 per s
/// bucket is 50 / 40 per real second; the client is told the same, scaled.
const SCALE: f64 = 20.0;

/// The scale for calls in flight together. The client keeps one request of the 50 as its
/// margin, which absorbs a request that reaches the portal up to 1 / (2 x 0.99) s late: half
/// a second against a real portal, but only 25 ms at `SCALE`, which a loaded 2-core CI
/// machine exceeds between the client's bucket and the fake's. At 2 it is 250 ms.
const CONCURRENT_SCALE: f64 = 2.0;

async fn scaled_portal(scale: f64) -> FakePortal {
    FakePortal::builder()
        .rate_limit(50, 2.0)
        .time_scale(scale)
        .start()
        .await
}

fn client(portal: &FakePortal, limit: RateLimit) -> Client {
    Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(limit)
        .build()
        .unwrap()
}

fn refused(portal: &FakePortal) -> usize {
    portal
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some(codes::QUERY_LIMIT_EXCEEDED))
        .count()
}

fn executed(portal: &FakePortal, method: &str) -> usize {
    portal
        .requests()
        .iter()
        .filter(|r| r.method == method && r.executed)
        .count()
}

fn contact(name: &str) -> CrmContactAdd {
    CrmContactAdd::new().fields(CrmContactAddFields::new().name(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_calls_stay_under_the_portal_bucket() {
    let portal = scaled_portal(SCALE).await;
    let client = client(&portal, RateLimit::custom(50, 2.0 * SCALE));
    let started = Instant::now();
    for _ in 0..300 {
        client.user().current().await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(
        refused(&portal),
        0,
        "no QUERY_LIMIT_EXCEEDED reached the portal"
    );
    assert_eq!(portal.requests().len(), 300);
    // 45 at once (the margin), then 39.2 per second: about 6.5 s; the bucket's floor 6.25 s.
    assert!(took >= Duration::from_secs(6), "the bucket held: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_bucket_across_clones() {
    let portal = scaled_portal(CONCURRENT_SCALE).await;
    let client = client(&portal, RateLimit::custom(50, 2.0 * CONCURRENT_SCALE));
    // The burst and 5 s of refill at 4 per s, all spawned at once.
    const CALLS: usize = 70;
    let started = Instant::now();
    let calls = (0..CALLS).map(|i| {
        // Half through clones: they share the bucket.
        let c = if i % 2 == 0 {
            client.clone()
        } else {
            client.clone().clone()
        };
        tokio::spawn(async move { c.user().current().await })
    });
    let results = futures_join(calls).await;
    assert!(results.iter().all(|r| r.is_ok()), "every call succeeded");
    assert_eq!(
        refused(&portal),
        0,
        "no QUERY_LIMIT_EXCEEDED reached the portal"
    );
    assert_eq!(portal.requests().len(), CALLS);
    // 49 at once, then 21 at 3.96 per s: the bucket held them back.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "the bucket held: {:?}",
        started.elapsed()
    );
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<Result<T, bitrix24::Error>>>,
) -> Vec<Result<T, bitrix24::Error>> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_refusals_is_waited_out_and_every_write_runs_once() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    // Another program on the same IP spent the budget: the next 12 requests are refused.
    portal.fail_next(12, Fault::QueryLimitExceeded);
    let mut calls = Vec::new();
    for i in 0..8 {
        let c = client.clone();
        calls.push(tokio::spawn(async move {
            c.call(&contact(&format!("storm {i}"))).await.map(|_| ())
        }));
        let c = client.clone();
        calls.push(tokio::spawn(
            async move { c.user().current().await.map(|_| ()) },
        ));
    }
    let results = futures_join(calls.into_iter()).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(refused(&portal), 12, "the portal refused 12");
    assert_eq!(
        executed(&portal, "crm.contact.add"),
        8,
        "each write ran once"
    );
    assert_eq!(executed(&portal, "user.current"), 8);
}

#[tokio::test]
async fn operation_time_limit_pauses_that_method_only() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    // A's window started now; 598 s later its answer says the oldest minute drops in 2 s.
    client.user().current().await.unwrap();
    portal.advance(Duration::from_secs(598));
    let r = client.user().current().send_with_meta().await.unwrap();
    let time = r.time.expect("the fake sends time");
    assert!(time.operating.is_some() && time.operating_reset_at.is_some());

    portal.fail_next_for("user.current", 1, Fault::OperationTimeLimit);
    let a = {
        let c = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            c.user().current().await.map(|_| started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile B goes on at once.
    let started = Instant::now();
    for _ in 0..3 {
        client
            .call_raw("profile", serde_json::json!({}))
            .read()
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "B is not paused"
    );
    let waited = a.await.unwrap().expect("A succeeds after the reset");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "A paused until its reset: {waited:?}"
    );
    let a_requests = portal
        .requests()
        .iter()
        .filter(|r| r.method == "user.current")
        .count();
    assert_eq!(
        a_requests, 4,
        "the refused call, then one more after the pause"
    );
}

#[tokio::test]
async fn operation_time_limit_past_the_deadline_fails_at_once_with_the_reset_time() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next_for("user.current", 1, Fault::OperationTimeLimit);
    let started = Instant::now();
    let e = client
        .user()
        .current()
        .timeout(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(e.is_operation_time_limit(), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::OperatingLimit);
    assert!(!e.maybe_executed());
    let reset = e.operating_reset_at().expect("an estimate of the reset");
    let now = chrono::Utc::now().timestamp();
    assert!(
        reset > now + 30 && reset <= now + 61,
        "the default pause: {reset} vs {now}"
    );
    // And the next call of the method is not even sent while it is paused.
    let before = portal.requests().len();
    let e = client
        .user()
        .current()
        .timeout(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.is_operation_time_limit());
    assert_eq!(portal.requests().len(), before, "refused locally");
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_sent_again() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next(1, Fault::DropAfterExecuting);
    let e = client.call(&contact("lost answer")).await.unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    assert!(e.maybe_executed(), "the write may have run");
    assert_eq!(e.retry_class(), RetryClass::Transient);
    let cause = std::error::Error::source(&e).expect("a typed cause");
    assert!(cause.downcast_ref::<bitrix24::Cause>().is_some());
    assert_eq!(portal.requests().len(), 1, "one request");
    assert_eq!(executed(&portal, "crm.contact.add"), 1, "it did run, once");
}

#[tokio::test]
async fn a_read_whose_answer_was_lost_is_retried() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next(1, Fault::DropAfterExecuting);
    let me = client.user().current().await.unwrap();
    assert_eq!(me.id, 1);
    assert_eq!(portal.requests().len(), 2);
}

#[tokio::test]
async fn a_raw_call_is_a_write_unless_told_read() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next(1, Fault::DropConnection);
    let e = client
        .call_raw("user.current", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(e.maybe_executed());
    assert_eq!(portal.requests().len(), 1);
    portal.fail_next(1, Fault::DropConnection);
    client
        .call_raw("user.current", serde_json::json!({}))
        .read()
        .await
        .unwrap();
    assert_eq!(portal.requests().len(), 3);
}

#[tokio::test]
async fn transient_failures_of_a_read_stop_at_max_attempts() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .retry(
            Retry::default()
                .max_attempts(3)
                .base_backoff(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    portal.fail_next(5, Fault::InternalError);
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.code(), Some(codes::INTERNAL_SERVER_ERROR));
    assert_eq!(portal.requests().len(), 3);
}

#[tokio::test]
async fn overload_limit_is_never_retried() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next(1, Fault::OverloadLimit);
    let e = client.user().current().await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::Api, Some("OVERLOAD_LIMIT"))
    );
    assert_eq!(e.retry_class(), RetryClass::Never);
    assert!(!e.maybe_executed());
    assert_eq!(portal.requests().len(), 1, "exactly one request");
}

#[tokio::test]
async fn numeric_and_empty_error_codes_are_api_errors() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    portal.fail_next(1, Fault::NumericErrorCode);
    let e = client.user().current().await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code(), e.status()),
        (ErrorKind::Api, Some("100"), Some(400))
    );
    portal.fail_next(1, Fault::EmptyErrorCode);
    let e = client.user().current().await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Api, Some("")));
    assert!(e.is_not_found());
    assert_eq!(portal.requests().len(), 2, "neither is retried");
}

#[tokio::test]
async fn a_redirect_to_the_same_host_is_a_portal_unavailable_error() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    let coupon = format!("{}/bitrix/coupon_activation.php", portal.base_url());
    portal.fail_next(
        1,
        Fault::Redirect {
            location: coupon.clone(),
        },
    );
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PortalUnavailable, "{e:?}");
    assert_eq!(e.location(), Some(coupon.as_str()));
    assert_eq!(e.status(), Some(302));
    assert!(!e.maybe_executed());
    assert_eq!(portal.requests().len(), 1, "one request, not followed");

    // A redirect to the very URL asked (a loop) is the same error, after one request.
    let same = format!("{}user.current", portal.webhook_url(1));
    portal.fail_next(1, Fault::Redirect { location: same });
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PortalUnavailable);
    assert!(!e
        .location()
        .unwrap_or("")
        .contains(webhook_code(&portal).as_str()));
    assert_eq!(portal.requests().len(), 2);
    assert!(
        client.user().current().await.is_ok(),
        "the address did not change"
    );
}

fn webhook_code(portal: &FakePortal) -> String {
    portal
        .webhook_url(1)
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_whole_call_deadline_holds_under_a_slow_portal() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .latency(Duration::from_millis(400))
        .start()
        .await;
    // Each HTTP request may take 300 ms; reads are retried; the whole call has 1 s.
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .request_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(1))
        .retry(
            Retry::default()
                .max_attempts(10)
                .base_backoff(Duration::from_millis(50)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.user().current().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(
        took < Duration::from_millis(1400),
        "the deadline held: {took:?}"
    );
    // A request's own deadline wins over the client's.
    let started = Instant::now();
    let e = client
        .user()
        .current()
        .timeout(Duration::from_millis(350))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[tokio::test]
async fn extra_top_level_params_travel_on_the_same_path() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = client(&portal, RateLimit::off());
    client
        .user()
        .current()
        .extra("auth_connector", "sync")
        .await
        .unwrap();
    let logged = portal.requests();
    assert_eq!(logged[0].params["auth_connector"], "sync");
}

#[tokio::test]
async fn meta_comes_with_a_typed_list() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .users(7)
        .start()
        .await;
    let client = client(&portal, RateLimit::off());
    let page = client.user().get().send_with_meta().await.unwrap();
    assert_eq!(page.total, Some(7));
    assert_eq!(page.result.len(), 7);
    let same = client
        .call_with_meta(&bitrix24::user::UserGet::new())
        .await
        .unwrap();
    assert_eq!(same.total, Some(7));
    assert!(same.time.is_some());
}

#[tokio::test]
async fn the_answer_size_is_capped() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .users(50)
        .start()
        .await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let e = client.user().get().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e:?}");
    assert!(e.maybe_executed());
    assert_eq!(portal.requests().len(), 1, "not retried");
}
