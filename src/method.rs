//! The trait every generated request implements.

/// A Bitrix24 REST method call: a request value that serializes to the method's parameters.
///
/// Generated request types (`bitrix24::imbot::ImbotMessageAdd`, ...) implement it; everything
/// else (sending, auth, refresh, error classification, decoding) is shared runtime code in
/// [`Client::call`](crate::Client::call). You can implement it for your own request types to
/// call a method the spec does not have yet, or use [`Client::call_raw`](crate::Client::call_raw).
pub trait Method: serde::Serialize {
    /// The wire name, verbatim (`imbot.message.add`).
    const NAME: &'static str;
    /// `true` for reads, which are safe to send twice; `false` for writes, which the client
    /// never re-sends except on an authentication failure the portal reported before running
    /// the method (`expired_token`).
    const READ_ONLY: bool;
    /// The decoded `result`.
    type Output;
    /// How `result` is read from the wire: a [`crate::wire`] adapter (`Int`, `Same`,
    /// `List<Int>`...) that tolerates Bitrix24's loose encodings.
    type Wire: for<'de> serde_with::DeserializeAs<'de, Self::Output>;
}

/// Makes a generated request bound to a client (`X<&Client>`) awaitable and sendable.
macro_rules! bound_request {
    ($ty:ident) => {
        impl<'c> ::core::future::IntoFuture for $ty<&'c crate::Client> {
            type Output = ::core::result::Result<<Self as crate::Method>::Output, crate::Error>;
            type IntoFuture = crate::__private::BoxFuture<'c, Self::Output>;

            fn into_future(self) -> Self::IntoFuture {
                ::std::boxed::Box::pin(async move { self.client.call(&self).await })
            }
        }

        impl<'c> $ty<&'c crate::Client> {
            /// Sends the request through the client it came from; same as `.await`ing it.
            ///
            /// # Errors
            /// See [`Client::call`](crate::Client::call).
            pub fn send(
                self,
            ) -> crate::__private::BoxFuture<'c, <Self as ::core::future::IntoFuture>::Output> {
                ::core::future::IntoFuture::into_future(self)
            }
        }
    };
}
