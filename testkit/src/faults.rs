//! Faults a test can inject into the next requests to `/rest/`.

use std::time::Duration;

use bitrix24::codes;
use serde_json::{json, Value};

/// One failure mode for one request. Queue them with
/// [`FakePortal::fail_next`](crate::FakePortal::fail_next) (any method) or
/// [`FakePortal::fail_next_for`](crate::FakePortal::fail_next_for) (one method); each
/// `/rest/` request takes the next one, in order.
///
/// Every fault reads the whole request first (so it is logged with its method and params
/// in [`FakePortal::requests`](crate::FakePortal::requests)), does not count against the
/// request-rate bucket, and answers whatever the auth was. Only [`SlowBody`](Self::SlowBody)
/// and [`DropAfterExecuting`](Self::DropAfterExecuting) run the method; every other fault
/// refuses the request before the method runs, so nothing is written
/// ([`LoggedRequest::executed`](crate::LoggedRequest::executed) is `false`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500` with the JSON body `{"error": "INTERNAL_SERVER_ERROR", ...}`. Not executed.
    InternalError,
    /// `502` with an HTML body (`text/html`), as a proxy in front of a portal sends it. Not
    /// executed.
    BadGateway,
    /// The whole request is read, then the TCP connection is closed without any answer. The
    /// method is **not** executed: a retry cannot duplicate a write. Compare
    /// [`DropAfterExecuting`](Self::DropAfterExecuting).
    DropConnection,
    /// The method **is** executed (a `crm.contact.add` creates the contact, events are
    /// delivered), then the TCP connection is closed without any answer: the case "the
    /// connection dropped after the request was sent, so the write may have run". The log
    /// entry has `executed: true` and status `0`.
    DropAfterExecuting,
    /// The normal answer, its body sent in small pieces spread over this long (real time).
    /// Executed.
    SlowBody(Duration),
    /// `503` `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`,
    /// exactly as the request-rate bucket refuses a request. Not executed.
    QueryLimitExceeded,
    /// `503` `{"error":"OVERLOAD_LIMIT","error_description":"REST API is blocked due to
    /// overload."}`: REST blocked by hand by the portal's support (a permanent block, not a
    /// rate limit). Not executed.
    OverloadLimit,
    /// `429` `{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to
    /// operation time limit."}`, byte for byte the answer of the portal's own operating-time
    /// simulation ([`FakePortalBuilder::operating_limit`](crate::FakePortalBuilder::operating_limit)).
    /// Not executed.
    ///
    /// Like that simulation, the answer has **no `time` object**: a client learns when the
    /// block lifts only from `time.operating_reset_at` of its last *successful* answer of that
    /// method (PROTOCOL.md 4.3).
    OperationTimeLimit,
    /// `400` `{"error":100,"error_description":"Invalid parameters"}`: an error code that is
    /// a JSON number, as some `crm.type.*`-family methods answer. Logged as error `"100"`. Not
    /// executed.
    NumericErrorCode,
    /// `400` `{"error":"","error_description":"Not found"}`: an empty error code, as
    /// `crm.deal.get` of a missing id answers. Logged as error `""`. Not executed.
    EmptyErrorCode,
    /// `302 Found` with this `Location` header and an empty body. Not executed. For "same
    /// host, non-REST path" redirects (an expired self-hosted license sends every call to
    /// `/bitrix/coupon_activation.php`) and a redirect to the very URL requested. `location`
    /// is sent as given (absolute or relative); one that is not a valid header value is
    /// answered without a `Location`.
    Redirect {
        /// The `Location` header value.
        location: String,
    },
}

/// The HTML a proxy answers with when the portal behind it is down.
pub(crate) const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// `error_description` of the request-rate refusal (the bucket and the fault alike).
pub(crate) const QUERY_LIMIT_TEXT: &str = "Too many requests";

/// `error_description` of the operating-time refusal (the simulation and the fault alike).
pub(crate) const OPERATION_TIME_TEXT: &str = "Method is blocked due to operation time limit.";

/// `error_description` of [`Fault::OverloadLimit`].
pub(crate) const OVERLOAD_TEXT: &str = "REST API is blocked due to overload.";

/// Status, JSON body and the logged error code of a fault that answers with a JSON error;
/// `None` for the others.
pub(crate) fn json_error(fault: &Fault) -> Option<(u16, Value, String)> {
    let (status, code, description) = match fault {
        Fault::InternalError => (500, codes::INTERNAL_SERVER_ERROR, "Internal server error"),
        Fault::QueryLimitExceeded => (503, codes::QUERY_LIMIT_EXCEEDED, QUERY_LIMIT_TEXT),
        Fault::OverloadLimit => (503, codes::OVERLOAD_LIMIT, OVERLOAD_TEXT),
        Fault::OperationTimeLimit => (429, codes::OPERATION_TIME_LIMIT, OPERATION_TIME_TEXT),
        Fault::NumericErrorCode => {
            let body = json!({"error": 100, "error_description": "Invalid parameters"});
            return Some((400, body, "100".to_owned()));
        }
        Fault::EmptyErrorCode => (400, "", "Not found"),
        Fault::BadGateway
        | Fault::DropConnection
        | Fault::DropAfterExecuting
        | Fault::SlowBody(_)
        | Fault::Redirect { .. } => return None,
    };
    let body = json!({"error": code, "error_description": description});
    Some((status, body, code.to_owned()))
}
