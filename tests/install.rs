//! Installations: ONAPPINSTALL decoding, memory and file stores, event verification, and a
//! client per installation that refreshes at the configured OAuth server only.

mod common;

use std::sync::Arc;

use bitrix24::php::{decode, Limits};
use bitrix24::{
    token_store_for, verify, verify_application_token, FileInstallationStore, InstallError,
    Installation, InstallationStore, MemoryInstallationStore, Secret, TokenStore, Tokens,
};
use common::*;
use serde_json::{json, Value};
use wiremock::MockServer;

const FIXTURE: &str = "event-onappinstall.form-urlencoded.txt";
const FIXTURE_ACCESS: &str = "ld4g7ckjnfd2233j62i4jdlrxidk5fagytswnboc";
const FIXTURE_REFRESH: &str = "afdt7382posn6zqo1c0niuoerqsed1n3vz39b36y";
const FIXTURE_APP_TOKEN: &str = "32a0973b65c0ad0c4ac528a2cee6c6a2";

/// The decoded ONAPPINSTALL fixture.
fn install_event() -> Value {
    decode(fixture(FIXTURE).trim().as_bytes(), Limits::default()).unwrap()
}

fn installation(member_id: &str) -> Installation {
    let tokens = Tokens::new(
        format!("access-{member_id}"),
        format!("refresh-{member_id}"),
        "https://p.bitrix24.com/rest/",
    )
    .member_id(member_id)
    .expires(1_900_000_000);
    Installation::new(
        member_id,
        format!("apptoken-{member_id}"),
        "p.bitrix24.com",
        tokens,
    )
    .status("P")
}

fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// ONAPPINSTALL
// ---------------------------------------------------------------------------------------

#[test]
fn onappinstall_fixture_decodes_into_an_installation() {
    let event = install_event();
    assert_eq!(event["event"], "ONAPPINSTALL");
    let inst = Installation::from_install_auth(&event["auth"]).unwrap();
    assert_eq!(inst.member_id, MEMBER_ID);
    assert_eq!(inst.application_token.expose(), FIXTURE_APP_TOKEN);
    assert_eq!(inst.domain, "example-portal.bitrix24.com");
    assert_eq!(inst.status.as_deref(), Some("L"));
    let t = &inst.tokens;
    assert_eq!(t.access_token.expose(), FIXTURE_ACCESS);
    assert_eq!(t.refresh_token.expose(), FIXTURE_REFRESH);
    assert_eq!(
        t.expires,
        Some(1_787_222_600),
        "the event's absolute expires"
    );
    assert_eq!(
        t.client_endpoint,
        "https://example-portal.bitrix24.com/rest/"
    );
    assert_eq!(
        t.server_endpoint.as_deref(),
        Some("https://oauth.bitrix.info/rest/")
    );
    assert_eq!(t.member_id.as_deref(), Some(MEMBER_ID));
    assert_eq!(t.domain.as_deref(), Some("example-portal.bitrix24.com"));
    assert_eq!(t.scope.as_deref(), Some("imbot,im,crm"));

    // Round-trips through serde (what the stores persist).
    let back: Installation = serde_json::from_value(serde_json::to_value(&inst).unwrap()).unwrap();
    assert_eq!(back, inst);
}

#[test]
fn expires_is_computed_from_expires_in_when_absent() {
    let mut auth = install_event()["auth"].clone();
    auth.as_object_mut().unwrap().remove("expires");
    let now = unix_now();
    let inst = Installation::from_install_auth(&auth).unwrap();
    let expires = inst.tokens.expires.unwrap();
    assert!((now + 3590..=now + 3610).contains(&expires), "{expires}");

    // A huge expires_in saturates/clamps instead of overflowing.
    auth["expires_in"] = json!(i64::MAX.to_string());
    let inst = Installation::from_install_auth(&auth).unwrap();
    assert!(inst.tokens.expires.unwrap() <= unix_now() + 86_400);

    // Neither present: unknown expiry.
    auth.as_object_mut().unwrap().remove("expires_in");
    let inst = Installation::from_install_auth(&auth).unwrap();
    assert_eq!(inst.tokens.expires, None);

    auth["expires_in"] = json!("soon");
    assert!(matches!(
        Installation::from_install_auth(&auth),
        Err(InstallError::InvalidField("expires_in"))
    ));
}

#[test]
fn required_auth_fields_are_enforced() {
    for key in [
        "member_id",
        "application_token",
        "access_token",
        "refresh_token",
        "client_endpoint",
    ] {
        let mut auth = install_event()["auth"].clone();
        auth.as_object_mut().unwrap().remove(key);
        match Installation::from_install_auth(&auth) {
            Err(InstallError::MissingField(k)) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
        let mut auth = install_event()["auth"].clone();
        auth[key] = json!("");
        assert!(
            matches!(
                Installation::from_install_auth(&auth),
                Err(InstallError::MissingField(_))
            ),
            "empty {key}"
        );
    }
    assert!(matches!(
        Installation::from_install_auth(&json!("not an object")),
        Err(InstallError::MissingField(_))
    ));

    // domain falls back to client_endpoint's host.
    let mut auth = install_event()["auth"].clone();
    auth.as_object_mut().unwrap().remove("domain");
    let inst = Installation::from_install_auth(&auth).unwrap();
    assert_eq!(inst.domain, "example-portal.bitrix24.com");
}

// ---------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------

async fn exercise_store(store: &dyn InstallationStore) {
    assert_eq!(store.get("m1").await.unwrap(), None);
    assert!(!store.remove("m1").await.unwrap());
    store.put(installation("m1")).await.unwrap();
    store.put(installation("m2")).await.unwrap();
    assert_eq!(store.get("m1").await.unwrap(), Some(installation("m1")));
    assert_eq!(store.get("m2").await.unwrap(), Some(installation("m2")));

    // put replaces.
    let mut replaced = installation("m1");
    replaced.application_token = Secret::new("new-app-token");
    store.put(replaced.clone()).await.unwrap();
    assert_eq!(store.get("m1").await.unwrap(), Some(replaced));

    assert!(store.remove("m1").await.unwrap());
    assert_eq!(store.get("m1").await.unwrap(), None);
    assert!(!store.remove("m1").await.unwrap());
    assert_eq!(store.get("m2").await.unwrap(), Some(installation("m2")));
}

#[tokio::test]
async fn memory_store_puts_gets_and_removes() {
    exercise_store(&MemoryInstallationStore::new()).await;
}

#[tokio::test]
async fn file_store_puts_gets_removes_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("installations.json");
    let store = FileInstallationStore::new(&path);
    exercise_store(&store).await;
    store.put(installation("m3")).await.unwrap();
    drop(store);

    let reopened = FileInstallationStore::new(&path);
    assert_eq!(reopened.get("m2").await.unwrap(), Some(installation("m2")));
    assert_eq!(reopened.get("m3").await.unwrap(), Some(installation("m3")));
    assert_eq!(reopened.get("m1").await.unwrap(), None);

    // One JSON object keyed by member_id, secrets stored verbatim.
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let keys: Vec<&String> = on_disk.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["m2", "m3"]);
    assert_eq!(on_disk["m2"]["application_token"], "apptoken-m2");

    assert_eq!(
        file_names(dir.path()),
        ["installations.json"],
        "no temp files left"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_keeps_all_of_50_concurrent_puts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileInstallationStore::new(
        dir.path().join("installations.json"),
    ));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put(installation(&format!("member-{i}"))).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let reopened = FileInstallationStore::new(store.path());
    for i in 0..50 {
        let id = format!("member-{i}");
        assert_eq!(
            reopened.get(&id).await.unwrap(),
            Some(installation(&id)),
            "{id}"
        );
    }
    assert_eq!(file_names(dir.path()), ["installations.json"]);
}

#[tokio::test]
async fn a_corrupt_file_store_errors_without_quoting_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("installations.json");
    std::fs::write(
        &path,
        r#"{"m1": {"member_id": "m1", "application_token": 12345678901}}"#,
    )
    .unwrap();
    let err = FileInstallationStore::new(&path)
        .get("m1")
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("12345678901"), "{err}");
}

#[tokio::test]
async fn token_store_for_loads_and_saves_the_installations_tokens() {
    let store: Arc<dyn InstallationStore> = Arc::new(MemoryInstallationStore::new());
    let ts = token_store_for(store.clone(), "m1");
    assert_eq!(ts.load().await.unwrap(), None);
    assert!(
        ts.save(&Tokens::new("a", "r", "https://p/rest/"))
            .await
            .is_err(),
        "saving into a missing installation fails"
    );

    store.put(installation("m1")).await.unwrap();
    assert_eq!(ts.load().await.unwrap(), Some(installation("m1").tokens));
    let rotated = Tokens::new("a2", "r2", "https://p.bitrix24.com/rest/").member_id("m1");
    ts.save(&rotated).await.unwrap();
    let got = store.get("m1").await.unwrap().unwrap();
    assert_eq!(got.tokens, rotated);
    assert_eq!(
        got.application_token.expose(),
        "apptoken-m1",
        "other fields kept"
    );
    assert_eq!(got.status.as_deref(), Some("P"));

    // Same through the file store.
    let dir = tempfile::tempdir().unwrap();
    let file: Arc<dyn InstallationStore> =
        Arc::new(FileInstallationStore::new(dir.path().join("i.json")));
    file.put(installation("m1")).await.unwrap();
    let ts = token_store_for(file.clone(), "m1");
    ts.save(&rotated).await.unwrap();
    let got = file.get("m1").await.unwrap().unwrap();
    assert_eq!(got.tokens, rotated);
    assert_eq!(got.application_token.expose(), "apptoken-m1");
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn verify_accepts_the_right_token_and_rejects_forged_and_unknown() {
    let store = MemoryInstallationStore::new();
    let inst = Installation::from_install_auth(&install_event()["auth"]).unwrap();
    store.put(inst.clone()).await.unwrap();

    let ok = verify(&store, MEMBER_ID, FIXTURE_APP_TOKEN).await.unwrap();
    assert_eq!(ok, inst);

    let forged = verify(&store, MEMBER_ID, "32a0973b65c0ad0c4ac528a2cee6c6a3").await;
    assert!(matches!(forged, Err(InstallError::Forged)), "{forged:?}");
    let empty = verify(&store, MEMBER_ID, "").await;
    assert!(matches!(empty, Err(InstallError::Forged)), "{empty:?}");

    let unknown = verify(&store, "some-other-portal", FIXTURE_APP_TOKEN).await;
    assert!(
        matches!(unknown, Err(InstallError::UnknownInstallation)),
        "{unknown:?}"
    );

    // Through a shared trait object as well.
    let shared: Arc<dyn InstallationStore> = Arc::new(store);
    assert!(verify(&*shared, MEMBER_ID, FIXTURE_APP_TOKEN).await.is_ok());
}

#[test]
fn constant_time_compare_handles_lengths() {
    let stored = Secret::new("abcdef");
    assert!(verify_application_token(&stored, "abcdef"));
    assert!(!verify_application_token(&stored, "abcdeg"));
    assert!(!verify_application_token(&stored, "bbcdef"));
    assert!(!verify_application_token(&stored, "abcde"));
    assert!(!verify_application_token(&stored, "abcdefg"));
    assert!(!verify_application_token(&stored, ""));
    assert!(!verify_application_token(&Secret::new(""), ""));
    assert!(verify_application_token(&Secret::new("ä€"), "ä€"));
    assert!(!verify_application_token(&Secret::new("ä€"), "äx"));
}

// ---------------------------------------------------------------------------------------
// The installation's client
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn installation_client_refreshes_at_the_configured_oauth_server_and_stores_rotated_tokens() {
    let api = MockServer::start().await;
    mount_post(&api, "/rest/user.current", json_response(200, USER_OK)).await;
    mount_catch_all(&api).await;
    // The OAuth server the app is configured with.
    let oauth = MockServer::start().await;
    mount_post(
        &oauth,
        "/oauth/token/",
        json_response(200, refresh_response_body(&api, &oauth)),
    )
    .await;
    mount_catch_all(&oauth).await;
    // The server the event named: it must never see the client secret.
    let event_server = MockServer::start().await;
    mount_catch_all(&event_server).await;

    let mut auth = install_event()["auth"].clone();
    auth["access_token"] = json!(OLD_ACCESS);
    auth["refresh_token"] = json!(OLD_REFRESH);
    auth["client_endpoint"] = json!(rest_endpoint(&api));
    auth["server_endpoint"] = json!(rest_endpoint(&event_server));
    auth["expires"] = json!((unix_now() - 60).to_string());
    let inst = Installation::from_install_auth(&auth).unwrap();

    let store: Arc<dyn InstallationStore> = Arc::new(MemoryInstallationStore::new());
    store.put(inst.clone()).await.unwrap();
    let client = inst
        .client(app(), store.clone(), Some(&oauth.uri()))
        .unwrap();

    let raw = client.call_raw("user.current", json!({})).await.unwrap();
    assert_eq!(raw.result["ID"], "17");

    assert!(
        requests(&event_server).await.is_empty(),
        "the event's server_endpoint must receive nothing"
    );
    let refreshes = requests(&oauth).await;
    assert_eq!(refreshes.len(), 1);
    assert_refresh_request(&refreshes[0], OLD_REFRESH);
    let api_calls = requests(&api).await;
    assert_eq!(api_calls.len(), 1);
    assert_eq!(auth_of(&api_calls[0]).as_deref(), Some(NEW_ACCESS));

    let saved = store.get(MEMBER_ID).await.unwrap().unwrap();
    assert_eq!(saved.tokens.access_token.expose(), NEW_ACCESS);
    assert_eq!(saved.tokens.refresh_token.expose(), NEW_REFRESH);
    assert!(saved.tokens.expires.unwrap() > unix_now());
    assert_eq!(saved.application_token.expose(), FIXTURE_APP_TOKEN);
    assert_eq!(saved.member_id, MEMBER_ID);
}

#[test]
fn installation_client_refuses_a_plain_http_remote_oauth_server() {
    let inst = Installation::from_install_auth(&install_event()["auth"]).unwrap();
    let store: Arc<dyn InstallationStore> = Arc::new(MemoryInstallationStore::new());
    let err = inst
        .client(app(), store.clone(), Some("http://oauth.example.com"))
        .unwrap_err();
    assert_eq!(err.kind(), bitrix24::ErrorKind::InvalidInput);
    // The default server is accepted.
    inst.client(app(), store, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// No secrets in Debug / Display
// ---------------------------------------------------------------------------------------

#[test]
fn debug_and_display_never_show_tokens() {
    let inst = Installation::from_install_auth(&install_event()["auth"]).unwrap();
    let errors = [
        InstallError::Forged,
        InstallError::UnknownInstallation,
        InstallError::MissingField("access_token"),
        InstallError::InvalidField("expires"),
        InstallError::Store("disk full".into()),
    ];
    let mut text = format!("{inst:?} {inst:#?}");
    for e in &errors {
        text.push_str(&format!(" {e} {e:?}"));
    }
    for secret in [FIXTURE_ACCESS, FIXTURE_REFRESH, FIXTURE_APP_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains(MEMBER_ID), "non-secret fields still show");
}
