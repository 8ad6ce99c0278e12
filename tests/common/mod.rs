//! Shared setup for the integration tests: fixtures, mock servers, a recording token store.
//!
//! Every test runs against `wiremock` servers on 127.0.0.1; nothing touches the network.

#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitrix24::{BoxFuture, Client, OAuthApp, StoreError, TokenStore, Tokens};
use serde_json::Value;
use tokio::sync::oneshot;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// `tests/fixtures/shared/` (a copy of the project's shared fixtures).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shared")
}

/// A fixture file's text.
pub fn fixture(name: &str) -> String {
    let p = fixtures_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// A fixture file parsed as JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The HTTP status a fixture's file name carries (`error-expired-token.401.json` -> 401).
pub fn fixture_status(name: &str) -> u16 {
    let mut parts = name.rsplit('.');
    let _ext = parts.next();
    parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("fixture {name} carries no HTTP status"))
}

/// A response replaying a fixture with the status from its file name.
pub fn fixture_response(name: &str) -> ResponseTemplate {
    json_response(fixture_status(name), fixture(name))
}

// ---------------------------------------------------------------------------------------
// Mock servers
// ---------------------------------------------------------------------------------------

/// What the catch-all mock answers: any test that sees it hit a route it did not expect.
pub const CATCH_ALL_BODY: &str = "UNEXPECTED-REQUEST: no mock matched this route (catch-all)";

/// Mounts the catch-all (lowest priority, so any mock mounted before or after wins over it).
pub async fn mount_catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string(CATCH_ALL_BODY))
        .with_priority(u8::MAX)
        .named("catch-all")
        .mount(server)
        .await;
}

/// A JSON answer with `status`.
pub fn json_response(status: u16, body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into().into_bytes(), "application/json")
}

/// Mounts `POST {route}` answering `response`.
pub async fn mount_post(server: &MockServer, route: &str, response: impl Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Everything `server` received, in order.
pub async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on by default")
}

/// A request body as JSON (panics on anything else).
pub fn body_json(req: &Request) -> Value {
    serde_json::from_slice(&req.body).unwrap_or_else(|e| {
        panic!(
            "body of {} is not JSON ({e}): {}",
            req.url,
            String::from_utf8_lossy(&req.body)
        )
    })
}

/// The `auth` string of a JSON request body, if any.
pub fn auth_of(req: &Request) -> Option<String> {
    serde_json::from_slice::<Value>(&req.body)
        .ok()?
        .get("auth")?
        .as_str()
        .map(str::to_owned)
}

/// A header's value as text.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Asserts the basic shape of a REST call: `POST {path}`, JSON content type, no query string.
pub fn assert_rest_post(req: &Request, expected_path: &str) {
    assert_eq!(req.method.as_str(), "POST", "{}", req.url);
    assert_eq!(req.url.path(), expected_path);
    assert_eq!(req.url.query(), None, "no query string: {}", req.url);
    let ct = header(req, "content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "content-type of {}: {ct:?}",
        req.url
    );
}

/// The `{base}/rest/` endpoint of a mock server.
pub fn rest_endpoint(server: &MockServer) -> String {
    format!("{}/rest/", server.uri())
}

// ---------------------------------------------------------------------------------------
// OAuth material
// ---------------------------------------------------------------------------------------

pub const CLIENT_ID: &str = "local.66f1b2c3d4e5f6.12345678";
pub const CLIENT_SECRET: &str = "cs-Secret-5eCr3t-0123456789abcdefGHIJ";
pub const OLD_ACCESS: &str = "old-access-7f3a9c1e5b2d8f4a6c0e";
pub const OLD_REFRESH: &str = "old-refresh-1b9d7f5c3a2e4b6d8f0a";
/// The pair in `token-response-refresh.200.json`.
pub const NEW_ACCESS: &str = "d7302e7zdytx4i9h468r4mbejmhk7k6h";
pub const NEW_REFRESH: &str = "431b42bgof65nhe9ik5ubszw0j7vgdm2";
pub const MEMBER_ID: &str = "a01d276d6e1de6f73e98e1cb4926b0e9";

pub fn app() -> OAuthApp {
    OAuthApp::new(CLIENT_ID, CLIENT_SECRET)
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The old (about to be refreshed) token set: calls go to `api`, refreshes to `oauth`.
pub fn old_tokens(api: &MockServer, oauth: &MockServer) -> Tokens {
    Tokens::new(OLD_ACCESS, OLD_REFRESH, rest_endpoint(api))
        .server_endpoint(rest_endpoint(oauth))
        .member_id(MEMBER_ID)
}

/// `token-response-refresh.200.json` with its endpoints pointed at the mock servers and
/// `expires` an hour from now (the fixture's absolute `expires` lies in 2026-08 and may be in
/// the past when the tests run, which would make every later call refresh again).
pub fn refresh_response_body(api: &MockServer, oauth: &MockServer) -> String {
    let mut v = fixture_json("token-response-refresh.200.json");
    v["client_endpoint"] = Value::from(rest_endpoint(api));
    v["server_endpoint"] = Value::from(rest_endpoint(oauth));
    v["expires"] = Value::from(unix_now() + 3600);
    v.to_string()
}

/// An OAuth server answering `POST /oauth/token/` with `response` (plus the catch-all).
pub async fn oauth_server(response: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    mount_post(&server, "/oauth/token/", response).await;
    mount_catch_all(&server).await;
    server
}

/// The decoded form body of a refresh request.
pub fn form_pairs(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Asserts `req` is the one refresh request the protocol wants: POST form to `/oauth/token/`,
/// no query string, `grant_type=refresh_token` with the app's credentials and `refresh_token`.
pub fn assert_refresh_request(req: &Request, refresh_token: &str) {
    assert_eq!(req.method.as_str(), "POST");
    assert_eq!(req.url.path(), "/oauth/token/");
    assert_eq!(req.url.query(), None, "secrets must not travel in the URL");
    assert_eq!(
        header(req, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut pairs = form_pairs(req);
    pairs.sort();
    let mut expected: Vec<(String, String)> = [
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    expected.sort();
    assert_eq!(pairs, expected);
}

/// A `user.current` success answer.
pub const USER_OK: &str = r#"{"result":{"ID":"17","ACTIVE":true,"NAME":"Alex","LAST_NAME":"Example","IS_ONLINE":"Y"},"time":{"start":1787219700.2,"finish":1787219700.3}}"#;

// ---------------------------------------------------------------------------------------
// Recording: API requests and token-store events in one ordered log
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum Event {
    /// The API mock received a request carrying `auth`, after `saves_done` completed saves.
    Api {
        auth: Option<String>,
        saves_done: usize,
    },
    /// The store finished saving `tokens`, after the API mock had seen `api_seen` requests.
    Save { tokens: Tokens, api_seen: usize },
    /// The store was asked to load.
    Load,
}

/// A shared log of API requests and store events.
#[derive(Default, Debug)]
pub struct Probe {
    api_seen: AtomicUsize,
    saves_done: AtomicUsize,
    events: Mutex<Vec<Event>>,
}

impl Probe {
    pub fn new() -> Arc<Probe> {
        Arc::new(Probe::default())
    }

    /// Records an API request (called from the mock's responder, which wiremock serializes).
    pub fn record_api(&self, req: &Request) -> Option<String> {
        let auth = auth_of(req);
        let mut events = self.events.lock().unwrap();
        self.api_seen.fetch_add(1, Ordering::SeqCst);
        events.push(Event::Api {
            auth: auth.clone(),
            saves_done: self.saves_done.load(Ordering::SeqCst),
        });
        auth
    }

    fn record_save(&self, tokens: &Tokens) {
        let mut events = self.events.lock().unwrap();
        events.push(Event::Save {
            tokens: tokens.clone(),
            api_seen: self.api_seen.load(Ordering::SeqCst),
        });
        self.saves_done.fetch_add(1, Ordering::SeqCst);
    }

    fn record_load(&self) {
        self.events.lock().unwrap().push(Event::Load);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// The tokens of every completed save, in order.
    pub fn saves(&self) -> Vec<Tokens> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Save { tokens, .. } => Some(tokens),
                _ => None,
            })
            .collect()
    }

    /// `(auth, saves completed when the API received it)` of every API request, in order.
    pub fn api_calls(&self) -> Vec<(Option<String>, usize)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Api { auth, saves_done } => Some((auth, saves_done)),
                _ => None,
            })
            .collect()
    }
}

/// An API responder that answers by the `auth` in the body: the first route whose token
/// matches wins; unknown tokens get a loud 500. Every request is recorded in `probe`.
pub fn by_token(
    probe: Arc<Probe>,
    routes: Vec<(&str, ResponseTemplate)>,
) -> impl Respond + 'static {
    let routes: Vec<(String, ResponseTemplate)> =
        routes.into_iter().map(|(t, r)| (t.to_owned(), r)).collect();
    move |req: &Request| {
        let auth = probe.record_api(req);
        routes
            .iter()
            .find(|(t, _)| Some(t.as_str()) == auth.as_deref())
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| {
                ResponseTemplate::new(500)
                    .set_body_string(format!("UNEXPECTED-TOKEN: {auth:?} ({CATCH_ALL_BODY})"))
            })
    }
}

/// A [`TokenStore`] that logs into a [`Probe`], and can be slowed down, held or made to fail.
pub struct RecordingStore {
    probe: Arc<Probe>,
    tokens: Mutex<Option<Tokens>>,
    save_delay: Duration,
    /// Held by the first `save`: it signals the sender, then waits for the receiver.
    hold_first_save: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
    /// When set, `save` fails with this message built from the tokens it was given.
    fail_save: Option<fn(&Tokens) -> String>,
}

impl RecordingStore {
    pub fn new(probe: Arc<Probe>, initial: Option<Tokens>) -> Self {
        RecordingStore {
            probe,
            tokens: Mutex::new(initial),
            save_delay: Duration::ZERO,
            hold_first_save: Mutex::new(None),
            fail_save: None,
        }
    }

    /// Every save sleeps this long before it completes.
    pub fn save_delay(mut self, d: Duration) -> Self {
        self.save_delay = d;
        self
    }

    /// The first save signals `started`, then waits for `release` before completing.
    pub fn hold_first_save(
        self,
        started: oneshot::Sender<()>,
        release: oneshot::Receiver<()>,
    ) -> Self {
        *self.hold_first_save.lock().unwrap() = Some((started, release));
        self
    }

    /// Every save fails with `message(tokens)`.
    pub fn fail_save(mut self, message: fn(&Tokens) -> String) -> Self {
        self.fail_save = Some(message);
        self
    }

    /// The tokens stored now.
    pub fn current(&self) -> Option<Tokens> {
        self.tokens.lock().unwrap().clone()
    }

    pub fn into_arc(self) -> Arc<RecordingStore> {
        Arc::new(self)
    }
}

impl TokenStore for RecordingStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Tokens>, StoreError>> {
        self.probe.record_load();
        let t = self.current();
        Box::pin(async move { Ok(t) })
    }

    fn save<'a>(&'a self, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let hold = self.hold_first_save.lock().unwrap().take();
            if let Some((started, release)) = hold {
                let _ = started.send(());
                let _ = release.await;
            }
            if !self.save_delay.is_zero() {
                tokio::time::sleep(self.save_delay).await;
            }
            if let Some(message) = self.fail_save {
                return Err(message(tokens).into());
            }
            *self.tokens.lock().unwrap() = Some(tokens.clone());
            self.probe.record_save(tokens);
            Ok(())
        })
    }
}

/// An OAuth client with `tokens`, saving into `store`.
pub fn oauth_client(tokens: Tokens, store: &Arc<RecordingStore>) -> Client {
    Client::builder()
        .oauth(app(), tokens)
        .token_store_arc(store.clone())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

/// Asserts that none of `secrets` appears in the error's `Display` or `Debug`.
pub fn assert_no_secrets(e: &bitrix24::Error, secrets: &[&str]) {
    let shown = format!("{e}");
    let debug = format!("{e:?}");
    for s in secrets {
        assert!(!shown.contains(s), "Display leaks {s:?}: {shown}");
        assert!(!debug.contains(s), "Debug leaks {s:?}: {debug}");
    }
}

/// A webhook client (`/rest/1/k3y/`) whose portal answers `POST /rest/1/k3y/{method}` with
/// `answer`, and any other request with a loud 500 (`mount_catch_all`).
pub async fn answering(method: &str, answer: ResponseTemplate) -> (Client, MockServer) {
    let server = MockServer::start().await;
    mount_post(&server, &format!("/rest/1/k3y/{method}"), answer).await;
    mount_catch_all(&server).await;
    let client = Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    (client, server)
}
