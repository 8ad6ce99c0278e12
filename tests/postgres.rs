//! `PgInstallationStore` against a real PostgreSQL (`BITRIX24_TEST_DATABASE_URL`; skipped
//! without it, see `servers`). Each test works in a fresh schema of its own, dropped at the
//! end.
#![cfg(feature = "postgres")]

mod servers;

use std::sync::Arc;
use std::time::Duration;

use bitrix24::php::{decode, Limits};
use bitrix24::postgres::{PgConnectOptions, PgInstallationStore, PgPool, PgPoolOptions};
use bitrix24::{
    ClientPool, InstallError, Installation, InstallationStore, RateLimit, Secret, StoreError,
    Tokens,
};
use bitrix24_testkit::{AppSpec, FakePortal};

/// A fresh schema and the stores working in it.
struct Db {
    url: String,
    schema: String,
}

impl Db {
    /// A new schema, or `None` (the test is skipped) without a database.
    async fn new(test: &str) -> Option<Db> {
        let url = servers::database_url(test)?;
        let schema = servers::unique(test);
        let admin = PgPool::connect(&url)
            .await
            .expect("connect to the test database");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Some(Db { url, schema })
    }

    /// Connect options whose `search_path` is the test's schema.
    fn options(&self) -> PgConnectOptions {
        let options: PgConnectOptions = self.url.parse().unwrap();
        options.options([("search_path", self.schema.as_str())])
    }

    /// A pool of its own in the schema (a "process"), not yet migrated.
    fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(self.options())
    }

    /// A migrated store with a pool of its own.
    async fn store(&self) -> PgInstallationStore {
        let store = PgInstallationStore::new(self.pool());
        store.migrate().await.unwrap();
        store
    }

    /// Drops the schema and everything in it.
    async fn cleanup(self) {
        let admin = PgPool::connect(&self.url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }
}

fn tokens(n: u32) -> Tokens {
    Tokens::new(
        format!("access-secret-{n}"),
        format!("refresh-secret-{n}"),
        "https://old.bitrix24.com/rest/",
    )
    .expires(1_900_000_000 + i64::from(n))
    .server_endpoint("https://oauth.bitrix.info/rest/")
    .member_id("member-1")
    .scope("crm,imbot")
}

fn installation(member_id: &str, domain: &str) -> Installation {
    Installation::new(member_id, "app-token-secret", domain, tokens(0)).status("P")
}

fn is_unknown(e: &StoreError) -> bool {
    matches!(
        e.downcast_ref::<InstallError>(),
        Some(InstallError::UnknownInstallation)
    )
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn an_installation_round_trips_every_field() {
    let Some(db) = Db::new("b24_round_trip").await else {
        return;
    };
    let store = db.store().await;
    assert_eq!(store.get("member-1").await.unwrap(), None);

    // What ONAPPINSTALL delivers, every field set.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/shared/event-onappinstall.form-urlencoded.txt"
    );
    let body = std::fs::read_to_string(path).unwrap();
    let event = decode(body.trim().as_bytes(), Limits::default()).unwrap();
    let installed = Installation::from_install_auth(&event["auth"]).unwrap();
    assert!(installed.status.is_some() && installed.tokens.scope.is_some());
    store.put(installed.clone()).await.unwrap();
    let back = store.get(&installed.member_id).await.unwrap().unwrap();
    assert_eq!(back, installed);
    assert_eq!(
        back.application_token.expose(),
        installed.application_token.expose()
    );
    assert_eq!(
        back.tokens.refresh_token.expose(),
        installed.tokens.refresh_token.expose()
    );

    // Every optional field empty.
    let bare = Installation::new(
        "member-2",
        "app-token",
        "bare.bitrix24.com",
        Tokens::new("a", "r", "https://bare.bitrix24.com/rest/"),
    );
    store.put(bare.clone()).await.unwrap();
    assert_eq!(store.get("member-2").await.unwrap(), Some(bare));

    // A reinstall replaces every field.
    let reinstalled = installation(&installed.member_id, &installed.domain);
    store.put(reinstalled.clone()).await.unwrap();
    assert_eq!(
        store.get(&installed.member_id).await.unwrap(),
        Some(reinstalled)
    );
    assert_eq!(
        count(store.pool(), "SELECT count(*) FROM bitrix24_installations").await,
        2
    );

    let shown = format!("{store:?} {:?}", store.get("member-2").await.unwrap());
    assert!(
        !shown.contains("app-token") && !shown.contains("\"r\""),
        "{shown}"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_rotations_of_one_pair_exactly_one_wins() {
    let Some(db) = Db::new("b24_cas_race").await else {
        return;
    };
    // Two "processes": their own pools.
    let stores = [db.store().await, db.store().await];
    stores[0]
        .put(installation("member-1", "old.bitrix24.com"))
        .await
        .unwrap();
    let spent = Secret::new("refresh-secret-0");
    for round in 0..5u32 {
        let spent = spent.clone();
        // 8 rotations of the same spent pair at once, half through each store.
        let tasks: Vec<_> = (0..8u32)
            .map(|k| {
                let store = stores[k as usize % 2].clone();
                let spent = spent.clone();
                tokio::spawn(async move {
                    let fresh = tokens(100 * (round + 1) + k);
                    let won = store
                        .update_tokens_if("member-1", &spent, &fresh)
                        .await
                        .unwrap();
                    (won, fresh)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (won, fresh) = t.await.unwrap();
            if won {
                winners.push(fresh);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one rotation wins");
        let stored = stores[1].get("member-1").await.unwrap().unwrap();
        assert_eq!(stored.tokens, winners[0], "the winner's pair is stored");
        // Reset for the next round.
        stores[0]
            .update_tokens("member-1", &tokens(0))
            .await
            .unwrap();
    }
    db.cleanup().await;
}

#[tokio::test]
async fn a_rotation_with_a_wrong_spent_pair_changes_nothing() {
    let Some(db) = Db::new("b24_cas_wrong").await else {
        return;
    };
    let store = db.store().await;
    let original = installation("member-1", "old.bitrix24.com");
    store.put(original.clone()).await.unwrap();
    let mut renamed = tokens(1);
    renamed.domain = Some("new.bitrix24.com".into());
    let wrote = store
        .update_tokens_if("member-1", &Secret::new("refresh-secret-9"), &renamed)
        .await
        .unwrap();
    assert!(!wrote);
    assert_eq!(store.get("member-1").await.unwrap(), Some(original));
    let history = store.domain_history("member-1").await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");

    // With the right one it writes (and answers true).
    assert!(store
        .update_tokens_if("member-1", &Secret::new("refresh-secret-0"), &tokens(1))
        .await
        .unwrap());
    assert_eq!(
        store.get("member-1").await.unwrap().unwrap().tokens,
        tokens(1)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_renamed_portal_is_found_by_its_old_domain_too() {
    let Some(db) = Db::new("b24_rename").await else {
        return;
    };
    let store = db.store().await;
    store
        .put(installation("member-1", "old.bitrix24.com"))
        .await
        .unwrap();
    store
        .put(installation("member-2", "other.bitrix24.com"))
        .await
        .unwrap();

    // Tokens without a domain keep the installation's.
    store.update_tokens("member-1", &tokens(1)).await.unwrap();
    assert_eq!(
        store.get("member-1").await.unwrap().unwrap().domain,
        "old.bitrix24.com"
    );

    // The client saves the new address after the portal redirected it.
    let mut moved = tokens(2);
    moved.client_endpoint = "https://new.bitrix24.com/rest/".into();
    moved.domain = Some("new.bitrix24.com".into());
    assert!(store
        .update_tokens_if("member-1", &Secret::new("refresh-secret-1"), &moved)
        .await
        .unwrap());
    let now = store.get("member-1").await.unwrap().unwrap();
    assert_eq!(now.domain, "new.bitrix24.com");
    assert_eq!(now.tokens, moved);

    let history = store.domain_history("member-1").await.unwrap();
    let names: Vec<&str> = history.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["old.bitrix24.com", "new.bitrix24.com"]);
    assert!(history[0].first_seen <= history[0].last_seen);
    assert!(history[0].last_seen <= history[1].first_seen);

    for domain in ["old.bitrix24.com", "NEW.Bitrix24.com"] {
        let found = store.find_by_domain(domain).await.unwrap().unwrap();
        assert_eq!(found.member_id, "member-1", "{domain}");
        assert_eq!(found.domain, "new.bitrix24.com");
    }
    assert_eq!(
        store
            .find_by_domain("other.bitrix24.com")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        "member-2"
    );
    assert_eq!(
        store.find_by_domain("nowhere.bitrix24.com").await.unwrap(),
        None
    );

    // A reinstall under a third name (put), then another portal takes the first name: the
    // portal that has a name now wins over one that had it.
    store
        .put(installation("member-1", "third.bitrix24.com"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .domain_history("member-1")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.domain)
        .collect();
    assert_eq!(
        names,
        ["old.bitrix24.com", "new.bitrix24.com", "third.bitrix24.com"]
    );
    store
        .put(installation("member-3", "old.bitrix24.com"))
        .await
        .unwrap();
    assert_eq!(
        store
            .find_by_domain("old.bitrix24.com")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        "member-3"
    );
    assert_eq!(
        store
            .find_by_domain("new.bitrix24.com")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        "member-1"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn an_uninstall_forgets_the_portal() {
    let Some(db) = Db::new("b24_uninstall").await else {
        return;
    };
    let store = db.store().await;
    store
        .put(installation("member-1", "old.bitrix24.com"))
        .await
        .unwrap();
    store
        .put(installation("member-2", "other.bitrix24.com"))
        .await
        .unwrap();
    let held = store
        .lock_refresh("member-1", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(held.is_some());

    assert!(store.remove("member-1").await.unwrap());
    assert!(!store.remove("member-1").await.unwrap());
    assert_eq!(store.get("member-1").await.unwrap(), None);
    let e = store
        .update_tokens_if("member-1", &Secret::new("refresh-secret-0"), &tokens(1))
        .await
        .unwrap_err();
    assert!(is_unknown(&e), "{e}");
    let e = store
        .update_tokens("member-1", &tokens(1))
        .await
        .unwrap_err();
    assert!(is_unknown(&e), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(store.domain_history("member-1").await.unwrap().is_empty());
    assert_eq!(
        store.find_by_domain("old.bitrix24.com").await.unwrap(),
        None
    );
    // Its lock went with it.
    assert!(store
        .lock_refresh("member-1", Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
    // The other portal is untouched.
    assert!(store.get("member-2").await.unwrap().is_some());
    assert_eq!(store.domain_history("member-2").await.unwrap().len(), 1);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_twice_or_at_once_are_a_no_op() {
    let Some(db) = Db::new("b24_migrate").await else {
        return;
    };
    // Two processes starting at once on an empty schema.
    let (a, b) = (
        PgInstallationStore::new(db.pool()),
        PgInstallationStore::new(db.pool()),
    );
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    let versions = "SELECT count(*) FROM bitrix24_schema_migrations";
    let applied = count(a.pool(), versions).await;
    assert!(applied >= 1);
    a.put(installation("member-1", "old.bitrix24.com"))
        .await
        .unwrap();

    // Again, and through connect_with and connect (the URL's `options` parameter sets the
    // schema): nothing changes, nothing is lost.
    a.migrate().await.unwrap();
    let c = PgInstallationStore::connect_with(db.options())
        .await
        .unwrap();
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options=-c%20search_path%3D{}",
        db.url, db.schema
    );
    let d = PgInstallationStore::connect(&url).await.unwrap();
    assert_eq!(count(c.pool(), versions).await, applied);
    assert!(d.get("member-1").await.unwrap().is_some());
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()";
    assert_eq!(count(d.pool(), tables).await, 4);

    // A recorded migration that differs from the shipped one is refused.
    sqlx::query("UPDATE bitrix24_schema_migrations SET checksum = 'edited' WHERE version = 1")
        .execute(a.pool())
        .await
        .unwrap();
    let e = a.migrate().await.unwrap_err().to_string();
    assert!(e.contains("migration 1"), "{e}");
    for store in [a, b, c, d] {
        store.pool().close().await;
    }
    db.cleanup().await;
}

#[tokio::test]
async fn connect_errors_never_show_the_password() {
    let e = PgInstallationStore::connect("postgres://app:PASSWORD-123@[::1")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("PASSWORD-123") && e.contains("URL"), "{e}");
    // A database that does not exist (a refused connection would be retried for the pool's
    // acquire timeout, 30 s: the server may be starting).
    let Some(url) = servers::database_url("connect_errors_never_show_the_password") else {
        return;
    };
    let mut url = url::Url::parse(&url).unwrap();
    url.set_password(Some("PASSWORD-123")).unwrap();
    url.set_path("/no_such_database_b24");
    let e = PgInstallationStore::connect(url.as_str())
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("PASSWORD-123") && text.contains("connect"),
        "{text}"
    );
    assert!(
        text.contains("no_such_database_b24"),
        "the server's message: {text}"
    );
}

#[tokio::test]
async fn the_refresh_lock_is_exclusive_expires_and_a_stale_lease_cannot_release_it() {
    let Some(db) = Db::new("b24_lock").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let long = Duration::from_secs(60);

    let first = a.lock_refresh("member-1", long).await.unwrap().unwrap();
    assert!(a.lock_refresh("member-1", long).await.unwrap().is_none());
    assert!(b.lock_refresh("member-1", long).await.unwrap().is_none());
    // Per portal.
    let other = b.lock_refresh("member-2", long).await.unwrap().unwrap();
    a.unlock_refresh("member-1", first).await.unwrap();
    let second = b.lock_refresh("member-1", long).await.unwrap().unwrap();
    b.unlock_refresh("member-1", second).await.unwrap();
    b.unlock_refresh("member-2", other).await.unwrap();

    // A holder that dies: its lock expires after the ttl.
    let stale = a
        .lock_refresh("member-3", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(b.lock_refresh("member-3", long).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let newer = b.lock_refresh("member-3", long).await.unwrap().unwrap();
    assert_ne!(stale, newer);
    // The stale lease's release leaves the newer holder's lock alone.
    a.unlock_refresh("member-3", stale).await.unwrap();
    assert!(a.lock_refresh("member-3", long).await.unwrap().is_none());
    b.unlock_refresh("member-3", newer).await.unwrap();
    assert!(a.lock_refresh("member-3", long).await.unwrap().is_some());

    // A ttl too large for a timestamp is capped, not an error.
    assert!(a
        .lock_refresh("member-4", Duration::MAX)
        .await
        .unwrap()
        .is_some());
    db.cleanup().await;
}

fn refreshes(portal: &FakePortal) -> usize {
    portal
        .token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token")
        .count()
}

/// Two "processes" (two `ClientPool`s, each with its own `PgInstallationStore` and
/// connections) make many calls at once across a forced expiry: one refresh reaches the
/// OAuth server, no call fails, and the row ends with the newest pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_over_one_database_refresh_once_across_an_expiry() {
    let Some(db) = Db::new("b24_pools").await else {
        return;
    };
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let installation = Installation::new(
        app.member_id.clone(),
        app.application_token.clone(),
        "fake.bitrix24.test",
        app.tokens.clone(),
    );
    let pool_over = |store: PgInstallationStore| {
        let store: Arc<dyn InstallationStore> = Arc::new(store);
        ClientPool::builder(app.app.clone(), store)
            .oauth_server(portal.base_url())
            .rate_limit(RateLimit::off())
            .build()
    };
    let first = db.store().await;
    first.put(installation.clone()).await.unwrap();
    let pools = [pool_over(first.clone()), pool_over(db.store().await)];
    // Both have a client already, on the install pair.
    for pool in &pools {
        pool.client(&installation.member_id)
            .await
            .unwrap()
            .user()
            .current()
            .await
            .unwrap();
    }
    assert_eq!(refreshes(&portal), 0);

    portal.expire_tokens();
    let calls: Vec<_> = (0..40)
        .map(|n| {
            let pool = pools[n % 2].clone();
            let member_id = installation.member_id.clone();
            tokio::spawn(async move {
                let client = pool.client(&member_id).await?;
                client.user().current().await
            })
        })
        .collect();
    let mut failures = Vec::new();
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(refreshes(&portal), 1, "exactly one refresh");

    let stored = first
        .get(&installation.member_id)
        .await
        .unwrap()
        .unwrap()
        .tokens;
    assert_ne!(
        stored.refresh_token.expose(),
        installation.tokens.refresh_token.expose()
    );
    for pool in &pools {
        let held = pool
            .client(&installation.member_id)
            .await
            .unwrap()
            .tokens()
            .unwrap();
        assert_eq!(held.refresh_token.expose(), stored.refresh_token.expose());
        assert_eq!(held.access_token.expose(), stored.access_token.expose());
    }
    // The stored pair is the live one: a third "process" starting from the row calls
    // without refreshing, and after the next expiry refreshes with it.
    let third = pool_over(db.store().await);
    let client = third.client(&installation.member_id).await.unwrap();
    client.user().current().await.unwrap();
    assert_eq!(refreshes(&portal), 1);
    portal.expire_tokens();
    client.user().current().await.unwrap();
    assert_eq!(refreshes(&portal), 2);
    assert!(portal.token_requests().iter().all(|t| t.error.is_none()));
    let lock_rows = count(first.pool(), "SELECT count(*) FROM bitrix24_refresh_locks").await;
    assert_eq!(lock_rows, 0, "every lock was released");
    db.cleanup().await;
}
