//! Defects a review of the layered call path found, one test each (every test outside `mod
//! holds` failed before its fix), and probes of what held.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitrix24::{Client, ErrorKind, RateLimit, Retry};
use bitrix24_testkit::{FakePortal, Fault};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CODE: &str = "k3ysecret12345678";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string().into_bytes(), "application/json")
}

/// A webhook client on `server`, no client-side bucket.
fn wm_client(server: &MockServer, timeout: Duration) -> Client {
    Client::builder()
        .webhook(format!("{}/rest/1/{CODE}/", server.uri()))
        .rate_limit(RateLimit::off())
        .request_timeout(timeout)
        .retry(Retry::default().base_backoff(Duration::from_millis(10)))
        .build()
        .unwrap()
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

// -------------------------------------------------------------------------------------------
// 1. `event.offline.get` (access = read_with_effects: it DELETES the events it returns,
//    clear=1 by default) is retried like a pure read after a lost answer, so the events of
//    the lost answer are gone for good and the call "succeeds" with the next batch.
//    `Access::ReadWithEffects` is documented "treated like a write" and
//    `is_idempotent() == false`, but src/client/mod.rs:108 (`Call::access_is_read`)
//    matches `Access::Read | Access::ReadWithEffects`.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn event_offline_get_is_not_resent_after_its_answer_was_lost() {
    let server = MockServer::start().await;
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    Mock::given(method("POST"))
        .and(path(format!("/rest/1/{CODE}/event.offline.get")))
        .respond_with(move |_: &Request| {
            // The portal deletes what it hands out: each request gets the next events.
            let i = count.fetch_add(1, Ordering::SeqCst);
            let body = json!({"result": {"events": [{"ID": i * 2 + 1}, {"ID": i * 2 + 2}]}});
            let r = json(200, body);
            if i == 0 {
                r.set_delay(Duration::from_millis(800)) // the answer is lost (timeout)
            } else {
                r
            }
        })
        .mount(&server)
        .await;
    let client = wm_client(&server, Duration::from_millis(200));
    let got = client.event().offline_get().await;
    assert_eq!(
        hits(&server).await,
        1,
        "event.offline.get was sent again after a timeout: events 1 and 2 were deleted \
         by the first request and never delivered; the caller got {got:?}"
    );
}

#[tokio::test]
async fn event_offline_get_dropped_after_executing_is_not_resent() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .build()
        .unwrap();
    portal.fail_next(1, Fault::DropAfterExecuting);
    let _ = client.event().offline_get().await;
    assert_eq!(portal.requests().len(), 1, "{:?}", portal.requests());
}

// -------------------------------------------------------------------------------------------
// 2. A write answered `INTERNAL_SERVER_ERROR` with a status below 500 is sent again.
//    README (Limits and retries table) says INTERNAL_SERVER_ERROR is never retried for a
//    write. retry_class() says Transient (src/error.rs:421) but maybe_executed() for
//    ErrorKind::Api is `status >= 500 && ...` (src/error.rs:447), so a 200/400
//    INTERNAL_SERVER_ERROR counts as "certainly not run" and policy.rs:197 re-sends it.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn a_write_answered_internal_server_error_is_not_resent_whatever_the_status() {
    for status in [200u16, 400] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/rest/1/{CODE}/crm.deal.add")))
            .respond_with(json(
                status,
                json!({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}),
            ))
            .mount(&server)
            .await;
        let client = wm_client(&server, Duration::from_secs(5));
        let e = client
            .call_raw("crm.deal.add", json!({"fields": {"TITLE": "x"}}))
            .await
            .unwrap_err();
        assert_eq!(
            hits(&server).await,
            1,
            "HTTP {status}: a write with INTERNAL_SERVER_ERROR was sent again ({e:?}, \
             maybe_executed={})",
            e.maybe_executed()
        );
    }
}

// -------------------------------------------------------------------------------------------
// 3. A call whose deadline passes while it waits for the client's own bucket was never sent,
//    but the error says maybe_executed() == true (policy.rs:172: `or_maybe_executed`
//    ORs with Timeout's default `true`, error.rs:458). A caller following the README
//    ("Err(e) if e.maybe_executed() => look it up before adding it again") is told a write
//    that never left the process may exist.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn a_deadline_spent_in_the_bucket_says_not_executed() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::custom(1, 0.5)) // one request, then one per ~2 s
        .build()
        .unwrap();
    client.user().current().await.unwrap();
    let e = client
        .call_raw("crm.contact.add", json!({"fields": {"NAME": "x"}}))
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(portal.requests().len(), 1, "nothing was sent");
    assert!(
        !e.maybe_executed(),
        "never sent, yet maybe_executed() is true: {e:?}"
    );
}

// -------------------------------------------------------------------------------------------
// 4. Panics on out-of-range settings.
// -------------------------------------------------------------------------------------------

/// `Instant::now() + timeout` in policy.rs:125 overflows: `Duration::MAX` (the natural
/// spelling of "no deadline", accepted by tokio everywhere) panics every call.
#[tokio::test]
async fn a_call_timeout_of_duration_max_does_not_panic() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .timeout(Duration::MAX)
        .build()
        .unwrap();
    let joined = tokio::spawn(async move { client.user().current().await.map(|u| u.id) }).await;
    assert!(
        joined.as_ref().is_ok_and(|r| r.is_ok()),
        "timeout(Duration::MAX): {:?}",
        joined.map_err(|e| e.is_panic())
    );
}

/// A huge backoff: `Instant::now() + delay` (policy.rs:208) overflows on the first retry.
#[tokio::test]
async fn a_huge_backoff_does_not_panic() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .retry(Retry::default().base_backoff(Duration::MAX))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    portal.fail_next(1, Fault::InternalError);
    let joined = tokio::spawn(async move { client.user().current().await.map(|_| ()) }).await;
    assert!(
        joined.is_ok(),
        "base_backoff(Duration::MAX) panicked: {:?}",
        joined.map_err(|e| e.is_panic())
    );
}

/// `Duration::from_secs_f64(1.0 / (per_second * 0.98))` (limit.rs:155) panics for a tiny
/// positive rate, which `RateLimit::custom` documents as accepted ("a per_second that is
/// not a positive finite number switches the bucket off").
#[test]
fn a_tiny_rate_does_not_panic() {
    let built = std::panic::catch_unwind(|| {
        Client::builder()
            .webhook(format!("https://acme.bitrix24.com/rest/1/{CODE}/"))
            .rate_limit(RateLimit::custom(50, 1e-25))
            .build()
            .map(|_| ())
    });
    assert!(
        built.is_ok(),
        "RateLimit::custom(50, 1e-25) panics in build()"
    );
}

// -------------------------------------------------------------------------------------------
// 5. OPERATION_TIME_LIMIT whose `operating_reset_at` is already past on OUR clock (the
//    portal's clock runs behind, or the reset second just passed) is retried at once, in a
//    tight loop, until the deadline: `Limits::blocked` (limit.rs:268) converts the
//    error's reset with `Time::default()` (our clock, not the answer's `time.finish`), the
//    clamp makes it "now", the wait is zero and policy.rs:192 `continue`s without any
//    backoff or attempt count. Each spin also takes a unit from the shared bucket, starving
//    the client's other methods.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn operation_time_limit_with_a_past_reset_is_not_hammered() {
    let server = MockServer::start().await;
    let now = unix_now();
    // The portal's clock is one hour behind ours; it says: blocked for 30 s more.
    let body = json!({
        "error": "OPERATION_TIME_LIMIT",
        "error_description": "Method is blocked due to operation time limit.",
        "time": {"finish": (now - 3600) as f64, "operating_reset_at": now - 3600 + 30}
    });
    Mock::given(method("POST"))
        .and(path(format!("/rest/1/{CODE}/user.current")))
        .respond_with(json(429, body))
        .mount(&server)
        .await;
    let client = wm_client(&server, Duration::from_secs(5));
    let started = Instant::now();
    let e = client
        .call_raw("user.current", json!({}))
        .read()
        .timeout(Duration::from_secs(1))
        .await
        .unwrap_err();
    let n = hits(&server).await;
    assert!(
        n <= 2,
        "{n} requests in {:?} for one call refused with OPERATION_TIME_LIMIT ({e})",
        started.elapsed()
    );
}

// -------------------------------------------------------------------------------------------
// 6. A `303 See Other` is followed by re-POSTing the write to the new host
//    (transport.rs:67, `matches!(status, 301 | 302 | 303 | 307 | 308)`). 303 means "the
//    request was processed; GET the result over there": the write may have run on the first
//    host and is sent a second time. (Low: portal renames answer 301/302.)
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn a_write_answered_303_is_not_posted_again() {
    let first = MockServer::start().await;
    let second = MockServer::start().await;
    // Another origin (localhost vs 127.0.0.1), a REST path: the client follows it.
    let elsewhere = second.uri().replace("127.0.0.1", "localhost");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(303).insert_header(
            "Location",
            format!("{elsewhere}/rest/1/{CODE}/crm.deal.add"),
        ))
        .mount(&first)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(200, json!({"result": 7})))
        .mount(&second)
        .await;
    let client = wm_client(&first, Duration::from_secs(5));
    let r = client
        .call_raw("crm.deal.add", json!({"fields": {"TITLE": "x"}}))
        .await;
    assert_eq!(
        hits(&second).await,
        0,
        "the write answered 303 (processed) was POSTed again elsewhere: {r:?}"
    );
}

// -------------------------------------------------------------------------------------------
// 7. README: "timeout, connection lost after sending, 5xx ... | Transient | retried with
//    backoff" for reads. A JSON 5xx whose code is not INTERNAL_SERVER_ERROR /
//    ERROR_UNEXPECTED_ANSWER (e.g. an empty code) is `Never` (error.rs:426), so a read
//    is not retried. (Low.)
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn a_read_answered_a_json_503_is_retried() {
    let server = MockServer::start().await;
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    Mock::given(method("POST"))
        .respond_with(move |_: &Request| {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                json(
                    503,
                    json!({"error": "", "error_description": "Service Unavailable"}),
                )
            } else {
                json(200, json!({"result": {"ID": "1"}}))
            }
        })
        .mount(&server)
        .await;
    let client = wm_client(&server, Duration::from_secs(5));
    let r = client.call_raw("user.current", json!({})).read().await;
    assert!(r.is_ok(), "a read answered 503 was not retried: {r:?}");
}

// -------------------------------------------------------------------------------------------
// What held (these pass): no secret in errors of a refused connection or a non-REST
// redirect; Debug of the client-side types.
// -------------------------------------------------------------------------------------------
mod holds {
    use super::*;

    fn assert_clean(what: &str, text: &str) {
        assert!(
            !text.contains(CODE),
            "{what} leaks the webhook code: {text}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_shows_no_code() {
        let client = Client::builder()
            .webhook(format!("http://127.0.0.1:9/rest/1/{CODE}/"))
            .build()
            .unwrap();
        let e = client
            .call_raw("user.current", json!({}))
            .read()
            .retry(Retry::never())
            .await
            .unwrap_err();
        assert!(!e.maybe_executed());
        assert_clean("Display", &e.to_string());
        assert_clean("Debug", &format!("{e:?}"));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            assert_clean("source", &s.to_string());
            src = s.source();
        }
    }

    #[tokio::test]
    async fn a_non_rest_redirect_location_shows_no_code() {
        let server = MockServer::start().await;
        let location = format!(
            "{}/auth/?backurl=%2Frest%2F1%2F{CODE}%2Fuser.current&raw=/rest/1/{CODE}/",
            server.uri()
        );
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(302).insert_header("Location", location))
            .mount(&server)
            .await;
        let client = wm_client(&server, Duration::from_secs(5));
        let e = client
            .call_raw("crm.deal.add", json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PortalUnavailable);
        assert_clean("location", e.location().unwrap());
        assert_clean("Debug", &format!("{e:?} {e}"));
        assert_eq!(hits(&server).await, 1);
    }

    #[test]
    fn debug_of_settings_shows_no_secret() {
        let client = Client::webhook(format!("https://acme.bitrix24.com/rest/1/{CODE}/")).unwrap();
        assert_clean("Client", &format!("{client:?}"));
        let raw = client.call_raw("x", json!({"auth": CODE, "password": CODE}));
        assert_clean("RawCall", &format!("{raw:?}"));
        assert_clean("RateLimit", &format!("{:?}", RateLimit::custom(0, 1.0)));
        assert_clean("Retry", &format!("{:?}", Retry::default().max_attempts(0)));
    }
}
