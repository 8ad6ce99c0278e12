//! A token store that is empty when the client is built (a `FileTokenStore` whose file does
//! not exist yet) gets the client's first tokens before its first request; stored tokens are
//! never replaced that way.

use std::sync::Arc;
use std::time::Duration;

use bitrix24::{Client, ErrorKind, FileTokenStore, MemoryTokenStore, OAuthApp, TokenStore, Tokens};
use bitrix24_testkit::{AppSpec, FakePortal, InstalledApp};

fn oauth_base(portal: &FakePortal) -> String {
    portal
        .oauth_token_url()
        .trim_end_matches("/oauth/token/")
        .to_owned()
}

fn client(portal: &FakePortal, app: &OAuthApp, tokens: Tokens, store: impl TokenStore) -> Client {
    Client::builder()
        .oauth(app.clone(), tokens)
        .token_store(store)
        .oauth_server(oauth_base(portal))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn setup() -> (FakePortal, InstalledApp, tempfile::TempDir) {
    let portal = FakePortal::start().await;
    let installed = portal.install_app(AppSpec::new()).await;
    (portal, installed, tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn a_missing_file_gets_the_first_tokens_and_a_second_client_starts_from_it() {
    let (portal, installed, dir) = setup().await;
    let path = dir.path().join("tokens.json");
    let first = client(
        &portal,
        &installed.app,
        installed.tokens.clone(),
        FileTokenStore::new(&path),
    );
    assert!(!path.exists(), "building is synchronous and writes nothing");

    assert_eq!(first.user().current().await.unwrap().id, 1);
    let stored = FileTokenStore::new(&path).load().await.unwrap();
    assert_eq!(stored.as_ref(), Some(&installed.tokens), "the tokens given");
    assert!(portal.token_requests().is_empty(), "no refresh was needed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tokens.json"], "no temporary file left");

    // A second process: builds its client from the file.
    let second = client(
        &portal,
        &installed.app,
        stored.unwrap(),
        FileTokenStore::new(&path),
    );
    assert_eq!(second.user().current().await.unwrap().id, 1);

    // Both keep working through a refresh; the file follows the rotation.
    portal.expire_tokens();
    assert_eq!(second.user().current().await.unwrap().id, 1);
    let rotated = FileTokenStore::new(&path).load().await.unwrap().unwrap();
    assert_eq!(Some(rotated), second.tokens());
    assert_eq!(
        first.user().current().await.unwrap().id,
        1,
        "adopts the rotated pair"
    );
}

#[tokio::test]
async fn an_existing_file_is_left_alone() {
    let (portal, installed, dir) = setup().await;
    let path = dir.path().join("tokens.json");
    let other = Tokens::new("other-access", "other-refresh", portal.rest_url()).member_id("m");
    FileTokenStore::new(&path).save(&other).await.unwrap();
    let before = std::fs::read(&path).unwrap();

    let c = client(
        &portal,
        &installed.app,
        installed.tokens.clone(),
        FileTokenStore::new(&path),
    );
    assert_eq!(c.user().current().await.unwrap().id, 1);
    assert_eq!(c.user().current().await.unwrap().id, 1);
    assert_eq!(std::fs::read(&path).unwrap(), before, "not rewritten");

    // Even one that does not parse: it is not this client's to repair.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, b"{ not json").unwrap();
    let c = client(
        &portal,
        &installed.app,
        installed.tokens.clone(),
        FileTokenStore::new(&broken),
    );
    assert_eq!(c.user().current().await.unwrap().id, 1);
    assert_eq!(std::fs::read(&broken).unwrap(), b"{ not json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_write_once_and_a_refresh_does_not_race_it() {
    let (portal, installed, dir) = setup().await;
    let path = dir.path().join("tokens.json");
    // Expired locally: the first calls refresh before sending. The refresh saves the new
    // pair; the first tokens must not be written over it afterwards.
    let mut expired = installed.tokens.clone();
    expired.expires = Some(1);
    let c = client(&portal, &installed.app, expired, FileTokenStore::new(&path));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.user().current().await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().id, 1);
    }
    assert_eq!(portal.token_requests().len(), 1, "one refresh");
    let stored = FileTokenStore::new(&path).load().await.unwrap();
    assert_eq!(stored, c.tokens(), "the file holds the refreshed pair");
    assert_ne!(
        stored.unwrap().refresh_token,
        installed.tokens.refresh_token
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut names: Vec<String> = names
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The refresh lock's file stays (deleting a lock file races); no temporary file.
    assert_eq!(names, ["tokens.json", "tokens.json.lock"]);
}

#[tokio::test]
async fn a_store_that_cannot_be_written_fails_the_first_call_unsent_then_calls_go_ahead() {
    let (portal, installed, dir) = setup().await;
    let path = dir.path().join("no-such-dir").join("tokens.json");
    let c = client(
        &portal,
        &installed.app,
        installed.tokens.clone(),
        FileTokenStore::new(&path),
    );
    let e = c.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TokenStore, "{e:?}");
    assert!(!e.maybe_executed());
    assert!(portal.requests().is_empty(), "nothing was sent");
    let shown = format!("{e} {e:?}");
    for secret in [
        installed.tokens.access_token.expose(),
        installed.tokens.refresh_token.expose(),
        installed.client_secret.as_str(),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // Reported once, like a failed save after a refresh; the tokens still work.
    assert_eq!(c.user().current().await.unwrap().id, 1);
    assert!(!path.exists());
}

#[tokio::test]
async fn an_empty_memory_store_is_filled_too_and_the_default_store_is_not_touched() {
    let (portal, installed, _dir) = setup().await;
    let store = Arc::new(MemoryTokenStore::new(None));
    let c = Client::builder()
        .oauth(installed.app.clone(), installed.tokens.clone())
        .token_store_arc(store.clone())
        .oauth_server(oauth_base(&portal))
        .build()
        .unwrap();
    assert_eq!(store.get(), None);
    c.user().current().await.unwrap();
    assert_eq!(store.get(), Some(installed.tokens.clone()));

    // A store holding other tokens keeps them.
    let other = Tokens::new("other-access", "other-refresh", portal.rest_url());
    let store = Arc::new(MemoryTokenStore::new(Some(other.clone())));
    let c = Client::builder()
        .oauth(installed.app.clone(), installed.tokens.clone())
        .token_store_arc(store.clone())
        .oauth_server(oauth_base(&portal))
        .build()
        .unwrap();
    c.user().current().await.unwrap();
    assert_eq!(store.get(), Some(other));
}
