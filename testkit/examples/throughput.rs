//! How many simple requests per second the fake portal serves over loopback.
//!
//! `cargo run --release -p bitrix24-testkit --example throughput -- [requests] [concurrency]`
//! (defaults 100000 and 32). Each request is a webhook `GET .../user.current` answered with
//! the full envelope; both limits are lifted and the load generator runs in the same process,
//! so the figure is a floor for the portal alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bitrix24_testkit::FakePortal;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let concurrency: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(32)
        .max(1);
    let portal = FakePortal::builder()
        .rate_limit_off()
        // 5 ms of simulated time per call would hit the 480 s operating limit after 96 000
        // calls: lift it, this measures the server, not the limit.
        .operating_limit(std::time::Duration::from_secs(1 << 30))
        .request_log_capacity(1_000)
        .start()
        .await;
    let url = format!("{}user.current", portal.webhook_url(1));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("http client");
    // Warm up connections.
    for _ in 0..concurrency {
        let _ = http.get(&url).send().await.map(|r| r.status());
    }
    let left = Arc::new(AtomicUsize::new(total));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, left, failed) =
                (http.clone(), url.clone(), left.clone(), failed.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let ok = match http.get(&url).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} user.current requests, {concurrency} concurrent, {} failed: {:.2} s, {:.0} requests/s",
        failed.load(Ordering::Relaxed),
        secs,
        total as f64 / secs
    );
}
