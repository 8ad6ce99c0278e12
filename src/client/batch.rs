//! `batch`: many commands in one HTTP request (PROTOCOL 5), typed, with `$result[..]`
//! references, `halt`, transparent splitting into requests of 50 commands. Bulk writes
//! ([`Client::call_many`]) are in `many`, on the same commands and requests.
//!
//! A command is encoded once, when it is added: its parameters become the PHP query string of
//! `method?query`, with booleans as the method's [`BoolForm`](crate::BoolForm) says and
//! `null` / `[]` / `{}` as empty values (never left out). Each batch request goes down the
//! client's one call path (rate limit, auth, refresh, retries of refusals) as method `batch`,
//! a write unless every command in it only reads; the answer's five maps are read back under
//! the caller's labels.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{policy, Call, CallOptions, Client, Response};
use crate::codes;
use crate::error::{Error, ErrorKind, RetryClass};
use crate::meta::{Access, ApiVersion, BoolForm, Method, MethodMeta};
use crate::params::{Arg, IntoArg, Params, RefTo};
use crate::wire::{FromWire, Time};

/// Most commands the portal runs in one `batch` request
/// ([batch](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html)).
pub const MAX_BATCH_COMMANDS: usize = 50;

/// Each batch gets its own number, so that a reference or handle from another batch is
/// recognised.
static NEXT_BATCH: AtomicU64 = AtomicU64::new(1);

/// One encoded command.
#[derive(Clone)]
pub(crate) struct Command {
    /// The caller's label.
    label: Arc<str>,
    /// The key it travels under in `cmd` (the label when it is a safe PHP array key, else
    /// `_<position>`).
    pub(crate) key: Arc<str>,
    method: Cow<'static, str>,
    access: Access,
    /// `method?query`.
    text: String,
    /// Positions of the commands whose results it uses.
    refs: Vec<usize>,
    /// Each reference as written (`$result[contact][ID]`), with the position it names: to
    /// put the value in when the command is sent again without that command.
    ref_texts: Vec<(usize, Arc<str>)>,
}

impl Command {
    /// Encodes `params` for `method`.
    pub(crate) fn new(
        label: Arc<str>,
        key: Arc<str>,
        method: Cow<'static, str>,
        access: Access,
        bools: BoolForm,
        mut params: Params,
        allowed: &[&str],
    ) -> Result<Command, Error> {
        let invalid = |m: String| {
            Error::new(ErrorKind::InvalidInput)
                .with_method(&method)
                .with_message(m)
        };
        if method.eq_ignore_ascii_case("batch") {
            return Err(invalid("`batch` cannot run inside a batch".into()));
        }
        if method.is_empty() || method.contains(['?', '&', '#', ' ']) {
            return Err(invalid(format!("`{method}` is not a method name")));
        }
        params.remove("auth");
        if let Some(name) = params.unsendable() {
            return Err(invalid(format!(
                "parameter `{name}` is not a finite number (NaN or infinite)"
            )));
        }
        if let Some(path) = params.stray_reference(allowed) {
            return Err(invalid(format!(
                "`{path}` holds text the portal replaces inside a batch (`$result[..]`, also \
                 `$total[..]`, `$next[..]`, `$time[..]`, `$error[..]`, in any case): \
                 send this call on its own, or refer to a command with a BatchRef"
            )));
        }
        let query = crate::php::encode_command(&params, bools)
            .map_err(|e| invalid(format!("the parameters cannot be encoded: {e}")))?;
        let text = if query.is_empty() {
            method.to_string()
        } else {
            format!("{method}?{query}")
        };
        Ok(Command {
            label,
            key,
            method,
            access,
            text,
            refs: Vec::new(),
            ref_texts: Vec::new(),
        })
    }

    /// The same command, known to use the result of the command at `index` through the
    /// reference `text` (a list page's cursor).
    pub(crate) fn with_ref(mut self, index: usize, text: &str) -> Command {
        self.refs.push(index);
        self.ref_texts.push((index, text.into()));
        self
    }

    /// The command with the references to commands that ran (`entries`) replaced by their
    /// values, for a request without those commands; `None` when one of them did not run,
    /// names a path its result does not have, or a value that is not a scalar (which a
    /// query string cannot carry in place of one value). References to commands in `sent`
    /// (sent again in the same request) stay.
    fn inlined(&self, chunk: &[Command], entries: &[Entry], sent: &[usize]) -> Option<Command> {
        let mut text = self.text.clone();
        for (index, reference) in &self.ref_texts {
            if sent.contains(index) {
                continue;
            }
            let Entry::Done { result, .. } = entries.get(*index)? else {
                return None;
            };
            let mut path = reference.strip_prefix(&format!("$result[{}]", chunk[*index].key))?;
            let mut value = result;
            while let Some(rest) = path.strip_prefix('[') {
                let (segment, after) = rest.split_once(']')?;
                value = match value {
                    Value::Object(o) => o.get(segment)?,
                    Value::Array(a) => a.get(segment.parse::<usize>().ok()?)?,
                    _ => return None,
                };
                path = after;
            }
            if !path.is_empty() {
                return None;
            }
            let scalar = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
                _ => return None,
            };
            // Whole values only (`=<reference>` up to `&` or the end): a longer reference
            // that starts with this one is another value.
            let mut from = String::from("=");
            crate::php::urlencode(reference, &mut from);
            let mut to = String::from("=");
            crate::php::urlencode(&scalar, &mut to);
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find(&from) {
                let end = at + from.len();
                let whole = rest[end..].is_empty() || rest[end..].starts_with('&');
                out.push_str(&rest[..at]);
                out.push_str(if whole { &to } else { &from });
                rest = &rest[end..];
            }
            out.push_str(rest);
            text = out;
        }
        let mut c = self.clone();
        c.text = text;
        c.refs.retain(|r| sent.contains(r));
        c.ref_texts.retain(|(r, _)| sent.contains(r));
        Some(c)
    }
}

/// A reference to the result of an earlier command of the same batch: `$result[label]`,
/// `$result[label][ID]`, `$result[label][items][0][id]`. Pass it to any setter of a later
/// command (`.id(contact.result())`, `.contact_id(found.index(0).field("ID"))`): the portal
/// puts the referenced value in its place when it runs that command
/// ([batch docs](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html)).
///
/// Made from a [`Handle`]. A reference to a command of another batch, to a later command, or
/// across the 50-command split of a large batch is refused by [`Batch::push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRef {
    to: RefTo,
    text: String,
    /// A path segment that cannot be written inside `[..]`.
    bad: bool,
}

impl BatchRef {
    /// The field `name` of the referenced value (`[ID]`).
    pub fn field(mut self, name: &str) -> BatchRef {
        // The portal's reference pattern (`\$result([^\s]*)`, CRestUtil::processBatchElement)
        // ends at the first whitespace: a segment with one would be cut there.
        self.bad |= name.is_empty()
            || name.contains(['[', ']', '&', '=', '?', '#'])
            || name.chars().any(|c| c.is_whitespace());
        self.text.push('[');
        self.text.push_str(name);
        self.text.push(']');
        self
    }

    /// The item at `index` of the referenced list (`[0]`).
    pub fn index(mut self, index: usize) -> BatchRef {
        self.text.push('[');
        self.text.push_str(&index.to_string());
        self.text.push(']');
        self
    }

    /// The reference as the portal reads it, e.g. `$result[contact][ID]`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<T> IntoArg<T> for BatchRef {
    fn into_arg(self) -> Arg {
        Arg::reference(self.text, self.to, self.bad)
    }
}

/// The handle of one command added to a [`Batch`]: read its outcome from the
/// [`BatchResults`] with it, or refer to its result in a later command.
pub struct Handle<T> {
    batch: u64,
    index: usize,
    label: Arc<str>,
    key: Arc<str>,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            batch: self.batch,
            index: self.index,
            label: self.label.clone(),
            key: self.key.clone(),
            _output: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("label", &self.label)
            .field("index", &self.index)
            .finish()
    }
}

impl<T> Handle<T> {
    /// The label given to the command.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The command's position in the batch, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A reference to the command's whole `result` (`$result[label]`).
    pub fn result(&self) -> BatchRef {
        BatchRef {
            to: RefTo {
                batch: self.batch,
                index: self.index,
                bad: false,
                text: "".into(),
            },
            text: format!("$result[{}]", self.key),
            bad: false,
        }
    }

    /// A reference to the field `name` of the command's result (`$result[label][name]`).
    pub fn field(&self, name: &str) -> BatchRef {
        self.result().field(name)
    }

    /// A reference to the item at `index` of the command's list result
    /// (`$result[label][index]`).
    pub fn item(&self, index: usize) -> BatchRef {
        self.result().index(index)
    }
}

/// Several commands sent together as `batch` requests: made by [`Client::batch`]
/// ([batch](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html)).
///
/// ```no_run
/// # #![allow(deprecated)]
/// # async fn f(client: &bitrix24::Client) -> Result<(), bitrix24::Error> {
/// use bitrix24::crm::{CrmContactAdd, CrmDealAdd};
/// use bitrix24::types::{CrmContactAddFields, CrmDealAddFields};
///
/// let mut batch = client.batch();
/// let contact = batch.push(
///     "contact",
///     CrmContactAdd::new().fields(CrmContactAddFields::new().name("Ann")),
/// )?;
/// // The deal is linked to the contact created just before, in the same request.
/// let deal = batch.push(
///     "deal",
///     CrmDealAdd::new()
///         .fields(CrmDealAddFields::new().title("First order").contact_id(contact.result())),
/// )?;
/// let results = batch.send().await?;
/// let contact_id = results.get(&contact).into_result()?.result;
/// let deal_id = results.get(&deal).into_result()?.result;
/// println!("contact {contact_id}, deal {deal_id}");
/// # Ok(()) }
/// ```
///
/// More than 50 commands go out as several requests, one after another, each paced by the
/// client's rate limit. With references the batch [halts](Self::halt) at the first failure
/// unless told otherwise: the portal puts the literal text of a reference in place when the
/// command it names failed.
pub struct Batch {
    client: Client,
    id: u64,
    commands: Vec<Command>,
    labels: HashMap<Arc<str>, usize>,
    halt: Option<bool>,
    options: CallOptions,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The encoded commands may hold secrets: only labels and methods are shown.
        f.debug_struct("Batch")
            .field(
                "commands",
                &self
                    .commands
                    .iter()
                    .map(|c| (&*c.label, &*c.method))
                    .collect::<Vec<_>>(),
            )
            .field("halt", &self.halt)
            .finish_non_exhaustive()
    }
}

/// Whether a request of `meta` with `params` may be a batch command: the method is allowed
/// inside `batch` (not file transfers, not `batch` itself), classic REST, and its conditional
/// requirements are met.
pub(crate) fn batchable(meta: &MethodMeta, params: &Params) -> Result<(), Error> {
    let invalid = |m: String| {
        Error::new(ErrorKind::InvalidInput)
            .with_method(meta.name)
            .with_message(m)
    };
    if !meta.batch {
        return Err(invalid(format!(
            "{} may not run inside batch (file transfer, or batch itself)",
            meta.name
        )));
    }
    if meta.api != ApiVersion::V2 {
        return Err(invalid(
            "REST 3.0 methods are not supported by this version".into(),
        ));
    }
    meta.check(params).map_err(invalid)
}

/// Whether `label` can travel as it is as a key of `cmd` and inside `$result[..]`: PHP would
/// turn a numeric key into a list index (`"0"`, `"1"`), and brackets or `&` would break the
/// reference syntax.
fn safe_key(label: &str) -> bool {
    let mut chars = label.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && label.len() <= 64
}

impl Batch {
    pub(crate) fn new(client: Client) -> Batch {
        Batch {
            client,
            id: NEXT_BATCH.fetch_add(1, Ordering::Relaxed),
            commands: Vec::new(),
            labels: HashMap::new(),
            halt: None,
            options: CallOptions::default(),
        }
    }

    /// Adds `request` under `label` (any text, unique in the batch; numeric labels such as
    /// `"0"` are fine) and returns its handle.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`], and nothing is added, when the label is taken; the method
    /// may not run inside `batch` ([`MethodMeta::batch`](crate::MethodMeta::batch)) or is a
    /// REST 3.0 one; a parameter cannot be encoded (NaN); a reference names a command of
    /// another batch, a command not added before this one, or one that will travel in
    /// another request of 50 commands.
    pub fn push<M: Method>(
        &mut self,
        label: impl Into<String>,
        request: M,
    ) -> Result<Handle<M::Output>, Error> {
        let meta = M::META;
        let params = request.wire_params().clone();
        batchable(meta, &params)?;
        self.add_command(
            label.into(),
            Cow::Borrowed(meta.name),
            meta.access,
            meta.query_bool,
            params,
        )
    }

    /// Adds a command under the next free numeric label (`"0"`, `"1"`, ...: its position, or
    /// the next number not taken when a label of that number was pushed before).
    ///
    /// # Errors
    /// As for [`push`](Self::push).
    pub fn add<M: Method>(&mut self, request: M) -> Result<Handle<M::Output>, Error> {
        // Its position, unless a command was pushed under that label: then the next free one.
        let mut n = self.commands.len();
        while self.labels.contains_key(n.to_string().as_str()) {
            n += 1;
        }
        self.push(n.to_string(), request)
    }

    /// Adds a method by name with JSON parameters (an object, or `null` for none), as
    /// [`Client::call_raw`] does; it counts as a write.
    ///
    /// # Errors
    /// As for [`push`](Self::push); also when `params` is not a JSON object (nothing of it
    /// would reach the portal).
    pub fn push_raw(
        &mut self,
        label: impl Into<String>,
        method: impl Into<String>,
        params: Value,
    ) -> Result<Handle<Value>, Error> {
        let method = method.into();
        let params = Params::from_value(params).map_err(|_| {
            Error::new(ErrorKind::InvalidInput)
                .with_method(&method)
                .with_message("params must be a JSON object")
        })?;
        self.add_command(
            label.into(),
            Cow::Owned(method),
            Access::Write,
            BoolForm::OneZero,
            params,
        )
    }

    fn add_command<T>(
        &mut self,
        label: String,
        method: Cow<'static, str>,
        access: Access,
        bools: BoolForm,
        params: Params,
    ) -> Result<Handle<T>, Error> {
        let index = self.commands.len();
        let invalid = |m: String| {
            Error::new(ErrorKind::InvalidInput)
                .with_method(&method)
                .with_message(m)
        };
        let label: Arc<str> = label.into();
        if self.labels.contains_key(&label) {
            return Err(invalid(format!(
                "the label `{label}` is already in this batch"
            )));
        }
        let mut refs = Vec::new();
        let mut ref_texts = Vec::new();
        for to in params.refs() {
            if to.batch != self.id {
                return Err(invalid(
                    "a reference to a command of another batch".to_owned(),
                ));
            }
            if to.index >= index {
                return Err(invalid(
                    "a reference to a command that is not before this one".to_owned(),
                ));
            }
            if to.index / MAX_BATCH_COMMANDS != index / MAX_BATCH_COMMANDS {
                return Err(invalid(format!(
                    "a reference to `{}` (command {}), which travels in another request of {MAX_BATCH_COMMANDS} \
                     commands than this one (command {index}): a reference only reaches commands of its own request",
                    self.commands[to.index].label, to.index
                )));
            }
            refs.push(to.index);
            ref_texts.push((to.index, to.text.clone()));
        }
        if params.has_bad_ref() {
            return Err(invalid(
                "a reference path segment is empty or holds `[`, `]`, `&`, `=`, `?`, `#` or whitespace"
                    .into(),
            ));
        }
        let key: Arc<str> = if safe_key(&label) {
            label.clone()
        } else {
            format!("_{index}").into()
        };
        let mut command = Command::new(
            label.clone(),
            key.clone(),
            method,
            access,
            bools,
            params,
            &[],
        )?;
        command.refs = refs;
        command.ref_texts = ref_texts;
        self.labels.insert(label.clone(), index);
        self.commands.push(command);
        Ok(Handle {
            batch: self.id,
            index,
            label,
            key,
            _output: PhantomData,
        })
    }

    /// With `true`, the portal stops at the first failing command and the rest come back
    /// [`Outcome::NotRun`]; with `false` every command runs. Default: `true` when a command
    /// carries a reference, else `false`. Also stops the later requests of a batch larger
    /// than 50 commands.
    pub fn halt(&mut self, halt: bool) -> &mut Batch {
        self.halt = Some(halt);
        self
    }

    /// How each batch request is retried (default: the client's [`Retry`](crate::Retry)).
    /// Only refusals the portal answers before running anything (`QUERY_LIMIT_EXCEEDED`, a
    /// connection that never opened) are retried for a batch that writes, and only commands
    /// the portal reports as refused (`OPERATION_TIME_LIMIT`) are sent again.
    pub fn retry(&mut self, retry: crate::Retry) -> &mut Batch {
        self.options.retry = Some(retry);
        self
    }

    /// The deadline of each batch request, waits and retries included (default: the
    /// client's [`timeout`](crate::ClientBuilder::timeout)).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Batch {
        self.options.timeout = Some(timeout);
        self
    }

    /// How many commands it holds.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Sends every command: requests of up to 50 commands, one after another.
    ///
    /// # Errors
    /// Only when no command could run at all: every batch request failed as a whole (auth,
    /// transport, a deadline), with that request's error. Otherwise each command's own
    /// outcome is in the [`BatchResults`], failures included.
    pub async fn send(self) -> Result<BatchResults, Error> {
        let halt = self
            .halt
            .unwrap_or_else(|| self.commands.iter().any(|c| !c.refs.is_empty()));
        let mut outcomes: Vec<Entry> = Vec::with_capacity(self.commands.len());
        let mut requests = 0;
        let mut whole_failures = 0;
        let mut first_whole_error = None;
        let chunks = self.commands.chunks(MAX_BATCH_COMMANDS).count();
        let mut stopped = false;
        for chunk in self.commands.chunks(MAX_BATCH_COMMANDS) {
            if stopped {
                outcomes.extend(chunk.iter().map(|_| Entry::NotRun));
                continue;
            }
            let sent = run_chunk(&self.client, chunk, halt, &self.options).await;
            requests += sent.requests;
            if let Some(e) = &sent.whole {
                whole_failures += 1;
                first_whole_error.get_or_insert_with(|| e.clone());
            }
            if halt
                && sent
                    .entries
                    .iter()
                    .any(|e| matches!(e, Entry::Failed(_) | Entry::NotRun))
            {
                stopped = true;
            }
            outcomes.extend(sent.entries);
        }
        if chunks > 0 && whole_failures == chunks {
            if let Some(e) = first_whole_error {
                return Err(e);
            }
        }
        Ok(BatchResults {
            batch: self.id,
            labels: self.commands.iter().map(|c| c.label.clone()).collect(),
            methods: self.commands.iter().map(|c| c.method.clone()).collect(),
            entries: outcomes,
            requests,
        })
    }
}

/// What happened to one command.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    Done {
        result: Value,
        total: Option<u64>,
        next: Option<u64>,
        time: Option<Value>,
    },
    Failed(Error),
    NotRun,
}

/// The outcome of one batch command, read with [`BatchResults::get`].
#[derive(Debug)]
#[must_use]
pub enum Outcome<T> {
    /// It ran: its decoded `result` with its own `total`, `next` and `time`.
    Done(Response<T>),
    /// It failed (its error from `result_error`, the whole request's error, or a `result`
    /// that does not decode as `T`).
    Failed(Error),
    /// It did not run: the batch halted at an earlier failure.
    NotRun,
}

impl<T> Outcome<T> {
    /// `Done` as `Ok`; `Failed` as its error; `NotRun` as an error of kind
    /// [`ErrorKind::NotRun`].
    ///
    /// # Errors
    /// As said.
    pub fn into_result(self) -> Result<Response<T>, Error> {
        match self {
            Outcome::Done(r) => Ok(r),
            Outcome::Failed(e) => Err(e),
            Outcome::NotRun => Err(Error::new(ErrorKind::NotRun)
                .with_message("not run: the batch halted at an earlier failure")),
        }
    }

    /// The decoded `result` if it ran.
    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Done(r) => Some(r.result),
            _ => None,
        }
    }

    /// Whether it ran and decoded.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// Whether it did not run.
    pub fn is_not_run(&self) -> bool {
        matches!(self, Outcome::NotRun)
    }
}

/// The outcomes of a sent [`Batch`], in the order added.
#[derive(Debug)]
pub struct BatchResults {
    batch: u64,
    labels: Vec<Arc<str>>,
    methods: Vec<Cow<'static, str>>,
    entries: Vec<Entry>,
    requests: usize,
}

impl BatchResults {
    /// The outcome of the command `handle` stands for, decoded as its method's output.
    /// A handle of another batch gives `Failed` ([`ErrorKind::InvalidInput`]).
    pub fn get<T: FromWire>(&self, handle: &Handle<T>) -> Outcome<T> {
        if handle.batch != self.batch {
            return Outcome::Failed(
                Error::new(ErrorKind::InvalidInput).with_message("a handle of another batch"),
            );
        }
        self.decode(handle.index)
    }

    /// The outcome of the command labelled `label`, as raw JSON.
    pub fn get_raw(&self, label: &str) -> Option<Outcome<Value>> {
        let i = self.labels.iter().position(|l| &**l == label)?;
        Some(self.decode(i))
    }

    fn decode<T: FromWire>(&self, i: usize) -> Outcome<T> {
        outcome(&self.entries[i], &self.methods[i])
    }

    /// The labels, in the order added.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(|l| &**l)
    }

    /// How many commands ran successfully.
    pub fn done(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Done { .. }))
            .count()
    }

    /// How many failed.
    pub fn failed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Failed(_)))
            .count()
    }

    /// How many did not run.
    pub fn not_run(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::NotRun))
            .count()
    }

    /// How many HTTP requests the batch took (retries of refused commands included).
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// How many commands it had.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it had none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one chunk of at most 50 commands came to.
pub(crate) struct Sent {
    pub entries: Vec<Entry>,
    pub requests: usize,
    /// The error of a batch request that failed as a whole (every command carries it).
    pub whole: Option<Error>,
}

/// Sends one chunk (at most 50 commands, references only inside it), then sends again the
/// commands the portal refused without running them, until the chunk's deadline (the
/// options' timeout, every round included).
pub(crate) async fn run_chunk(
    client: &Client,
    chunk: &[Command],
    halt: bool,
    options: &CallOptions,
) -> Sent {
    let inner = &client.inner;
    let timeout = options.timeout.unwrap_or(inner.call_timeout);
    // One deadline for the chunk, every round of re-sent commands included (a century is
    // as good as "none", as in `policy::run`).
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    let mut entries: Vec<Entry> = vec![Entry::NotRun; chunk.len()];
    // The positions to send in this round.
    let mut todo: Vec<usize> = (0..chunk.len()).collect();
    let mut requests = 0;
    let mut rounds = 0u32;
    // Commands sent again with the values of references to commands that ran put in.
    let mut inlined: HashMap<usize, Command> = HashMap::new();
    loop {
        rounds += 1;
        let cmds: Vec<&Command> = todo
            .iter()
            .map(|&i| inlined.get(&i).unwrap_or(&chunk[i]))
            .collect();
        // Wait for the operating-time budget of the methods refused before (here or, with
        // a shared limiter, by another worker). A shared limiter that fails shows in the
        // batch request itself.
        if inner.limits.is_shared() {
            for method in distinct_methods(&cmds) {
                let _ = inner.limits.pull_method(method).await;
            }
        }
        let waits: Vec<Option<Duration>> = cmds
            .iter()
            .map(|c| {
                let (w, blocked) = inner.limits.method_wait(&c.method);
                (blocked && !w.is_zero()).then_some(w)
            })
            .collect();
        let wait = waits.iter().flatten().max().copied().unwrap_or_default();
        if !wait.is_zero() {
            if Instant::now() + wait > deadline {
                // Not sent: a paused method's commands say so (as a single call would), the
                // others did not run.
                for (&i, w) in todo.iter().zip(&waits) {
                    if let (Some(w), Entry::NotRun) = (w, &entries[i]) {
                        entries[i] = Entry::Failed(paused(&chunk[i].method, *w));
                    }
                }
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Each round within what is left of the deadline.
        let round = CallOptions {
            timeout: Some(left),
            ..options.clone()
        };
        let answer = send_batch(client, &cmds, halt, &round).await;
        requests += 1;
        let maps = match answer {
            Ok(maps) => maps,
            Err(e) => {
                for &i in &todo {
                    entries[i] = Entry::Failed(e.clone());
                }
                let whole = (rounds == 1).then_some(e);
                return Sent {
                    entries,
                    requests,
                    whole,
                };
            }
        };
        let mut refused = Vec::new();
        let mut throttled = None;
        for (pos, &i) in todo.iter().enumerate() {
            let c = &chunk[i];
            let entry = maps.entry(&c.key, pos, &c.method);
            if let Entry::Done { time, .. } = &entry {
                inner
                    .limits
                    .answered(&c.method, time.as_ref().and_then(Time::budget_of).as_ref());
            }
            if let Entry::Failed(e) = &entry {
                match e.retry_class() {
                    RetryClass::OperatingLimit => {
                        inner.limits.blocked(&c.method, e.operating_reset_at());
                        refused.push(i);
                    }
                    RetryClass::Throttled => {
                        throttled = Some(inner.limits.throttled());
                        refused.push(i);
                    }
                    _ => {}
                }
            }
            entries[i] = entry;
        }
        if inner.limits.is_shared() {
            for method in distinct_methods(&cmds) {
                inner.limits.push_method(method).await;
            }
            if let Some(pause) = throttled {
                inner.limits.drain_shared(pause).await;
            }
        }
        // Refusals are waited out until the deadline, not counted against `max_attempts`
        // (as `policy::run` does for a whole request): the portal ran none of them.
        if refused.is_empty() {
            break;
        }
        // Send again what certainly did not run: the refused commands and, under halt, what
        // did not run after them. A reference to a command that ran is not in the new
        // request: its value is put in instead (when it is a scalar), else the command stays
        // as it came back.
        let mut again: Vec<usize> = Vec::new();
        for &i in &todo {
            let retry_it = refused.contains(&i) || (halt && matches!(entries[i], Entry::NotRun));
            if !retry_it {
                continue;
            }
            let command = inlined.get(&i).unwrap_or(&chunk[i]);
            if command.refs.iter().all(|r| again.contains(r)) {
                again.push(i);
            } else if let Some(c) = command.inlined(chunk, &entries, &again) {
                inlined.insert(i, c);
                again.push(i);
            }
        }
        if again.is_empty() {
            break;
        }
        todo = again;
    }
    Sent {
        entries,
        requests,
        whole: None,
    }
}

/// The error of a command not sent because its method is paused after
/// `OPERATION_TIME_LIMIT` for `wait` more, past the deadline (what `policy::run` says of a
/// single call).
fn paused(method: &str, wait: Duration) -> Error {
    Error::new(ErrorKind::Api)
        .with_method(method)
        .with_code(codes::OPERATION_TIME_LIMIT.to_owned())
        .with_description(format!(
            "not sent: the method is paused for {} s more after OPERATION_TIME_LIMIT, past the \
             batch's deadline",
            wait.as_secs()
        ))
        .with_operating_reset_at(super::unix_now() + i64::try_from(wait.as_secs()).unwrap_or(0) + 1)
        .never_executed()
}

/// The five maps of a batch answer.
struct Maps {
    result: Option<Value>,
    error: Option<Value>,
    total: Option<Value>,
    next: Option<Value>,
    time: Option<Value>,
}

impl Maps {
    /// The entry of `key` (the command at `pos` of the request) in `map`: a map by key, or a
    /// list by position (PHP turns a map with keys 0, 1, ... into a list); `[]` is empty.
    fn find<'a>(map: &'a Option<Value>, key: &str, pos: usize) -> Option<&'a Value> {
        match map.as_ref()? {
            Value::Object(m) => m.get(key),
            Value::Array(a) => a.get(pos),
            _ => None,
        }
    }

    fn entry(&self, key: &str, pos: usize, method: &str) -> Entry {
        if let Some(e) = Self::find(&self.error, key, pos) {
            return Entry::Failed(command_error(method, e));
        }
        match Self::find(&self.result, key, pos) {
            // A `null` result is a result (methods that return nothing).
            Some(result) => Entry::Done {
                result: result.clone(),
                total: Self::find(&self.total, key, pos).and_then(as_u64),
                next: Self::find(&self.next, key, pos).and_then(as_u64),
                time: Self::find(&self.time, key, pos).cloned(),
            },
            None => Entry::NotRun,
        }
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A command's error from `result_error`: `{error, error_description}` (or a bare code).
fn command_error(method: &str, e: &Value) -> Error {
    let (code, description) = match e {
        Value::Object(o) => (
            match o.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            },
            o.get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        Value::String(s) => (s.clone(), String::new()),
        other => (String::new(), other.to_string()),
    };
    let status = codes::http_status(&code);
    Error::api(method, status, code, description)
}

/// One `batch` HTTP request of `cmds` (at most 50) down the client's call path.
async fn send_batch(
    client: &Client,
    cmds: &[&Command],
    halt: bool,
    options: &CallOptions,
) -> Result<Maps, Error> {
    // The body, keys in the order to run: `{"cmd": {key: "method?query", ..}, "halt": 0|1}`.
    let mut body = Vec::with_capacity(64 + cmds.iter().map(|c| c.text.len() + 8).sum::<usize>());
    body.extend_from_slice(b"{\"cmd\":{");
    for (i, c) in cmds.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &*c.key).map_err(encode_error)?;
        body.push(b':');
        serde_json::to_writer(&mut body, &c.text).map_err(encode_error)?;
    }
    body.extend_from_slice(if halt {
        b"},\"halt\":1}"
    } else {
        b"},\"halt\":0}"
    });
    let access = if cmds.iter().all(|c| c.access.is_idempotent()) {
        Access::Read
    } else {
        Access::Write
    };
    let call = Call {
        method: Cow::Borrowed("batch"),
        access,
        body: body.into(),
        options: options.clone(),
    };
    let answer = policy::run(&client.inner, &call).await?;
    let mut result = match answer.result {
        Some(Value::Object(o)) => o,
        // `[]` for a batch whose maps are all empty.
        Some(Value::Array(a)) if a.is_empty() => Map::new(),
        _ => {
            return Err(super::decode::decode_error(
                "batch",
                &answer,
                ".result",
                "not the five maps of a batch answer",
            ))
        }
    };
    Ok(Maps {
        result: result.remove("result"),
        error: result.remove("result_error"),
        total: result.remove("result_total"),
        next: result.remove("result_next"),
        time: result.remove("result_time"),
    })
}

fn encode_error(e: serde_json::Error) -> Error {
    Error::new(ErrorKind::InvalidInput)
        .with_method("batch")
        .with_message(e.to_string())
}

impl Client {
    /// A new, empty [`Batch`] on this client.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }
}

/// One command's entry, its `result` decoded as `T`.
pub(crate) fn outcome<T: FromWire>(entry: &Entry, method: &str) -> Outcome<T> {
    match entry {
        Entry::Done {
            result,
            total,
            next,
            time,
        } => match T::from_wire(result) {
            Ok(v) => Outcome::Done(Response {
                result: v,
                total: *total,
                next: *next,
                time: time.as_ref().and_then(Time::from_value),
            }),
            Err(e) => Outcome::Failed(
                Error::new(ErrorKind::Decode)
                    .with_method(method)
                    .with_path(e.path())
                    .with_message(e.message()),
            ),
        },
        Entry::Failed(e) => Outcome::Failed(e.clone()),
        Entry::NotRun => Outcome::NotRun,
    }
}

/// The methods of `cmds`, each once, in order.
fn distinct_methods<'a>(cmds: &[&'a Command]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for c in cmds {
        if !seen.contains(&c.method.as_ref()) {
            seen.push(&c.method);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command(key: &str, params: Value) -> Command {
        Command::new(
            key.into(),
            key.into(),
            Cow::Borrowed("crm.contact.update"),
            Access::Write,
            BoolForm::OneZero,
            Params::from_value(params).unwrap(),
            &["$result[a]", "$result[a][ID]", "$result[a][items][1][id]"],
        )
        .unwrap()
    }

    #[test]
    fn references_to_commands_that_ran_are_put_in_whole_values_only() {
        let a = command("a", json!({}));
        let c = command(
            "c",
            json!({"id": "$result[a]", "x": "$result[a][ID]", "y": "$result[a][items][1][id]"}),
        )
        .with_ref(0, "$result[a]")
        .with_ref(0, "$result[a][ID]")
        .with_ref(0, "$result[a][items][1][id]");
        let chunk = [a, c];
        let done = |result: Value| Entry::Done {
            result,
            total: None,
            next: None,
            time: None,
        };
        let entries = [
            done(json!({"ID": "7", "items": [{"id": 1}, {"id": "a&b"}]})),
            Entry::NotRun,
        ];
        // `$result[a]` is an object: no scalar to put in.
        assert!(chunk[1].inlined(&chunk, &entries, &[]).is_none());
        let entries = [done(json!(5)), Entry::NotRun];
        assert!(
            chunk[1].inlined(&chunk, &entries, &[]).is_none(),
            "no [ID] in 5"
        );
        let c = command(
            "c",
            json!({"x": "$result[a][ID]", "y": "$result[a][items][1][id]"}),
        )
        .with_ref(0, "$result[a][ID]")
        .with_ref(0, "$result[a][items][1][id]");
        let chunk = [chunk[0].clone(), c];
        let entries = [
            done(json!({"ID": "7", "items": [{"id": 1}, {"id": "a&b"}]})),
            Entry::NotRun,
        ];
        let c = chunk[1].inlined(&chunk, &entries, &[]).unwrap();
        assert_eq!(c.text, "crm.contact.update?x=7&y=a%26b");
        assert!(c.refs.is_empty());
        // A command sent again with it keeps the reference.
        let kept = chunk[1].inlined(&chunk, &entries, &[0]).unwrap();
        assert_eq!(kept.text, chunk[1].text);
        // Not run: nothing to put in.
        let entries = [Entry::NotRun, Entry::NotRun];
        assert!(chunk[1].inlined(&chunk, &entries, &[]).is_none());
    }
}
