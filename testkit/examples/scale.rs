//! How the fake portal copes with a big CRM: seeding, a full fast scan through batches,
//! single pages deep in the list, and bulk adds through batches.
//!
//! `cargo run --release -p bitrix24-testkit --example scale -- [contacts] [webhook-url]`
//! (default 1000000 contacts, an in-process portal with both limits lifted). Given a webhook
//! URL (of a standalone `bitrix24-testkit --contacts N --no-rate-limit --operating-limit-s
//! 100000`), it runs against that portal instead; read that process's memory in
//! `/proc/<pid>/status`.
//!
//! Prints wall times of: starting the portal; one `start=-1` page with `>ID` near the end;
//! one offset page at the same place (and the simulated seconds each bills); a fast scan of
//! every contact as batches of 50 chained pages (`filter[>ID]=$result[p<k>][49][ID]`; the
//! keys are zero-padded so that a sorted JSON object keeps them in run order);
//! 10 000 `crm.contact.add` in batches of 50; and the resident memory (`VmRSS`).

use std::time::{Duration, Instant};

use bitrix24_testkit::FakePortal;
use serde_json::{json, Value};

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let r = http.post(url).json(&body).send().await.expect("request");
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.expect("json")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let contacts: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let external = args.next();
    let rss_before = rss_kb("self");
    let t = Instant::now();
    let (portal, hook) = match &external {
        Some(url) => (None, url.trim_end_matches('/').to_owned() + "/"),
        None => {
            let p = FakePortal::builder()
                .contacts(contacts)
                .rate_limit_off()
                .operating_limit(Duration::from_secs(1 << 30))
                .request_log_capacity(1_000)
                .start()
                .await;
            let hook = p.webhook_url(1);
            (Some(p), hook)
        }
    };
    println!("portal with {contacts} contacts up in {}", ms(t.elapsed()));
    let http = reqwest::Client::new();
    let list = format!("{hook}crm.contact.list");
    let batch = format!("{hook}batch");

    // One page deep in the list, both ways.
    let near_end = contacts.saturating_sub(1_000);
    let t = Instant::now();
    let fast = post(&http, &list, json!({"order": {"ID": "ASC"}, "filter": {">ID": near_end}, "select": ["ID", "NAME"], "start": -1})).await;
    let fast_wall = t.elapsed();
    let t = Instant::now();
    let offset = post(
        &http,
        &list,
        json!({"select": ["ID", "NAME"], "start": near_end}),
    )
    .await;
    let offset_wall = t.elapsed();
    assert_eq!(fast["result"][0]["ID"], offset["result"][0]["ID"]);
    println!(
        "page at {near_end}: start=-1 + >ID {} wall, {} s billed; offset {} wall, {} s billed",
        ms(fast_wall),
        fast["time"]["processing"],
        ms(offset_wall),
        offset["time"]["processing"]
    );

    // Full fast scan: 50 chained pages per batch.
    let t = Instant::now();
    let (mut last, mut seen, mut requests) = (0u64, 0u64, 0u64);
    'scan: loop {
        let mut cmd = serde_json::Map::new();
        for i in 0..50 {
            let after = if i == 0 {
                last.to_string()
            } else {
                format!("$result[p{:02}][49][ID]", i - 1)
            };
            cmd.insert(
                format!("p{i:02}"),
                json!(format!("crm.contact.list?order[ID]=ASC&filter[>ID]={after}&select[]=ID&select[]=NAME&start=-1")),
            );
        }
        let body = post(&http, &batch, json!({"halt": 1, "cmd": cmd})).await;
        requests += 1;
        for i in 0..50 {
            let Some(rows) = body["result"]["result"][format!("p{i:02}")].as_array() else {
                break 'scan;
            };
            seen += rows.len() as u64;
            if let Some(id) = rows.last().and_then(|r| r["ID"].as_str()) {
                last = id.parse().expect("id");
            }
            if rows.len() < 50 {
                break 'scan;
            }
        }
    }
    let scan = t.elapsed();
    assert_eq!(seen, contacts, "the scan saw every contact");
    println!(
        "fast scan of {seen} contacts: {requests} batch requests in {} ({} per request)",
        ms(scan),
        ms(scan / requests.max(1) as u32)
    );

    // Bulk adds: 10 000 contacts in batches of 50.
    let t = Instant::now();
    for b in 0..200 {
        let cmd: Vec<String> = (0..50)
            .map(|i| {
                let n = b * 50 + i;
                format!("crm.contact.add?fields[NAME]=Bulk{n}&fields[LAST_NAME]=%D0%A2%D0%B5%D1%81%D1%82&fields[PHONE][0][VALUE]=%2B1555{n:07}&fields[PHONE][0][VALUE_TYPE]=WORK")
            })
            .collect();
        let body = post(&http, &batch, json!({"cmd": cmd})).await;
        assert_eq!(body["result"]["result_error"], json!([]), "{body}");
    }
    let adds = t.elapsed();
    println!(
        "10000 crm.contact.add in 200 batches: {} ({} per batch)",
        ms(adds),
        ms(adds / 200)
    );
    let total = post(&http, &list, json!({"select": ["ID"]})).await;
    assert_eq!(total["total"], contacts + 10_000);

    // Against a standalone portal this is the load generator's memory only: read the
    // portal's in /proc/<its pid>/status.
    println!(
        "VmRSS of this process: {} MB before the portal, {} MB now",
        rss_before / 1024,
        rss_kb("self") / 1024
    );
    drop(portal);
}
