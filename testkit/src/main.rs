//! `cargo run -p bitrix24-testkit -- --port 8090`: a seeded fake portal for any client.

use std::time::Duration;

use bitrix24_testkit::{AppSpec, FakePortal, FakePortalBuilder, Plan};

const USAGE: &str = "\
usage: bitrix24-testkit [OPTIONS]

A seeded fake Bitrix24 portal on 127.0.0.1. Values go as `--flag VALUE` or `--flag=VALUE`.

  --port N               port to listen on (default 8090; 0 picks a free one)
  --contacts N           seeded CRM contacts (default 100)
  --deals N              seeded deals (default 137)
  --leads N              seeded leads (default 412)
  --users N              seeded users (default 5, at least 1)
  --seed N               seed of the data and secrets (default 24)
  --latency-ms N         real delay added to every request, milliseconds (default 0)
  --plan standard|enterprise
                         request-rate plan: standard = burst 50, drain 2/s (default);
                         enterprise = burst 250, drain 5/s
  --burst N              requests the rate bucket takes at once, at least 1 (overrides the plan)
  --drain X              requests per second the bucket drains, >= 0 (overrides the plan)
  --no-rate-limit        no request-rate limit (not with --plan, --burst or --drain)
  --time-scale X         how much faster than real time the portal clock runs, > 0 (default 1)
  --operating-limit-s X  operating time per method and webhook/app over 10 minutes,
                         seconds, >= 0 (default 480)
  --call-cost-ms N       simulated run time of one call, milliseconds (default 5)
  --list-row-cost-us N   simulated run time per row a list page reads, microseconds
                         (default 20; a COUNT for `total` adds 250 rows' worth + a tenth per row)
  --quirk-wrong-total METHOD=DELTA
                         list METHOD reports `total` off by DELTA (next stays right); repeatable
  --quirk-ignores-id-filter METHOD
                         list METHOD ignores >ID, >=ID, <ID, <=ID in its filter; repeatable
  --env-file PATH        also write the portal's URLs and the app's credentials to PATH as
                         shell `export B24_...=` lines (mode 0600), for `source PATH`
  -h, --help             print this and exit";

/// Operating-time limit of the binary when not given, seconds (the builder's default).
const DEFAULT_OPERATING_LIMIT_S: f64 = 480.0;
/// Simulated cost of one call when not given, milliseconds (the builder's default).
const DEFAULT_CALL_COST_MS: u64 = 5;
/// Simulated cost of one list row when not given, microseconds (the builder's default).
const DEFAULT_LIST_ROW_COST_US: u64 = 20;

/// What the command line asks for, before anything is started.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    port: u16,
    contacts: Option<u64>,
    deals: Option<u64>,
    leads: Option<u64>,
    users: Option<u64>,
    seed: Option<u64>,
    latency_ms: u64,
    /// `None`: no request-rate limit.
    rate: Option<Rate>,
    time_scale: f64,
    operating_limit_s: f64,
    call_cost_ms: u64,
    list_row_cost_us: u64,
    /// `(method, delta)` of `--quirk-wrong-total`.
    wrong_total: Vec<(String, i64)>,
    /// Methods of `--quirk-ignores-id-filter`.
    ignores_id_filter: Vec<String>,
    /// `--env-file`: where to write the `export` lines.
    env_file: Option<String>,
}

/// The request-rate limit in force.
#[derive(Clone, Debug, PartialEq)]
struct Rate {
    plan: Plan,
    burst: u32,
    drain: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 8090,
            contacts: None,
            deals: None,
            leads: None,
            users: None,
            seed: None,
            latency_ms: 0,
            rate: Some(Rate {
                plan: Plan::Standard,
                burst: Plan::Standard.burst(),
                drain: Plan::Standard.drain_per_s(),
            }),
            time_scale: 1.0,
            operating_limit_s: DEFAULT_OPERATING_LIMIT_S,
            call_cost_ms: DEFAULT_CALL_COST_MS,
            list_row_cost_us: DEFAULT_LIST_ROW_COST_US,
            wrong_total: Vec::new(),
            ignores_id_filter: Vec::new(),
            env_file: None,
        }
    }
}

/// The outcome of reading the command line.
#[derive(Debug, PartialEq)]
enum Command {
    Run(Box<Options>),
    Help,
}

fn parse_value<T: std::str::FromStr>(flag: &str, value: &str, what: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: expected {what}, got {value:?}"))
}

fn parse_float(flag: &str, value: &str, what: &str, ok: fn(f64) -> bool) -> Result<f64, String> {
    let x: f64 = parse_value(flag, value, what)?;
    if x.is_finite() && ok(x) {
        Ok(x)
    } else {
        Err(format!("{flag}: expected {what}, got {value:?}"))
    }
}

/// Reads the arguments (without the program name). `Err` is a message for the user.
fn parse(args: &[String]) -> Result<Command, String> {
    let mut o = Options::default();
    let mut plan: Option<Plan> = None;
    let mut burst: Option<u32> = None;
    let mut drain: Option<f64> = None;
    let mut no_rate_limit = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--no-rate-limit" => {
                if inline.is_some() {
                    return Err(format!("{flag} takes no value"));
                }
                no_rate_limit = true;
                continue;
            }
            _ => {}
        }
        let known = [
            "--port",
            "--contacts",
            "--deals",
            "--leads",
            "--users",
            "--seed",
            "--latency-ms",
            "--plan",
            "--burst",
            "--drain",
            "--time-scale",
            "--operating-limit-s",
            "--call-cost-ms",
            "--list-row-cost-us",
            "--quirk-wrong-total",
            "--quirk-ignores-id-filter",
            "--env-file",
        ];
        if !known.contains(&flag) {
            return Err(format!("unknown argument {arg:?}"));
        }
        let value = match inline.or_else(|| it.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        let v = value.as_str();
        let count = "a whole number >= 0";
        match flag {
            "--port" => o.port = parse_value(flag, v, "a port number 0-65535")?,
            "--contacts" => o.contacts = Some(parse_value(flag, v, count)?),
            "--deals" => o.deals = Some(parse_value(flag, v, count)?),
            "--leads" => o.leads = Some(parse_value(flag, v, count)?),
            "--users" => {
                let n: u64 = parse_value(flag, v, "a whole number >= 1")?;
                if n == 0 {
                    return Err(format!("{flag}: expected a whole number >= 1, got {v:?}"));
                }
                o.users = Some(n);
            }
            "--seed" => o.seed = Some(parse_value(flag, v, count)?),
            "--latency-ms" => o.latency_ms = parse_value(flag, v, "milliseconds, >= 0")?,
            "--plan" => {
                plan = Some(match v.trim().to_ascii_lowercase().as_str() {
                    "standard" => Plan::Standard,
                    "enterprise" => Plan::Enterprise,
                    _ => {
                        return Err(format!(
                            "{flag}: expected `standard` or `enterprise`, got {v:?}"
                        ))
                    }
                });
            }
            "--burst" => {
                let what = "a whole number of requests >= 1";
                let n: u32 = parse_value(flag, v, what)?;
                if n == 0 {
                    return Err(format!("{flag}: expected {what}, got {v:?}"));
                }
                burst = Some(n);
            }
            "--drain" => {
                drain = Some(parse_float(flag, v, "requests per second >= 0", |x| {
                    x >= 0.0
                })?);
            }
            "--time-scale" => {
                o.time_scale = parse_float(flag, v, "a factor > 0", |x| x > 0.0)?;
            }
            "--operating-limit-s" => {
                let x = parse_float(flag, v, "seconds >= 0", |x| x >= 0.0)?;
                if Duration::try_from_secs_f64(x).is_err() {
                    return Err(format!("{flag}: {v:?} seconds is too long"));
                }
                o.operating_limit_s = x;
            }
            "--call-cost-ms" => o.call_cost_ms = parse_value(flag, v, "milliseconds, >= 0")?,
            "--list-row-cost-us" => {
                o.list_row_cost_us = parse_value(flag, v, "microseconds, >= 0")?;
            }
            "--quirk-wrong-total" => {
                let what = "METHOD=DELTA, e.g. crm.lead.list=-7";
                let (method, delta) = v
                    .split_once('=')
                    .filter(|(m, _)| !m.trim().is_empty())
                    .ok_or_else(|| format!("{flag}: expected {what}, got {v:?}"))?;
                let delta: i64 = parse_value(flag, delta, what)?;
                o.wrong_total.push((method.trim().to_owned(), delta));
            }
            "--env-file" => {
                if v.trim().is_empty() {
                    return Err(format!("{flag}: expected a file path, got {v:?}"));
                }
                o.env_file = Some(v.to_owned());
            }
            "--quirk-ignores-id-filter" => {
                if v.trim().is_empty() {
                    return Err(format!("{flag}: expected a method name, got {v:?}"));
                }
                o.ignores_id_filter.push(v.trim().to_owned());
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if no_rate_limit {
        if plan.is_some() || burst.is_some() || drain.is_some() {
            return Err(
                "--no-rate-limit cannot be combined with --plan, --burst or --drain".into(),
            );
        }
        o.rate = None;
    } else {
        let plan = plan.unwrap_or_default();
        o.rate = Some(Rate {
            plan,
            burst: burst.unwrap_or(plan.burst()),
            drain: drain.unwrap_or(plan.drain_per_s()),
        });
    }
    Ok(Command::Run(Box::new(o)))
}

impl Options {
    /// The portal these options describe.
    fn builder(&self) -> FakePortalBuilder {
        let mut b = FakePortal::builder()
            .port(self.port)
            .latency(Duration::from_millis(self.latency_ms))
            .time_scale(self.time_scale)
            .operating_limit(Duration::from_secs_f64(self.operating_limit_s))
            .call_cost(Duration::from_millis(self.call_cost_ms))
            .list_row_cost(Duration::from_micros(self.list_row_cost_us));
        for (method, delta) in &self.wrong_total {
            b = b.quirk_wrong_total(method, *delta);
        }
        for method in &self.ignores_id_filter {
            b = b.quirk_ignores_id_filter(method);
        }
        b = match &self.rate {
            Some(r) => b.rate_limit(r.burst, r.drain),
            None => b.rate_limit_off(),
        };
        for (n, set) in [
            (
                self.contacts,
                FakePortalBuilder::contacts as fn(FakePortalBuilder, u64) -> FakePortalBuilder,
            ),
            (self.deals, FakePortalBuilder::deals),
            (self.leads, FakePortalBuilder::leads),
            (self.users, FakePortalBuilder::users),
            (self.seed, FakePortalBuilder::seed),
        ] {
            if let Some(n) = n {
                b = set(b, n);
            }
        }
        b
    }

    /// The limits in force, one per line, for the startup banner.
    fn limits(&self) -> String {
        let rate = match &self.rate {
            None => "off".to_owned(),
            Some(r) => {
                let plan = if r.burst == r.plan.burst() && r.drain == r.plan.drain_per_s() {
                    format!(" ({} plan)", r.plan.name())
                } else {
                    format!(" ({} plan, overridden)", r.plan.name())
                };
                format!(
                    "burst {}, drains {}/s{plan}: 503 QUERY_LIMIT_EXCEEDED past it",
                    r.burst, r.drain
                )
            }
        };
        let mut quirks: Vec<String> = self
            .wrong_total
            .iter()
            .map(|(m, d)| format!("{m} reports total {d:+}"))
            .collect();
        quirks.extend(
            self.ignores_id_filter
                .iter()
                .map(|m| format!("{m} ignores >ID/<ID")),
        );
        let quirks = if quirks.is_empty() {
            "none".to_owned()
        } else {
            quirks.join("; ")
        };
        format!(
            "request rate:       {rate}\n\
             operating time:     {} s per method per webhook/app over 10 min, {} ms per call, {} µs per list row: 429 OPERATION_TIME_LIMIT past it\n\
             clock:              {}x real time\n\
             latency:            {} ms per request\n\
             list quirks:        {quirks}",
            self.operating_limit_s,
            self.call_cost_ms,
            self.list_row_cost_us,
            self.time_scale,
            self.latency_ms
        )
    }
}

/// Prints `text` and a newline on stdout; a closed stdout (`| head`) is not an error.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(Command::Run(o)) => *o,
        Ok(Command::Help) => {
            say(USAGE);
            return;
        }
        Err(e) => {
            eprintln!("bitrix24-testkit: {e}\nrun with --help for the usage");
            std::process::exit(2);
        }
    };
    let portal = match options.builder().try_start().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bitrix24-testkit: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let app = portal.install_app(AppSpec::default()).await;
    let hook = portal.webhook_url(1);
    if let Some(path) = &options.env_file {
        let oauth_server = portal
            .oauth_token_url()
            .trim_end_matches("/oauth/token/")
            .to_owned();
        let vars = [
            ("B24_WEBHOOK_URL", hook.clone()),
            ("B24_CLIENT_ENDPOINT", portal.rest_url()),
            ("B24_OAUTH_SERVER", oauth_server),
            ("B24_CLIENT_ID", app.client_id.clone()),
            ("B24_CLIENT_SECRET", app.client_secret.clone()),
            (
                "B24_ACCESS_TOKEN",
                app.tokens.access_token.expose().to_owned(),
            ),
            (
                "B24_REFRESH_TOKEN",
                app.tokens.refresh_token.expose().to_owned(),
            ),
            ("B24_APPLICATION_TOKEN", app.application_token.clone()),
            ("B24_MEMBER_ID", app.member_id.clone()),
        ];
        // Values are URLs and [A-Za-z0-9.] tokens; quoted all the same.
        let text: String = vars
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "")))
            .collect();
        if let Err(e) = write_private(path, &text) {
            eprintln!("bitrix24-testkit: cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
    say(&format!(
        "Fake Bitrix24 portal at {}\n\
         webhook URL:        {hook}\n\
         OAuth client_endpoint: {}\n\
         OAuth token URL:    {}\n\
         client_id:          {}\n\
         client_secret:      {}\n\
         access_token:       {}\n\
         refresh_token:      {}\n\
         application_token:  {}\n\
         member_id:          {}\n\
         \n\
         {}\n\
         \n\
         try: curl {hook}user.current\n\
         Ctrl-C stops it.",
        portal.base_url(),
        portal.rest_url(),
        portal.oauth_token_url(),
        app.client_id,
        app.client_secret,
        app.tokens.access_token.expose(),
        app.tokens.refresh_token.expose(),
        app.application_token,
        app.member_id,
        options.limits(),
    ));
    let _ = tokio::signal::ctrl_c().await;
}

/// Writes `text` to `path`, readable by its owner only on Unix (it holds secrets).
fn write_private(path: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s)) {
            Ok(Command::Run(o)) => *o,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    fn fails(s: &str) -> String {
        match parse(&args(s)) {
            Err(e) => e,
            other => panic!("{s:?} should fail, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_standard_plan_and_the_builder_defaults() {
        let o = run("");
        assert_eq!(o, Options::default());
        assert_eq!(o.port, 8090);
        let r = o.rate.unwrap();
        assert_eq!((r.plan, r.burst, r.drain), (Plan::Standard, 50, 2.0));
        assert_eq!(
            (o.operating_limit_s, o.call_cost_ms, o.time_scale),
            (480.0, 5, 1.0)
        );
    }

    #[test]
    fn plans_and_overrides() {
        let r = run("--plan enterprise").rate.unwrap();
        assert_eq!((r.plan, r.burst, r.drain), (Plan::Enterprise, 250, 5.0));
        // Overrides win whatever their order.
        let r = run("--burst 10 --plan Enterprise --drain=0.5")
            .rate
            .unwrap();
        assert_eq!((r.plan, r.burst, r.drain), (Plan::Enterprise, 10, 0.5));
        assert!(run("--plan enterprise --burst 10")
            .limits()
            .contains("burst 10, drains 5/s (enterprise plan, overridden)"));
        assert_eq!(run("--no-rate-limit").rate, None);
        assert!(run("--no-rate-limit")
            .limits()
            .contains("request rate:       off"));
    }

    #[test]
    fn every_flag_is_read() {
        let o = run(
            "--port 0 --contacts 7 --deals 8 --leads 9 --users 2 --seed 3 --latency-ms 4 \
             --time-scale 60 --operating-limit-s 1.5 --call-cost-ms 250",
        );
        assert_eq!(
            o,
            Options {
                port: 0,
                contacts: Some(7),
                deals: Some(8),
                leads: Some(9),
                users: Some(2),
                seed: Some(3),
                latency_ms: 4,
                time_scale: 60.0,
                operating_limit_s: 1.5,
                call_cost_ms: 250,
                ..Options::default()
            }
        );
        let banner = o.limits();
        assert!(banner.contains("1.5 s per method"), "{banner}");
        assert!(banner.contains("250 ms per call"), "{banner}");
        assert!(banner.contains("60x real time"), "{banner}");
        assert!(banner.contains("list quirks:        none"), "{banner}");
    }

    #[test]
    fn list_cost_and_quirks() {
        let o = run("--list-row-cost-us 0 --quirk-wrong-total crm.lead.list=-7 \
             --quirk-wrong-total=crm.deal.list=+3 --quirk-ignores-id-filter crm.deal.list");
        assert_eq!(o.list_row_cost_us, 0);
        assert_eq!(
            o.wrong_total,
            [
                ("crm.lead.list".to_owned(), -7),
                ("crm.deal.list".to_owned(), 3)
            ]
        );
        assert_eq!(o.ignores_id_filter, ["crm.deal.list"]);
        let banner = o.limits();
        assert!(
            banner.contains("crm.lead.list reports total -7; crm.deal.list reports total +3; crm.deal.list ignores >ID/<ID"),
            "{banner}"
        );
        assert!(banner.contains("0 µs per list row"), "{banner}");
        assert!(fails("--quirk-wrong-total crm.lead.list").contains("METHOD=DELTA"));
        assert!(fails("--quirk-wrong-total =5").contains("METHOD=DELTA"));
        assert!(fails("--quirk-wrong-total crm.lead.list=x").contains("METHOD=DELTA"));
        assert!(fails("--list-row-cost-us -1").contains("--list-row-cost-us"));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&args("--port 1 --help")), Ok(Command::Help));
        assert_eq!(parse(&args("-h")), Ok(Command::Help));
        for flag in [
            "--burst",
            "--drain",
            "--plan",
            "--time-scale",
            "--operating-limit-s",
            "--list-row-cost-us",
            "--quirk-wrong-total",
            "--quirk-ignores-id-filter",
        ] {
            assert!(USAGE.contains(flag), "{flag}");
        }
    }

    #[test]
    fn bad_values_are_refused_with_a_message() {
        assert_eq!(fails("--burst"), "--burst needs a value");
        assert!(fails("--burst 0").contains("--burst: expected a whole number"));
        assert!(fails("--burst -3").contains("got \"-3\""));
        assert!(fails("--drain abc").contains("--drain: expected requests per second"));
        assert!(fails("--drain -1").contains("--drain"));
        assert!(fails("--drain NaN").contains("--drain"));
        assert!(fails("--drain inf").contains("--drain"));
        assert!(fails("--plan gold").contains("`standard` or `enterprise`"));
        assert!(fails("--time-scale 0").contains("--time-scale: expected a factor > 0"));
        assert!(fails("--operating-limit-s -1").contains("--operating-limit-s"));
        assert!(fails("--operating-limit-s 1e300").contains("too long"));
        assert!(fails("--call-cost-ms 1.5").contains("--call-cost-ms"));
        assert!(fails("--port 70000").contains("--port"));
        assert!(fails("--users 0").contains("--users"));
        assert!(fails("--frobnicate").contains("unknown argument \"--frobnicate\""));
        assert!(fails("--no-rate-limit=1").contains("takes no value"));
        assert!(fails("--no-rate-limit --burst 5").contains("cannot be combined"));
    }
}
