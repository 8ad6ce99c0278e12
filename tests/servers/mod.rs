//! The real servers some tests need: Redis and PostgreSQL on loopback, as `.ci/servers.sh`
//! starts them (`eval "$(.ci/servers.sh start)"`).
//!
//! A test asks for a server's URL here. Without it (the variable unset) the test is skipped
//! with a line on stderr saying so and why, unless `BITRIX24_REQUIRE_SERVERS=1` (set by
//! `.ci/run`), where a missing server fails the test.
#![allow(dead_code)]

/// `BITRIX24_TEST_REDIS_URL`, e.g. `redis://127.0.0.1:63790/`.
pub fn redis_url(test: &str) -> Option<String> {
    url("BITRIX24_TEST_REDIS_URL", "Redis", test)
}

/// `BITRIX24_TEST_DATABASE_URL`, e.g. `postgres://b24@127.0.0.1:54329/bitrix24_test`.
pub fn database_url(test: &str) -> Option<String> {
    url("BITRIX24_TEST_DATABASE_URL", "PostgreSQL", test)
}

/// Whether a missing server fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("BITRIX24_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

fn url(var: &str, what: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !required(),
                "{test}: {var} is not set but BITRIX24_REQUIRE_SERVERS=1: {what} must run \
                 (eval \"$(.ci/servers.sh start)\")"
            );
            eprintln!(
                "SKIPPED {test}: {var} is not set, so there is no {what} to test against \
                 (start one with: eval \"$(.ci/servers.sh start)\")"
            );
            None
        }
    }
}

/// A key prefix or database schema no other test run uses: the test's name, the process id
/// and the time.
pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}_{}_{nanos:x}", std::process::id())
}
