//! One client per installation: the pool hands out the same client for a portal, so its
//! calls share one refresh gate and one bucket.

use std::sync::Arc;

use bitrix24::{ClientPool, Installation, InstallationStore, MemoryInstallationStore, RateLimit};
use bitrix24_testkit::{AppSpec, FakePortal};

async fn installed() -> (
    FakePortal,
    ClientPool,
    Installation,
    Arc<dyn InstallationStore>,
) {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let app = portal.install_app(AppSpec::default()).await;
    let installation = Installation::new(
        app.member_id.clone(),
        app.application_token.clone(),
        "fake.bitrix24.test",
        app.tokens.clone(),
    );
    let store: Arc<dyn InstallationStore> = Arc::new(MemoryInstallationStore::new());
    store.put(installation.clone()).await.unwrap();
    let pool = ClientPool::builder(app.app.clone(), store.clone())
        .oauth_server(portal.base_url())
        .rate_limit(RateLimit::off())
        .build();
    (portal, pool, installation, store)
}

fn refreshes(portal: &FakePortal) -> usize {
    portal
        .token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_events_on_an_expired_token_refresh_once() {
    let (portal, pool, installation, store) = installed().await;
    portal.expire_tokens();
    // Two events for the same portal arrive together; each handler asks the pool.
    let handlers = (0..2).map(|_| {
        let pool = pool.clone();
        let installation = installation.clone();
        tokio::spawn(async move {
            let client = pool.client_for(&installation)?;
            client.user().current().await
        })
    });
    for h in handlers.collect::<Vec<_>>() {
        h.await.unwrap().expect("both calls succeed");
    }
    assert_eq!(refreshes(&portal), 1, "exactly one refresh");
    assert_eq!(pool.len(), 1);
    // The rotated pair was persisted into the installation store.
    let stored = store.get(&installation.member_id).await.unwrap().unwrap();
    assert_ne!(
        stored.tokens.refresh_token.expose(),
        installation.tokens.refresh_token.expose()
    );
    // A later lookup by member_id is the same client, with the fresh token.
    let again = pool.client(&installation.member_id).await.unwrap();
    again.user().current().await.unwrap();
    assert_eq!(refreshes(&portal), 1);
}

#[tokio::test]
async fn unknown_portals_are_an_error_and_a_reinstall_replaces_the_client() {
    let (portal, pool, installation, _store) = installed().await;
    let e = pool.client("no-such-member").await.unwrap_err();
    assert_eq!(e.kind(), bitrix24::ErrorKind::InvalidInput);
    let first = pool.client_for(&installation).unwrap();
    first.user().current().await.unwrap();
    // A reinstall brings a new application_token and new tokens: a new client.
    let app = portal.install_app(AppSpec::default()).await;
    let reinstalled = Installation::new(
        installation.member_id.clone(),
        app.application_token.clone(),
        "fake.bitrix24.test",
        app.tokens.clone(),
    );
    let second = pool.client_for(&reinstalled).unwrap();
    assert_eq!(
        second.tokens().unwrap().access_token.expose(),
        app.tokens.access_token.expose()
    );
    assert_eq!(pool.len(), 1);
    assert!(pool.forget(&installation.member_id));
    assert!(pool.is_empty());
}
