//! Bulk writes: [`Client::call_many`] packs requests of one method into `batch` commands,
//! 50 to a request, a few requests in flight, one result per request in input order. The
//! commands and the sending of a request of them are `batch`'s.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::batch::{batchable, outcome, run_chunk, Command, Entry, MAX_BATCH_COMMANDS};
use super::{CallOptions, Client, Response};
use crate::error::{Error, ErrorKind};
use crate::meta::Method;
use crate::wire::FromWire;

/// How many batch requests [`Client::call_many`] keeps in flight by default.
pub const DEFAULT_CALL_MANY_CONCURRENCY: usize = 16;

type BoxStream<T> = std::pin::Pin<Box<dyn futures_core::Stream<Item = T> + Send>>;

/// The results of [`Client::call_many`], one per request in input order: a
/// [`Stream`](futures_core::Stream) of `Result<Response<T>, Error>`.
///
/// Requests are packed 50 to a `batch` and sent as fast as the client's rate limit allows,
/// a few batches at a time ([`concurrency`](Self::concurrency)). One request's failure is
/// that request's item only: every other result, every created ID, still comes back. A batch
/// request refused as a whole before it ran (`QUERY_LIMIT_EXCEEDED`) is sent again; one that
/// may have run (a lost answer) is not, and each of its requests reports an error with
/// [`Error::maybe_executed`]. Commands the portal refused inside a batch
/// (`OPERATION_TIME_LIMIT`) are sent again.
#[must_use = "a stream does nothing until polled"]
pub struct CallMany<T> {
    start: Option<Box<CallManyStart>>,
    stream: Option<BoxStream<Entry>>,
    method: Cow<'static, str>,
    _output: PhantomData<fn() -> T>,
}

struct CallManyStart {
    client: Client,
    commands: Box<dyn Iterator<Item = Result<Command, Error>> + Send>,
    concurrency: usize,
    options: CallOptions,
}

impl<T> fmt::Debug for CallMany<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMany")
            .field("method", &self.method)
            .field("started", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: FromWire> CallMany<T> {
    /// How many batch requests may be in flight at once (default
    /// [`DEFAULT_CALL_MANY_CONCURRENCY`]; at least 1). The rate limit paces them anyway; more
    /// only helps to spend the bucket's burst quickly over a slow connection. Set before the
    /// first poll.
    pub fn concurrency(mut self, n: usize) -> CallMany<T> {
        if let Some(s) = &mut self.start {
            s.concurrency = n.max(1);
        }
        self
    }

    /// The deadline of each batch request, waits and resends of refused commands included
    /// (see [`Batch::timeout`](crate::Batch::timeout)).
    pub fn timeout(mut self, timeout: Duration) -> CallMany<T> {
        if let Some(s) = &mut self.start {
            s.options.timeout = Some(timeout);
        }
        self
    }

    /// How each batch request is retried (see [`Batch::retry`](crate::Batch::retry)).
    pub fn retry(mut self, retry: crate::Retry) -> CallMany<T> {
        if let Some(s) = &mut self.start {
            s.options.retry = Some(retry);
        }
        self
    }

    /// Runs every request and returns all results, in input order.
    pub async fn results(self) -> Vec<Result<Response<T>, Error>> {
        use futures_util::StreamExt;
        self.collect().await
    }

    fn begin(start: CallManyStart) -> BoxStream<Entry> {
        use futures_util::StreamExt;
        let CallManyStart {
            client,
            commands,
            concurrency,
            options,
        } = start;
        let chunks = Chunks {
            commands,
            done: false,
        };
        let stream = futures_util::stream::iter(chunks)
            .map(move |chunk| {
                let client = client.clone();
                let options = options.clone();
                async move {
                    let (positions, cmds): (Vec<usize>, Vec<Command>) = chunk
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| c.as_ref().ok().map(|c| (i, c.clone())))
                        .unzip();
                    let mut out: Vec<Entry> = chunk
                        .into_iter()
                        .map(|c| match c {
                            Ok(_) => Entry::NotRun,
                            Err(e) => Entry::Failed(e),
                        })
                        .collect();
                    if !cmds.is_empty() {
                        let sent = run_chunk(&client, &cmds, false, &options).await;
                        for (pos, entry) in positions.into_iter().zip(sent.entries) {
                            out[pos] = entry;
                        }
                    }
                    futures_util::stream::iter(out)
                }
            })
            .buffered(concurrency)
            .flatten();
        Box::pin(stream)
    }
}

/// Cuts the encoded commands into chunks of at most 50 requests, keyed `c0`..`c49`. Requests
/// that cannot go in a batch count too: a long run of them is yielded 50 at a time (no
/// request sent), never drained from the input in one go.
struct Chunks {
    commands: Box<dyn Iterator<Item = Result<Command, Error>> + Send>,
    done: bool,
}

impl Iterator for Chunks {
    type Item = Vec<Result<Command, Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut chunk = Vec::with_capacity(MAX_BATCH_COMMANDS);
        let mut sendable = 0;
        while chunk.len() < MAX_BATCH_COMMANDS {
            match self.commands.next() {
                Some(Ok(mut c)) => {
                    c.key = format!("c{sendable}").into();
                    sendable += 1;
                    chunk.push(Ok(c));
                }
                Some(Err(e)) => chunk.push(Err(e)),
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

impl<T: FromWire> futures_core::Stream for CallMany<T> {
    type Item = Result<Response<T>, Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(start) = this.start.take() {
            this.stream = Some(Self::begin(*start));
        }
        let Some(stream) = &mut this.stream else {
            return std::task::Poll::Ready(None);
        };
        match stream.as_mut().poll_next(cx) {
            std::task::Poll::Ready(Some(entry)) => {
                std::task::Poll::Ready(Some(entry_result(entry, &this.method)))
            }
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// One command's entry as the caller's result.
pub(crate) fn entry_result<T: FromWire>(entry: Entry, method: &str) -> Result<Response<T>, Error> {
    match entry {
        // No clone of the error for the common failure.
        Entry::Failed(e) => Err(e),
        other => outcome(&other, method)
            .into_result()
            .map_err(|e| e.with_method(method)),
    }
}

impl Client {
    /// Runs many requests of one method (`crm.contact.add` x 10,000) as bulk `batch`
    /// requests of 50, at the pace of the client's rate limit, and yields one result per
    /// request in input order (see [`CallMany`]). `requests` is read lazily, as batches are
    /// sent.
    ///
    /// ```no_run
    /// # #![allow(deprecated)]
    /// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
    /// use bitrix24::crm::CrmContactAdd;
    /// use bitrix24::types::CrmContactAddFields;
    ///
    /// let adds = (0..10_000).map(|i| {
    ///     CrmContactAdd::new().fields(CrmContactAddFields::new().name(format!("Contact {i}")))
    /// });
    /// let results = client.call_many(adds).results().await;
    /// let created: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().map(|r| r.result)).collect();
    /// let failed = results.iter().filter(|r| r.is_err()).count();
    /// println!("{} created, {failed} failed", created.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Per request: the command's own error; [`ErrorKind::InvalidInput`] for a request that
    /// cannot go in a batch (see [`Batch::push`](crate::Batch::push)); the batch request's error when it failed
    /// as a whole (check [`Error::maybe_executed`] before sending a write again).
    pub fn call_many<M, I>(&self, requests: I) -> CallMany<M::Output>
    where
        M: Method + 'static,
        I: IntoIterator<Item = M>,
        I::IntoIter: Send + 'static,
    {
        let meta = M::META;
        let commands = requests.into_iter().map(move |request| {
            let params = request.wire_params().clone();
            batchable(meta, &params)?;
            if params.refs().next().is_some() {
                return Err(Error::new(ErrorKind::InvalidInput)
                    .with_method(meta.name)
                    .with_message(
                        "a batch reference ($result[..]) only means something inside its batch",
                    ));
            }
            let key: Arc<str> = Arc::from("c");
            Command::new(
                key.clone(),
                key,
                Cow::Borrowed(meta.name),
                meta.access,
                meta.query_bool,
                params,
                &[],
            )
        });
        CallMany {
            start: Some(Box::new(CallManyStart {
                client: self.clone(),
                commands: Box::new(commands),
                concurrency: DEFAULT_CALL_MANY_CONCURRENCY,
                options: CallOptions::default(),
            })),
            stream: None,
            method: Cow::Borrowed(meta.name),
            _output: PhantomData,
        }
    }
}
