//! `bitrix24::redis` against a real Redis (`BITRIX24_TEST_REDIS_URL`; skipped without it,
//! see tests/servers): the token store's lock and compare-and-swap, the installation
//! store, the GCRA bucket's bound and rate, and clients sharing them end to end against a
//! `FakePortal`. Every test uses its own key prefix.
#![cfg(feature = "redis")]

mod servers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitrix24::redis::{ConnectionManager, RedisInstallationStore, RedisLimiter, RedisTokenStore};
use bitrix24::{
    BucketSpec, Client, ClientPool, Installation, InstallationStore, MethodBudget, OAuthApp,
    RateLimit, Secret, SharedLimiter, TokenStore, Tokens,
};
use bitrix24_testkit::{AppSpec, FakePortal, Fault};

const CLIENT_ID: &str = "local.0123456789abcd.12345678";
const MEMBER_ID: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// A connection to the test Redis, or `None` (skipped) when there is none.
async fn redis(test: &str) -> Option<(ConnectionManager, String)> {
    let url = servers::redis_url(test)?;
    let conn = bitrix24::redis::connect(&url).await.unwrap();
    Some((conn, servers::unique(test)))
}

fn tokens(n: u32) -> Tokens {
    Tokens::new(
        format!("ACCESS-SECRET-{n}"),
        format!("REFRESH-SECRET-{n}"),
        "https://portal.bitrix24.com/rest/",
    )
    .expires(1_787_223_142)
    .member_id(MEMBER_ID)
    .domain("portal.bitrix24.com")
    .scope("crm,user")
}

fn store(conn: &ConnectionManager, prefix: &str) -> RedisTokenStore {
    RedisTokenStore::new(conn.clone(), CLIENT_ID, MEMBER_ID).prefix(prefix)
}

async fn raw_set(conn: &ConnectionManager, key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(&mut conn.clone())
        .await
        .unwrap();
}

async fn raw_get(conn: &ConnectionManager, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
        .unwrap()
}

async fn pttl(conn: &ConnectionManager, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
        .unwrap()
}

/// The Redis server's clock, µs.
async fn redis_now(conn: &ConnectionManager) -> u64 {
    let t: Vec<String> = redis::cmd("TIME")
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    t[0].parse::<u64>().unwrap() * 1_000_000 + t[1].parse::<u64>().unwrap()
}

#[tokio::test]
async fn tokens_round_trip_under_their_key_and_save_if_absent_never_replaces() {
    let Some((conn, prefix)) = redis("tokens_round_trip").await else {
        return;
    };
    let s = store(&conn, &prefix);
    assert_eq!(
        s.tokens_key(),
        format!("{prefix}:tokens:{CLIENT_ID}:{MEMBER_ID}")
    );
    assert_eq!(
        s.lock_key(),
        format!("{prefix}:refresh-lock:{CLIENT_ID}:{MEMBER_ID}")
    );
    assert_eq!(s.load().await.unwrap(), None);

    assert!(
        s.save_if_absent(&tokens(1)).await.unwrap(),
        "empty: written"
    );
    assert!(
        !s.save_if_absent(&tokens(2)).await.unwrap(),
        "never replaces"
    );
    assert_eq!(s.load().await.unwrap(), Some(tokens(1)));

    // A plain save replaces; the JSON holds the secrets verbatim (what a restart needs).
    s.save(&tokens(3)).await.unwrap();
    assert_eq!(s.load().await.unwrap(), Some(tokens(3)));
    let json = raw_get(&conn, &s.tokens_key()).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["refresh_token"], "REFRESH-SECRET-3");
    assert_eq!(value["member_id"], MEMBER_ID);

    // Another store (another process) on another connection sees the same pair; another
    // prefix or member_id does not.
    let url = servers::redis_url("tokens_round_trip").unwrap();
    let other = RedisTokenStore::connect(&url, CLIENT_ID, MEMBER_ID)
        .await
        .unwrap()
        .prefix(&prefix);
    assert_eq!(other.load().await.unwrap(), Some(tokens(3)));
    let elsewhere = RedisTokenStore::new(conn.clone(), CLIENT_ID, "another-member").prefix(&prefix);
    assert_eq!(elsewhere.load().await.unwrap(), None);
    let default_prefix = RedisTokenStore::new(conn.clone(), CLIENT_ID, MEMBER_ID);
    assert!(default_prefix.tokens_key().starts_with("bitrix24:tokens:"));
}

#[tokio::test]
async fn the_refresh_lock_is_exclusive_and_expires_after_its_ttl() {
    let Some((conn, prefix)) = redis("refresh_lock_expires").await else {
        return;
    };
    let a = store(&conn, &prefix);
    let url = servers::redis_url("refresh_lock_expires").unwrap();
    let b = RedisTokenStore::connect(&url, CLIENT_ID, MEMBER_ID)
        .await
        .unwrap()
        .prefix(&prefix);

    let ttl = Duration::from_millis(400);
    let lease = a.lock_refresh(ttl).await.unwrap().expect("free: taken");
    assert_eq!(
        raw_get(&conn, &a.lock_key()).await.as_deref(),
        Some(lease.id())
    );
    let left = pttl(&conn, &a.lock_key()).await;
    assert!((1..=400).contains(&left), "PX of the ttl: {left}");
    assert!(b.lock_refresh(ttl).await.unwrap().is_none(), "held");
    assert!(
        a.lock_refresh(ttl).await.unwrap().is_none(),
        "held, also for its own store"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = b.lock_refresh(ttl).await.unwrap().expect("expired: free");
    assert_ne!(next.id(), lease.id());

    // Released by its holder: free at once.
    b.unlock_refresh(next).await.unwrap();
    assert_eq!(raw_get(&conn, &a.lock_key()).await, None);
    let again = a.lock_refresh(ttl).await.unwrap().expect("released: free");
    a.unlock_refresh(again).await.unwrap();

    // Sub-millisecond and zero ttls still make a lock that expires.
    let tiny = a.lock_refresh(Duration::ZERO).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        a.lock_refresh(ttl).await.unwrap().is_some(),
        "{tiny:?} expired"
    );
}

#[tokio::test]
async fn a_stale_lease_does_not_release_a_newer_holders_lock() {
    let Some((conn, prefix)) = redis("stale_lease").await else {
        return;
    };
    let s = store(&conn, &prefix);
    let stale = s
        .lock_refresh(Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let newer = s
        .lock_refresh(Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the stale lease expired");

    s.unlock_refresh(stale).await.unwrap();
    assert_eq!(
        raw_get(&conn, &s.lock_key()).await.as_deref(),
        Some(newer.id()),
        "the newer holder keeps its lock"
    );
    assert!(s
        .lock_refresh(Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());

    s.unlock_refresh(newer).await.unwrap();
    assert_eq!(raw_get(&conn, &s.lock_key()).await, None);
}

#[tokio::test]
async fn save_if_current_writes_only_over_the_spent_pair_or_nothing() {
    let Some((conn, prefix)) = redis("save_if_current").await else {
        return;
    };
    let s = store(&conn, &prefix);
    let spent = tokens(1).refresh_token;

    // Nothing stored: written.
    assert!(s.save_if_current(&spent, &tokens(2)).await.unwrap());
    assert_eq!(s.load().await.unwrap(), Some(tokens(2)));

    // The stored pair is not the spent one (another process refreshed): refused, kept.
    assert!(!s.save_if_current(&spent, &tokens(3)).await.unwrap());
    assert_eq!(s.load().await.unwrap(), Some(tokens(2)));

    // The stored pair is the spent one: replaced.
    assert!(s
        .save_if_current(&tokens(2).refresh_token, &tokens(3))
        .await
        .unwrap());
    assert_eq!(s.load().await.unwrap(), Some(tokens(3)));

    // Compared in full, whatever the characters (JSON escapes, Unicode, Lua patterns).
    let odd = Tokens::new("a", "r\"e\\f/%.*-ü\n", "https://p.bitrix24.com/rest/");
    s.save(&odd).await.unwrap();
    assert!(!s
        .save_if_current(&Secret::new("r\"e\\f/%.*-ü"), &tokens(4))
        .await
        .unwrap());
    assert!(s
        .save_if_current(&odd.refresh_token, &tokens(4))
        .await
        .unwrap());
    assert_eq!(s.load().await.unwrap(), Some(tokens(4)));

    // Racing processes, each having spent the same pair: exactly one wins.
    let url = servers::redis_url("save_if_current").unwrap();
    let mut racers = Vec::new();
    for n in 0..8 {
        let other = RedisTokenStore::connect(&url, CLIENT_ID, MEMBER_ID)
            .await
            .unwrap()
            .prefix(&prefix);
        racers.push(tokio::spawn(async move {
            other
                .save_if_current(&tokens(4).refresh_token, &tokens(100 + n))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += u32::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn stored_garbage_is_an_error_without_its_text_and_is_never_overwritten() {
    let Some((conn, prefix)) = redis("stored_garbage").await else {
        return;
    };
    let s = store(&conn, &prefix);
    let garbage = r#"{"access_token":"GARBAGE-SECRET-1","refresh_token":["GARBAGE-SECRET-2"]}"#;
    raw_set(&conn, &s.tokens_key(), garbage).await;
    let e = s.load().await.unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    assert!(!e.contains("GARBAGE-SECRET"), "{e}");

    raw_set(&conn, &s.tokens_key(), "GARBAGE-SECRET-3 is not json").await;
    let e = s.load().await.unwrap_err().to_string();
    assert!(!e.contains("GARBAGE-SECRET"), "{e}");
    let e = s
        .save_if_current(&Secret::new("GARBAGE-SECRET-3"), &tokens(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("GARBAGE-SECRET"), "{e}");
    assert!(!s.save_if_absent(&tokens(1)).await.unwrap());
    assert_eq!(
        raw_get(&conn, &s.tokens_key()).await.as_deref(),
        Some("GARBAGE-SECRET-3 is not json"),
        "not this store's to repair"
    );

    // A key of another type: Redis's WRONGTYPE, as an error.
    let _: () = redis::cmd("DEL")
        .arg(s.tokens_key())
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(s.tokens_key())
        .arg("x")
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    let e = s.load().await.unwrap_err().to_string();
    assert!(e.contains("WRONGTYPE"), "{e}");
}

#[tokio::test]
async fn debug_and_errors_show_no_secret() {
    let Some((conn, prefix)) = redis("no_secrets").await else {
        return;
    };
    let s = store(&conn, &prefix);
    s.save(&tokens(1)).await.unwrap();
    let installations = RedisInstallationStore::new(conn.clone(), CLIENT_ID).prefix(&prefix);
    let limiter = RedisLimiter::new(conn.clone()).prefix(&prefix);
    let shown = format!("{s:?} {installations:?} {limiter:?}");
    assert!(
        shown.contains(MEMBER_ID) && shown.contains(&prefix),
        "{shown}"
    );
    assert!(!shown.contains("SECRET"), "{shown}");

    // Credentials Redis refuses: the error names the server, never the password.
    let url = servers::redis_url("no_secrets").unwrap();
    // `redis://127.0.0.1:63790/` -> `127.0.0.1:63790` (the test URL has no credentials).
    let host = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let with_password = format!("redis://nosuchuser:pa55-w0rd-SECRET@{host}/");
    let e = RedisTokenStore::connect(&with_password, CLIENT_ID, MEMBER_ID)
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("pa55-w0rd-SECRET"), "{e}");
    assert!(e.contains(&host), "{e}");
    let e = RedisLimiter::connect("redis://:pa55-w0rd-SECRET@[::1")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("pa55-w0rd-SECRET"), "{e}");
}

#[tokio::test]
async fn an_unreachable_redis_is_a_store_error_within_seconds() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:pa55-w0rd-SECRET@127.0.0.1:{port}/");
    let started = Instant::now();
    let e = RedisTokenStore::connect(&url, CLIENT_ID, MEMBER_ID)
        .await
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!e.contains("pa55-w0rd-SECRET"), "{e}");
    let started = Instant::now();
    assert!(RedisLimiter::connect(&url).await.is_err());
    assert!(RedisInstallationStore::connect(&url, CLIENT_ID)
        .await
        .is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn oauth_base(portal: &FakePortal) -> String {
    portal
        .oauth_token_url()
        .trim_end_matches("/oauth/token/")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_sharing_a_redis_token_store_refresh_once() {
    let Some((_, prefix)) = redis("two_clients_refresh_once").await else {
        return;
    };
    let url = servers::redis_url("two_clients_refresh_once").unwrap();
    // Only the tokens are under test: no request-rate limit on either side.
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let installed = portal.install_app(AppSpec::new()).await;
    // Two "processes": two clients, each with its own store and connection.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let store = RedisTokenStore::connect(&url, &installed.client_id, &installed.member_id)
            .await
            .unwrap()
            .prefix(&prefix);
        let client = Client::builder()
            .oauth(installed.app.clone(), installed.tokens.clone())
            .token_store(store)
            .oauth_server(oauth_base(&portal))
            .rate_limit(RateLimit::off())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        assert_eq!(client.user().current().await.unwrap().id, 1);
        clients.push(client);
    }
    let reader = RedisTokenStore::connect(&url, &installed.client_id, &installed.member_id)
        .await
        .unwrap()
        .prefix(&prefix);
    assert_eq!(
        reader.load().await.unwrap(),
        Some(installed.tokens.clone()),
        "the first call seeded the empty store"
    );

    for round in 0..3 {
        portal.expire_tokens();
        let before = portal.token_requests().len();
        let mut calls = Vec::new();
        for client in &clients {
            for _ in 0..25 {
                let c = client.clone();
                calls.push(tokio::spawn(async move { c.user().current().await }));
            }
        }
        let mut failures = Vec::new();
        for call in calls {
            if let Err(e) = call.await.unwrap() {
                failures.push(e);
            }
        }
        assert!(failures.is_empty(), "round {round}: {failures:?}");
        assert_eq!(
            portal.token_requests().len() - before,
            1,
            "round {round}: exactly one refresh reached the OAuth server"
        );
        let stored = reader.load().await.unwrap();
        assert_eq!(stored, clients[0].tokens(), "round {round}");
        assert_eq!(stored, clients[1].tokens(), "round {round}");
    }
    assert_eq!(
        reader
            .lock_refresh(Duration::from_secs(1))
            .await
            .unwrap()
            .map(|_| ()),
        Some(()),
        "the lock was released"
    );
}

/// After `drain`, no worker is granted a request for the pause, then one per interval with
/// no burst; a shorter pause drained later does not cut a longer one short.
#[tokio::test]
async fn a_drained_bucket_grants_nothing_for_the_pause_then_one_per_interval() {
    let Some((conn, prefix)) = redis("gcra_drain").await else {
        return;
    };
    let url = servers::redis_url("gcra_drain").unwrap();
    let a = RedisLimiter::new(conn.clone()).prefix(&prefix);
    let b = RedisLimiter::connect(&url).await.unwrap().prefix(&prefix);
    let spec = BucketSpec::new(10, Duration::from_millis(100));
    let portal = "portal.bitrix24.com";
    // A full bucket: the first grant is immediate.
    assert_eq!(a.try_acquire(portal, spec).await.unwrap(), None);
    a.drain(portal, spec, Duration::from_millis(600))
        .await
        .unwrap();
    b.drain(portal, spec, Duration::from_millis(100))
        .await
        .unwrap();
    // The other worker is told to wait the (longer) pause.
    let wait = b.try_acquire(portal, spec).await.unwrap().expect("drained");
    assert!(
        wait > Duration::from_millis(450) && wait <= Duration::from_millis(600),
        "{wait:?}"
    );
    let bucket = raw_get(&conn, &a.bucket_key(portal)).await.unwrap();
    assert!(bucket.parse::<u64>().is_ok(), "{bucket}");
    assert!(pttl(&conn, &a.bucket_key(portal)).await > 0);
    tokio::time::sleep(wait).await;
    // Then one, and the next only an interval later: no burst.
    let mut first = None;
    for _ in 0..10 {
        match b.try_acquire(portal, spec).await.unwrap() {
            None => break,
            Some(w) => {
                first = Some(w);
                tokio::time::sleep(w).await
            }
        }
    }
    assert!(
        first.is_none_or(|w| w < Duration::from_millis(50)),
        "{first:?}"
    );
    let next = a
        .try_acquire(portal, spec)
        .await
        .unwrap()
        .expect("no burst");
    assert!(next > Duration::from_millis(50), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_bucket_grants_at_most_burst_plus_elapsed_over_interval_at_its_rate() {
    let Some((conn, prefix)) = redis("gcra_bound").await else {
        return;
    };
    let url = servers::redis_url("gcra_bound").unwrap();
    // Two "processes" with their own connections, four acquirers each.
    let limiters = [
        RedisLimiter::new(conn.clone()).prefix(&prefix),
        RedisLimiter::connect(&url).await.unwrap().prefix(&prefix),
    ];
    let (burst, interval) = (5u32, Duration::from_millis(20));
    let spec = BucketSpec::new(burst, interval);
    let run = Duration::from_secs(3);
    let grants = Arc::new(AtomicU64::new(0));
    let start = redis_now(&conn).await;
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let limiter = limiters[i % 2].clone();
        let grants = grants.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match limiter
                    .try_acquire("portal.bitrix24.com", spec)
                    .await
                    .unwrap()
                {
                    None => {
                        grants.fetch_add(1, Ordering::Relaxed);
                    }
                    // As the client does.
                    Some(wait) => {
                        tokio::time::sleep(wait.clamp(Duration::from_millis(1), interval)).await
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed_us = redis_now(&conn).await - start;
    let granted = grants.load(Ordering::Relaxed);
    let interval_us = interval.as_micros() as u64;
    // GCRA: the k-th grant after the first needs (k - (burst - 1)) intervals to have passed.
    let bound = u64::from(burst) + elapsed_us / interval_us;
    assert!(
        granted <= bound,
        "{granted} grants in {elapsed_us} µs (bound {bound})"
    );
    let rate = (granted - u64::from(burst)) as f64 / (elapsed_us as f64 / 1e6);
    let expected = 1.0 / interval.as_secs_f64();
    // Never faster than the rate; slower only by what a loaded machine loses waking up.
    assert!(
        rate / expected < 1.03 && rate / expected > 0.9,
        "{rate:.2}/s vs {expected:.2}/s ({granted} grants in {elapsed_us} µs)"
    );
    eprintln!(
        "GCRA: {granted} grants in {:.3} s, bound {bound}; {rate:.2}/s after the burst (1/interval = {expected:.2}/s)",
        elapsed_us as f64 / 1e6
    );
}

#[tokio::test]
async fn a_refused_acquire_takes_nothing_and_tells_the_wait() {
    let Some((conn, prefix)) = redis("refused_acquire").await else {
        return;
    };
    let limiter = RedisLimiter::new(conn.clone()).prefix(&prefix);
    let spec = BucketSpec::new(3, Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(limiter.try_acquire("p", spec).await.unwrap(), None);
    }
    let key = limiter.bucket_key("p");
    assert_eq!(key, format!("{prefix}:bucket:p"));
    let left = pttl(&conn, &key).await;
    assert!(
        (2_900..=3_000).contains(&left),
        "expires when empty: {left} ms"
    );
    let wait = limiter
        .try_acquire("p", spec)
        .await
        .unwrap()
        .expect("empty");
    assert!(
        wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    let tat = raw_get(&conn, &key).await;
    for _ in 0..5 {
        assert!(limiter.try_acquire("p", spec).await.unwrap().is_some());
    }
    assert_eq!(raw_get(&conn, &key).await, tat, "refusals take nothing");
    // Another portal has its own bucket.
    assert_eq!(limiter.try_acquire("q", spec).await.unwrap(), None);

    // Odd specs do not break the script: burst 0 counts as 1, a zero interval never waits.
    let zero = BucketSpec::new(0, Duration::from_millis(500));
    assert_eq!(limiter.try_acquire("r", zero).await.unwrap(), None);
    assert!(limiter.try_acquire("r", zero).await.unwrap().is_some());
    let free = BucketSpec::new(1, Duration::ZERO);
    for _ in 0..10 {
        assert_eq!(limiter.try_acquire("s", free).await.unwrap(), None);
    }
    let huge = BucketSpec::new(u32::MAX, Duration::MAX);
    assert_eq!(limiter.try_acquire("t", huge).await.unwrap(), None);
}

#[tokio::test]
async fn method_state_round_trips_and_expires_600_s_after_the_last_write() {
    let Some((conn, prefix)) = redis("method_state").await else {
        return;
    };
    let limiter = RedisLimiter::new(conn.clone()).prefix(&prefix);
    assert_eq!(
        limiter.load_method("p", "crm.deal.list").await.unwrap(),
        None
    );
    let mut budget = MethodBudget::default();
    budget.operating = 412.5;
    budget.reset_at = Some(1_787_223_142.25);
    budget.blocked_until = None;
    budget.last_cost = 1.75;
    budget.last_sent = Some(1_787_223_100.5);
    limiter
        .save_method("p", "crm.deal.list", &budget)
        .await
        .unwrap();
    assert_eq!(
        limiter.load_method("p", "crm.deal.list").await.unwrap(),
        Some(budget.clone())
    );
    let key = limiter.method_key("p", "crm.deal.list");
    assert_eq!(key, format!("{prefix}:method:p:crm.deal.list"));
    let left = pttl(&conn, &key).await;
    assert!((590_000..=600_000).contains(&left), "{left} ms");
    assert_eq!(
        limiter.load_method("p", "crm.deal.get").await.unwrap(),
        None
    );

    // Non-finite numbers are left out and read back as unknown.
    budget.operating = f64::NAN;
    budget.reset_at = Some(f64::INFINITY);
    limiter.save_method("p", "m", &budget).await.unwrap();
    let back = limiter.load_method("p", "m").await.unwrap().unwrap();
    assert_eq!((back.operating, back.reset_at), (0.0, None));

    // Something else at the key: an error, not a panic.
    raw_set(&conn, &limiter.method_key("p", "bad"), "[1, 2").await;
    assert!(limiter.load_method("p", "bad").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_with_a_shared_redis_limiter_stay_under_the_portal_limit() {
    let Some((conn, prefix)) = redis("shared_limit_e2e").await else {
        return;
    };
    // 4 per second: the client's margin of one request absorbs a request that reaches the
    // portal up to 250 ms late, enough for a loaded 2-core machine (100 ms at 10 per s).
    let portal = FakePortal::builder().rate_limit(10, 4.0).start().await;
    let limit = RateLimit::custom(10, 4.0);
    let limiter: Arc<dyn SharedLimiter> = Arc::new(RedisLimiter::new(conn).prefix(&prefix));
    let url = servers::redis_url("shared_limit_e2e").unwrap();
    let other: Arc<dyn SharedLimiter> =
        Arc::new(RedisLimiter::connect(&url).await.unwrap().prefix(&prefix));
    let clients: Vec<Client> = [limiter, other]
        .into_iter()
        .map(|l| {
            Client::builder()
                .webhook(portal.webhook_url(1))
                .rate_limit(limit.clone())
                .shared_limiter(l)
                .build()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    let mut calls = Vec::new();
    for client in &clients {
        for _ in 0..12 {
            let c = client.clone();
            calls.push(tokio::spawn(async move { c.user().current().await }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let took = started.elapsed();
    let refused = portal
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some("QUERY_LIMIT_EXCEEDED"))
        .count();
    assert_eq!(refused, 0, "the portal refused {refused} requests");
    assert_eq!(portal.requests().len(), 24);
    // 24 requests, a burst of 9 (the client's margin), then 3.96 per second: about 3.8 s.
    assert!(took > Duration::from_millis(3_500), "{took:?}");
    eprintln!("shared limiter: 24 requests from two clients in {took:?}, none refused");

    // The control: the same two clients without the shared bucket overrun the portal.
    let portal = FakePortal::builder().rate_limit(10, 4.0).start().await;
    let clients: Vec<Client> = (0..2)
        .map(|_| {
            Client::builder()
                .webhook(portal.webhook_url(1))
                .rate_limit(limit.clone())
                .build()
                .unwrap()
        })
        .collect();
    let mut calls = Vec::new();
    for client in &clients {
        for _ in 0..9 {
            let c = client.clone();
            calls.push(tokio::spawn(async move { c.user().current().await }));
        }
    }
    for call in calls {
        let _ = call.await.unwrap();
    }
    let refused = portal
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some("QUERY_LIMIT_EXCEEDED"))
        .count();
    assert!(
        refused > 0,
        "without the shared bucket the portal refuses some"
    );
}

/// A fake portal without limits of its own, and three clients of it: `a` and `b` share one
/// Redis limiter through their own connections (as two processes would), `alone` shares
/// nothing.
struct TwoSharing {
    portal: FakePortal,
    a: Client,
    b: Client,
    alone: Client,
    conn: ConnectionManager,
    /// The shared bucket's key for the portal.
    bucket: String,
}

/// [`TwoSharing`], or `None` (skipped) without a test Redis.
async fn two_sharing_and_one_alone(test: &str) -> Option<TwoSharing> {
    let (conn, prefix) = redis(test).await?;
    let url = servers::redis_url(test).unwrap();
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = |limiter: Option<Arc<dyn SharedLimiter>>| {
        let mut b = Client::builder()
            .webhook(portal.webhook_url(1))
            .rate_limit(RateLimit::standard());
        if let Some(l) = limiter {
            b = b.shared_limiter(l);
        }
        b.build().unwrap()
    };
    let limiter = RedisLimiter::new(conn.clone()).prefix(&prefix);
    let host = url::Url::parse(&portal.webhook_url(1)).unwrap();
    let bucket = limiter.bucket_key(host.host_str().unwrap());
    let a = client(Some(Arc::new(limiter)));
    let b = client(Some(Arc::new(
        RedisLimiter::connect(&url).await.unwrap().prefix(&prefix),
    )));
    let alone = client(None);
    Some(TwoSharing {
        portal,
        a,
        b,
        alone,
        conn,
        bucket,
    })
}

/// A `QUERY_LIMIT_EXCEEDED` that `a` meets (`refuse` arranges it, `call` makes `a`'s call)
/// pauses `b` too: once `a` has drained the shared bucket, `b`, which was never refused,
/// waits out `a`'s pause (0.5 s) instead of being sent into the same empty bucket, while a
/// client sharing nothing goes at once. Returns the portal, to check what it refused, or
/// `None` (skipped) without a test Redis.
async fn a_refusal_pauses_the_other<F>(
    test: &str,
    refuse: impl FnOnce(&FakePortal),
    call: impl FnOnce(Client) -> F,
) -> Option<FakePortal>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let t = two_sharing_and_one_alone(test).await?;
    // A full bucket: the drain is what makes its time to live long (the tolerance, 24 s).
    assert!(pttl(&t.conn, &t.bucket).await < 5_000);
    refuse(&t.portal);
    let refused_at = Instant::now();
    let a_call = tokio::spawn(call(t.a.clone()));
    while pttl(&t.conn, &t.bucket).await < 10_000 {
        assert!(
            refused_at.elapsed() < Duration::from_secs(5),
            "never drained"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    t.alone.user().current().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    t.b.user().current().await.unwrap();
    let b_waited = refused_at.elapsed();
    a_call.await.unwrap();
    assert!(
        b_waited >= Duration::from_millis(450) && b_waited < Duration::from_secs(3),
        "B waited for A's pause: {b_waited:?}"
    );
    Some(t.portal)
}

/// A's call is refused with `QUERY_LIMIT_EXCEEDED`; B waits out A's pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_limit_exceeded_one_client_meets_pauses_the_other() {
    let Some(portal) = a_refusal_pauses_the_other(
        "shared_throttle",
        |portal| portal.fail_next(1, Fault::QueryLimitExceeded),
        |a| async move {
            let started = Instant::now();
            a.user().current().await.unwrap();
            assert!(started.elapsed() >= Duration::from_millis(450));
        },
    )
    .await
    else {
        return;
    };
    let refused = portal.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(refused, 1, "only A's first request was refused");
}

/// A command of A's batch is refused with `QUERY_LIMIT_EXCEEDED`; B waits out A's pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_limit_exceeded_inside_a_batch_pauses_the_other() {
    let Some(portal) = a_refusal_pauses_the_other(
        "shared_throttle_batch",
        |portal| portal.fail_next_command("user.current", 1, Fault::QueryLimitExceeded),
        |a| async move {
            let mut batch = a.batch();
            let me = batch.add(bitrix24::user::UserCurrent::new()).unwrap();
            let results = batch.send().await.unwrap();
            assert!(results.get(&me).into_result().is_ok(), "resent and run");
        },
    )
    .await
    else {
        return;
    };
    // The refusal was inside the batch's answer: no request was refused as a whole.
    let refused = portal.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(refused, 0, "no request was refused as a whole");
}

/// An `OPERATION_TIME_LIMIT` one client meets pauses that method for every client sharing
/// the limiter: the other, which never called the method, waits for the reset instead of
/// being sent into the same refusal, and its other methods are not paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_time_limit_one_client_meets_pauses_the_method_for_the_other() {
    let Some(TwoSharing {
        portal,
        a,
        b,
        alone,
        ..
    }) = two_sharing_and_one_alone("shared_operating_limit").await
    else {
        return;
    };
    let sent = || {
        portal
            .requests()
            .iter()
            .filter(|r| r.method == "user.current")
            .count()
    };

    // A's window started now; 598 s later its answer says the oldest minute drops in 2 s.
    a.user().current().await.unwrap();
    portal.advance(Duration::from_secs(598));
    a.user().current().await.unwrap();
    portal.fail_next_for("user.current", 1, Fault::OperationTimeLimit);
    // A is refused; the pause until the reset is past its 0.5 s deadline, so it fails now.
    let e = a
        .user()
        .current()
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(e.is_operation_time_limit(), "{e:?}");
    assert_eq!(sent(), 3);

    // B learns the pause from Redis: it waits until the reset, then is sent once.
    let started = Instant::now();
    b.user().current().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(5),
        "B waited for A's reset: {waited:?}"
    );
    assert_eq!(sent(), 4, "B was sent once, after the pause");

    // Its other methods were never paused, and a client that shares nothing did not wait.
    let started = Instant::now();
    b.call_raw("profile", serde_json::json!({}))
        .read()
        .await
        .unwrap();
    alone.user().current().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

fn installation(n: u32) -> Installation {
    Installation::new(
        MEMBER_ID,
        "APPLICATION-TOKEN-SECRET",
        "portal.bitrix24.com",
        tokens(n),
    )
    .status("P")
}

#[tokio::test]
async fn installations_round_trip_and_update_tokens_if_compares() {
    let Some((conn, prefix)) = redis("installations").await else {
        return;
    };
    let s = RedisInstallationStore::new(conn.clone(), CLIENT_ID).prefix(&prefix);
    assert_eq!(
        s.key(MEMBER_ID),
        format!("{prefix}:installation:{CLIENT_ID}:{MEMBER_ID}")
    );
    assert_eq!(
        s.lock_key(MEMBER_ID),
        store(&conn, &prefix).lock_key(),
        "one lock per installation, whichever store takes it"
    );
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), None);
    let e = s.update_tokens(MEMBER_ID, &tokens(2)).await.unwrap_err();
    assert!(e.to_string().contains("no installation"), "{e}");
    let e = s
        .update_tokens_if(MEMBER_ID, &tokens(1).refresh_token, &tokens(2))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no installation"), "{e}");

    s.put(installation(1)).await.unwrap();
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), Some(installation(1)));
    assert!(!s
        .update_tokens_if(MEMBER_ID, &tokens(9).refresh_token, &tokens(2))
        .await
        .unwrap());
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), Some(installation(1)));
    assert!(s
        .update_tokens_if(MEMBER_ID, &tokens(1).refresh_token, &tokens(2))
        .await
        .unwrap());
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), Some(installation(2)));
    s.update_tokens(MEMBER_ID, &tokens(3)).await.unwrap();
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), Some(installation(3)));

    // The lock, as the token store's.
    let lease = s
        .lock_refresh(MEMBER_ID, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(store(&conn, &prefix)
        .lock_refresh(Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    s.unlock_refresh(MEMBER_ID, lease).await.unwrap();
    assert!(s
        .lock_refresh(MEMBER_ID, Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());

    // Garbage in the hash: an error without its text.
    let key = s.key("broken");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("installation")
        .arg(r#"{"member_id":"broken","application_token":"GARBAGE-SECRET"#)
        .arg("tokens")
        .arg("{}")
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    let e = s.get("broken").await.unwrap_err().to_string();
    assert!(!e.contains("GARBAGE-SECRET"), "{e}");

    assert!(s.remove(MEMBER_ID).await.unwrap());
    assert!(!s.remove(MEMBER_ID).await.unwrap());
    assert_eq!(s.get(MEMBER_ID).await.unwrap(), None);
    let shown = format!("{s:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_sharing_a_redis_installation_store_refresh_once() {
    let Some((_, prefix)) = redis("two_pools_refresh_once").await else {
        return;
    };
    let url = servers::redis_url("two_pools_refresh_once").unwrap();
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let installed = portal.install_app(AppSpec::new()).await;
    let first = RedisInstallationStore::connect(&url, &installed.client_id)
        .await
        .unwrap()
        .prefix(&prefix);
    let install = Installation::new(
        installed.member_id.clone(),
        installed.application_token.clone(),
        "portal",
        installed.tokens.clone(),
    );
    first.put(install).await.unwrap();
    let app = OAuthApp::new(installed.client_id.clone(), installed.client_secret.clone());
    let mut pools = Vec::new();
    for store in [
        first.clone(),
        RedisInstallationStore::connect(&url, &installed.client_id)
            .await
            .unwrap()
            .prefix(&prefix),
    ] {
        pools.push(
            ClientPool::builder(app.clone(), Arc::new(store))
                .oauth_server(oauth_base(&portal))
                .rate_limit(RateLimit::off())
                .build(),
        );
    }
    portal.expire_tokens();
    let mut calls = Vec::new();
    for pool in &pools {
        let client = pool.client(&installed.member_id).await.unwrap();
        for _ in 0..12 {
            let c = client.clone();
            calls.push(tokio::spawn(async move { c.user().current().await }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(portal.token_requests().len(), 1, "one refresh");
    let stored = first.get(&installed.member_id).await.unwrap().unwrap();
    assert_ne!(stored.tokens.refresh_token, installed.tokens.refresh_token);
    for pool in &pools {
        let client = pool.client(&installed.member_id).await.unwrap();
        assert_eq!(client.tokens(), Some(stored.tokens.clone()));
    }
}

/// A `redis-server` of the test's own on a free loopback port, killed when dropped.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    /// `None` (skipped, or failed under `BITRIX24_REQUIRE_SERVERS=1`) without a
    /// `redis-server` binary.
    fn start(test: &str, port: Option<u16>) -> Option<OwnRedis> {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => Some(OwnRedis { child, port }),
            Err(e) => {
                assert!(!servers::required(), "{test}: cannot run redis-server: {e}");
                eprintln!("SKIPPED {test}: cannot run redis-server: {e}");
                None
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Waits until it answers.
    async fn ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {} did not start", self.port);
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_dies_gives_errors_within_seconds_and_is_reconnected_when_back() {
    // Only run where the shared test Redis is configured (so where redis-server is).
    if servers::redis_url("redis_dies").is_none() {
        return;
    }
    let Some(server) = OwnRedis::start("redis_dies", None) else {
        return;
    };
    server.ready().await;
    let url = server.url();
    let store = RedisTokenStore::connect(&url, CLIENT_ID, MEMBER_ID)
        .await
        .unwrap();
    store.save(&tokens(1)).await.unwrap();
    let limiter: Arc<dyn SharedLimiter> = Arc::new(RedisLimiter::connect(&url).await.unwrap());
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let client = |fallback| {
        Client::builder()
            .webhook(portal.webhook_url(1))
            .shared_limiter(limiter.clone())
            .limiter_fallback(fallback)
            .retry(bitrix24::Retry::never())
            .build()
            .unwrap()
    };
    let strict = client(bitrix24::LimiterFallback::Fail);
    let lenient = client(bitrix24::LimiterFallback::InProcess);
    strict.user().current().await.unwrap();

    let port = server.stop();
    let started = Instant::now();
    let e = store.load().await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}: {e}");
    let started = Instant::now();
    let e = strict.user().current().await.unwrap_err();
    let took_call = started.elapsed();
    assert_eq!(e.kind(), bitrix24::ErrorKind::Limiter, "{e:?}");
    assert!(!e.maybe_executed());
    assert!(took_call < Duration::from_secs(5), "{took_call:?}");
    let sent = portal.requests().len();
    lenient.user().current().await.unwrap();
    assert_eq!(
        portal.requests().len(),
        sent + 1,
        "the fallback bucket let it go"
    );
    eprintln!("Redis down: a load failed after {took:?}, a strict call after {took_call:?}");

    // Back on the same port (empty: it kept nothing): the same store and limiter work again.
    let server = OwnRedis::start("redis_dies", Some(port)).unwrap();
    server.ready().await;
    let back = Instant::now() + Duration::from_secs(15);
    loop {
        match store.save(&tokens(2)).await {
            Ok(()) => break,
            Err(e) if Instant::now() < back => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("not reconnected: {e}"),
        }
    }
    assert_eq!(store.load().await.unwrap(), Some(tokens(2)));
    let back = Instant::now() + Duration::from_secs(15);
    while strict.user().current().await.is_err() {
        assert!(Instant::now() < back, "the limiter did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
}

/// Redis stopped while four loops call the portal through the shared limiter: every call
/// in the outage fails unsent with `ErrorKind::Limiter` (the portal sees nothing, so nothing
/// went out unlimited), and calls go through again once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_in_the_middle_of_a_run_sends_nothing_until_it_is_back() {
    if servers::redis_url("redis_stopped_mid_run").is_none() {
        return;
    }
    let Some(server) = OwnRedis::start("redis_stopped_mid_run", None) else {
        return;
    };
    server.ready().await;
    let limiter = Arc::new(RedisLimiter::connect(&server.url()).await.unwrap());
    let portal = FakePortal::builder()
        .rate_limit_off()
        .request_log_capacity(100_000)
        .start()
        .await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::custom(20, 20.0))
        .shared_limiter(limiter)
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let limiter_errors = Arc::new(AtomicU64::new(0));
    let other = Arc::new(std::sync::Mutex::new(Vec::new()));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (client, stop, ok, limiter_errors, other) = (
                client.clone(),
                stop.clone(),
                ok.clone(),
                limiter_errors.clone(),
                other.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.user().current().await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == bitrix24::ErrorKind::Limiter => {
                            assert!(!e.maybe_executed());
                            limiter_errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => other.lock().unwrap().push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = ok.load(Ordering::Relaxed);
    assert!(
        before > 20,
        "calls went through before the outage: {before}"
    );

    let port = server.stop();
    let stopped = Instant::now();
    // Calls already past the limiter may still land; then nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_at_outage = portal.requests().len();
    let errors_at_outage = limiter_errors.load(Ordering::Relaxed);
    let failed = || limiter_errors.load(Ordering::Relaxed) - errors_at_outage;
    // The default retry tries a failing limiter 4 times (each try waits for a reconnection)
    // before failing: seconds, and more on a loaded machine. Wait until every loop has
    // failed at least once, and for at least 8 s of outage.
    let mut first_failure = None;
    while failed() < 4 || stopped.elapsed() < Duration::from_secs(8) {
        if first_failure.is_none() && failed() > 0 {
            first_failure = Some(stopped.elapsed());
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "calls fail with ErrorKind::Limiter meanwhile: {} in 60 s",
            failed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outage = stopped.elapsed();
    let sent_in_outage = portal.requests().len() - sent_at_outage;
    let failed_in_outage = failed();
    assert_eq!(
        sent_in_outage, 0,
        "nothing is sent while the limiter is down"
    );

    let server = OwnRedis::start("redis_stopped_mid_run", Some(port)).unwrap();
    server.ready().await;
    let back = Instant::now();
    let ok_at_restart = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < ok_at_restart + 20 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "calls did not resume after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = back.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    eprintln!(
        "Redis stopped mid-run: {before} calls before, {failed_in_outage} ErrorKind::Limiter \
         (the first {first_failure:?} after the stop) and {sent_in_outage} requests sent in \
         {outage:?} of outage, 20 more calls within {recovered:?} of its return"
    );
    assert!(
        other.lock().unwrap().is_empty(),
        "{:?}",
        other.lock().unwrap()
    );
    drop(server);
}
