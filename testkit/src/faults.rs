//! Faults a test can inject into the next requests to `/rest/`.

use std::time::Duration;

/// One failure mode for one request. Queue them with
/// [`FakePortal::fail_next`](crate::FakePortal::fail_next); each `/rest/` request takes the
/// next one, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500` with the JSON body `{"error": "INTERNAL_SERVER_ERROR", ...}`.
    InternalError,
    /// `502` with an HTML body (`text/html`), as a proxy in front of a portal sends it.
    BadGateway,
    /// The TCP connection is closed without any answer.
    DropConnection,
    /// The normal answer, its body sent in small pieces spread over this long (real time).
    SlowBody(Duration),
}

/// The HTML a proxy answers with when the portal behind it is down.
pub(crate) const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
