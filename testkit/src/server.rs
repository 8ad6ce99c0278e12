//! The HTTP side: listeners, the router, request parsing, auth resolution, the envelope.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bitrix24::codes;
use bitrix24::php::{self, Limits};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::faults::{self, Fault, BAD_GATEWAY_HTML};
use crate::methods::{self, ApiError, Ctx};
use crate::order::{Answer, SentOrder};
use crate::state::{Caller, Outgoing, SharedRef};
use crate::{events, oauth, LoggedRequest, RequestAuth};

/// Largest request body accepted, bytes.
const MAX_BODY: usize = 16 * 1024 * 1024;

fn limits() -> Limits {
    Limits {
        max_bytes: MAX_BODY,
        ..Limits::default()
    }
}

/// Per-connection data handed to handlers: which listener, and how to drop the connection.
#[derive(Clone)]
pub(crate) struct Conn {
    pub listener: usize,
    pub kill: Arc<Notify>,
}

/// The router for all listeners.
pub(crate) fn router(shared: SharedRef) -> Router {
    Router::new()
        .route("/rest/{*path}", any(rest))
        .route("/rest/", any(rest))
        .route("/oauth/token/", any(oauth_token))
        .route("/oauth/token", any(oauth_token))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Accepts connections on `listener` forever, serving `app`; a handler can close its
/// connection through [`Conn::kill`].
pub(crate) async fn serve(listener: TcpListener, app: Router, index: usize) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let conn = Conn {
                listener: index,
                kill: kill.clone(),
            };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(conn.clone());
                    let app = app.clone();
                    async move {
                        Ok::<_, Infallible>(
                            tower::ServiceExt::oneshot(app, req)
                                .await
                                .unwrap_or_else(|e| match e {}),
                        )
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            let served = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, svc);
            tokio::select! {
                _ = served => {}
                _ = kill.notified() => {}
            }
        });
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    json_response_in(status, body, None)
}

/// A JSON answer, objects in the order PHP would print them ([`Answer`]); `order` is the
/// order a batch ran its commands in.
fn json_response_in(status: u16, body: &Value, order: Option<&[String]>) -> Response {
    let bytes = answer_bytes(body, order);
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.status(), &e.body())
}

fn answer_bytes(body: &Value, order: Option<&[String]>) -> Vec<u8> {
    serde_json::to_vec(&Answer { value: body, order }).unwrap_or_else(|_| b"{}".to_vec())
}

/// A body sent in eight pieces spread over `over`.
fn slow_response(status: u16, body: &Value, order: Option<&[String]>, over: Duration) -> Response {
    let bytes = answer_bytes(body, order);
    let pieces = 8usize;
    let size = bytes.len().div_ceil(pieces).max(1);
    let chunks: Vec<Bytes> = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
    let pause = over / pieces as u32;
    let stream = futures_util::stream::unfold(chunks.into_iter(), move |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, Infallible>(next), it))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Merges the body's params over `into` (query first, body wins).
fn merge(into: &mut Map<String, Value>, from: Value) {
    if let Value::Object(m) = from {
        for (k, v) in m {
            into.insert(k, v);
        }
    }
}

/// A form (query string or body) as params, with the order its keys were sent in.
fn form_params(form: &[u8], order: &mut SentOrder) -> Result<Value, ApiError> {
    let bad = |e: php::FormError| ApiError::new(codes::INVALID_REQUEST, e.to_string());
    order.push(php::decode_ordered(form, limits()).map_err(bad)?);
    php::decode(form, limits()).map_err(bad)
}

/// Reads params: the query string, then a JSON, form or multipart body over it; and the
/// order their keys were sent in (a `Value` sorts them).
async fn read_params(req: Request) -> Result<(Value, SentOrder), ApiError> {
    let mut params = Map::new();
    let mut order = SentOrder::default();
    if let Some(q) = req.uri().query() {
        merge(&mut params, form_params(q.as_bytes(), &mut order)?);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::new(codes::INVALID_REQUEST, e.body_text()))?;
        let mut pairs = Vec::new();
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::new(codes::INVALID_REQUEST, e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            let value = field
                .text()
                .await
                .map_err(|e| ApiError::new(codes::INVALID_REQUEST, e.body_text()))?;
            pairs.push((name, value));
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        merge(&mut params, form_params(encoded.as_bytes(), &mut order)?);
        return Ok((Value::Object(params), order));
    }
    let body = Bytes::from_request(req, &())
        .await
        .map_err(|e| ApiError::new(codes::INVALID_REQUEST, e.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Value::Object(params), order));
    }
    let looks_json = content_type.starts_with("application/json")
        || (content_type.is_empty()
            && matches!(
                body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            ));
    if looks_json {
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(codes::INVALID_REQUEST, format!("Invalid JSON body: {e}"))
        })?;
        if let Ok(raw) = serde_json::from_slice::<Box<RawValue>>(&body) {
            order.push(raw);
        }
        match v {
            Value::Object(_) => merge(&mut params, v),
            Value::Array(items) => {
                // Positional methods take a JSON array: keys 0, 1, ...
                for (i, item) in items.into_iter().enumerate() {
                    params.insert(i.to_string(), item);
                }
            }
            _ => {
                return Err(ApiError::new(
                    codes::INVALID_REQUEST,
                    "The JSON body must be an object",
                ))
            }
        }
    } else {
        merge(&mut params, form_params(&body, &mut order)?);
    }
    Ok((Value::Object(params), order))
}

/// `/rest/...` split into the webhook part (if any) and the method.
enum Route {
    Webhook {
        user_id: u64,
        code: String,
        method: String,
    },
    OAuth {
        method: String,
    },
    Unknown,
}

impl Route {
    /// The method named, as sent (without `.json`).
    fn method(&self) -> Option<&str> {
        match self {
            Route::Webhook { method, .. } | Route::OAuth { method } => Some(method),
            Route::Unknown => None,
        }
    }
}

/// A method name without a `.json` suffix (any case).
fn strip_json(m: &str) -> &str {
    let n = m.len();
    if n >= 5 && m.is_char_boundary(n - 5) && m[n - 5..].eq_ignore_ascii_case(".json") {
        &m[..n - 5]
    } else {
        m
    }
}

/// The key faults for one method are queued under: lower-cased, no `.json`, no slashes or
/// surrounding spaces.
pub(crate) fn method_key(method: &str) -> String {
    strip_json(method.trim().trim_matches('/')).to_ascii_lowercase()
}

fn route(path: &str) -> Route {
    let rest = path.strip_prefix("/rest/").unwrap_or("");
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let strip = |m: &str| strip_json(m).to_owned();
    match segments.as_slice() {
        [user, code, method] => match user.parse::<u64>() {
            Ok(user_id) => Route::Webhook {
                user_id,
                code: (*code).to_owned(),
                method: strip(method),
            },
            Err(_) => Route::Unknown,
        },
        [method] => Route::OAuth {
            method: strip(method),
        },
        _ => Route::Unknown,
    }
}

/// `302 Found` with `location` (left out if it is not a valid header value), empty body.
fn found(location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Closes the request's connection without an answer. Returns only when there is no
/// connection to close (a router driven without [`serve`]), with a 500 to send instead.
async fn drop_connection(conn: Option<&Conn>) -> Response {
    if let Some(c) = conn {
        c.kill.notify_one();
        std::future::pending::<()>().await;
    }
    json_response(
        500,
        &ApiError::new(codes::INTERNAL_SERVER_ERROR, "Internal server error").body(),
    )
}

async fn rest(State(shared): State<SharedRef>, req: Request) -> Response {
    let conn = req.extensions().get::<Conn>().cloned();
    let listener = conn.as_ref().map_or(0, |c| c.listener);
    let route = route(req.uri().path());
    let (redirect, fault, latency) = {
        let mut st = shared.lock();
        let redirect = (listener != st.canonical).then(|| {
            let pq = req.uri().path_and_query().map_or("", |p| p.as_str());
            format!("{}{}", st.base(), pq)
        });
        let fault = if redirect.is_none() {
            let key = route.method().map(method_key);
            st.take_fault(key.as_deref())
        } else {
            None
        };
        (redirect, fault, st.latency)
    };
    if let Some(location) = redirect {
        return found(&location);
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let http_method = req.method().clone();
    // The whole request is read before any fault acts, so a dropped connection is dropped
    // after the request was sent, and faulted requests are logged with their params.
    let (params, order) = match read_params(req).await {
        Ok(p) => p,
        Err(e) if fault.is_none() => return error_response(&e),
        Err(_) => (Value::Object(Map::new()), SentOrder::default()),
    };
    let start = shared.clock.now();
    let mut out: Vec<Outgoing> = Vec::new();
    let (status, body, cost, ran_order) = handle(
        &shared,
        route,
        (params, order),
        &http_method,
        start,
        &mut out,
        fault.as_ref(),
    );
    let ran_order = ran_order.as_deref();
    if !out.is_empty() {
        events::deliver(&shared, out).await;
    }
    if shared.cfg.sleep_cost {
        let d = shared.clock.real(cost);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
    match fault {
        None => json_response_in(status, &body, ran_order),
        Some(Fault::SlowBody(d)) => slow_response(status, &body, ran_order, d),
        Some(Fault::DropConnection | Fault::DropAfterExecuting) => {
            drop_connection(conn.as_ref()).await
        }
        Some(Fault::BadGateway) => {
            let mut r = Response::new(Body::from(BAD_GATEWAY_HTML));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Some(Fault::Redirect { location }) => found(&location),
        // The JSON-error faults: `handle` answered them.
        Some(_) => json_response_in(status, &body, ran_order),
    }
}

/// What a fault makes of a request before the method would run: `Some((status, body,
/// logged error))` when it refuses it (the body is used only for JSON answers), `None`
/// when the method runs.
fn refusal(fault: Option<&Fault>) -> Option<(u16, Value, Option<String>)> {
    let fault = fault?;
    if let Some((status, body, code)) = faults::json_error(fault) {
        return Some((status, body, Some(code)));
    }
    match fault {
        Fault::BadGateway => Some((502, Value::Null, None)),
        Fault::DropConnection => Some((0, Value::Null, None)),
        Fault::Redirect { .. } => Some((302, Value::Null, None)),
        _ => None,
    }
}

/// Auth, rate limit, the call, the envelope and the log, under one lock. Returns status, body,
/// the simulated seconds the call cost, and the order a batch ran its commands in. A `fault`
/// that refuses the request is answered (and logged) after the auth is resolved, before the
/// bucket or the method.
fn handle(
    shared: &SharedRef,
    route: Route,
    (params, order): (Value, SentOrder),
    http_method: &HttpMethod,
    start: f64,
    out: &mut Vec<Outgoing>,
    fault: Option<&Fault>,
) -> (u16, Value, f64, Option<Vec<String>>) {
    let cfg = &shared.cfg;
    let mut st = shared.lock();
    let mut params = params;
    let mut ran_order = None;
    let token = match &mut params {
        Value::Object(m) => m.remove("auth").and_then(|v| crate::util::text(&v)),
        _ => None,
    };
    let (method, caller) = match route {
        Route::Unknown => {
            if let Some((status, body, _)) = refusal(fault) {
                return (status, body, 0.0, None);
            }
            let e = ApiError::new(codes::ERROR_METHOD_NOT_FOUND, "Method not found!");
            return (e.status(), e.body(), 0.0, None);
        }
        Route::Webhook {
            user_id,
            code,
            method,
        } => {
            let ok = st.webhooks.get(&user_id).is_some_and(|c| *c == code)
                && st.table(crate::store::Kind::User).alive(user_id);
            let caller = ok.then_some(Caller::Webhook { user_id });
            (
                method,
                caller
                    .ok_or_else(|| ApiError::new(codes::NO_AUTH_FOUND, "Wrong authorization data")),
            )
        }
        Route::OAuth { method } => {
            let caller = match token {
                None => Err(ApiError::new(
                    codes::NO_AUTH_FOUND,
                    "Wrong authorization data",
                )),
                Some(t) => match st.access.get(&t) {
                    None => Err(ApiError::new(
                        codes::INVALID_TOKEN,
                        "Unable to get application by token",
                    )),
                    Some(a) if a.expires <= start => Err(ApiError::new(
                        codes::EXPIRED_TOKEN,
                        "The access token provided has expired.",
                    )),
                    Some(a) if !st.apps.contains_key(&a.client_id) => Err(ApiError::new(
                        codes::INVALID_TOKEN,
                        "Unable to get application by token",
                    )),
                    Some(a) => Ok(Caller::OAuth {
                        client_id: a.client_id.clone(),
                        user_id: a.user_id,
                    }),
                },
            };
            (method, caller)
        }
    };
    let auth = match &caller {
        Ok(Caller::Webhook { user_id }) => RequestAuth::Webhook { user_id: *user_id },
        Ok(Caller::OAuth { client_id, user_id }) => RequestAuth::OAuth {
            client_id: client_id.clone(),
            user_id: *user_id,
        },
        Err(_) => RequestAuth::None,
    };
    let mut executed = false;
    let (status, body, cost, error) = if let Some((status, body, error)) = refusal(fault) {
        (status, body, 0.0, error)
    } else {
        match caller {
            Err(e) => (e.status(), e.body(), 0.0, Some(e.code)),
            Ok(caller) => {
                if !st.bucket.take(start) {
                    let e = ApiError::new(codes::QUERY_LIMIT_EXCEEDED, faults::QUERY_LIMIT_TEXT);
                    (e.status(), e.body(), 0.0, Some(e.code))
                } else {
                    let mut ctx = Ctx {
                        st: &mut st,
                        cfg,
                        now: start,
                        caller: &caller,
                        method: String::new(),
                        out,
                        cost: 0.0,
                        in_batch: false,
                        ran: false,
                        order,
                        ran_order: None,
                    };
                    let (outcome, time) = methods::run(&mut ctx, &method, &params, start);
                    executed = ctx.ran;
                    ran_order = ctx.ran_order.take();
                    let cost = time.processing.unwrap_or(0.0);
                    match outcome {
                        Ok(reply) => {
                            let mut m = Map::new();
                            m.insert("result".into(), reply.result);
                            if let Some(n) = reply.next {
                                m.insert("next".into(), Value::from(n));
                            }
                            if let Some(t) = reply.total {
                                m.insert("total".into(), Value::from(t));
                            }
                            m.insert(
                                "time".into(),
                                serde_json::to_value(&time).unwrap_or(Value::Null),
                            );
                            (200, Value::Object(m), cost, None)
                        }
                        // Error answers carry no `time` (OPERATION_TIME_LIMIT included): just
                        // `{error, error_description}`.
                        Err(e) => (e.status(), e.body(), cost, Some(e.code)),
                    }
                }
            }
        }
    };
    // Nothing is answered on a connection dropped after executing.
    let logged_status = if matches!(fault, Some(Fault::DropAfterExecuting)) {
        0
    } else {
        status
    };
    let cap = cfg.log_capacity;
    st.log_request(
        cap,
        LoggedRequest {
            method,
            params,
            auth,
            status: logged_status,
            http_method: http_method.as_str().to_owned(),
            error,
            executed,
        },
    );
    (status, body, cost, ran_order)
}

async fn oauth_token(State(shared): State<SharedRef>, req: Request) -> Response {
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let via = req.method().as_str().to_owned();
    let params = match read_params(req).await {
        Ok((p, _)) => p,
        Err(e) => {
            return json_response(
                400,
                &serde_json::json!({"error": codes::OAUTH_INVALID_REQUEST, "error_description": e.description}),
            )
        }
    };
    let now = shared.clock.now();
    let (status, body) = {
        let mut st = shared.lock();
        oauth::token(&mut st, &shared.cfg, now, &params, &via)
    };
    json_response(status, &body)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}
