//! Benchmarks of the call path against the fake portal, in-process.
//!
//! ```sh
//! cargo run --release --example bench -- overhead [CALLS]   # default 10000
//! cargo run --release --example bench -- limiter [CALLS]    # default 2000
//! cargo run --release --example bench -- bulk [ADDS]        # default 10000
//! cargo run --release --example bench -- scan [CONTACTS] [MODES]  # default 20000, all modes
//! ```
//!
//! `overhead`: `CALLS` sequential `user.current` calls, the typed client versus a bare
//! `reqwest` + `serde_json` loop against the same server (no latency, no rate limit). The fake
//! portal runs on its own threads; the client runs on a single-threaded runtime on the main
//! thread, whose CPU time (user + system, `getrusage(RUSAGE_THREAD)`) is the client's cost.
//!
//! `limiter`: `CALLS` `crm.contact.add` one by one through the client's bucket against a
//! portal whose bucket is 50 / 20 per second: wall time, its ratio to the floor the portal's
//! bucket allows (`(CALLS - 50) / 20` s), and the `QUERY_LIMIT_EXCEEDED` refusals the portal
//! answered.

//!
//! `bulk`: `ADDS` `crm.contact.add` through `Client::call_many` (batches of 50) against a
//! portal with a 50 / 20 per s bucket and a 20 ms round trip: HTTP requests, wall time, its
//! ratio to the bucket's floor (the first 50 batch requests at once, then 20 per s, plus one
//! round trip), refusals, and whether every ID came back in input order.
//!
//! `scan`: a full scan of `CONTACTS` contacts (`crm.contact.list`) through a list stream in
//! each mode (`offset`, `batched-offset`, `fast`, `batched-fast`, or those named, comma
//! separated), same portal settings; items are counted and checked in order without
//! collecting them: requests, wall time, and the growth of the process's peak RSS during the
//! scan (the peak is reset through `/proc/self/clear_refs` before each mode; the fake portal
//! runs in the same process, so its page buffers count too).

#![allow(deprecated)]

use std::time::{Duration, Instant};

use bitrix24::crm::CrmContactAdd;
use bitrix24::types::CrmContactAddFields;
use bitrix24::{codes, Client, RateLimit};
use bitrix24_testkit::FakePortal;

/// CPU time of the calling thread (user + system).
fn thread_cpu() -> Duration {
    cpu(libc::RUSAGE_THREAD)
}

/// CPU time of the whole process, the in-process portal included (user + system).
fn process_cpu() -> Duration {
    cpu(libc::RUSAGE_SELF)
}

fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` writes into the zeroed struct we pass; RUSAGE_THREAD is the calling
    // thread.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The fake portal on its own runtime and threads, so that its CPU time is not the client's.
fn start_portal(builder: bitrix24_testkit::FakePortalBuilder) -> FakePortal {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let portal = builder.start().await;
            tx.send(portal).expect("send the portal");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the portal starts")
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn overhead(calls: usize) {
    let portal = start_portal(
        FakePortal::builder()
            .rate_limit_off()
            .request_log_capacity(16),
    );
    let url = portal.webhook_url(1);
    let rt = client_runtime();
    rt.block_on(async {
        let client = Client::builder()
            .webhook(url.clone())
            .rate_limit(RateLimit::off())
            .build()
            .expect("client");
        let bare = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest");
        let endpoint = format!("{url}user.current");
        // Warm up both (connections, allocator).
        for _ in 0..200 {
            client.user().current().await.expect("typed call");
            bare_call(&bare, &endpoint).await;
        }
        // Many short interleaved rounds, so that machine noise hits all three alike; the
        // medians of the rounds are reported.
        let rounds = 100;
        let per_round = (calls / rounds).max(1);
        let mut samples: [Vec<[Duration; 3]>; 3] = Default::default();
        for _ in 0..rounds {
            for (which, sample) in samples.iter_mut().enumerate() {
                let (t0, p0, w0) = (thread_cpu(), process_cpu(), Instant::now());
                for _ in 0..per_round {
                    match which {
                        0 => {
                            let me = client.user().current().await.expect("typed call");
                            std::hint::black_box(me);
                        }
                        1 => {
                            let r = client
                                .call_raw("user.current", serde_json::json!({}))
                                .read()
                                .await
                                .expect("raw call");
                            std::hint::black_box(r);
                        }
                        _ => bare_call(&bare, &endpoint).await,
                    }
                }
                sample.push([thread_cpu() - t0, process_cpu() - p0, w0.elapsed()]);
            }
        }
        let medians = |v: &[[Duration; 3]]| -> [f64; 3] {
            let mut out = [0.0; 3];
            for (i, o) in out.iter_mut().enumerate() {
                let mut col: Vec<Duration> = v.iter().map(|s| s[i]).collect();
                col.sort();
                *o = col[col.len() / 2].as_secs_f64() * 1e6 / per_round as f64;
            }
            out
        };
        let [typed, raw, bare_m] = [
            medians(&samples[0]),
            medians(&samples[1]),
            medians(&samples[2]),
        ];
        println!(
            "{} sequential user.current, {rounds} interleaved rounds; medians per call (us):",
            rounds * per_round
        );
        println!("                    client thread CPU | process CPU (with the portal) | wall");
        for (name, m) in [
            ("typed client", typed),
            ("raw call    ", raw),
            ("bare reqwest", bare_m),
        ] {
            println!(
                "  {name}      {:8.1}        |   {:8.1}                   | {:8.1}",
                m[0], m[1], m[2]
            );
        }
        println!(
            "  ratio typed/bare: {:.3} client thread CPU, {:.3} process CPU, {:.3} wall",
            typed[0] / bare_m[0],
            typed[1] / bare_m[1],
            typed[2] / bare_m[2]
        );
        println!(
            "  ratio raw/bare:   {:.3} client thread CPU, {:.3} process CPU, {:.3} wall",
            raw[0] / bare_m[0],
            raw[1] / bare_m[1],
            raw[2] / bare_m[2]
        );
    });
}

/// What a program without this crate does: POST, read, parse, take `result`.
async fn bare_call(http: &reqwest::Client, endpoint: &str) {
    let body = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body("{}")
        .send()
        .await
        .expect("bare request")
        .bytes()
        .await
        .expect("bare body");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    std::hint::black_box(value.get("result").expect("result"));
}

fn limiter(calls: usize) {
    let (burst, drain) = (50u32, 20.0);
    let portal = start_portal(
        FakePortal::builder()
            .rate_limit(burst, drain)
            .request_log_capacity(calls + 100),
    );
    let rt = client_runtime();
    rt.block_on(async {
        let client = Client::builder()
            .webhook(portal.webhook_url(1))
            .rate_limit(RateLimit::custom(burst, drain))
            .build()
            .expect("client");
        let started = Instant::now();
        for i in 0..calls {
            let fields = CrmContactAddFields::new().name(format!("Bench {i}"));
            client
                .call(&CrmContactAdd::new().fields(fields))
                .await
                .expect("crm.contact.add");
        }
        let wall = started.elapsed().as_secs_f64();
        let floor = (calls as f64 - f64::from(burst)).max(0.0) / drain;
        let log = portal.requests();
        let refused = log
            .iter()
            .filter(|r| r.error.as_deref() == Some(codes::QUERY_LIMIT_EXCEEDED))
            .count();
        let added = log
            .iter()
            .filter(|r| r.method == "crm.contact.add" && r.executed)
            .count();
        println!("{calls} crm.contact.add one by one through a {burst} / {drain} per s bucket:");
        println!(
            "  wall {wall:.1} s; the bucket's floor {floor:.1} s; ratio {:.3}",
            wall / floor
        );
        println!(
            "  QUERY_LIMIT_EXCEEDED answered by the portal: {refused}; contacts added: {added}"
        );
    });
}

/// CPU of decoding one `user.current` answer: a bare `serde_json::Value` parse versus the
/// same parse plus the typed `User`.
fn decode(n: usize) {
    let portal = start_portal(FakePortal::builder().rate_limit_off());
    let url = format!("{}user.current", portal.webhook_url(1));
    let body = client_runtime().block_on(async {
        reqwest::Client::new()
            .post(url)
            .body("{}")
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body")
    });
    let c0 = thread_cpu();
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        std::hint::black_box(v);
    }
    let bare = thread_cpu() - c0;
    let c0 = thread_cpu();
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let user = <bitrix24::types::User as bitrix24::FromWire>::from_wire(&v["result"]);
        std::hint::black_box(user.expect("a user"));
    }
    let typed = thread_cpu() - c0;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{} byte answer: Value parse {:.2} us; parse + typed User {:.2} us",
        body.len(),
        per(bare),
        per(typed)
    );
}

/// The fake portal of `bulk` and `scan`: a 50 / 20 per s bucket, a 20 ms round trip.
fn bucket_portal(contacts: u64, log: usize) -> FakePortal {
    start_portal(
        FakePortal::builder()
            .rate_limit(50, 20.0)
            .latency(Duration::from_millis(
                std::env::var("LATENCY_MS")
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(20),
            ))
            .contacts(contacts)
            .request_log_capacity(log),
    )
}

/// `WEBHOOK=<url>`: run `bulk` and `scan` against that portal (a standalone fake behind a
/// request-counting proxy, to compare with other SDKs driven the same way) instead of one in
/// this process; the portal then reports nothing, so requests are counted by the proxy.
fn external() -> Option<String> {
    std::env::var("WEBHOOK").ok().filter(|w| !w.is_empty())
}

fn bucket_client(portal: &FakePortal) -> Client {
    Client::builder()
        .webhook(external().unwrap_or_else(|| portal.webhook_url(1)))
        .rate_limit(RateLimit::custom(50, 20.0))
        .build()
        .expect("client")
}

fn bulk(adds: usize) {
    let portal = bucket_portal(0, adds / 10 + 1000);
    let rt = client_runtime();
    rt.block_on(async {
        let client = bucket_client(&portal);
        let requests = (0..adds).map(|i| {
            CrmContactAdd::new().fields(
                CrmContactAddFields::new()
                    .name(format!("Bulk {i}"))
                    .last_name("Bench"),
            )
        });
        let concurrency = std::env::var("CONCURRENCY")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(bitrix24::DEFAULT_CALL_MANY_CONCURRENCY);
        let started = Instant::now();
        let results = client
            .call_many(requests)
            .concurrency(concurrency)
            .results()
            .await;
        let wall = started.elapsed().as_secs_f64();
        let ids: Vec<u64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.result))
            .collect();
        let failed = results.len() - ids.len();
        // Result i is the contact made from request i: read every contact back (not timed).
        let log_len = portal.requests().len();
        let names: std::collections::HashMap<u64, String> = client
            .crm()
            .contact_list()
            .select(["ID", "NAME"])
            .collect_all()
            .await
            .expect("read back")
            .into_iter()
            .map(|c| (c.id, c.name.unwrap_or_default()))
            .collect();
        let in_order = ids.len() == adds
            && names.len() == adds
            && ids
                .iter()
                .enumerate()
                .all(|(i, id)| names.get(id).is_some_and(|n| *n == format!("Bulk {i}")));
        let batches = adds.div_ceil(50);
        let floor = batches.saturating_sub(50) as f64 / 20.0 + 0.02;
        let log = portal.requests();
        let log = &log[..log_len];
        let refused = log
            .iter()
            .filter(|r| r.error.as_deref() == Some(codes::QUERY_LIMIT_EXCEEDED))
            .count();
        let status_503 = log.iter().filter(|r| r.status == 503).count();
        println!("{adds} crm.contact.add through call_many (concurrency {concurrency}), bucket 50 / 20 per s, 20 ms round trip:");
        let requests = if external().is_some() {
            "(counted by the proxy)".to_owned()
        } else {
            log.len().to_string()
        };
        println!(
            "  HTTP requests {requests}; wall {wall:.3} s; floor {floor:.3} s; ratio {:.3}",
            wall / floor
        );
        println!(
            "  QUERY_LIMIT_EXCEEDED {refused}; 503 answers {status_503}; IDs returned {} of {adds}, failed {failed}; result i is the contact of request i: {in_order}",
            ids.len()
        );
    });
}

/// The process's resident set now and its peak since the last reset, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak_rss() {
    // "5" resets the peak resident set size (VmHWM) to the current one (proc(5)).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn scan(contacts: u64, modes: &str) {
    use bitrix24::ListMode;
    use futures_util::TryStreamExt;
    let portal = bucket_portal(contacts, 100_000);
    let rt = client_runtime();
    let all = [
        ("offset", ListMode::Offset),
        ("batched-offset", ListMode::BatchedOffset),
        ("fast", ListMode::Fast),
        ("batched-fast", ListMode::BatchedFast),
    ];
    println!("full scan of {contacts} contacts (crm.contact.list), bucket 50 / 20 per s, 20 ms round trip:");
    println!("  mode            requests   wall s   peak RSS growth MiB   items  ordered  client CPU s  portal CPU s");
    for (name, mode) in all {
        if modes != "all" && !modes.split(',').any(|m| m == name) {
            continue;
        }
        // A fresh client (a full bucket) for every mode, after the portal's bucket drained.
        std::thread::sleep(Duration::from_secs(3));
        rt.block_on(async {
            let client = bucket_client(&portal);
            portal.clear_requests();
            reset_peak_rss();
            let (base, _) = rss_mib();
            let (t0, p0) = (thread_cpu(), process_cpu());
            let started = Instant::now();
            let select: Vec<String> = std::env::var("SELECT")
                .unwrap_or_else(|_| "ID,NAME,LAST_NAME".into())
                .split(',')
                .map(str::to_owned)
                .collect();
            let mut stream = client
                .crm()
                .contact_list()
                .select(select)
                .stream()
                .mode(mode);
            let (mut count, mut last, mut ordered) = (0u64, 0u64, true);
            while let Some(contact) = stream.try_next().await.expect("scan") {
                let id = contact.id;
                ordered &= id > last;
                last = id;
                count += 1;
            }
            let wall = started.elapsed().as_secs_f64();
            let (client_cpu, all_cpu) = (thread_cpu() - t0, process_cpu() - p0);
            let (_, peak) = rss_mib();
            let requests = if external().is_some() {
                "proxy".to_owned()
            } else {
                portal.requests().len().to_string()
            };
            println!(
                "  {name:<15} {requests:>8} {wall:>8.3} {:>21.1} {count:>7}  {ordered:<7}  {:>10.3} {:>10.3}",
                peak - base,
                client_cpu.as_secs_f64(),
                (all_cpu - client_cpu).as_secs_f64(),
            );
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |default: usize| args.get(1).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("overhead") => overhead(n(10_000)),
        Some("limiter") => limiter(n(2_000)),
        Some("decode") => decode(n(100_000)),
        Some("bulk") => bulk(n(10_000)),
        Some("scan") => scan(n(20_000) as u64, args.get(2).map_or("all", String::as_str)),
        _ => {
            eprintln!(
                "usage: bench overhead [CALLS] | limiter [CALLS] | decode [N] | bulk [ADDS] | scan [CONTACTS] [MODES]"
            );
            std::process::exit(2);
        }
    }
}
