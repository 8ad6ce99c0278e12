//! Bitrix24 error codes and the HTTP statuses the docs give them (PROTOCOL.md 3.4, 1.8),
//! shared by the client's classification and the fake portal's answers.
//!
//! Codes are compared case-insensitively (portals mix `expired_token` and `ACCESS_DENIED`);
//! the constants keep the documented spelling.

/// Access token expired: refresh and retry (401).
pub const EXPIRED_TOKEN: &str = "expired_token";
/// Token not recognised (401); the client refreshes once on it.
pub const INVALID_TOKEN: &str = "invalid_token";
/// Wrong access token or webhook code, or none (401).
pub const NO_AUTH_FOUND: &str = "NO_AUTH_FOUND";
/// Admin approval pending for this method and token (401); never refresh on it.
pub const METHOD_CONFIRM_WAITING: &str = "METHOD_CONFIRM_WAITING";
/// The token's user lacks rights (403).
pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
/// The scope of the webhook or token is insufficient (403).
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
/// Access denied (403); also used by many methods for their own denials.
pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
/// Request-rate limit (leaky bucket) exceeded (503).
pub const QUERY_LIMIT_EXCEEDED: &str = "QUERY_LIMIT_EXCEEDED";
/// Per-method operating-time limit exceeded (429).
pub const OPERATION_TIME_LIMIT: &str = "OPERATION_TIME_LIMIT";
/// REST blocked manually for overload (503); not transient.
pub const OVERLOAD_LIMIT: &str = "OVERLOAD_LIMIT";
/// Unknown method (404).
pub const ERROR_METHOD_NOT_FOUND: &str = "ERROR_METHOD_NOT_FOUND";
/// More than 50 commands in a batch (400).
pub const ERROR_BATCH_LENGTH_EXCEEDED: &str = "ERROR_BATCH_LENGTH_EXCEEDED";
/// Method not allowed inside a batch, e.g. a nested `batch` (405).
pub const ERROR_BATCH_METHOD_NOT_ALLOWED: &str = "ERROR_BATCH_METHOD_NOT_ALLOWED";
/// Server error (500).
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
/// 500: the server returned an unexpected answer.
pub const ERROR_UNEXPECTED_ANSWER: &str = "ERROR_UNEXPECTED_ANSWER";
/// 500 (410 seen too): the portal was deleted or its public part closed.
pub const PORTAL_DELETED: &str = "PORTAL_DELETED";
/// `event.bind` for an unknown event (400).
pub const ERROR_EVENT_NOT_FOUND: &str = "ERROR_EVENT_NOT_FOUND";
/// Bad parameter value (400).
pub const INVALID_ARG_VALUE: &str = "INVALID_ARG_VALUE";
/// Bad request (400).
pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
/// Not found (404).
pub const NOT_FOUND: &str = "NOT_FOUND";

/// OAuth server: the refresh token or code is dead; redo the full OAuth flow (400).
pub const INVALID_GRANT: &str = "invalid_grant";
/// OAuth server: wrong `client_id`/`client_secret` (400 or 401).
pub const INVALID_CLIENT: &str = "invalid_client";
/// OAuth server: the `client_id` does not own the tokens; may come with HTTP 200.
pub const WRONG_CLIENT: &str = "wrong_client";
/// OAuth server: malformed request (400).
pub const OAUTH_INVALID_REQUEST: &str = "invalid_request";
/// The app's paid period ended.
pub const PAYMENT_REQUIRED: &str = "PAYMENT_REQUIRED";
/// The app was removed from the portal.
pub const NOT_INSTALLED: &str = "NOT_INSTALLED";

/// The HTTP status the docs give for a REST error code (case-insensitive); 400 for codes
/// they give none. Where sources disagree (PROTOCOL.md 3.4) the documented one is used.
pub fn http_status(code: &str) -> u16 {
    const TABLE: &[(&str, u16)] = &[
        (EXPIRED_TOKEN, 401),
        (INVALID_TOKEN, 401),
        (NO_AUTH_FOUND, 401),
        (METHOD_CONFIRM_WAITING, 401),
        (INVALID_CREDENTIALS, 403),
        (INSUFFICIENT_SCOPE, 403),
        (ACCESS_DENIED, 403),
        ("METHOD_CONFIRM_DENIED", 403),
        ("WRONG_AUTH_TYPE", 403),
        ("user_access_error", 403),
        ("allowed_only_intranet_user", 403),
        (QUERY_LIMIT_EXCEEDED, 503),
        (OVERLOAD_LIMIT, 503),
        (OPERATION_TIME_LIMIT, 429),
        (ERROR_METHOD_NOT_FOUND, 404),
        (NOT_FOUND, 404),
        ("ERROR_MANIFEST_IS_NOT_AVAILABLE", 404),
        (ERROR_BATCH_LENGTH_EXCEEDED, 400),
        (ERROR_BATCH_METHOD_NOT_ALLOWED, 405),
        (INTERNAL_SERVER_ERROR, 500),
        ("ERROR_UNEXPECTED_ANSWER", 500),
        ("PORTAL_DELETED", 500),
        (ERROR_EVENT_NOT_FOUND, 400),
        (INVALID_REQUEST, 400),
        (INVALID_ARG_VALUE, 400),
        (PAYMENT_REQUIRED, 401),
        (NOT_INSTALLED, 401),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map_or(400, |(_, s)| *s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses_follow_the_docs() {
        use super::*;
        assert_eq!(http_status("EXPIRED_TOKEN"), 401);
        assert_eq!(http_status(QUERY_LIMIT_EXCEEDED), 503);
        assert_eq!(http_status(OPERATION_TIME_LIMIT), 429);
        assert_eq!(http_status(ERROR_METHOD_NOT_FOUND), 404);
        assert_eq!(http_status("SOMETHING_NEW"), 400);
    }
}
