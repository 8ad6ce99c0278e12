//! The public handle: [`FakePortal`], its builder, and the records tests read back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::{self, Clock};
use crate::faults::Fault;
use crate::im::{self, Im, Message};
use crate::limits::Bucket;
use crate::methods::events::event_body;
use crate::state::{self, App, AuthCode, Config, Outgoing, Quirks, Shared, SharedRef, State};
use crate::store::{Gen, Kind, Table};
use crate::{events, server, util};

/// Scopes a webhook or app gets by default.
pub const ALL_SCOPES: &[&str] = &["crm", "im", "imbot", "user", "task", "department"];

/// How a logged request was authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestAuth {
    /// An incoming webhook of this user.
    Webhook {
        /// The webhook's user.
        user_id: u64,
    },
    /// An OAuth access token of this app, acting as this user.
    OAuth {
        /// The app's `client_id`.
        client_id: String,
        /// The token's user.
        user_id: u64,
    },
    /// No valid auth (the request was refused).
    None,
}

/// One `/rest/` request as the portal saw it, for assertions. Requests that took a
/// [`Fault`] are logged too (with the auth they carried, valid or not); requests whose
/// path names no method, whose body cannot be parsed, or that reach a renamed portal's old
/// address are not.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// The method name as sent (without `.json`).
    pub method: String,
    /// The merged query and body params, without `auth`.
    pub params: Value,
    /// Who called.
    pub auth: RequestAuth,
    /// The HTTP status answered; `0` when no answer was sent ([`Fault::DropConnection`],
    /// [`Fault::DropAfterExecuting`]).
    pub status: u16,
    /// `GET` or `POST`.
    pub http_method: String,
    /// The `error` code answered, as text: `Some("QUERY_LIMIT_EXCEEDED")`, `Some("100")` for
    /// a numeric code ([`Fault::NumericErrorCode`]), `Some("")` for an empty one
    /// ([`Fault::EmptyErrorCode`]). `None` on success and for answers without a JSON error
    /// (the HTML 502, a redirect, a dropped connection). For [`Fault::DropAfterExecuting`]
    /// it is the code of the answer the method produced but that was never sent.
    pub error: Option<String>,
    /// Whether the method itself ran (so a write it does happened). `false` when the request
    /// was refused before: bad auth, the request-rate bucket, a missing scope, the
    /// operating-time limit, an unknown method, or a [`Fault`] that refuses. `true` also when
    /// the method ran and answered an error (`crm.deal.get` of a missing id). A `batch`
    /// counts as executed when the batch itself ran, whatever its commands did.
    pub executed: bool,
}

/// One request to `/oauth/token/`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token` (or whatever was sent).
    pub grant_type: String,
    /// The `client_id` sent.
    pub client_id: String,
    /// `GET` or `POST`.
    pub via: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The `error` code answered, if any.
    pub error: Option<String>,
}

/// One event POST the portal made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The event code (`ONIMBOTMESSAGEADD`).
    pub event: String,
    /// The handler URL.
    pub url: String,
    /// The form-encoded body, exactly as sent.
    pub body: String,
    /// The handler's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The transport error, if it did not.
    pub error: Option<String>,
}

impl Delivery {
    /// The body decoded as PHP's `parse_str` would (every leaf a string).
    pub fn form(&self) -> Value {
        bitrix24::php::decode(self.body.as_bytes(), bitrix24::php::Limits::default())
            .unwrap_or(Value::Null)
    }
}

/// What to install with [`FakePortal::install_app`].
#[derive(Clone, Debug)]
pub struct AppSpec {
    /// Where `ONAPPINSTALL` is POSTed (and nothing if `None`).
    pub handler_url: Option<String>,
    /// Scopes granted (default: every scope the fake portal knows: crm, im, imbot, user, task, department).
    pub scopes: Vec<String>,
    /// The installing user (default 1, the admin).
    pub user_id: u64,
    /// App status letter (`L` local, `F` free, `D`, `T`, `P`; default `L`).
    pub status: String,
}

impl Default for AppSpec {
    fn default() -> Self {
        AppSpec {
            handler_url: None,
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            user_id: 1,
            status: "L".into(),
        }
    }
}

impl AppSpec {
    /// An app with the default scopes and no handler.
    pub fn new() -> Self {
        AppSpec::default()
    }

    /// Sets the install handler URL.
    pub fn handler_url(mut self, url: impl Into<String>) -> Self {
        self.handler_url = Some(url.into());
        self
    }

    /// Sets the granted scopes.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets the installing user.
    pub fn user_id(mut self, user_id: u64) -> Self {
        self.user_id = user_id;
        self
    }
}

/// An installed app: its credentials and the tokens of the install, ready for
/// `bitrix24::Client::builder().oauth(app.app.clone(), app.tokens.clone())`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct InstalledApp {
    /// `client_id` (`local.xxxxxxxxxxxxxx.xxxxxxxx`).
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// The token events carry in `auth[application_token]`.
    pub application_token: String,
    /// The portal's `member_id`.
    pub member_id: String,
    /// The installing user.
    pub user_id: u64,
    /// Credentials as the client takes them.
    pub app: bitrix24::OAuthApp,
    /// The install's tokens (also sent in `ONAPPINSTALL`): `client_endpoint` is the portal's
    /// `/rest/`, `server_endpoint` this same process as OAuth server.
    pub tokens: bitrix24::Tokens,
    /// The `ONAPPINSTALL` delivery, when the app has a handler.
    pub install_event: Option<Delivery>,
}

/// A Bitrix24 cloud plan, as far as the request-rate limit goes (PROTOCOL.md 4.1): each
/// request adds 1 to a per-portal counter that drains by [`drain_per_s`](Self::drain_per_s)
/// per second; one that would lift it above [`burst`](Self::burst) is refused with `503
/// QUERY_LIMIT_EXCEEDED`. Apply one with [`FakePortalBuilder::plan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Plan {
    /// Every cloud plan but Enterprise: burst 50, drains 2 requests per second. The default.
    #[default]
    Standard,
    /// Enterprise: burst 250, drains 5 requests per second.
    Enterprise,
}

impl Plan {
    /// Requests the counter takes before refusing (50 or 250).
    pub const fn burst(self) -> u32 {
        match self {
            Plan::Standard => 50,
            Plan::Enterprise => 250,
        }
    }

    /// Requests per second the counter drains (2.0 or 5.0).
    pub const fn drain_per_s(self) -> f64 {
        match self {
            Plan::Standard => 2.0,
            Plan::Enterprise => 5.0,
        }
    }

    /// The plan's lower-case name: `standard` or `enterprise`.
    pub const fn name(self) -> &'static str {
        match self {
            Plan::Standard => "standard",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// Configures a [`FakePortal`]. Defaults: burst 50, drain 2/s ([`Plan::Standard`]), no latency, tokens live
/// 3600 s, operating limit 480 s per method per 10 minutes, 5 ms simulated cost per call,
/// 20 µs per row a list page reads ([`list_row_cost`](Self::list_row_cost)), real-time clock,
/// 5 users, 3 departments, 100 contacts, 137 deals, 412 leads, 20 companies, 60 tasks.
#[derive(Clone, Debug)]
#[must_use]
pub struct FakePortalBuilder {
    seed: u64,
    burst: f64,
    drain: f64,
    rate: bool,
    latency: Duration,
    token_lifetime: Duration,
    operating_limit: Duration,
    call_cost: Duration,
    row_cost: Duration,
    sleep_cost: bool,
    time_scale: f64,
    start_time: Option<f64>,
    host: String,
    port: u16,
    webhook_scopes: Vec<String>,
    log_capacity: usize,
    sizes: BTreeMap<Kind, u64>,
    quirks: Quirks,
}

impl Default for FakePortalBuilder {
    fn default() -> Self {
        let sizes = [
            (Kind::User, 5),
            (Kind::Department, 3),
            (Kind::Contact, 100),
            (Kind::Deal, 137),
            (Kind::Lead, 412),
            (Kind::Company, 20),
            (Kind::Task, 60),
        ]
        .into_iter()
        .collect();
        FakePortalBuilder {
            seed: 24,
            burst: f64::from(Plan::Standard.burst()),
            drain: Plan::Standard.drain_per_s(),
            rate: true,
            latency: Duration::ZERO,
            token_lifetime: Duration::from_secs(3600),
            operating_limit: Duration::from_secs(480),
            call_cost: Duration::from_millis(5),
            row_cost: Duration::from_micros(20),
            sleep_cost: false,
            time_scale: 1.0,
            start_time: None,
            host: "127.0.0.1".into(),
            port: 0,
            webhook_scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            log_capacity: 100_000,
            sizes,
            quirks: Quirks::default(),
        }
    }
}

impl FakePortalBuilder {
    /// Seed of the generated data and secrets (same seed, same portal).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Leaky bucket: `burst` requests at once, draining `drain_per_s` per second.
    pub fn rate_limit(mut self, burst: u32, drain_per_s: f64) -> Self {
        self.burst = f64::from(burst);
        self.drain = drain_per_s;
        self.rate = true;
        self
    }

    /// The request-rate limit of `plan` (burst 50, drain 2/s for [`Plan::Standard`]; 250
    /// and 5/s for [`Plan::Enterprise`]); same as [`rate_limit`](Self::rate_limit) with the
    /// plan's figures, and turns the limit on.
    pub fn plan(self, plan: Plan) -> Self {
        self.rate_limit(plan.burst(), plan.drain_per_s())
    }

    /// No request-rate limit.
    pub fn rate_limit_off(mut self) -> Self {
        self.rate = false;
        self
    }

    /// Real delay added before answering each request.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Lifetime of access tokens (default 3600 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Operating-time limit per method and app/webhook over 10 minutes (default 480 s).
    pub fn operating_limit(mut self, limit: Duration) -> Self {
        self.operating_limit = limit;
        self
    }

    /// Simulated run time of one call (default 5 ms), counted against the operating limit.
    pub fn call_cost(mut self, cost: Duration) -> Self {
        self.call_cost = cost;
        self
    }

    /// Simulated run time per row a list page reads (default 20 µs): the rows it skips to
    /// reach its offset, the rows a filter looks at on the way, and the rows it returns. A
    /// page that counts `total` (any `start` but `-1`) also runs a COUNT query: 250 rows'
    /// worth plus a tenth of this per row counted. With the defaults a `start=-1` page of 50
    /// costs 5 ms (the call) + 1 ms; the first offset page of 100 contacts 5 + 1 + 5 + 0.2
    /// ms; the page at offset 999 000 of a million contacts about 22 s. `Duration::ZERO`
    /// makes list pages cost only the call.
    pub fn list_row_cost(mut self, cost: Duration) -> Self {
        self.row_cost = cost;
        self
    }

    /// Also really wait for the simulated cost (divided by the time scale), so slow pages
    /// are slow in wall time too. Off by default.
    pub fn sleep_simulated_cost(mut self, on: bool) -> Self {
        self.sleep_cost = on;
        self
    }

    /// How much faster than real time the portal clock runs (default 1.0).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Portal clock at start, unix seconds (default: the system clock).
    pub fn start_time(mut self, unix_seconds: i64) -> Self {
        self.start_time = Some(unix_seconds as f64);
        self
    }

    /// Port to listen on (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Scopes of every webhook (default: every scope the fake portal knows: crm, im, imbot, user, task, department).
    pub fn webhook_scopes(mut self, scopes: &[&str]) -> Self {
        self.webhook_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Requests kept in the log (default 100 000; older ones drop out).
    pub fn request_log_capacity(mut self, n: usize) -> Self {
        self.log_capacity = n;
        self
    }

    /// Quirk, for testing list streams: list method `method` (`crm.lead.list`; case and
    /// `.json` do not matter) reports `total` off by `delta` (`-7`: seven fewer than there
    /// are; never below 0), at the top level and in a batch's `result_total`, while `next`
    /// and the pages stay right. Pages with `start=-1` still say `total: 0`. A client that
    /// stops at `total` instead of at the missing `next` loses rows (or asks for pages that
    /// are not there). Given twice for one method, the last wins.
    pub fn quirk_wrong_total(mut self, method: &str, delta: i64) -> Self {
        self.quirks
            .wrong_total
            .push((server::method_key(method), delta));
        self
    }

    /// Quirk, for testing list streams: list method `method` (`crm.deal.list`) ignores the
    /// range conditions on its id in `filter` (`>ID`, `>=ID`, `<ID`, `<=ID`; for
    /// `crm.item.list` `>id` and friends), as some methods do on real portals. A fast scan
    /// (`order ID`, `>ID` = last id, `start=-1`) then gets the first page again and again; a
    /// client must notice that its cursor does not move.
    pub fn quirk_ignores_id_filter(mut self, method: &str) -> Self {
        self.quirks
            .ignore_id_filter
            .push(server::method_key(method));
        self
    }

    /// Number of seeded users (default 5; user 1 is the admin "Alex Example").
    pub fn users(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::User, n.max(1));
        self
    }

    /// Number of seeded departments (default 3).
    pub fn departments(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Department, n.max(1));
        self
    }

    /// Number of seeded CRM contacts (default 100; a million costs no memory).
    pub fn contacts(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Contact, n);
        self
    }

    /// Number of seeded deals (default 137).
    pub fn deals(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Deal, n);
        self
    }

    /// Number of seeded leads (default 412).
    pub fn leads(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Lead, n);
        self
    }

    /// Number of seeded companies (default 20).
    pub fn companies(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Company, n);
        self
    }

    /// Number of seeded tasks (default 60).
    pub fn tasks(mut self, n: u64) -> Self {
        self.sizes.insert(Kind::Task, n);
        self
    }

    /// Starts the portal on `127.0.0.1`.
    ///
    /// # Panics
    /// If the port cannot be bound; use [`try_start`](Self::try_start) to get the error.
    pub async fn start(self) -> FakePortal {
        match self.try_start().await {
            Ok(p) => p,
            Err(e) => panic!("bitrix24-testkit: cannot start the fake portal: {e}"),
        }
    }

    /// Starts the portal, returning the bind error if any.
    ///
    /// # Errors
    /// The I/O error of binding the listener.
    pub async fn try_start(self) -> std::io::Result<FakePortal> {
        let listener = TcpListener::bind((self.host.as_str(), self.port)).await?;
        let addr = listener.local_addr()?;
        let size = |k: Kind| self.sizes.get(&k).copied().unwrap_or(0);
        let gen = Gen {
            seed: self.seed,
            tz: 7200,
            users: size(Kind::User),
            departments: size(Kind::Department),
            contacts: size(Kind::Contact),
            companies: size(Kind::Company),
        };
        let cfg = Config {
            seed: self.seed,
            token_lifetime: self.token_lifetime.as_secs_f64(),
            refresh_lifetime: 180.0 * 86_400.0,
            operating_limit: self.operating_limit.as_secs_f64(),
            call_cost: self.call_cost.as_secs_f64(),
            row_cost: self.row_cost.as_secs_f64(),
            sleep_cost: self.sleep_cost,
            webhook_scopes: self.webhook_scopes.clone(),
            gen,
            log_capacity: self.log_capacity,
            member_id: util::hex(util::hash(&[self.seed, 0x3E3]), 32),
            language: "en".into(),
            quirks: self.quirks.clone(),
        };
        let tables = self
            .sizes
            .iter()
            .map(|(k, n)| (*k, Table::new(*k, *n)))
            .collect();
        let state = State {
            listeners: vec![format!("http://{addr}")],
            canonical: 0,
            webhooks: HashMap::new(),
            apps: BTreeMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            bucket: Bucket::new(self.burst, self.drain, self.rate),
            operating: HashMap::new(),
            tables,
            im: Im::new(),
            handlers: Vec::new(),
            faults: VecDeque::new(),
            targeted: HashMap::new(),
            command_faults: HashMap::new(),
            latency: self.latency,
            log: VecDeque::new(),
            token_log: Vec::new(),
            deliveries: Vec::new(),
            counter: 0,
            next_handler_id: 0,
            // Seeded contacts use 2·id and 2·id + 1 for their phone and e-mail.
            fm_next_id: 2 * size(Kind::Contact) + 2,
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            clock: Clock::new(
                self.start_time.unwrap_or_else(clock::system_now),
                self.time_scale,
            ),
            state: Mutex::new(state),
            http,
        });
        let router = server::router(shared.clone());
        let task = tokio::spawn(server::serve(listener, router.clone(), 0));
        Ok(FakePortal {
            shared,
            router,
            host: self.host,
            tasks: Mutex::new(vec![task]),
        })
    }
}

/// A running fake portal. Dropping it stops its listeners.
///
/// Time: the portal runs on a virtual clock (real time × `time_scale` + whatever
/// [`advance`](Self::advance) added), which drives token expiry, both limits and every
/// timestamp it sends.
pub struct FakePortal {
    shared: SharedRef,
    router: axum::Router,
    host: String,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl std::fmt::Debug for FakePortal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePortal")
            .field("base_url", &self.base_url())
            .finish()
    }
}

impl FakePortal {
    /// A builder with the defaults.
    pub fn builder() -> FakePortalBuilder {
        FakePortalBuilder::default()
    }

    /// Starts a portal with the defaults.
    pub async fn start() -> FakePortal {
        FakePortal::builder().start().await
    }

    /// The portal's address now, `http://127.0.0.1:<port>` (changes after [`rename`](Self::rename)).
    pub fn base_url(&self) -> String {
        self.shared.lock().base().to_owned()
    }

    /// The REST base for OAuth calls, `{base_url}/rest/` (the `client_endpoint`).
    pub fn rest_url(&self) -> String {
        format!("{}/rest/", self.base_url())
    }

    /// The OAuth server's token URL, `{first address}/oauth/token/`.
    pub fn oauth_token_url(&self) -> String {
        format!("{}/oauth/token/", self.shared.lock().oauth_base())
    }

    /// The portal's `member_id`.
    pub fn member_id(&self) -> String {
        self.shared.cfg.member_id.clone()
    }

    /// An incoming webhook of `user_id`: `http://127.0.0.1:<port>/rest/<user_id>/<code>/`.
    /// Created on first call (same code every time after).
    pub fn webhook_url(&self, user_id: u64) -> String {
        let mut st = self.shared.lock();
        let seed = self.shared.cfg.seed;
        let code = st
            .webhooks
            .entry(user_id)
            .or_insert_with(|| util::token(util::hash(&[seed, 0x400C, user_id]), 16))
            .clone();
        format!("{}/rest/{user_id}/{code}/", st.base())
    }

    /// Deletes the webhook of `user_id`: its calls then get `401 NO_AUTH_FOUND`.
    pub fn revoke_webhook(&self, user_id: u64) {
        self.shared.lock().webhooks.remove(&user_id);
    }

    /// Installs an OAuth app: creates its credentials, issues the install tokens, and POSTs
    /// `ONAPPINSTALL` to `spec.handler_url` (awaited) as a real install does.
    pub async fn install_app(&self, spec: AppSpec) -> InstalledApp {
        let cfg = &self.shared.cfg;
        let now = self.shared.clock.now();
        let (installed, out) = {
            let mut st = self.shared.lock();
            let n = st.apps.len() as u64 + 1;
            let client_id = format!(
                "local.{}.{:08}",
                util::hex(util::hash(&[cfg.seed, 0xC1, n]), 14),
                util::hash(&[cfg.seed, 0xC2, n]) % 100_000_000
            );
            let client_secret = st.secret(cfg.seed ^ 0x5EC, 50);
            let application_token = util::hex(util::hash(&[cfg.seed, 0xA7, n]), 32);
            let app = App {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                application_token: application_token.clone(),
                scopes: spec.scopes.clone(),
                status: spec.status.clone(),
                version: 1,
                code: format!("local.app{n}"),
                id: n,
            };
            st.apps.insert(client_id.clone(), app.clone());
            let (access, refresh, expires) = st.issue(cfg, now, &client_id, spec.user_id);
            let mut tokens = bitrix24::Tokens::new(
                access.as_str(),
                refresh.as_str(),
                format!("{}/rest/", st.base()),
            )
            .expires(expires.floor() as i64)
            .server_endpoint(format!("{}/rest/", st.oauth_base()))
            .member_id(cfg.member_id.clone())
            .domain(st.domain());
            tokens.scope = Some(spec.scopes.join(","));
            let mut out = Vec::new();
            if let Some(url) = &spec.handler_url {
                let auth = state::auth_map(&st, cfg, &app, spec.user_id, access, refresh, expires);
                let handler_id = st.handler_id();
                let data = json!({"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": cfg.language});
                out.push(Outgoing {
                    event: "ONAPPINSTALL".into(),
                    url: url.clone(),
                    body: event_body("ONAPPINSTALL", handler_id, data, now, auth),
                });
            }
            let installed = InstalledApp {
                app: bitrix24::OAuthApp::new(client_id.clone(), client_secret.clone()),
                client_id,
                client_secret,
                application_token,
                member_id: cfg.member_id.clone(),
                user_id: spec.user_id,
                tokens,
                install_event: None,
            };
            (installed, out)
        };
        let mut installed = installed;
        installed.install_event = events::deliver(&self.shared, out).await.into_iter().next();
        installed
    }

    /// A fresh authorization code (lives 30 s of portal time) for the `authorization_code`
    /// grant, as the portal's `/oauth/authorize/` redirect would hand it to the app.
    pub fn authorization_code(&self, client_id: &str, user_id: u64) -> String {
        let now = self.shared.clock.now();
        let mut st = self.shared.lock();
        let code = st.secret(self.shared.cfg.seed ^ 0xC0DE, 32);
        st.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                user_id,
                expires: now + crate::oauth::CODE_LIFETIME,
            },
        );
        code
    }

    /// Expires every access token now: the next call with one gets `401 expired_token`.
    pub fn expire_tokens(&self) {
        let now = self.shared.clock.now();
        for t in self.shared.lock().access.values_mut() {
            t.expires = t.expires.min(now);
        }
    }

    /// Moves the portal clock forward (token expiry, limit windows, timestamps).
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The portal clock, unix seconds.
    pub fn now(&self) -> f64 {
        self.shared.clock.now()
    }

    /// Changes the real delay added to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// The next `n` requests to `/rest/` fail with `fault` (queued after earlier faults).
    /// A method with its own queued faults ([`fail_next_for`](Self::fail_next_for)) takes
    /// those first.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut st = self.shared.lock();
        for _ in 0..n {
            st.faults.push_back(fault.clone());
        }
    }

    /// The next `n` requests to `method` fail with `fault` (queued after earlier faults for
    /// it); requests to other methods do not see them. `method` is the wire name of the HTTP
    /// request (`crm.contact.add`; for a `batch` it is `batch`, not the commands inside),
    /// matched case-insensitively, with or without `.json`. For their method these faults
    /// come before those of [`fail_next`](Self::fail_next), which stay queued meanwhile.
    pub fn fail_next_for(&self, method: &str, n: usize, fault: Fault) {
        let key = server::method_key(method);
        let mut st = self.shared.lock();
        let queue = st.targeted.entry(key).or_default();
        for _ in 0..n {
            queue.push_back(fault.clone());
        }
    }

    /// The next `n` commands of `method` inside a `batch` fail with `fault`, without running:
    /// their error (`QUERY_LIMIT_EXCEEDED`, `OPERATION_TIME_LIMIT`, ...) lands in the batch
    /// answer's `result_error` under the command's key, while the batch itself answers 200
    /// and its other commands run (with `halt`, the later ones do not). Faults without a JSON
    /// error body (a dropped connection, a redirect) are not commands' faults and count as
    /// `INTERNAL_SERVER_ERROR`. `method` is matched case-insensitively.
    pub fn fail_next_command(&self, method: &str, n: usize, fault: Fault) {
        let key = server::method_key(method);
        let mut st = self.shared.lock();
        let queue = st.command_faults.entry(key).or_default();
        for _ in 0..n {
            queue.push_back(fault.clone());
        }
    }

    /// Renames the portal: a new address (a second listener of this process) becomes the
    /// portal's, and the old one answers every `/rest/` request with `302` and a `Location`
    /// on the new one. The OAuth server stays where it was. Returns the new base URL.
    ///
    /// # Panics
    /// If no new port can be bound.
    pub async fn rename(&self) -> String {
        let listener = match TcpListener::bind((self.host.as_str(), 0)).await {
            Ok(l) => l,
            Err(e) => panic!("bitrix24-testkit: cannot bind the renamed portal: {e}"),
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let base = format!("http://{addr}");
        let index = {
            let mut st = self.shared.lock();
            st.listeners.push(base.clone());
            st.canonical = st.listeners.len() - 1;
            st.canonical
        };
        let task = tokio::spawn(server::serve(listener, self.router.clone(), index));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        base
    }

    /// Every `/rest/` request so far (the last `request_log_capacity`).
    pub fn requests(&self) -> Vec<crate::LoggedRequest> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Every request to `/oauth/token/` so far.
    pub fn token_requests(&self) -> Vec<crate::TokenRequest> {
        self.shared.lock().token_log.clone()
    }

    /// Every event POST so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Messages of a dialog: `chat<N>`, or a user id (every private chat with that user,
    /// e.g. a bot's or a person's), oldest first.
    pub fn messages(&self, dialog_id: &str) -> Vec<Message> {
        self.shared.lock().im.dialog_messages(dialog_id)
    }

    /// Bot ids and codes registered now.
    pub fn bots(&self) -> Vec<(u64, String)> {
        self.shared
            .lock()
            .im
            .bots
            .values()
            .map(|b| (b.id, b.code.clone()))
            .collect()
    }

    /// User `user_id` writes `text` in `dialog_id` (a bot's id for a private chat with it, or
    /// `chat<N>`): the message is stored and the bots that see it get `ONIMBOTMESSAGEADD`
    /// (classic) or their v2 event; POSTs are awaited. Returns the message id.
    ///
    /// # Panics
    /// If the user or dialog does not exist (a mistake in the test).
    pub async fn user_says(&self, user_id: u64, dialog_id: &str, text: &str) -> u64 {
        let now = self.shared.clock.now();
        let mut out = Vec::new();
        let id = {
            let mut st = self.shared.lock();
            im::human_message(
                &mut st,
                &self.shared.cfg,
                now,
                user_id,
                dialog_id,
                text,
                &mut out,
            )
        };
        let id = match id {
            Ok(id) => id,
            Err(e) => panic!(
                "user_says({user_id}, {dialog_id:?}): {}: {}",
                e.code, e.description
            ),
        };
        events::deliver(&self.shared, out).await;
        id
    }

    /// User `user_id` opens a private dialog with `bot_id`: the bot gets `ONIMBOTJOINCHAT`.
    pub async fn open_dialog(&self, user_id: u64, bot_id: u64) {
        let now = self.shared.clock.now();
        let mut out = Vec::new();
        {
            let mut st = self.shared.lock();
            let chat = st.im.private_chat(user_id, bot_id, now);
            if let Some(bot) = st.im.bots.get(&bot_id).cloned() {
                im::join_event(
                    &mut st,
                    &self.shared.cfg,
                    now,
                    &bot,
                    chat,
                    user_id,
                    &mut out,
                );
            }
        }
        events::deliver(&self.shared, out).await;
    }

    /// Creates a group chat owned by `owner` with `users`; returns its id (dialog `chat<id>`).
    /// Bots among `users` get `ONIMBOTJOINCHAT` (awaited).
    pub async fn create_chat(&self, owner: u64, title: &str, users: &[u64]) -> u64 {
        let now = self.shared.clock.now();
        let mut out = Vec::new();
        let id = {
            let mut st = self.shared.lock();
            let id = st.im.group_chat(owner, title, users, now);
            for u in users {
                if let Some(bot) = st.im.bots.get(u).cloned() {
                    im::join_event(&mut st, &self.shared.cfg, now, &bot, id, owner, &mut out);
                }
            }
            id
        };
        events::deliver(&self.shared, out).await;
        id
    }

    /// An admin deletes bot `bot_id`: it is removed and its handler gets `ONIMBOTDELETE`.
    pub async fn delete_bot(&self, bot_id: u64) {
        let now = self.shared.clock.now();
        let mut out = Vec::new();
        {
            let mut st = self.shared.lock();
            if let Some(bot) = im::remove_bot(&mut st, bot_id) {
                im::delete_event(&mut st, &self.shared.cfg, now, &bot, 1, &mut out);
            }
        }
        events::deliver(&self.shared, out).await;
    }
}
