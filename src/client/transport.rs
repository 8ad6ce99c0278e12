//! The transport layer: one HTTP request to the portal at a time, under the rate limit; JSON
//! `POST`, portal renames (redirects), a cap on the answer's size, and the classification of
//! what came back.

use url::Url;

use super::decode::Answer;
use super::policy::Progress;
use super::Inner;
use crate::error::{Cause, CauseKind, Error, ErrorKind};
use crate::wire::Envelope;

/// Redirect hops followed for one call (portal renames answer 301/302).
const MAX_REDIRECTS: usize = 5;

/// Default cap on the size of one answer, bytes (64 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The default `User-Agent` header.
pub(super) const USER_AGENT: &str = concat!("bitrix24-rust/", env!("CARGO_PKG_VERSION"));

/// The HTTP client the crate makes when it is given none: it never follows a redirect by
/// itself (the transport re-POSTs to a renamed portal, where an automatic redirect would turn
/// the POST into a GET).
///
/// # Errors
/// [`ErrorKind::Transport`] when the TLS backend cannot be set up.
pub(super) fn default_http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::new(ErrorKind::Transport).with_message(e.without_url().to_string()))
}

/// What one POST (after following redirects) brought back.
pub(super) struct Posted {
    pub status: u16,
    pub body: Vec<u8>,
    /// Where the last redirect pointed, if the request was redirected.
    pub moved_to: Option<Url>,
}

/// POSTs `body` to `url`, each HTTP request after a unit of the portal's rate limit; on
/// 301/302/307/308 to another host's REST path re-POSTs the same body there (never from
/// https down to http). A redirect to the same origin, or to a page that is not a REST path
/// (an expired license's coupon page), is [`ErrorKind::PortalUnavailable`].
pub(super) async fn post(
    inner: &Inner,
    method: &str,
    mut url: Url,
    body: bytes::Bytes,
    secret: &str,
    progress: &mut Progress,
) -> Result<Posted, Error> {
    let mut moved_to = None;
    let http_error = |message: &str| {
        Error::new(ErrorKind::Http)
            .with_method(method)
            .with_message(message)
    };
    for _ in 0..=MAX_REDIRECTS {
        inner.limits.acquire(method).await?;
        progress.in_flight = true;
        let response = inner
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, &inner.user_agent)
            .timeout(inner.timeout)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| transport(method, &e, &[secret]))?;
        if response.url() != &url {
            return Err(http_error(
                "the HTTP client followed a redirect by itself (it must be built with \
                 redirect::Policy::none()); the request may have been re-sent as a GET",
            )
            .or_maybe_executed(true));
        }
        let status = response.status().as_u16();
        if status == 303 {
            // "See other": the request was processed, and the answer is elsewhere. Sending
            // the body again to another address could run a write twice.
            return Err(http_error(
                "a 303 See Other answer: the request was processed; not sent again",
            )
            .with_status(status)
            .or_maybe_executed(true));
        }
        if matches!(status, 301 | 302 | 307 | 308) {
            // Not run at this address: it moved.
            progress.in_flight = false;
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let next = url
                .join(location)
                .ok()
                .filter(|n| matches!(n.scheme(), "http" | "https"));
            let Some(next) = next else {
                return Err(
                    http_error("a redirect without a usable http(s) Location").with_status(status)
                );
            };
            let rest_path = next.path().contains("/rest/");
            if next.origin() == url.origin() || !rest_path {
                let shown = crate::error::redact_text(next.as_str(), &[secret]);
                return Err(Error::new(ErrorKind::PortalUnavailable)
                    .with_method(method)
                    .with_status(status)
                    .with_location(shown)
                    .with_message(if rest_path {
                        "the portal redirects its REST calls to itself"
                    } else {
                        "the portal redirects REST calls to a page that is not REST (an expired \
                         license or a maintenance page?)"
                    }));
            }
            if url.scheme() == "https" && next.scheme() == "http" {
                return Err(
                    http_error("refusing to follow a redirect from https to http")
                        .with_status(status),
                );
            }
            moved_to = Some(next.clone());
            url = next;
            continue;
        }
        let body = read_capped(response, inner.max_response_bytes)
            .await
            .map_err(|e| match e {
                Capped::TooLarge => Error::new(ErrorKind::TooLarge)
                    .with_method(method)
                    .with_status(status)
                    .with_message(format!(
                        "the answer is larger than the client's cap of {} bytes",
                        inner.max_response_bytes
                    ))
                    .or_maybe_executed(true),
                Capped::Failed(e) => transport(method, &e, &[secret]),
            })?;
        // Answered: what ran is now up to the answer.
        progress.in_flight = false;
        return Ok(Posted {
            status,
            body,
            moved_to,
        });
    }
    Err(http_error(&format!("more than {MAX_REDIRECTS} redirects")))
}

enum Capped {
    TooLarge,
    Failed(reqwest::Error),
}

/// The body, read chunk by chunk up to `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, Capped> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Capped::TooLarge);
    }
    let mut body = Vec::with_capacity(
        response
            .content_length()
            .map_or(8 * 1024, |n| n as usize)
            .min(cap),
    );
    while let Some(chunk) = response.chunk().await.map_err(Capped::Failed)? {
        if body.len() + chunk.len() > cap {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport failure as an [`Error`] with a typed, redacted [`Cause`]: whether the
/// connection never opened (nothing ran), the request timed out, or the answer was lost.
pub(super) fn transport(method: &str, e: &reqwest::Error, secrets: &[&str]) -> Error {
    let (kind, cause) = if e.is_timeout() {
        (ErrorKind::Timeout, CauseKind::Timeout)
    } else if e.is_connect() {
        (ErrorKind::Transport, CauseKind::Connect)
    } else if e.is_body() || e.is_decode() {
        (ErrorKind::Transport, CauseKind::Body)
    } else {
        (ErrorKind::Transport, CauseKind::Request)
    };
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    let headline = match cause {
        CauseKind::Connect => "could not connect",
        CauseKind::Timeout => "no answer in time",
        CauseKind::Body => "the answer was cut off",
        _ => "the request failed",
    };
    let text = crate::error::redact_text(&text, secrets);
    let message = if text.is_empty() {
        headline.to_owned()
    } else {
        format!("{headline}: {text}")
    };
    Error::new(kind)
        .with_method(method)
        .with_message(message.clone())
        .with_cause(Cause::new(cause, message))
        .or_maybe_executed(cause != CauseKind::Connect)
}

/// `base` + the method name, verbatim.
pub(super) fn join_method(base: &Url, method: &str) -> Result<Url, Error> {
    if method.is_empty() || method.contains(['/', '?', '#', '\\']) || method.contains("..") {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_method(method)
            .with_message("bad method name"));
    }
    let mut url = base.clone();
    let path = format!(
        "{}{}{method}",
        url.path(),
        if url.path().ends_with('/') { "" } else { "/" }
    );
    url.set_path(&path);
    Ok(url)
}

/// Classifies an answer: the `error` code first (any status, case kept; a number or an
/// empty string is a code too), the HTTP status second; only a JSON object is an envelope.
/// `secret` (the access token or webhook code) is removed from any text kept.
pub(super) fn classify(
    method: &str,
    status: u16,
    body: Vec<u8>,
    shared_secret: &std::sync::Arc<str>,
) -> Result<Answer, Error> {
    let secret: &str = shared_secret;
    let http = |body: &[u8]| {
        Error::new(ErrorKind::Http)
            .with_method(method)
            .with_status(status)
            .with_snippet(body, &[secret])
    };
    let Some(env) = Envelope::parse(&body) else {
        return Err(http(&body));
    };
    if let Some((code, description)) = env.error() {
        let time = env.time();
        let mut e = Error::api(method, status, code, description).redact(&[secret]);
        if let Some(t) = &time {
            if let Some(reset) = t.operating_reset_at {
                // On this machine's clock: the portal's may differ from ours.
                let ahead = t.finish.map_or(0, |f| reset - f.floor() as i64);
                let reset = match t.finish {
                    Some(_) => super::unix_now() + ahead,
                    None => reset,
                };
                e = e.with_operating_reset_at(reset);
            }
        }
        return Err(e);
    }
    if !(200..300).contains(&status) {
        return Err(http(&body));
    }
    Ok(Answer::new(body, shared_secret.clone(), env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_puts_the_code_first() {
        let e = classify(
            "m",
            200,
            br#"{"error":"ACCESS_DENIED","error_description":"no"}"#.to_vec(),
            &"".into(),
        )
        .err()
        .unwrap();
        assert_eq!(
            (e.kind(), e.code(), e.status()),
            (ErrorKind::Api, Some("ACCESS_DENIED"), Some(200))
        );
        let e = classify("m", 502, b"<html>Bad gateway</html>".to_vec(), &"".into())
            .err()
            .unwrap();
        assert_eq!(
            (e.kind(), e.status(), e.body_snippet()),
            (ErrorKind::Http, Some(502), Some("<html>Bad gateway</html>"))
        );
        assert!(classify("m", 200, br#"{"result":true}"#.to_vec(), &"".into()).is_ok());
    }

    #[test]
    fn numeric_and_empty_codes_are_api_errors() {
        let e = classify(
            "m",
            400,
            br#"{"error":100,"error_description":"Invalid parameters"}"#.to_vec(),
            &"".into(),
        )
        .err()
        .unwrap();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Api, Some("100")));
        let e = classify(
            "crm.deal.get",
            400,
            br#"{"error":"","error_description":"Not found"}"#.to_vec(),
            &"".into(),
        )
        .err()
        .unwrap();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Api, Some("")));
        assert!(e.is_not_found());
    }

    #[test]
    fn the_reset_time_of_an_operating_limit_is_kept() {
        let e = classify(
            "m",
            429,
            br#"{"error":"OPERATION_TIME_LIMIT","error_description":"blocked","time":{"operating_reset_at":1700000600}}"#.to_vec(),
            &"".into(),
        )
        .err()
        .unwrap();
        assert_eq!(e.operating_reset_at(), Some(1_700_000_600));
        assert!(!e.maybe_executed());
    }
}
