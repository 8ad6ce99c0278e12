//! Benchmarks of the call path against the fake portal, in-process.
//!
//! ```sh
//! cargo run --release --example bench -- overhead [CALLS]   # default 10000
//! cargo run --release --example bench -- limiter [CALLS]    # default 2000
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |default: usize| args.get(1).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("overhead") => overhead(n(10_000)),
        Some("limiter") => limiter(n(2_000)),
        Some("decode") => decode(n(100_000)),
        _ => {
            eprintln!("usage: bench overhead [CALLS] | bench limiter [CALLS]");
            std::process::exit(2);
        }
    }
}
