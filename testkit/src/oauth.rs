//! The OAuth server at `/oauth/token/` (PROTOCOL.md 1.4-1.8): `authorization_code` and
//! `refresh_token` grants, single-use refresh tokens, `invalid_client`, `wrong_client`
//! (HTTP 200), `invalid_grant` (400).

use bitrix24::codes;
use serde_json::{json, Value};

use crate::state::{Config, State};
use crate::util;
use crate::TokenRequest;

/// Lifetime of an authorization code, seconds.
pub(crate) const CODE_LIFETIME: f64 = 30.0;

fn error(status: u16, code: &str, description: &str) -> (u16, Value) {
    (
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// Answers one token request: its HTTP status and JSON body.
pub(crate) fn token(st: &mut State, cfg: &Config, now: f64, p: &Value, via: &str) -> (u16, Value) {
    let grant = util::p_str(p, "grant_type").unwrap_or_default();
    let client_id = util::p_str(p, "client_id").unwrap_or_default();
    let (status, body) = answer(st, cfg, now, p, &grant, &client_id);
    st.token_log.push(TokenRequest {
        grant_type: grant,
        client_id,
        via: via.to_owned(),
        status,
        error: body.get("error").and_then(Value::as_str).map(str::to_owned),
    });
    (status, body)
}

fn answer(
    st: &mut State,
    cfg: &Config,
    now: f64,
    p: &Value,
    grant: &str,
    client_id: &str,
) -> (u16, Value) {
    if grant.is_empty() || client_id.is_empty() {
        return error(
            400,
            codes::OAUTH_INVALID_REQUEST,
            "Missing grant_type or client_id",
        );
    }
    let Some(app) = st.apps.get(client_id).cloned() else {
        return error(200, codes::WRONG_CLIENT, "Wrong client");
    };
    let secret = util::p_str(p, "client_secret").unwrap_or_default();
    if secret != app.client_secret {
        return error(400, codes::INVALID_CLIENT, "Invalid client credentials");
    }
    let (user_id, with_expiry) = match grant {
        "authorization_code" => {
            let Some(code) = util::p_str(p, "code") else {
                return error(400, codes::OAUTH_INVALID_REQUEST, "Missing code");
            };
            match st.codes.remove(&code) {
                Some(c) if c.client_id == client_id && c.expires > now => (c.user_id, false),
                Some(c) if c.client_id != client_id => {
                    return error(200, codes::WRONG_CLIENT, "Wrong client")
                }
                _ => return error(400, codes::INVALID_GRANT, "Invalid authorization code"),
            }
        }
        "refresh_token" => {
            let Some(refresh) = util::p_str(p, "refresh_token") else {
                return error(400, codes::OAUTH_INVALID_REQUEST, "Missing refresh_token");
            };
            match st.refresh.get_mut(&refresh) {
                Some(r) if r.client_id != client_id => {
                    return error(200, codes::WRONG_CLIENT, "Wrong client")
                }
                Some(r) if !r.used && r.expires > now => {
                    r.used = true;
                    (r.user_id, true)
                }
                _ => return error(400, codes::INVALID_GRANT, "Invalid refresh token"),
            }
        }
        _ => return error(400, codes::OAUTH_INVALID_REQUEST, "Unsupported grant_type"),
    };
    let (access, refresh, expires) = st.issue(cfg, now, client_id, user_id);
    let oauth = st.oauth_base().to_owned();
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), json!(access));
    body.insert(
        "client_endpoint".into(),
        json!(format!("{}/rest/", st.base())),
    );
    body.insert("domain".into(), json!(oauth.trim_start_matches("http://")));
    if with_expiry {
        body.insert("expires".into(), json!(expires.floor() as i64));
    }
    body.insert("expires_in".into(), json!(cfg.token_lifetime as i64));
    body.insert("member_id".into(), json!(cfg.member_id));
    body.insert("refresh_token".into(), json!(refresh));
    body.insert("scope".into(), json!(app.scopes.join(",")));
    body.insert("server_endpoint".into(), json!(format!("{oauth}/rest/")));
    body.insert("status".into(), json!(app.status));
    if with_expiry {
        body.insert("user_id".into(), json!(user_id));
    }
    (200, Value::Object(body))
}
