//! List streams: every item of a list method, page by page (PROTOCOL 6), in one of three
//! ways:
//!
//! - offsets: `start` = 0, 50, 100... following `next` (pages of one batch request computed
//!   from `total` when it is known);
//! - fast: `order` by ID, a strict `>ID` (`<ID` descending) filter from the last ID received,
//!   `start = -1` (no counting), for the methods whose spec says so
//!   ([`ListModel::fast_scan`](crate::ListModel));
//! - either of them batched: up to 50 pages in one `batch` request, chained with
//!   `$result[..]` references in fast mode.
//!
//! The engine works on JSON items and is not generic; only the last step, decoding each item
//! as `T`, is.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use serde_json::{Map, Value};

use super::batch::{run_chunk, Command, Entry, MAX_BATCH_COMMANDS};
use super::{start, CallOptions, Client};
use crate::error::{Error, ErrorKind};
use crate::meta::{ListMethod, ListModel, MethodMeta};
use crate::params::{Arg, Params};
use crate::wire::FromWire;

/// Items per page of a classic list method.
const PAGE: usize = 50;

/// How many batch requests of offset pages a [`ListStream`] sends at once by default.
pub const DEFAULT_LIST_CONCURRENCY: usize = 4;

/// How a [`ListStream`] pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ListMode {
    /// The fastest that keeps the request as given: batched fast mode when the method
    /// supports it and the request sets no `start` (or `start = -1`, "do not count") and no
    /// order other than by ID; else batched offsets (`start = -1` is then an
    /// [`ErrorKind::InvalidInput`] error: the portal would answer one page and no `next`).
    /// Unbatched when the method may not run inside `batch` or the request holds text the
    /// portal rewrites there (`$result[..]` in a filter value). The first request is always
    /// a single page, so a short list costs one request.
    #[default]
    Auto,
    /// One page per request, `start` from `next` until an answer has no `next`.
    Offset,
    /// Offsets, up to 50 pages per `batch` request, computed from `total` (then following
    /// `next` again if `total` was too low), a few such requests at once
    /// ([`ListStream::concurrency`]). Deep offsets are slow on big portals (the portal counts
    /// and skips every row before `start`): prefer the fast modes for full scans.
    BatchedOffset,
    /// One page per request by ID cursor (`>ID`, `start = -1`), until a page has fewer than
    /// 50 items.
    Fast,
    /// The ID cursor with up to 50 pages per `batch` request, each page's filter a
    /// `$result[..]` reference to the last ID of the page before: a full scan of N items
    /// costs about N / 2,500 requests.
    BatchedFast,
}

/// Where a list stream is: what it has fetched and what it expects, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ListProgress {
    /// Items received so far.
    pub items: u64,
    /// Requests made so far: one per page, or per batch request of pages. A request the
    /// client sent again after a refusal (`QUERY_LIMIT_EXCEEDED`) counts once.
    pub requests: u64,
    /// The method's `total` (number of matching items), when it was counted (offset modes).
    /// A hint: some methods report a wrong one.
    pub total: Option<u64>,
    /// Time left by `total` and the client's request rate, when both are known.
    pub estimate: Option<Duration>,
    /// Whether the stream has ended.
    pub finished: bool,
}

type ProgressFn = Arc<dyn Fn(&ListProgress) + Send + Sync>;
type PageFuture =
    Pin<Box<dyn std::future::Future<Output = (Engine, Result<Vec<Value>, Error>)> + Send>>;

/// Every item a list request matches, fetched page by page as the stream is polled: a
/// [`Stream`] of `Result<T, Error>`. Made by [`Client::stream`] or a list request's
/// `.stream()`.
///
/// - The request's own `filter`, `order`, `select` and `start` are kept; the cursor goes
///   into the method's own parameter names and letter case (`FILTER` for `user.get`).
/// - It ends only when the portal says the list is over (no `next`; in fast mode a page of
///   fewer than 50 items), never because `total` says so, and never silently short: a
///   failed page is an error item, and the stream ends after it.
/// - Dropping it stops the work. At most one request is in flight, except in
///   [`ListMode::BatchedOffset`], which sends up to [`concurrency`](Self::concurrency)
///   batch requests at once.
/// - Memory stays flat: at most one batch request's pages (2,500 items) are held, or
///   `concurrency` of them in [`ListMode::BatchedOffset`] (default 4: 10,000 items).
///
/// ```no_run
/// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
/// use futures_util::TryStreamExt;
///
/// let mut contacts = client
///     .crm()
///     .contact_list()
///     .select(["ID", "NAME"])
///     .stream()
///     .on_progress(|p| eprintln!("{} of {:?}", p.items, p.total));
/// while let Some(contact) = contacts.try_next().await? {
///     println!("{:?}", contact.id);
/// }
/// # Ok(()) }
/// ```
///
/// See [list method pecularities](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/list-methods-pecularities.html)
/// and [huge data](https://apidocs.bitrix24.com/settings/performance/huge-data.html).
#[must_use = "a stream does nothing until polled"]
pub struct ListStream<T> {
    engine: Option<Engine>,
    page: Option<PageFuture>,
    buffer: VecDeque<Value>,
    /// An error to yield before anything else (a request that cannot be paged).
    failed: Option<Error>,
    done: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ListStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListStream")
            .field("buffered", &self.buffer.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T: FromWire> ListStream<T> {
    /// How to page (default [`ListMode::Auto`]). Set before the first poll.
    ///
    /// An explicit fast mode on a request it cannot serve (the method has no fast scan, the
    /// request sets `start` or orders by another field) makes the first item an
    /// [`ErrorKind::InvalidInput`] error.
    pub fn mode(mut self, mode: ListMode) -> ListStream<T> {
        if let Some(e) = &mut self.engine {
            e.mode = mode;
        }
        self
    }

    /// In fast mode, scans by descending ID (`<ID`, order `DESC`) instead of ascending.
    /// A request ordered by ID descending does so already.
    pub fn descending(mut self) -> ListStream<T> {
        if let Some(e) = &mut self.engine {
            e.descending = Some(true);
        }
        self
    }

    /// How many batch requests of offset pages ([`ListMode::BatchedOffset`]) may be in
    /// flight at once (default [`DEFAULT_LIST_CONCURRENCY`], at least 1). Each holds up to
    /// 2,500 items until the stream reaches them. Fast modes are sequential: each page starts
    /// where the one before ended.
    pub fn concurrency(mut self, n: usize) -> ListStream<T> {
        if let Some(e) = &mut self.engine {
            e.concurrency = n.max(1);
        }
        self
    }

    /// Calls `f` after every request with the stream's [`ListProgress`].
    pub fn on_progress(
        mut self,
        f: impl Fn(&ListProgress) + Send + Sync + 'static,
    ) -> ListStream<T> {
        if let Some(e) = &mut self.engine {
            e.progress = Some(Arc::new(f));
        }
        self
    }

    /// Every item, in the order received.
    ///
    /// # Errors
    /// The first error of any page (see [`Client::call`] for the kinds), a page whose items
    /// do not decode as `T` ([`ErrorKind::Decode`]), [`ErrorKind::CursorStalled`] when a
    /// fast scan's cursor does not advance.
    pub async fn collect_all(mut self) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            out.push(item?);
        }
        Ok(out)
    }
}

impl<T: FromWire> Stream for ListStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            if let Some(item) = this.buffer.pop_front() {
                return Poll::Ready(Some(T::from_wire(&item).map_err(|e| {
                    Error::new(ErrorKind::Decode)
                        .with_method(this.engine.as_ref().map_or("", |e| e.meta.name))
                        .with_path(e.path())
                        .with_message(e.message())
                })));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if this.page.is_none() {
                let Some(engine) = this.engine.take() else {
                    return Poll::Ready(None);
                };
                this.page = Some(Box::pin(engine.step()));
            }
            let Some(page) = &mut this.page else {
                return Poll::Ready(None);
            };
            let (engine, result) = match page.as_mut().poll(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            };
            this.page = None;
            this.done = engine.finished;
            this.engine = Some(engine);
            match result {
                Ok(items) => this.buffer.extend(items),
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Client {
    /// Every item `request` matches, as a [`ListStream`] (also `request.stream()` on a
    /// request made from the client). Nothing is sent until the stream is polled.
    pub fn stream<M: ListMethod>(&self, request: &M) -> ListStream<M::Item> {
        let meta = M::META;
        let engine = meta.list.map(|model| Engine {
            client: self.clone(),
            meta,
            model,
            params: request.wire_params().clone(),
            mode: ListMode::Auto,
            descending: None,
            progress: None,
            plan: None,
            concurrency: DEFAULT_LIST_CONCURRENCY,
            options: request.wire_params().options().cloned().unwrap_or_default(),
            finished: false,
            items: 0,
            requests: 0,
            total: None,
            next: None,
            page_len: PAGE as u64,
            cursor: None,
            started: Instant::now(),
        });
        let mut stream = ListStream {
            engine,
            page: None,
            buffer: VecDeque::new(),
            failed: None,
            done: false,
            _item: PhantomData,
        };
        if stream.engine.is_none() {
            // A `ListMethod` of one's own without `MethodMeta::list`: say so rather than
            // end as an empty list.
            stream.failed = Some(invalid(
                meta,
                "the method has no list model (MethodMeta::list): it cannot be paged",
            ));
        }
        stream
    }
}

/// What a stream resolved its mode to, on the first poll.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    Offset { batched: bool },
    Fast { batched: bool, desc: bool },
}

/// The non-generic paging state.
struct Engine {
    client: Client,
    meta: &'static MethodMeta,
    model: ListModel,
    params: Params,
    mode: ListMode,
    descending: Option<bool>,
    progress: Option<ProgressFn>,
    plan: Option<Plan>,
    /// Batch requests of offset pages sent at once.
    concurrency: usize,
    options: CallOptions,
    finished: bool,
    items: u64,
    requests: u64,
    total: Option<u64>,
    /// Offset modes: the `start` of the next page.
    next: Option<u64>,
    /// Offset modes: the page length the portal's `next` showed (50 on every documented
    /// method), which the batched offsets step by.
    page_len: u64,
    /// Fast modes: the last ID received.
    cursor: Option<u64>,
    started: Instant,
}

fn invalid(meta: &MethodMeta, m: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput)
        .with_method(meta.name)
        .with_message(m.into())
}

/// The id of an item as a number (`"17"` or `17`).
fn id_of(item: &Value, key: &str) -> Option<u64> {
    match item.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Engine {
    /// One step: the next items (one request), with the engine back.
    async fn step(mut self) -> (Engine, Result<Vec<Value>, Error>) {
        let r = self.step_inner().await;
        if r.is_err() {
            self.finished = true;
        }
        let progress = self.progress_now();
        tracing::debug!(
            method = self.meta.name,
            items = progress.items,
            requests = progress.requests,
            total = progress.total,
            finished = progress.finished,
            "list stream page"
        );
        if let Some(f) = &self.progress {
            f(&progress);
        }
        (self, r)
    }

    fn progress_now(&self) -> ListProgress {
        let estimate = self.total.and_then(|total| {
            let left = total.saturating_sub(self.items);
            if self.finished {
                return Some(Duration::ZERO);
            }
            let per_request = match self.plan {
                Some(Plan::Offset { batched: true }) | Some(Plan::Fast { batched: true, .. }) => {
                    (PAGE * MAX_BATCH_COMMANDS) as u64
                }
                _ => PAGE as u64,
            };
            let requests = left.div_ceil(per_request);
            // By the rate measured so far, or the client's bucket rate.
            let elapsed = self.started.elapsed().as_secs_f64();
            let per_s = if self.requests > 1 && elapsed > 0.0 {
                self.requests as f64 / elapsed
            } else {
                self.client.inner.limits.rate()?
            };
            // A very slow rate (any positive one is accepted) can make this too long for a
            // `Duration`: no estimate then, rather than a panic.
            (per_s > 0.0)
                .then(|| Duration::try_from_secs_f64(requests as f64 / per_s).ok())
                .flatten()
        });
        ListProgress {
            items: self.items,
            requests: self.requests,
            total: self.total,
            estimate,
            finished: self.finished,
        }
    }

    fn resolve(&self) -> Result<Plan, Error> {
        let m = &self.model;
        // Auto batches only what can go in a batch: not a method that may not, nor a request
        // holding text the portal would rewrite there (a filter on a name with `$result[`).
        // An explicit batched mode says why it cannot when its first batch is built.
        let batchable = self.meta.batch;
        let auto_batched = batchable && self.params.stray_reference(&[]).is_none();
        let start_set = !m.start.is_empty() && self.params.is_set(&self.key(m.start));
        // `start = -1`: "do not count". The portal then answers no `next`, so offsets cannot
        // follow it; a fast scan is what it asks for.
        let no_count = !m.start.is_empty()
            && self
                .params
                .get(&self.key(m.start))
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
                .is_some_and(|n| n < 0);
        // The order by ID only (either direction), or none.
        let order = if m.order.is_empty() {
            None
        } else {
            self.params.get(&self.key(m.order))
        };
        let id_order: Result<Option<bool>, ()> = match order {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) if o.is_empty() => Ok(None),
            Some(Value::Object(o)) if o.len() == 1 => match o.get(m.id).and_then(Value::as_str) {
                Some(d) if d.eq_ignore_ascii_case("desc") => Ok(Some(true)),
                Some(d) if d.eq_ignore_ascii_case("asc") => Ok(Some(false)),
                _ => Err(()),
            },
            _ => Err(()),
        };
        let filter_ok = !m.filter.is_empty()
            && matches!(
                self.params.get(&self.key(m.filter)),
                None | Some(Value::Null | Value::Object(_))
            );
        let fast_possible = m.fast_scan
            && filter_ok
            && !m.order.is_empty()
            && !m.start.is_empty()
            && (!start_set || no_count)
            && id_order.is_ok();
        let desc = self.descending.unwrap_or(false) || matches!(id_order, Ok(Some(true)));
        let fast = |batched| {
            if fast_possible {
                Ok(Plan::Fast { batched, desc })
            } else {
                Err(invalid(
                    self.meta,
                    "fast mode needs a method with fast scans, no `start` (but -1), no order other \
                     than by ID and a filter that is an object",
                ))
            }
        };
        let offset = |batched| {
            if no_count {
                Err(invalid(
                    self.meta,
                    "`start` = -1 asks the portal not to count: it then answers no `next`, so the \
                     list cannot be paged by offsets (only its first page would come back); leave \
                     `start` out, or use a fast mode",
                ))
            } else {
                Ok(Plan::Offset { batched })
            }
        };
        match self.mode {
            ListMode::Auto if fast_possible => fast(auto_batched),
            ListMode::Auto => offset(auto_batched),
            ListMode::Offset => offset(false),
            ListMode::BatchedOffset if batchable => offset(true),
            ListMode::BatchedOffset => {
                Err(invalid(self.meta, "the method may not run inside batch"))
            }
            ListMode::Fast => fast(false),
            ListMode::BatchedFast if batchable => fast(true),
            ListMode::BatchedFast => Err(invalid(self.meta, "the method may not run inside batch")),
        }
    }

    async fn step_inner(&mut self) -> Result<Vec<Value>, Error> {
        let plan = match self.plan {
            Some(p) => p,
            None => {
                let p = self.resolve()?;
                self.plan = Some(p);
                if let Plan::Fast { desc, .. } = p {
                    self.cursor = self.initial_cursor(desc);
                }
                p
            }
        };
        let items = match plan {
            Plan::Offset { batched } => self.offset_step(batched).await?,
            Plan::Fast { batched, desc } => self.fast_step(batched, desc).await?,
        };
        self.items += items.len() as u64;
        Ok(items)
    }

    /// The items of one page's `result`: the list itself or under the model's key; an object
    /// keyed by position is read in order; `[]` and a missing key are no items.
    fn items(&self, result: Value) -> Result<Vec<Value>, Error> {
        let list = if self.model.items.is_empty() {
            result
        } else {
            match result {
                Value::Object(mut o) => o.remove(self.model.items).unwrap_or(Value::Null),
                Value::Array(a) if a.is_empty() => Value::Null,
                other => {
                    return Err(Error::new(ErrorKind::Decode)
                        .with_method(self.meta.name)
                        .with_path(".".into())
                        .with_message(format!(
                            "expected an object with `{}`, got {}",
                            self.model.items,
                            kind(&other)
                        )))
                }
            }
        };
        match list {
            Value::Array(a) => Ok(a),
            Value::Object(o) => {
                // A page keyed by id or position (`{"95": {..}, "96": {..}}`): the parsed map
                // sorts its keys as text, so put numeric keys back in numeric order (the
                // direction of a descending fast scan when it is one).
                let mut entries: Vec<(String, Value)> = o.into_iter().collect();
                if entries.iter().all(|(k, _)| k.parse::<u64>().is_ok()) {
                    entries.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0));
                    if matches!(self.plan, Some(Plan::Fast { desc: true, .. })) {
                        entries.reverse();
                    }
                }
                Ok(entries.into_iter().map(|(_, v)| v).collect())
            }
            Value::Null => Ok(Vec::new()),
            other => Err(Error::new(ErrorKind::Decode)
                .with_method(self.meta.name)
                .with_path(if self.model.items.is_empty() {
                    ".".into()
                } else {
                    format!(".{}", self.model.items)
                })
                .with_message(format!("expected a list of items, got {}", kind(&other)))),
        }
    }

    /// One page as a single request.
    async fn single(
        &mut self,
        params: Params,
    ) -> Result<(Vec<Value>, Option<u64>, Option<u64>), Error> {
        self.requests += 1;
        let answer = start(self.client.clone(), self.meta, params).await?;
        let total = answer.total;
        let next = answer.next;
        let items = self.items(answer.result.unwrap_or(Value::Null))?;
        Ok((items, total, next))
    }

    /// The commands of one batch request of `pages`, keyed `p0`, `p1`...
    fn batch_request(&self, pages: Vec<(Params, Option<String>)>) -> Result<Vec<Command>, Error> {
        let mut cmds = Vec::with_capacity(pages.len());
        for (i, (p, cursor)) in pages.into_iter().enumerate() {
            let key: Arc<str> = format!("p{i}").into();
            let allowed: Vec<&str> = cursor.as_deref().into_iter().collect();
            let command = Command::new(
                key.clone(),
                key,
                Cow::Borrowed(self.meta.name),
                self.meta.access,
                self.meta.query_bool,
                p,
                &allowed,
            )?;
            // A fast page's cursor refers to the page before: sent again without it (a page
            // refused mid-batch), it carries that page's last ID instead.
            cmds.push(match (cursor.as_deref(), i.checked_sub(1)) {
                (Some(text), Some(before)) => command.with_ref(before, text),
                _ => command,
            });
        }
        Ok(cmds)
    }

    /// Pages as one batch request (halting at the first failure).
    async fn batch(&mut self, pages: Vec<(Params, Option<String>)>) -> Result<Vec<Entry>, Error> {
        let cmds = self.batch_request(pages)?;
        self.requests += 1;
        let sent = run_chunk(&self.client, &cmds, true, &self.options).await;
        self.requests += sent.requests.saturating_sub(1) as u64;
        if let Some(e) = sent.whole {
            return Err(e);
        }
        Ok(sent.entries)
    }

    /// The key the request itself uses for the model's parameter `name`: one set under
    /// another letter case (`FILTER` for `filter`, which portals read alike, CRM the upper
    /// case first) is that parameter, and the cursor, order and start go into it, never into
    /// a second, differently cased key.
    fn key(&self, name: &'static str) -> Cow<'static, str> {
        if name.is_empty() || self.params.get(name).is_some() {
            return Cow::Borrowed(name);
        }
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(Cow::Borrowed(name), |(k, _)| Cow::Owned(k.to_owned()))
    }

    fn with_start(&self, start: i64) -> Params {
        let mut p = self.params.clone();
        p.set(self.key(self.model.start), Arg::new(Value::from(start)));
        p
    }

    async fn offset_step(&mut self, batched: bool) -> Result<Vec<Value>, Error> {
        let first = self.requests == 0;
        let from = if first {
            // The caller's own start, kept.
            match self.params.get(&self.key(self.model.start)) {
                Some(v) => v.as_i64().or_else(|| v.as_str()?.parse().ok()).unwrap_or(0),
                None => 0,
            }
        } else {
            self.next.map_or(0, |n| n as i64)
        };
        let stride = self.page_len.max(1);
        let pages = match (batched, first, self.total) {
            (true, false, Some(total)) if (from as u64) < total => {
                ((total - from as u64).div_ceil(stride) as usize).clamp(1, MAX_BATCH_COMMANDS)
            }
            _ => 1,
        };
        if pages == 1 {
            let params = if first && self.params.is_set(&self.key(self.model.start)) {
                self.params.clone()
            } else {
                self.with_start(from)
            };
            let (items, total, next) = self.single(params).await?;
            if let Some(n) = next {
                // The portal's own page length, which the batched offsets follow; a `next`
                // that does not move past this page's start would be an endless loop.
                if n as i64 <= from {
                    return Err(self.offset_stalled(from, n));
                }
                self.page_len = n - from.max(0) as u64;
            }
            if total.is_some() {
                self.total = total;
            }
            self.next = next;
            self.finished = next.is_none();
            return Ok(items);
        }
        // Up to `concurrency` batch requests at once, each of up to 50 pages, all computed
        // from `total`: the pages do not depend on each other.
        let total = self.total.unwrap_or(0);
        let left_pages = (total.saturating_sub(from as u64)).div_ceil(stride) as usize;
        let batches = left_pages
            .div_ceil(MAX_BATCH_COMMANDS)
            .clamp(1, self.concurrency);
        let mut requests = Vec::with_capacity(batches);
        // The `start` of each page, in the order the entries come back.
        let mut starts = Vec::new();
        for b in 0..batches {
            let first_page = b * MAX_BATCH_COMMANDS;
            let n = if b == 0 {
                pages
            } else {
                (left_pages - first_page).min(MAX_BATCH_COMMANDS)
            };
            let params: Vec<(Params, Option<String>)> = (first_page..first_page + n)
                .map(|k| {
                    let start = from + k as i64 * stride as i64;
                    starts.push(start);
                    (self.with_start(start), None)
                })
                .collect();
            requests.push(self.batch_request(params)?);
        }
        self.requests += requests.len() as u64;
        let client = self.client.clone();
        let sent = futures_util::future::join_all(
            requests
                .iter()
                .map(|cmds| run_chunk(&client, cmds, true, &self.options)),
        )
        .await;
        let mut entries = Vec::new();
        for s in sent {
            self.requests += s.requests.saturating_sub(1) as u64;
            if let Some(e) = s.whole {
                return Err(e);
            }
            entries.extend(s.entries);
        }
        let mut out = Vec::new();
        self.finished = true;
        for (entry, start) in entries.into_iter().zip(starts) {
            match entry {
                Entry::Done {
                    result,
                    total,
                    next,
                    ..
                } => {
                    if let Some(n) = next {
                        if n as i64 <= start {
                            return Err(self.offset_stalled(start, n));
                        }
                    }
                    out.extend(self.items(result)?);
                    if total.is_some() {
                        self.total = total;
                    }
                    self.next = next;
                    match next {
                        Some(n) if n as i64 != start + stride as i64 => {
                            // The portal pages by another length than the offsets computed:
                            // the pages after this one would skip or repeat items. Go on
                            // from its `next`, at its length.
                            self.page_len = n - start.max(0) as u64;
                            self.finished = false;
                            break;
                        }
                        Some(_) => self.finished = false,
                        None => {
                            // The list is over; later pages (a `total` too high) are empty.
                            self.finished = true;
                            break;
                        }
                    }
                }
                Entry::Failed(e) => return Err(e),
                Entry::NotRun => return Err(self.page_not_run()),
            }
        }
        Ok(out)
    }

    /// A page of a batch request that did not run (the batch halted before it).
    fn page_not_run(&self) -> Error {
        Error::new(ErrorKind::NotRun)
            .with_method(self.meta.name)
            .with_message("a page of the batch did not run")
    }

    /// A `next` that does not move past the `start` of its page: the method ignores `start`,
    /// and following it would loop for ever over the same items.
    fn offset_stalled(&self, start: i64, next: u64) -> Error {
        Error::new(ErrorKind::CursorStalled)
            .with_method(self.meta.name)
            .with_message(format!(
                "the page at start {start} answered next = {next}: {} does not move past it \
                 (it ignores `{}`?)",
                self.meta.name, self.model.start
            ))
    }

    /// The cursor a fast scan starts from: the request's own `>ID` (`<ID`) filter, if any.
    fn initial_cursor(&self, desc: bool) -> Option<u64> {
        let key = format!("{}{}", if desc { "<" } else { ">" }, self.model.id);
        let v = self.params.get(&self.key(self.model.filter))?.get(&key)?;
        match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The request with the fast-scan order, `start = -1` and the cursor `cursor` (a value:
    /// an ID, or a `$result[..]` reference) in the filter.
    fn fast_params(&self, desc: bool, cursor: Option<Value>) -> Params {
        let m = &self.model;
        let mut p = self.params.clone();
        let filter_key = self.key(m.filter);
        let mut filter = match p.get(&filter_key) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        if let Some(c) = cursor {
            filter.insert(format!("{}{}", if desc { "<" } else { ">" }, m.id), c);
        }
        if !filter.is_empty() {
            p.set(filter_key, Arg::new(Value::Object(filter)));
        }
        let mut order = Map::new();
        order.insert(
            m.id.to_owned(),
            Value::from(if desc { "DESC" } else { "ASC" }),
        );
        p.set(self.key(m.order), Arg::new(Value::Object(order)));
        p.set(self.key(m.start), Arg::new(Value::from(-1)));
        p
    }

    /// Checks that the IDs of a page continue the scan; returns the last one.
    fn advance(&mut self, page: &[Value], desc: bool) -> Result<(), Error> {
        for item in page {
            let Some(id) = id_of(item, self.model.answer_id) else {
                return Err(Error::new(ErrorKind::Decode)
                    .with_method(self.meta.name)
                    .with_path(format!(".{}", self.model.answer_id))
                    .with_message(format!(
                        "an item without a numeric `{}`: a fast scan needs it",
                        self.model.answer_id
                    )));
            };
            if let Some(last) = self.cursor {
                let moved = if desc { id < last } else { id > last };
                if !moved {
                    return Err(Error::new(ErrorKind::CursorStalled)
                        .with_method(self.meta.name)
                        .with_message(format!(
                            "item {id} came after {last}: {} ignores the `{}{}` filter; scan it with ListMode::Offset",
                            self.meta.name,
                            if desc { "<" } else { ">" },
                            self.model.id
                        )));
                }
            }
            self.cursor = Some(id);
        }
        Ok(())
    }

    async fn fast_step(&mut self, batched: bool, desc: bool) -> Result<Vec<Value>, Error> {
        // The first request is a single page: a short list costs one request.
        if !batched || self.requests == 0 {
            let params = self.fast_params(desc, self.cursor.map(Value::from));
            let (items, _, _) = self.single(params).await?;
            self.advance(&items, desc)?;
            self.finished = items.len() < PAGE;
            return Ok(items);
        }
        let m = self.model;
        let mut pages = Vec::with_capacity(MAX_BATCH_COMMANDS);
        for k in 0..MAX_BATCH_COMMANDS {
            let (cursor, text) = if k == 0 {
                (self.cursor.map(Value::from), None)
            } else {
                // The last ID of the page before, where the portal finds it.
                let mut r = format!("$result[p{}]", k - 1);
                if !m.items.is_empty() {
                    r.push_str(&format!("[{}]", m.items));
                }
                r.push_str(&format!("[{}][{}]", PAGE - 1, m.answer_id));
                (Some(Value::String(r.clone())), Some(r))
            };
            pages.push((self.fast_params(desc, cursor), text));
        }
        let entries = self.batch(pages).await?;
        let mut out = Vec::new();
        self.finished = true;
        for entry in entries {
            match entry {
                Entry::Done { result, .. } => {
                    let page = self.items(result)?;
                    self.advance(&page, desc)?;
                    let full = page.len() >= PAGE;
                    out.extend(page);
                    if !full {
                        // The end. The pages after it referred to an item that does not
                        // exist: whatever they answered is not part of the list.
                        self.finished = true;
                        return Ok(out);
                    }
                    self.finished = false;
                }
                Entry::Failed(e) => return Err(e),
                Entry::NotRun => return Err(self.page_not_run()),
            }
        }
        Ok(out)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
