//! The portal's state behind one mutex, and its fixed configuration.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::clock::Clock;
use crate::faults::Fault;
use crate::im::Im;
use crate::limits::{Bucket, Operating};
use crate::store::{Gen, Kind, Table};
use crate::util;
use crate::{Delivery, LoggedRequest, TokenRequest};

/// Settings fixed at start.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub seed: u64,
    pub token_lifetime: f64,
    pub refresh_lifetime: f64,
    pub operating_limit: f64,
    pub call_cost: f64,
    pub row_cost: f64,
    pub sleep_cost: bool,
    pub webhook_scopes: Vec<String>,
    pub gen: Gen,
    pub log_capacity: usize,
    pub member_id: String,
    pub language: String,
    pub quirks: Quirks,
}

/// Deliberate misbehaviour of list methods, for testing a client's list streams against
/// portals that get pagination wrong. Keys are lower-cased method names.
#[derive(Clone, Debug, Default)]
pub(crate) struct Quirks {
    /// `total` reported this far off the truth (`next` stays right).
    pub wrong_total: Vec<(String, i64)>,
    /// Methods that drop `>ID`, `>=ID`, `<ID`, `<=ID` conditions from their filter.
    pub ignore_id_filter: Vec<String>,
}

impl Quirks {
    /// The error added to `total` by `method`, if it has that quirk.
    pub(crate) fn total_delta(&self, method: &str) -> Option<i64> {
        self.wrong_total
            .iter()
            .rev()
            .find(|(m, _)| m == method)
            .map(|(_, d)| *d)
    }

    /// Whether `method` ignores id-range conditions.
    pub(crate) fn ignores_id_filter(&self, method: &str) -> bool {
        self.ignore_id_filter.iter().any(|m| m == method)
    }
}

/// Who made a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    Webhook { user_id: u64 },
    OAuth { client_id: String, user_id: u64 },
}

impl Caller {
    pub(crate) fn user_id(&self) -> u64 {
        match self {
            Caller::Webhook { user_id } | Caller::OAuth { user_id, .. } => *user_id,
        }
    }

    /// The key operating time is counted under (one app or one webhook).
    pub(crate) fn limit_key(&self) -> String {
        match self {
            Caller::Webhook { user_id } => format!("hook:{user_id}"),
            Caller::OAuth { client_id, .. } => format!("app:{client_id}"),
        }
    }
}

/// An installed application.
#[derive(Clone, Debug)]
pub(crate) struct App {
    pub client_id: String,
    pub client_secret: String,
    pub application_token: String,
    pub scopes: Vec<String>,
    pub status: String,
    pub version: u64,
    pub code: String,
    pub id: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessToken {
    pub client_id: String,
    pub user_id: u64,
    pub expires: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct RefreshToken {
    pub client_id: String,
    pub user_id: u64,
    pub expires: f64,
    pub used: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub user_id: u64,
    pub expires: f64,
}

/// An `event.bind` registration.
#[derive(Clone, Debug)]
pub(crate) struct Handler {
    pub id: u64,
    pub client_id: String,
    pub event: String,
    pub handler: String,
    pub auth_type: u64,
    pub offline: bool,
}

/// Everything that changes.
pub(crate) struct State {
    /// Listener base URLs (`http://127.0.0.1:port`) by listener index.
    pub listeners: Vec<String>,
    /// The listener the portal's name points at now; others answer 302.
    pub canonical: usize,
    pub webhooks: HashMap<u64, String>,
    pub apps: BTreeMap<String, App>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthCode>,
    pub bucket: Bucket,
    pub operating: HashMap<(String, String), Operating>,
    pub tables: BTreeMap<Kind, Table>,
    pub im: Im,
    pub handlers: Vec<Handler>,
    /// Faults any request takes, in order.
    pub faults: VecDeque<Fault>,
    /// Faults only requests to one method take, by lower-cased wire name (no `.json`).
    pub targeted: HashMap<String, VecDeque<Fault>>,
    /// Faults of batch commands, per lower-cased method
    /// ([`FakePortal::fail_next_command`](crate::FakePortal::fail_next_command)).
    pub command_faults: HashMap<String, VecDeque<Fault>>,
    pub latency: Duration,
    pub log: VecDeque<LoggedRequest>,
    pub token_log: Vec<TokenRequest>,
    pub deliveries: Vec<Delivery>,
    pub counter: u64,
    pub next_handler_id: u64,
    /// The id the next CRM multi-field value (a phone, an e-mail) gets.
    pub fm_next_id: u64,
}

impl State {
    /// A fresh deterministic secret of `len` characters.
    pub(crate) fn secret(&mut self, seed: u64, len: usize) -> String {
        self.counter += 1;
        util::token(util::hash(&[seed, self.counter]), len)
    }

    /// The portal's base URL (`http://127.0.0.1:port`).
    pub(crate) fn base(&self) -> &str {
        &self.listeners[self.canonical]
    }

    /// The portal's host (`127.0.0.1:port`), as events give `domain`.
    pub(crate) fn domain(&self) -> String {
        self.base().trim_start_matches("http://").to_owned()
    }

    /// The OAuth server's base: the first listener, which keeps serving `/oauth/token/` after
    /// a rename.
    pub(crate) fn oauth_base(&self) -> &str {
        &self.listeners[0]
    }

    pub(crate) fn table(&self, kind: Kind) -> &Table {
        &self.tables[&kind]
    }

    pub(crate) fn table_mut(&mut self, kind: Kind) -> &mut Table {
        self.tables.get_mut(&kind).expect("every kind has a table")
    }

    /// Issues an access/refresh pair for `client_id` acting as `user_id`.
    pub(crate) fn issue(
        &mut self,
        cfg: &Config,
        now: f64,
        client_id: &str,
        user_id: u64,
    ) -> (String, String, f64) {
        let access = self.secret(cfg.seed ^ 0xA11, 40);
        let refresh = self.secret(cfg.seed ^ 0xEF1, 40);
        let expires = now + cfg.token_lifetime;
        self.access.insert(
            access.clone(),
            AccessToken {
                client_id: client_id.to_owned(),
                user_id,
                expires,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                user_id,
                expires: now + cfg.refresh_lifetime,
                used: false,
            },
        );
        (access, refresh, expires)
    }

    /// Records a request, dropping the oldest past the log's capacity.
    pub(crate) fn log_request(&mut self, cap: usize, entry: LoggedRequest) {
        if cap == 0 {
            return;
        }
        while self.log.len() >= cap {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    /// The fault the next request to `method` takes: its own queue first, then the shared
    /// one. `method` is lower-cased already; `None` for a path that names no method.
    pub(crate) fn take_fault(&mut self, method: Option<&str>) -> Option<Fault> {
        if let Some(queue) = method.and_then(|m| self.targeted.get_mut(m)) {
            if let Some(f) = queue.pop_front() {
                return Some(f);
            }
        }
        self.faults.pop_front()
    }

    /// A new id for an event handler registration.
    pub(crate) fn handler_id(&mut self) -> u64 {
        self.next_handler_id += 1;
        self.next_handler_id
    }
}

/// Everything the server and the test handle share.
pub(crate) struct Shared {
    pub cfg: Config,
    pub clock: Clock,
    pub state: Mutex<State>,
    pub http: reqwest::Client,
}

impl Shared {
    /// The state, recovering from a poisoned lock (a panicking test must not wedge the
    /// portal for the others).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) type SharedRef = Arc<Shared>;

/// An event body to POST once the state lock is released.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub event: String,
    pub url: String,
    pub body: String,
}

/// The auth set (`auth[...]` of events) of an app acting as `user_id`, with fresh tokens.
pub(crate) fn auth_set(
    st: &mut State,
    cfg: &Config,
    now: f64,
    app: &App,
    user_id: u64,
) -> serde_json::Map<String, Value> {
    let (access, refresh, expires) = st.issue(cfg, now, &app.client_id, user_id);
    auth_map(st, cfg, app, user_id, access, refresh, expires)
}

/// The auth set of an event for given tokens, keys in the order the portal sends them.
pub(crate) fn auth_map(
    st: &State,
    cfg: &Config,
    app: &App,
    user_id: u64,
    access: String,
    refresh: String,
    expires: f64,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let s = |v: String| Value::String(v);
    m.insert("access_token".into(), s(access));
    m.insert("expires".into(), s((expires.floor() as i64).to_string()));
    m.insert(
        "expires_in".into(),
        s((cfg.token_lifetime as i64).to_string()),
    );
    m.insert("scope".into(), s(app.scopes.join(",")));
    m.insert("domain".into(), s(st.domain()));
    m.insert(
        "server_endpoint".into(),
        s(format!("{}/rest/", st.oauth_base())),
    );
    m.insert("status".into(), s(app.status.clone()));
    m.insert("client_endpoint".into(), s(format!("{}/rest/", st.base())));
    m.insert("member_id".into(), s(cfg.member_id.clone()));
    m.insert("user_id".into(), s(user_id.to_string()));
    m.insert("refresh_token".into(), s(refresh));
    m.insert("application_token".into(), s(app.application_token.clone()));
    m
}
