//! REST methods: one dispatcher, the per-call pipeline (scope, operating time, `time`), and
//! the methods grouped by concern.

pub(crate) mod basic;
pub(crate) mod batch;
pub(crate) mod crm;
pub(crate) mod events;
pub(crate) mod imbot;
pub(crate) mod lists;

use bitrix24::codes;
use bitrix24::wire::Time;
use serde_json::Value;

use crate::clock;
use crate::order::SentOrder;
use crate::state::{Caller, Config, Outgoing, State};

/// What a method sees.
pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub cfg: &'a Config,
    /// Virtual time of the request start, unix seconds.
    pub now: f64,
    pub caller: &'a Caller,
    /// The lower-cased name of the method running now (inside a batch: the command's).
    pub method: String,
    /// Events to deliver after the answer is computed.
    pub out: &'a mut Vec<Outgoing>,
    /// Extra simulated seconds the current method costs (list offsets).
    pub cost: f64,
    /// Whether this call runs inside a `batch`.
    pub in_batch: bool,
    /// Set by [`run`]: whether the last call it ran got past the scope and operating-time
    /// checks into the method itself (which may still have failed).
    pub ran: bool,
    /// The order the current call's params were sent in (its `Value` sorts keys): `batch`'s
    /// `cmd`, a list's `order`.
    pub order: SentOrder,
    /// Set by `batch`: the keys of the commands in the order they ran, the order of its
    /// answer's maps.
    pub ran_order: Option<Vec<String>>,
}

/// A method's successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub result: Value,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

impl Reply {
    pub(crate) fn ok(result: Value) -> Self {
        Reply {
            result,
            total: None,
            next: None,
        }
    }
}

/// A method's error: `{error, error_description}` with the status of
/// [`codes::http_status`].
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub code: String,
    pub description: String,
}

impl ApiError {
    pub(crate) fn new(code: &str, description: impl Into<String>) -> Self {
        ApiError {
            code: code.to_owned(),
            description: description.into(),
        }
    }

    /// The HTTP status of this error.
    pub(crate) fn status(&self) -> u16 {
        codes::http_status(&self.code)
    }

    /// `{error, error_description}`.
    pub(crate) fn body(&self) -> Value {
        serde_json::json!({"error": self.code, "error_description": self.description})
    }
}

pub(crate) type Outcome = Result<Reply, ApiError>;

/// The scope a method needs; `None` for `basic` methods every caller has.
pub(crate) fn scope_of(method: &str) -> Option<&'static str> {
    let m = method;
    if m.starts_with("user.") {
        Some("user")
    } else if m.starts_with("crm.") {
        Some("crm")
    } else if m.starts_with("imbot.") {
        Some("imbot")
    } else if m.starts_with("im.") {
        Some("im")
    } else if m.starts_with("tasks.") || m.starts_with("task.") {
        Some("task")
    } else if m.starts_with("department.") {
        Some("department")
    } else {
        None
    }
}

/// Whether the method is known (case-insensitive name, lower-cased by the caller).
pub(crate) fn dispatch(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> Option<Outcome> {
    let r = match method {
        "user.current" => basic::user_current(ctx, p),
        "user.get" => basic::user_get(ctx, p),
        "profile" => basic::profile(ctx, p),
        "scope" => basic::scope(ctx, p),
        "app.info" => basic::app_info(ctx, p),
        "server.time" => basic::server_time(ctx, p),
        "department.get" => basic::department_get(ctx, p),
        "methods" => basic::methods(ctx, p),
        "batch" => batch::batch(ctx, p),
        "event.bind" => events::bind(ctx, p),
        "event.unbind" => events::unbind(ctx, p),
        "event.get" => events::get(ctx, p),
        m if m.starts_with("crm.") || m.starts_with("tasks.task.") => {
            return crm::dispatch(ctx, m, p)
        }
        m if m.starts_with("imbot.") || m.starts_with("im.") => return imbot::dispatch(ctx, m, p),
        _ => return None,
    };
    Some(r)
}

/// Every method name served, for `methods`.
pub(crate) const KNOWN: &[&str] = &[
    "batch",
    "user.current",
    "user.get",
    "profile",
    "scope",
    "app.info",
    "server.time",
    "department.get",
    "methods",
    "event.bind",
    "event.unbind",
    "event.get",
];

/// Runs one call (top level or inside a batch): scope check, operating-time check, the
/// method, then the operating-time bill. Returns the outcome and its `time` object.
pub(crate) fn run(ctx: &mut Ctx<'_>, method: &str, p: &Value, start: f64) -> (Outcome, Time) {
    let lower = method.to_ascii_lowercase();
    let key = (ctx.caller.limit_key(), lower.clone());
    let outer = std::mem::replace(&mut ctx.method, lower.clone());
    let counted = lower != "batch";
    ctx.cost = 0.0;
    let mut ran = false;
    let outcome = (|| {
        if let Some(scope) = scope_of(&lower) {
            let granted: &[String] = match ctx.caller {
                Caller::Webhook { .. } => &ctx.cfg.webhook_scopes,
                Caller::OAuth { client_id, .. } => ctx
                    .st
                    .apps
                    .get(client_id)
                    .map_or(&[][..], |a| &a.scopes[..]),
            };
            if !granted.iter().any(|s| s == scope) {
                return Err(ApiError::new(
                    codes::INSUFFICIENT_SCOPE,
                    "The request requires higher privileges than provided by the access token",
                ));
            }
        }
        if counted {
            let used = ctx.st.operating.entry(key.clone()).or_default().used(start);
            if used >= ctx.cfg.operating_limit {
                return Err(ApiError::new(
                    codes::OPERATION_TIME_LIMIT,
                    crate::faults::OPERATION_TIME_TEXT,
                ));
            }
        }
        match dispatch(ctx, &lower, p) {
            Some(r) => {
                ran = true;
                r
            }
            None => Err(ApiError::new(
                codes::ERROR_METHOD_NOT_FOUND,
                "Method not found!",
            )),
        }
    })();
    ctx.ran = ran;
    ctx.method = outer;
    let known = !matches!(&outcome, Err(e) if e.code == codes::ERROR_METHOD_NOT_FOUND);
    // A call refused by the operating-time check did not run: it costs nothing.
    let blocked = matches!(&outcome, Err(e) if e.code == codes::OPERATION_TIME_LIMIT) && !ran;
    let processing = match (known && !blocked, counted) {
        (false, _) => 0.0,
        (true, true) => ctx.cfg.call_cost + ctx.cost,
        (true, false) => ctx.cost,
    };
    let mut time = Time::default();
    if counted && known && !blocked {
        ctx.st
            .operating
            .entry(key.clone())
            .or_default()
            .add(start, processing);
    }
    let finish = start + processing;
    time.start = Some(round6(start));
    time.finish = Some(round6(finish));
    time.duration = Some(round6(finish - start));
    time.processing = Some(round6(processing));
    time.date_start = Some(clock::iso(start, ctx.cfg.gen.tz));
    time.date_finish = Some(clock::iso(finish, ctx.cfg.gen.tz));
    // `batch` itself is not billed (limits.md): its answer carries no operating-time keys,
    // as the docs' batch samples show; its commands carry their own.
    if counted {
        let op = ctx.st.operating.entry(key).or_default();
        time.operating = Some(round6(op.used(start)));
        time.operating_reset_at = Some(op.reset_at(start));
    }
    (outcome, time)
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
