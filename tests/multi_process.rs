//! Many OS processes, one portal: token stores shared through a file, Redis and PostgreSQL
//! across a forced expiry with single-use refresh tokens, a refresh-lock holder that dies,
//! and the Redis rate budget shared by several processes.
//!
//! Each worker is this test binary started again with `B24_MP_ROLE` set, running the test
//! [`worker_process`] (a no-op otherwise). It prints `READY` once its client is built,
//! waits for `GO` on stdin (so that all start at once), and ends with one `RESULT {json}`
//! line. The fake portal runs in the parent.

mod servers;

use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitrix24::{Client, FileTokenStore, OAuthApp, RateLimit, TokenStore, Tokens};
use bitrix24_testkit::{AppSpec, FakePortal, InstalledApp};
use serde_json::{json, Value};

const ROLE: &str = "B24_MP_ROLE";
const CONFIG: &str = "B24_MP_CONFIG";

// ---------------------------------------------------------------------------------------
// The worker side
// ---------------------------------------------------------------------------------------

/// The body of every worker process; does nothing in a normal test run.
#[test]
fn worker_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let config: Value = serde_json::from_str(&std::env::var(CONFIG).unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        match role.as_str() {
            "calls" => calls(&config).await,
            "hold-lock" => hold_lock(&config).await,
            "hammer" => hammer(&config).await,
            #[cfg(feature = "postgres")]
            "rotate" => rotate(&config).await,
            other => panic!("unknown role {other}"),
        }
    });
    println!("RESULT {result}");
    std::io::stdout().flush().unwrap();
}

/// Waits for the parent's `GO`.
fn ready_and_wait() {
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "GO");
}

fn app(config: &Value) -> OAuthApp {
    OAuthApp::new(
        config["client_id"].as_str().unwrap(),
        config["client_secret"].as_str().unwrap(),
    )
}

/// The worker's token store, as the config names it.
async fn store(config: &Value) -> Arc<dyn TokenStore> {
    let s = &config["store"];
    match s["kind"].as_str().unwrap() {
        "file" => Arc::new(FileTokenStore::new(s["path"].as_str().unwrap())),
        #[cfg(feature = "redis")]
        "redis" => Arc::new(
            bitrix24::redis::RedisTokenStore::connect(
                s["url"].as_str().unwrap(),
                config["client_id"].as_str().unwrap(),
                config["member_id"].as_str().unwrap(),
            )
            .await
            .unwrap()
            .prefix(s["prefix"].as_str().unwrap()),
        ),
        #[cfg(feature = "postgres")]
        "postgres" => {
            let store = pg_store(s["url"].as_str().unwrap(), s["schema"].as_str().unwrap()).await;
            Arc::new(bitrix24::token_store_for(
                Arc::new(store),
                config["member_id"].as_str().unwrap(),
            ))
        }
        other => panic!("unknown store {other}"),
    }
}

/// The client of a worker: OAuth from the stored tokens, refreshing at the fake portal, no
/// client-side rate limit (the portal's is off for these runs).
async fn oauth_client(config: &Value, store: Arc<dyn TokenStore>) -> Client {
    let tokens: Tokens = store
        .load()
        .await
        .unwrap()
        .expect("the parent stored tokens");
    Client::builder()
        .oauth(app(config), tokens)
        .token_store_arc(store)
        .oauth_server(config["oauth_server"].as_str().unwrap())
        .rate_limit(RateLimit::off())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Role `calls`: `calls` concurrent `user.current` calls after `GO`. With installations in
/// PostgreSQL the client comes from a `ClientPool`, as in a multi-portal app.
async fn calls(config: &Value) -> Value {
    let client = match config["store"]["kind"].as_str().unwrap() {
        #[cfg(feature = "postgres")]
        "postgres" => {
            let s = &config["store"];
            let store = pg_store(s["url"].as_str().unwrap(), s["schema"].as_str().unwrap()).await;
            bitrix24::ClientPool::builder(app(config), Arc::new(store))
                .oauth_server(config["oauth_server"].as_str().unwrap())
                .rate_limit(RateLimit::off())
                .timeout(Duration::from_secs(60))
                .build()
                .client(config["member_id"].as_str().unwrap())
                .await
                .unwrap()
        }
        _ => oauth_client(config, store(config).await).await,
    };
    let n = config["calls"].as_u64().unwrap() as usize;
    ready_and_wait();
    let started = Instant::now();
    let results =
        futures::future::join_all((0..n).map(|_| client.user().current().into_future())).await;
    let mut errors = Vec::new();
    for r in &results {
        if let Err(e) = r {
            errors.push(format!("{:?}: {e}", e.kind()));
        }
    }
    json!({
        "ok": results.iter().filter(|r| r.is_ok()).count(),
        "errors": errors,
        "ms": started.elapsed().as_millis() as u64,
    })
}

/// Role `hold-lock`: takes the store's refresh lock and never gives it back (the parent
/// kills this process while it holds it).
async fn hold_lock(config: &Value) -> Value {
    let store = store(config).await;
    let ttl = Duration::from_millis(config["ttl_ms"].as_u64().unwrap());
    let lease = store.lock_refresh(ttl).await.unwrap();
    assert!(lease.is_some(), "the lock was free");
    println!("READY");
    std::io::stdout().flush().unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    json!({})
}

/// Role `hammer`: `concurrency` loops of `user.current` through the shared Redis limiter
/// from `GO` until `duration_ms` has passed; counts answers and refusals.
async fn hammer(config: &Value) -> Value {
    #[cfg(feature = "redis")]
    {
        let webhook = config["webhook"].as_str().unwrap();
        let limiter = bitrix24::redis::RedisLimiter::connect(config["redis_url"].as_str().unwrap())
            .await
            .unwrap()
            .prefix(config["prefix"].as_str().unwrap());
        let burst = config["burst"].as_u64().unwrap() as u32;
        let rate = config["rate"].as_f64().unwrap();
        let mut builder = Client::builder()
            .webhook(webhook)
            .rate_limit(RateLimit::custom(burst, rate))
            .retry(bitrix24::Retry::never());
        if config["shared"].as_bool().unwrap() {
            builder = builder.shared_limiter(Arc::new(limiter));
        }
        let client = builder.build().unwrap();
        let duration = Duration::from_millis(config["duration_ms"].as_u64().unwrap());
        let concurrency = config["concurrency"].as_u64().unwrap() as usize;
        ready_and_wait();
        let end = Instant::now() + duration;
        let loops = (0..concurrency).map(|_| {
            let client = client.clone();
            async move {
                let (mut ok, mut refused, mut other) = (0u64, 0u64, Vec::new());
                while Instant::now() < end {
                    match tokio::time::timeout_at(end.into(), client.user().current().into_future())
                        .await
                    {
                        Err(_) => break,
                        Ok(Ok(_)) => ok += 1,
                        Ok(Err(e)) if e.is_code("QUERY_LIMIT_EXCEEDED") => refused += 1,
                        Ok(Err(e)) => other.push(format!("{:?}: {e}", e.kind())),
                    }
                }
                (ok, refused, other)
            }
        });
        let all = futures::future::join_all(loops).await;
        json!({
            "ok": all.iter().map(|a| a.0).sum::<u64>(),
            "refused": all.iter().map(|a| a.1).sum::<u64>(),
            "errors": all.iter().flat_map(|a| a.2.clone()).collect::<Vec<_>>(),
        })
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = config;
        unreachable!("hammer needs the redis feature")
    }
}

#[cfg(feature = "postgres")]
async fn pg_store(url: &str, schema: &str) -> bitrix24::postgres::PgInstallationStore {
    let options: bitrix24::postgres::PgConnectOptions = url.parse().unwrap();
    bitrix24::postgres::PgInstallationStore::connect_with(
        options.options([("search_path", schema)]),
    )
    .await
    .unwrap()
}

/// Role `rotate`: after `GO`, replaces the installation's pair by its own (`n`), if the
/// stored one is still `spent`; answers whether it won.
#[cfg(feature = "postgres")]
async fn rotate(config: &Value) -> Value {
    use bitrix24::{InstallationStore, Secret};
    let s = &config["store"];
    let store = pg_store(s["url"].as_str().unwrap(), s["schema"].as_str().unwrap()).await;
    let n = config["n"].as_u64().unwrap();
    let mine = Tokens::new(
        format!("access-{n}"),
        format!("refresh-{n}"),
        "https://portal.bitrix24.com/rest/",
    );
    let spent = Secret::new(config["spent"].as_str().unwrap());
    let member_id = config["member_id"].as_str().unwrap();
    ready_and_wait();
    let won = store
        .update_tokens_if(member_id, &spent, &mine)
        .await
        .unwrap();
    json!({ "won": won, "n": n })
}

// ---------------------------------------------------------------------------------------
// The parent side
// ---------------------------------------------------------------------------------------

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(role: &str, config: &Value) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "worker_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(CONFIG, config.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    /// The next line starting with `prefix` (the test harness prints its own lines too).
    fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "worker ended before printing {prefix}");
            // The harness's "test worker_process ... " may come first on the same line.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
        }
    }

    fn ready(&mut self) {
        self.line("READY");
    }

    fn go(&mut self) {
        writeln!(self.stdin, "GO").unwrap();
        self.stdin.flush().unwrap();
    }

    fn result(mut self) -> Value {
        let text = self.line("RESULT");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "worker failed: {status}");
        serde_json::from_str(&text).unwrap()
    }
}

/// Starts `n` workers, waits until each is ready, then releases them at once; returns
/// their results. `before_go` runs between the two (the forced expiry).
fn run_workers(n: usize, role: &str, config: &Value, before_go: impl FnOnce()) -> Vec<Value> {
    let mut workers: Vec<Worker> = (0..n).map(|_| Worker::spawn(role, config)).collect();
    for w in &mut workers {
        w.ready();
    }
    before_go();
    for w in &mut workers {
        w.go();
    }
    workers.into_iter().map(Worker::result).collect()
}

fn oauth_base(portal: &FakePortal) -> String {
    portal
        .oauth_token_url()
        .trim_end_matches("/oauth/token/")
        .to_owned()
}

fn base_config(portal: &FakePortal, installed: &InstalledApp, store: Value) -> Value {
    json!({
        "client_id": installed.client_id,
        "client_secret": installed.client_secret,
        "member_id": installed.member_id,
        "oauth_server": oauth_base(portal),
        "store": store,
    })
}

/// A portal without a rate limit (these runs are about tokens) and one installed app.
async fn portal_and_app() -> (FakePortal, InstalledApp) {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let installed = portal.install_app(AppSpec::new()).await;
    (portal, installed)
}

/// What the token runs must show: every call of every process answered, exactly one
/// refresh at the OAuth server and no `invalid_grant`, and the store holding the pair that
/// refresh made (its refresh token still works: one more refresh with it succeeds).
async fn assert_one_refresh(
    label: &str,
    portal: &FakePortal,
    installed: &InstalledApp,
    results: &[Value],
    calls: u64,
    store: Arc<dyn TokenStore>,
) {
    let ok: u64 = results.iter().map(|r| r["ok"].as_u64().unwrap()).sum();
    let errors: Vec<&Value> = results
        .iter()
        .flat_map(|r| r["errors"].as_array().unwrap())
        .collect();
    let refreshes: Vec<_> = portal
        .token_requests()
        .into_iter()
        .filter(|t| t.grant_type == "refresh_token")
        .collect();
    let invalid_grant = refreshes
        .iter()
        .filter(|t| t.error.as_deref() == Some("invalid_grant"))
        .count();
    let slowest = results.iter().map(|r| r["ms"].as_u64().unwrap()).max();
    eprintln!(
        "{label}: {} processes x {calls} calls: {ok} answered, {} failed, {} refreshes, \
         {invalid_grant} invalid_grant, slowest process {slowest:?} ms",
        results.len(),
        errors.len(),
        refreshes.len(),
    );
    assert!(errors.is_empty(), "{label}: failed calls: {errors:?}");
    assert_eq!(ok, results.len() as u64 * calls, "{label}");
    assert_eq!(invalid_grant, 0, "{label}: {refreshes:?}");
    assert_eq!(
        refreshes.len(),
        1,
        "{label}: exactly one refresh: {refreshes:?}"
    );

    // The store holds the newest pair: its access token works as it is...
    let stored = store.load().await.unwrap().unwrap();
    assert_ne!(
        stored.refresh_token, installed.tokens.refresh_token,
        "{label}"
    );
    let check = Client::builder()
        .oauth(installed.app.clone(), stored.clone())
        .oauth_server(oauth_base(portal))
        .build()
        .unwrap();
    check.user().current().await.unwrap();
    assert_eq!(
        portal.token_requests().len(),
        1,
        "{label}: the stored access token is live"
    );
    // ...and its refresh token was not spent.
    portal.expire_tokens();
    check.user().current().await.unwrap();
    let last = portal.token_requests().pop().unwrap();
    assert_eq!(
        (last.status, last.error),
        (200, None),
        "{label}: the stored refresh token is the live one"
    );
}

const PROCESSES: usize = 8;
const CALLS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_eight_processes_one_refresh() {
    let (portal, installed) = portal_and_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = Arc::new(FileTokenStore::new(&path));
    store.save(&installed.tokens).await.unwrap();
    let mut config = base_config(&portal, &installed, json!({"kind": "file", "path": path}));
    config["calls"] = json!(CALLS);
    let results = tokio::task::block_in_place(|| {
        run_workers(PROCESSES, "calls", &config, || portal.expire_tokens())
    });
    assert_one_refresh("file", &portal, &installed, &results, CALLS, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_lock_holder_that_dies_frees_the_lock() {
    let (portal, installed) = portal_and_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = Arc::new(FileTokenStore::new(&path));
    store.save(&installed.tokens).await.unwrap();
    let mut config = base_config(&portal, &installed, json!({"kind": "file", "path": path}));
    config["calls"] = json!(10);
    config["ttl_ms"] = json!(60_000);
    let results = tokio::task::block_in_place(|| {
        let mut holder = Worker::spawn("hold-lock", &config);
        holder.ready();
        assert!(
            futures::executor::block_on(store.lock_refresh(Duration::from_secs(1)))
                .unwrap()
                .is_none(),
            "the holder has the lock"
        );
        let mut workers: Vec<Worker> = (0..3).map(|_| Worker::spawn("calls", &config)).collect();
        for w in &mut workers {
            w.ready();
        }
        portal.expire_tokens();
        for w in &mut workers {
            w.go();
        }
        // The workers wait on the lock; the holder dies without releasing it.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            portal.token_requests().is_empty(),
            "nobody refreshed past the lock"
        );
        holder.child.kill().unwrap();
        holder.child.wait().unwrap();
        workers.into_iter().map(Worker::result).collect::<Vec<_>>()
    });
    assert_one_refresh(
        "file, dead holder",
        &portal,
        &installed,
        &results,
        10,
        store,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

#[cfg(feature = "redis")]
async fn redis_store(url: &str, installed: &InstalledApp, prefix: &str) -> Arc<dyn TokenStore> {
    Arc::new(
        bitrix24::redis::RedisTokenStore::connect(url, &installed.client_id, &installed.member_id)
            .await
            .unwrap()
            .prefix(prefix),
    )
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_eight_processes_one_refresh() {
    let Some(url) = servers::redis_url("redis_store_eight_processes_one_refresh") else {
        return;
    };
    let (portal, installed) = portal_and_app().await;
    let prefix = servers::unique("mp_redis");
    let store = redis_store(&url, &installed, &prefix).await;
    store.save(&installed.tokens).await.unwrap();
    let mut config = base_config(
        &portal,
        &installed,
        json!({"kind": "redis", "url": url, "prefix": prefix}),
    );
    config["calls"] = json!(CALLS);
    let results = tokio::task::block_in_place(|| {
        run_workers(PROCESSES, "calls", &config, || portal.expire_tokens())
    });
    assert_one_refresh("redis", &portal, &installed, &results, CALLS, store).await;
}

/// A worker takes the store's refresh lock for 3 s and is killed holding it; then 3
/// workers make 10 calls each across a forced expiry. Nobody refreshes before the lock
/// expires, and then exactly one does.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn dead_holder_then_three_workers(
    label: &str,
    portal: &FakePortal,
    installed: &InstalledApp,
    mut config: Value,
    store: Arc<dyn TokenStore>,
) {
    config["calls"] = json!(10);
    let ttl = Duration::from_secs(3);
    config["ttl_ms"] = json!(ttl.as_millis() as u64);
    let (results, waited) = tokio::task::block_in_place(|| {
        let mut holder = Worker::spawn("hold-lock", &config);
        holder.ready();
        let locked = Instant::now();
        holder.child.kill().unwrap();
        holder.child.wait().unwrap();
        let results = run_workers(3, "calls", &config, || portal.expire_tokens());
        (results, locked.elapsed())
    });
    eprintln!("{label}, dead holder: the others finished {waited:?} after the holder locked");
    assert!(
        waited >= ttl,
        "nobody refreshed before the dead holder's lock expired"
    );
    assert_one_refresh(
        &format!("{label}, dead holder"),
        portal,
        installed,
        &results,
        10,
        store,
    )
    .await;
}

/// The holder's lock lives 3 s; the others wait it out, then one of them refreshes.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_lock_holder_that_dies_blocks_only_until_the_lock_expires() {
    let Some(url) = servers::redis_url("redis_store_lock_holder_that_dies") else {
        return;
    };
    let (portal, installed) = portal_and_app().await;
    let prefix = servers::unique("mp_redis_dead");
    let store = redis_store(&url, &installed, &prefix).await;
    store.save(&installed.tokens).await.unwrap();
    let config = base_config(
        &portal,
        &installed,
        json!({"kind": "redis", "url": url, "prefix": prefix}),
    );
    dead_holder_then_three_workers("redis", &portal, &installed, config, store).await;
}

/// 4 processes, 8 loops each, calling as fast as the shared bucket lets them for 8 s: the
/// portal (burst 20, 5 per second, the same as the client's plan) refuses none, and
/// together they get the bucket's rate. The client's margin of one request absorbs a
/// request that reaches the portal up to 1 / 4.95 s late; at 20 per second that was 50 ms,
/// too little for 32 loops in 4 processes on a loaded 2-core machine.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limiter_four_processes_stay_under_the_portal_limit_at_its_rate() {
    let Some(url) = servers::redis_url("redis_limiter_four_processes") else {
        return;
    };
    const BURST: u32 = 20;
    const RATE: f64 = 5.0;
    let duration = Duration::from_secs(8);
    let portal = FakePortal::builder()
        .rate_limit(BURST, RATE)
        .request_log_capacity(100_000)
        .start()
        .await;
    let mut config = json!({
        "shared": true,
        "webhook": portal.webhook_url(1),
        "redis_url": url,
        "prefix": servers::unique("mp_limiter"),
        "burst": BURST,
        "rate": RATE,
        "duration_ms": duration.as_millis() as u64,
        "concurrency": 8,
    });
    let results = tokio::task::block_in_place(|| run_workers(4, "hammer", &config, || ()));
    let ok: u64 = results.iter().map(|r| r["ok"].as_u64().unwrap()).sum();
    let refused: u64 = results.iter().map(|r| r["refused"].as_u64().unwrap()).sum();
    let errors: Vec<&Value> = results
        .iter()
        .flat_map(|r| r["errors"].as_array().unwrap())
        .collect();
    let portal_refused = portal.requests().iter().filter(|r| r.status == 503).count();
    // The first `burst` less the margin of one go at once; the rest at the rate.
    let rate = (ok as f64 - f64::from(BURST - 1)) / duration.as_secs_f64();
    eprintln!(
        "redis limiter: 4 processes x 8 loops for {duration:?}: {ok} answered, {refused} \
         QUERY_LIMIT_EXCEEDED ({portal_refused} refused by the portal), {} other errors; \
         {rate:.2} requests/s after the burst vs the bucket's {RATE}/s",
        errors.len()
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(refused, 0);
    assert_eq!(portal_refused, 0);
    assert!(
        (rate - RATE).abs() <= RATE * 0.1,
        "{rate:.2}/s is not within 10 % of {RATE}/s"
    );

    // The same without the shared bucket: each process spends the budget as if alone.
    config["shared"] = json!(false);
    config["prefix"] = json!(servers::unique("mp_limiter_off"));
    portal.advance(Duration::from_secs(60));
    portal.clear_requests();
    tokio::task::block_in_place(|| run_workers(4, "hammer", &config, || ()));
    let requests = portal.requests();
    let alone = requests.iter().filter(|r| r.status == 503).count();
    eprintln!(
        "without the shared bucket: the portal refused {alone} of {} requests",
        requests.len()
    );
    assert!(
        alone > 0,
        "the portal refuses processes that do not share the budget"
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// A schema of the test's own in the test database, with the store's tables in it.
#[cfg(feature = "postgres")]
async fn pg_schema(
    test: &str,
) -> Option<(String, String, bitrix24::postgres::PgInstallationStore)> {
    let url = servers::database_url(test)?;
    let schema = servers::unique("b24_mp");
    let admin = bitrix24::postgres::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let store = pg_store(&url, &schema).await;
    Some((url, schema, store))
}

#[cfg(feature = "postgres")]
async fn pg_drop(url: &str, schema: &str) {
    let admin = bitrix24::postgres::PgPool::connect(url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

#[cfg(feature = "postgres")]
async fn pg_install(
    store: bitrix24::postgres::PgInstallationStore,
    installed: &InstalledApp,
) -> Arc<dyn TokenStore> {
    use bitrix24::InstallationStore;
    let installation = bitrix24::Installation::new(
        installed.member_id.clone(),
        installed.application_token.clone(),
        "portal.bitrix24.com",
        installed.tokens.clone(),
    );
    store.put(installation).await.unwrap();
    Arc::new(bitrix24::token_store_for(
        Arc::new(store),
        installed.member_id.clone(),
    ))
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_eight_processes_one_refresh() {
    let Some((url, schema, store)) = pg_schema("postgres_store_eight_processes").await else {
        return;
    };
    let (portal, installed) = portal_and_app().await;
    let tokens = pg_install(store, &installed).await;
    let mut config = base_config(
        &portal,
        &installed,
        json!({"kind": "postgres", "url": url, "schema": schema}),
    );
    config["calls"] = json!(CALLS);
    let results = tokio::task::block_in_place(|| {
        run_workers(PROCESSES, "calls", &config, || portal.expire_tokens())
    });
    assert_one_refresh("postgres", &portal, &installed, &results, CALLS, tokens).await;
    pg_drop(&url, &schema).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_lock_holder_that_dies_blocks_only_until_the_lock_expires() {
    let Some((url, schema, store)) = pg_schema("postgres_store_lock_holder_that_dies").await else {
        return;
    };
    let (portal, installed) = portal_and_app().await;
    let tokens = pg_install(store, &installed).await;
    let config = base_config(
        &portal,
        &installed,
        json!({"kind": "postgres", "url": url, "schema": schema}),
    );
    dead_holder_then_three_workers("postgres", &portal, &installed, config, tokens).await;
    pg_drop(&url, &schema).await;
}

/// Two processes rotate the same pair at the same moment, five times: one wins each time
/// and the row holds the winner's pair.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_from_two_processes_at_once_has_one_winner() {
    let Some((url, schema, store)) = pg_schema("postgres_rotation_two_processes").await else {
        return;
    };
    let (portal, installed) = portal_and_app().await;
    let tokens = pg_install(store, &installed).await;
    let mut spent = installed.tokens.refresh_token.expose().to_owned();
    for round in 0..5u64 {
        let configs: Vec<Value> = (0..2u64)
            .map(|i| {
                let mut c = base_config(
                    &portal,
                    &installed,
                    json!({"kind": "postgres", "url": url, "schema": schema}),
                );
                c["n"] = json!(round * 10 + i);
                c["spent"] = json!(spent);
                c
            })
            .collect();
        let results: Vec<Value> = tokio::task::block_in_place(|| {
            let mut workers: Vec<Worker> =
                configs.iter().map(|c| Worker::spawn("rotate", c)).collect();
            for w in &mut workers {
                w.ready();
            }
            for w in &mut workers {
                w.go();
            }
            workers.into_iter().map(Worker::result).collect()
        });
        let winners: Vec<&Value> = results.iter().filter(|r| r["won"] == json!(true)).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let n = winners[0]["n"].as_u64().unwrap();
        let stored = tokens.load().await.unwrap().unwrap();
        assert_eq!(
            stored.refresh_token.expose(),
            format!("refresh-{n}"),
            "round {round}"
        );
        spent = format!("refresh-{n}");
    }
    pg_drop(&url, &schema).await;
}
