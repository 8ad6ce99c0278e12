//! List streams: every item of a list method, page by page (PROTOCOL 6).
//!
//! Work in progress: the signatures generated code relies on.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::client::Client;
use crate::error::Error;
use crate::meta::{ListMethod, MethodMeta};
use crate::params::Params;
use crate::wire::FromWire;

/// Every item a list request matches, fetched page by page as the stream is polled.
///
/// Made by [`Client::stream`] or a list request's `.stream()`.
#[must_use = "a stream does nothing until polled"]
pub struct ListStream<T> {
    #[allow(dead_code)]
    client: Client,
    #[allow(dead_code)]
    meta: &'static MethodMeta,
    #[allow(dead_code)]
    params: Params,
    _item: PhantomData<fn() -> T>,
}

impl<T: FromWire> ListStream<T> {
    /// Collects every item.
    ///
    /// # Errors
    /// The first error of any page.
    pub async fn collect_all(self) -> Result<Vec<T>, Error> {
        Err(Error::new(crate::error::ErrorKind::InvalidInput)
            .with_message("list streams are not implemented yet"))
    }
}

impl<T: FromWire> Stream for ListStream<T> {
    type Item = Result<T, Error>;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
}

impl Client {
    /// Every item `request` matches, as a [`ListStream`].
    pub fn stream<M: ListMethod>(&self, request: &M) -> ListStream<M::Item> {
        ListStream {
            client: self.clone(),
            meta: M::META,
            params: request.wire_params().clone(),
            _item: PhantomData,
        }
    }
}
