//! Shared helpers of the testkit's own tests: fixtures, shape comparison, an event sink.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// A shared fixture file's text.
pub fn fixture_text(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/shared/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A shared JSON fixture.
pub fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts `got` has the same keys and JSON types as `want`, recursively (arrays: the first
/// element of each is compared; floats and ints are both "number" where `loose_numbers`).
pub fn assert_same_shape(path: &str, got: &Value, want: &Value) {
    let (kg, kw) = (kind(got), kind(want));
    let numbers = |k: &str| k == "int" || k == "float";
    assert!(
        kg == kw || (numbers(kg) && numbers(kw)),
        "{path}: type {kg}, fixture has {kw} ({got} vs {want})"
    );
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            let mut gs = gk.clone();
            let mut ws = wk.clone();
            gs.sort();
            ws.sort();
            assert_eq!(gs, ws, "{path}: keys differ");
            for (k, wv) in w {
                assert_same_shape(&format!("{path}.{k}"), &g[k], wv);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if let (Some(g0), Some(w0)) = (g.first(), w.first()) {
                assert_same_shape(&format!("{path}[0]"), g0, w0);
            }
        }
        _ => {}
    }
}

/// The keys of every leaf of a tree, as `a[b][c]` paths, with their values.
pub fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}[{k}]")
                };
                leaves(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// One POST an [`EventSink`] received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: String,
}

impl Received {
    pub fn form(&self) -> Value {
        bitrix24::php::decode(self.body.as_bytes(), bitrix24::php::Limits::default()).unwrap()
    }
}

/// A local HTTP server that records every POST, standing in for a bot's handler.
pub struct EventSink {
    pub base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl EventSink {
    pub async fn start() -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let app = Router::new()
            .route(
                "/{*path}",
                post(
                    |State(got): State<Arc<Mutex<Vec<Received>>>>,
                     uri: axum::http::Uri,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        got.lock().unwrap().push(Received {
                            path: uri.path().to_owned(),
                            content_type: headers
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        "ok"
                    },
                ),
            )
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EventSink { base, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// A raw HTTP client that follows no redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs JSON, returns status and body.
pub async fn post_json(url: &str, body: Value) -> (u16, Value) {
    let r = http().post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POSTs `body` as is with `content_type` (JSON text whose key order is the point: a
/// `Value` would sort the keys), returns status, the parsed body and its text.
pub async fn post_text(url: &str, content_type: &str, body: &str) -> (u16, Value, String) {
    let r = http()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let parsed = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    (status, parsed, text)
}

/// GETs a URL, returns status and body.
pub async fn get(url: &str) -> (u16, Value) {
    let r = http().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Asserts every key of `want` is in `got` with the same JSON type, recursively; `got` may
/// have more keys (a portal's `time` and user objects vary, PROTOCOL.md 3.2).
pub fn assert_covers(path: &str, got: &Value, want: &Value) {
    let (kg, kw) = (kind(got), kind(want));
    let numbers = |k: &str| k == "int" || k == "float";
    assert!(
        kg == kw || (numbers(kg) && numbers(kw)),
        "{path}: type {kg}, fixture has {kw} ({got} vs {want})"
    );
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {got}"));
                assert_covers(&format!("{path}.{k}"), gv, wv);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if let (Some(g0), Some(w0)) = (g.first(), w.first()) {
                assert_covers(&format!("{path}[0]"), g0, w0);
            }
        }
        _ => {}
    }
}
