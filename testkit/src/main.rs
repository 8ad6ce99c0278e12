//! `cargo run -p bitrix24-testkit -- --port 8090`: a seeded fake portal for any client.

use std::time::Duration;

use bitrix24_testkit::{AppSpec, FakePortal};

const USAGE: &str = "usage: bitrix24-testkit [--port N] [--contacts N] [--deals N] [--leads N] [--users N] [--seed N] [--no-rate-limit] [--latency-ms N]";

fn parse(args: &[String]) -> Result<bitrix24_testkit::FakePortalBuilder, String> {
    let mut b = FakePortal::builder().port(8090);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        b = match flag.as_str() {
            "--port" => {
                b.port(u16::try_from(num("--port")?).map_err(|_| "port out of range".to_owned())?)
            }
            "--contacts" => b.contacts(num("--contacts")?),
            "--deals" => b.deals(num("--deals")?),
            "--leads" => b.leads(num("--leads")?),
            "--users" => b.users(num("--users")?),
            "--seed" => b.seed(num("--seed")?),
            "--latency-ms" => b.latency(Duration::from_millis(num("--latency-ms")?)),
            "--no-rate-limit" => b.rate_limit_off(),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
    }
    Ok(b)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let builder = match parse(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let portal = match builder.try_start().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bitrix24-testkit: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let app = portal.install_app(AppSpec::default()).await;
    println!("Fake Bitrix24 portal at {}", portal.base_url());
    println!("webhook URL:        {}", portal.webhook_url(1));
    println!("OAuth client_endpoint: {}", portal.rest_url());
    println!("OAuth token URL:    {}", portal.oauth_token_url());
    println!("client_id:          {}", app.client_id);
    println!("client_secret:      {}", app.client_secret);
    println!("access_token:       {}", app.tokens.access_token.expose());
    println!("refresh_token:      {}", app.tokens.refresh_token.expose());
    println!("application_token:  {}", app.application_token);
    println!("member_id:          {}", app.member_id);
    println!();
    println!("try: curl {}user.current", portal.webhook_url(1));
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
}
