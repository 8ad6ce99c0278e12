//! Several workers, one portal: installations (and their tokens) in PostgreSQL, the
//! portal's request budget in Redis. See "Many workers, one portal" in README.md.
//!
//! ```sh
//! eval "$(.ci/servers.sh start)"      # Redis and PostgreSQL on loopback
//! cargo run -p bitrix24-testkit -- --port 8090 --env-file /tmp/portal.env &
//! source /tmp/portal.env
//! export DATABASE_URL=$BITRIX24_TEST_DATABASE_URL REDIS_URL=$BITRIX24_TEST_REDIS_URL
//! cargo run --example workers -- install          # what an ONAPPINSTALL handler stores
//! cargo run --example workers -- run web 20 & cargo run --example workers -- run export 20
//! ```
//!
//! `install` stores the fake portal's installation (from the `B24_*` variables) in
//! PostgreSQL. `run NAME SECONDS` calls `user.current` from 4 loops for that long, through
//! a `ClientPool` over the same PostgreSQL and a `RedisLimiter`, and prints what it got:
//! two workers together get the portal's rate (burst 50, then 2 per second), and none is
//! refused.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitrix24::postgres::PgInstallationStore;
use bitrix24::redis::RedisLimiter;
use bitrix24::{ClientPool, Installation, InstallationStore, OAuthApp, RateLimit, Tokens};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn var(name: &str) -> Result<String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set (see the top of examples/workers.rs)").into())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store = PgInstallationStore::connect(&var("DATABASE_URL")?).await?;
    match args.first().map(String::as_str) {
        Some("install") => {
            let tokens = Tokens::new(
                var("B24_ACCESS_TOKEN")?,
                var("B24_REFRESH_TOKEN")?,
                var("B24_CLIENT_ENDPOINT")?,
            )
            .member_id(var("B24_MEMBER_ID")?);
            let installation = Installation::new(
                var("B24_MEMBER_ID")?,
                var("B24_APPLICATION_TOKEN")?,
                "127.0.0.1",
                tokens,
            );
            store.put(installation).await?;
            println!("installed member_id {}", var("B24_MEMBER_ID")?);
        }
        Some("run") => {
            let name = args.get(1).cloned().unwrap_or_else(|| "worker".into());
            let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
            let limiter = RedisLimiter::connect(&var("REDIS_URL")?).await?;
            let app = OAuthApp::new(var("B24_CLIENT_ID")?, var("B24_CLIENT_SECRET")?);
            let pool = ClientPool::builder(app, Arc::new(store))
                .oauth_server(var("B24_OAUTH_SERVER")?)
                .rate_limit(RateLimit::standard())
                .shared_limiter(Arc::new(limiter))
                .build();
            let client = pool.client(&var("B24_MEMBER_ID")?).await?;
            let end = Instant::now() + Duration::from_secs(seconds);
            let loops = (0..4).map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while let Ok(result) =
                        tokio::time::timeout_at(end.into(), client.user().current().into_future())
                            .await
                    {
                        match result {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                failed += 1;
                                eprintln!("{e}");
                            }
                        }
                    }
                    (ok, failed)
                })
            });
            let (mut ok, mut failed) = (0, 0);
            for l in loops {
                let (o, f) = l.await?;
                ok += o;
                failed += f;
            }
            println!("{name}: {ok} calls answered, {failed} failed in {seconds} s");
        }
        _ => return Err("usage: workers install | workers run NAME SECONDS".into()),
    }
    Ok(())
}
