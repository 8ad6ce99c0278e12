//! The decode layer: a successful answer's `result` as a typed value, and the futures and
//! responses that carry it to the caller.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;

use crate::auth::BoxFuture;
use crate::error::{Error, ErrorKind};
use crate::wire::{Envelope, FromWire, Time};

/// A successful HTTP answer whose body is a Bitrix24 success envelope, parsed once: its
/// `result`, the envelope's paging and timing data, the body (for the snippet of a decode
/// error) and the secret (access token or webhook code) to keep out of any error text.
#[doc(hidden)]
pub struct Answer {
    pub(super) body: Vec<u8>,
    pub(super) secret: std::sync::Arc<str>,
    /// `None` when the key is absent.
    pub(super) result: Option<Value>,
    pub(super) total: Option<u64>,
    pub(super) next: Option<u64>,
    /// The `time` object as sent, decoded only when asked for.
    pub(super) time: Option<Value>,
}

impl Answer {
    /// The answer made of the parsed envelope `env` of `body`.
    pub(super) fn new(body: Vec<u8>, secret: std::sync::Arc<str>, env: Envelope) -> Answer {
        Answer {
            total: env.total(),
            next: env.next(),
            time: env.time,
            result: env.result,
            body,
            secret,
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(body: &[u8]) -> Answer {
        let env = Envelope::parse(body).expect("a JSON object");
        Answer::new(body.to_vec(), "".into(), env)
    }

    /// The envelope's `time`, if the answer has one of the documented shape.
    pub(crate) fn time(&self) -> Option<Time> {
        self.time.as_ref().and_then(Time::from_value)
    }

    /// The parts of `time` the operating-time budget reads (cheap: runs on every answer).
    pub(crate) fn budget(&self) -> Option<Time> {
        self.time.as_ref().and_then(Time::budget_of)
    }
}

/// A typed `result` with the envelope's paging and timing data: what
/// `request.send_with_meta()` and [`Client::call_with_meta`](crate::Client::call_with_meta)
/// return.
///
/// ```no_run
/// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
/// let page = client.user().get().send_with_meta().await?;
/// println!("{} users of {:?}; next page at {:?}", page.result.len(), page.total, page.next);
/// if let Some(operating) = page.time.as_ref().and_then(|t| t.operating) {
///     println!("user.get used {operating} s of its budget");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Response<T> {
    /// The decoded `result`.
    pub result: T,
    /// `total` of a list method: the number of matching records (0 with `start=-1`).
    pub total: Option<u64>,
    /// `next` of a list method: the `start` to pass for the next page; `None` on the last
    /// page.
    pub next: Option<u64>,
    /// The `time` object: timings and the method's operating-time budget. Every key is
    /// optional; portals with the limiter off send no `operating`.
    pub time: Option<Time>,
}

pub(crate) fn decode_error(
    method: &str,
    answer: &Answer,
    path: &str,
    e: impl fmt::Display,
) -> Error {
    // The answer may carry credentials of its own (a SIP password, a bot token): the
    // snippet shows their keys, not their values.
    let masked = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .map(|mut v| {
            crate::error::mask_secrets(&mut v);
            v.to_string().into_bytes()
        });
    Error::new(ErrorKind::Decode)
        .with_method(method)
        .with_status(200)
        .with_path(path.to_owned())
        .with_message(e.to_string())
        .with_snippet(masked.as_deref().unwrap_or(&answer.body), &[&answer.secret])
        .redact(&[&answer.secret])
}

/// Decodes the envelope's `result` as `T`, with the JSON path of a mismatch.
pub(crate) fn decode_answer<T: FromWire>(method: &str, answer: &Answer) -> Result<T, Error> {
    let Some(value) = &answer.result else {
        return T::absent()
            .ok_or_else(|| decode_error(method, answer, ".", "the answer has no `result`"));
    };
    T::from_wire(value).map_err(|e| decode_error(method, answer, &e.path(), e.message()))
}

/// Decodes `result` as `T` together with `total`, `next` and `time`.
pub(crate) fn decode_with_meta<T: FromWire>(
    method: &str,
    answer: &Answer,
) -> Result<Response<T>, Error> {
    Ok(Response {
        result: decode_answer(method, answer)?,
        total: answer.total,
        next: answer.next,
        time: answer.time(),
    })
}

/// What a [`ResponseFuture`] can answer: a decoded `result` (any [`FromWire`] type), or a
/// [`Response`] of one. Sealed; the decoding is instantiated only where a future is polled,
/// so the crate itself compiles no decoder per method.
pub trait Decode: Sized + sealed::Sealed {
    #[doc(hidden)]
    fn decode(method: &str, answer: &Answer) -> Result<Self, Error>;
}

mod sealed {
    pub trait Sealed {}
    impl<T: super::FromWire> Sealed for T {}
    impl<T: super::FromWire> Sealed for super::Response<T> {}
}

impl<T: FromWire> Decode for T {
    fn decode(method: &str, answer: &Answer) -> Result<T, Error> {
        decode_answer(method, answer)
    }
}

impl<T: FromWire> Decode for Response<T> {
    fn decode(method: &str, answer: &Answer) -> Result<Response<T>, Error> {
        decode_with_meta(method, answer)
    }
}

/// The future of a typed call: sends through the client's shared path, then decodes
/// `result` as `T`.
///
/// `Send`, `'static` and `Unpin` whatever `T` is; made by [`Client::call`](crate::Client::call)
/// and by `.await`ing (or `.send()`ing) a request from a client group
/// (`client.crm().deal_get(1)`). [`with_meta`](Self::with_meta) turns it into a future of a
/// [`Response`] that keeps `total`, `next` and `time` as well.
#[must_use = "a request does nothing until it is awaited"]
pub struct ResponseFuture<T> {
    inner: Option<BoxFuture<'static, Result<Answer, Error>>>,
    method: &'static str,
    _output: std::marker::PhantomData<fn() -> T>,
}

impl<T> ResponseFuture<T> {
    pub(crate) fn new(
        method: &'static str,
        inner: BoxFuture<'static, Result<Answer, Error>>,
    ) -> Self {
        ResponseFuture {
            inner: Some(inner),
            method,
            _output: std::marker::PhantomData,
        }
    }
}

impl<T: FromWire> ResponseFuture<T> {
    /// The same call, answering with the decoded `result` and the envelope's `total`,
    /// `next` and `time` ([`Response`]).
    pub fn with_meta(self) -> ResponseFuture<Response<T>> {
        ResponseFuture {
            inner: self.inner,
            method: self.method,
            _output: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<T: Decode> Future for ResponseFuture<T> {
    type Output = Result<T, Error>;

    /// # Panics
    /// Never: polling again after it completed answers an [`ErrorKind::InvalidInput`] error.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(Error::new(ErrorKind::InvalidInput)
                .with_method(self.method)
                .with_message("this response future was polled after it completed")));
        };
        let answer = match inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => {
                self.inner = None;
                match result {
                    Ok(answer) => answer,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        };
        Poll::Ready(T::decode(self.method, &answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_keep_the_path() {
        let answer = Answer::for_test(br#"{"result":[1,"x"]}"#);
        let e = decode_answer::<Vec<u64>>("m", &answer).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert_eq!(e.json_path(), Some("[1]"));
        assert!(
            e.to_string()
                .starts_with("m: cannot decode the result at `[1]`"),
            "{e}"
        );
    }

    #[test]
    fn meta_comes_with_the_result() {
        let answer = Answer::for_test(
            br#"{"result":[1,2],"total":5,"next":2,"time":{"operating":1.5,"operating_reset_at":1700000600}}"#,
        );
        let r = decode_with_meta::<Vec<u64>>("m", &answer).unwrap();
        assert_eq!((r.result, r.total, r.next), (vec![1, 2], Some(5), Some(2)));
        let time = r.time.unwrap();
        assert_eq!(
            (time.operating, time.operating_reset_at),
            (Some(1.5), Some(1_700_000_600))
        );
        // A portal with the limiter off: no `operating`, and no `time` at all is fine too.
        let r = decode_with_meta::<bool>("m", &Answer::for_test(br#"{"result":true}"#)).unwrap();
        assert_eq!((r.result, r.time), (true, None));
    }
}
