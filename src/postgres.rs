//! Installations in PostgreSQL, shared by every process of an application: the
//! [`PgInstallationStore`].
//!
//! An [`InstallationStore`] keeps what `ONAPPINSTALL` delivered for each portal
//! (<https://apidocs.bitrix24.com/api-reference/common/events/on-app-install.html>): its
//! `member_id`, `application_token`, host name and OAuth token pair. Refresh tokens are
//! single use, so when several processes (web workers, queue consumers, several machines)
//! serve one application, only one of them may spend a portal's pair, and the others must
//! pick up what it stores. This store makes that hold across processes:
//!
//! - the refresh lock of a portal is a row of `bitrix24_refresh_locks`, taken with one
//!   `INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now()` (a holder that died
//!   frees it by expiry, on the database server's clock);
//! - a refreshed pair is saved with one conditional `UPDATE ... WHERE member_id = $1 AND
//!   refresh_token = $2` (compare-and-swap), so a slower process never overwrites a newer
//!   pair.
//!
//! [`ClientPool`](crate::ClientPool)s in any number of processes over one database then
//! refresh each portal's tokens once per expiry (see [`TokenStore`](crate::TokenStore)'s
//! "How a client refreshes").
//!
//! It also keeps every host name a portal was stored under (portals can be renamed), so
//! that [`PgInstallationStore::find_by_domain`] finds an installation by an old name too.
//!
//! ```no_run
//! # async fn f() -> Result<(), bitrix24::StoreError> {
//! use std::sync::Arc;
//! use bitrix24::postgres::PgInstallationStore;
//! use bitrix24::{ClientPool, InstallationStore, OAuthApp};
//!
//! // Connects and creates (or upgrades) the tables.
//! let store = PgInstallationStore::connect("postgres://app@db.internal/app").await?;
//! let store: Arc<dyn InstallationStore> = Arc::new(store);
//! let pool = ClientPool::new(OAuthApp::new("app.123", "secret"), store);
//! # let _ = pool; Ok(()) }
//! ```
//!
//! # Tables
//! [`migrate`](PgInstallationStore::migrate) creates them in the connection's current
//! schema (the first of its `search_path`), from SQL shipped inside this crate
//! (`migrations/postgres/`), and records what it applied in `bitrix24_schema_migrations`
//! (its own table, so that an application's own migrations, sqlx's `_sqlx_migrations`
//! included, are not disturbed):
//!
//! - `bitrix24_installations`: one row per portal, keyed by `member_id`;
//! - `bitrix24_domain_history`: `(member_id, domain, first_seen, last_seen)`;
//! - `bitrix24_refresh_locks`: `(member_id, holder, expires_at)`.
//!
//! Tokens and `application_token`s are stored in plain text: restrict access to the
//! database (and its backups) as you would to the application's client secret.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

/// sqlx's PostgreSQL connect options and pool, re-exported so that a pool you build for
/// [`PgInstallationStore::new`] or [`connect_with`](PgInstallationStore::connect_with) is of
/// the same `sqlx` version (0.8).
#[doc(no_inline)]
pub use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::auth::{BoxFuture, RefreshLease, Secret, StoreError, Tokens};
use crate::install::{InstallError, Installation, InstallationStore};

/// The migrations, in order: `(version, description, SQL)`. Shipped in the crate, never
/// read from disk at run time. A released file is never changed; a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "installations",
    include_str!("../migrations/postgres/0001_installations.sql"),
)];

/// The key of the transaction-level advisory lock that serializes migrations: `bitrix24`
/// in ASCII. Database-wide, so stores in different schemas of one database wait for each
/// other's migrations too (which take milliseconds).
const MIGRATION_LOCK: i64 = 0x6269_7472_6978_3234;

/// The longest refresh lock taken: longer `ttl`s are shortened to this (a year), so that
/// the expiry stays a valid timestamp.
const MAX_LOCK_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The columns an [`Installation`] is read from, of the installations table aliased `i`.
macro_rules! installation_columns {
    () => {
        "i.member_id, i.application_token, i.domain, i.access_token, i.refresh_token, \
         i.expires, i.client_endpoint, i.server_endpoint, i.token_member_id, i.token_domain, \
         i.scope, i.status"
    };
}

/// Replaces the tokens of `$1`'s row (`$2`..`$9`: access and refresh token, expires,
/// client_endpoint, server_endpoint, the tokens' member_id and domain, scope) and records
/// the domain in the history; a non-empty `$8` (the tokens' domain) also becomes the row's
/// domain (a renamed portal). The `WHERE` clause is appended; the statement answers one row:
/// whether it wrote (`written`) and whether the row existed when it started (`found`).
macro_rules! update_tokens_sql {
    ($condition:literal) => {
        concat!(
            "WITH updated AS (
                UPDATE bitrix24_installations SET
                    access_token = $2, refresh_token = $3, expires = $4, client_endpoint = $5,
                    server_endpoint = $6, token_member_id = $7, token_domain = $8, scope = $9,
                    domain = COALESCE(NULLIF($8, ''), domain), updated_at = now()
                WHERE ",
            $condition,
            "
                RETURNING member_id, domain
            ), seen AS (
                INSERT INTO bitrix24_domain_history (member_id, domain)
                SELECT member_id, domain FROM updated WHERE domain <> ''
                ON CONFLICT (member_id, domain) DO UPDATE SET last_seen = now()
            )
            SELECT EXISTS (SELECT 1 FROM updated) AS written,
                   EXISTS (SELECT 1 FROM bitrix24_installations WHERE member_id = $1) AS found"
        )
    };
}

/// An [`InstallationStore`] in PostgreSQL: installations, their token pairs, the host
/// names they were seen under and the refresh locks, shared by every process that uses the
/// same database. See the [module docs](self) for the tables.
///
/// Clones share one connection pool. `Debug` shows the server, database and user, never
/// the password; errors name the operation that failed and the database's message, never a
/// token.
///
/// - [`put`](InstallationStore::put) inserts or replaces the installation of a
///   `member_id` (an install or reinstall) and records its domain in the history.
/// - [`update_tokens_if`](InstallationStore::update_tokens_if) is one conditional
///   `UPDATE ... WHERE member_id = $1 AND refresh_token = $2`.
/// - [`update_tokens`](InstallationStore::update_tokens) and `update_tokens_if` adopt the
///   tokens' `domain`, when it is set and differs, as the installation's domain (the portal
///   was renamed; the client sets it after following a portal's redirect), and record it.
/// - [`remove`](InstallationStore::remove) (on `ONAPPUNINSTALL`) deletes the installation,
///   its domain history and its refresh lock: nothing about the portal is kept.
/// - [`lock_refresh`](InstallationStore::lock_refresh) and
///   [`unlock_refresh`](InstallationStore::unlock_refresh) are a row per portal with a
///   holder and an expiry on the database server's clock.
#[derive(Clone)]
pub struct PgInstallationStore {
    pool: PgPool,
}

impl fmt::Debug for PgInstallationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool's own `Debug`: that shows the connect options, password included.
        let options = self.pool.connect_options();
        f.debug_struct("PgInstallationStore")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .field("username", &options.get_username())
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish_non_exhaustive()
    }
}

/// One host name an installation was stored under, from
/// [`PgInstallationStore::domain_history`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainSeen {
    /// The portal's host name, e.g. `portal.bitrix24.com`, as it was stored.
    pub domain: String,
    /// When the installation was first stored under this name (the install, or the write
    /// that brought the new name after a rename), on the database server's clock.
    pub first_seen: DateTime<Utc>,
    /// The latest write (install, reinstall or token save) while the installation had this
    /// name; for a name the portal no longer has, the last write before the rename.
    pub last_seen: DateTime<Utc>,
}

/// A database failure: the operation and the server's or driver's message (with the
/// operation's secrets, should one ever be quoted, replaced by `[redacted]`), no bound value.
#[derive(Debug)]
struct PgStoreError {
    what: &'static str,
    text: String,
}

impl fmt::Display for PgStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the PostgreSQL installation store could not {}: {}",
            self.what, self.text
        )
    }
}

impl std::error::Error for PgStoreError {}

/// The [`StoreError`] of a failed `what`. Only the message is kept, not the driver's error:
/// the `Debug` of a database error carries the server's `DETAIL`, which for some errors
/// quotes a whole row.
fn db_error(what: &'static str, secrets: &[&str], e: sqlx::Error) -> StoreError {
    let text = match &e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("{} (SQLSTATE {code})", d.message()),
            None => d.message().to_owned(),
        },
        other => other.to_string(),
    };
    Box::new(PgStoreError {
        what,
        text: crate::error::redact_text(&text, secrets),
    })
}

fn unknown_installation() -> StoreError {
    StoreError::from(InstallError::UnknownInstallation)
}

/// An [`Installation`] from a row of [`installation_columns`].
fn installation_from_row(row: &PgRow) -> Result<Installation, sqlx::Error> {
    let tokens = Tokens {
        access_token: Secret::new(row.try_get::<String, _>("access_token")?),
        refresh_token: Secret::new(row.try_get::<String, _>("refresh_token")?),
        expires: row.try_get("expires")?,
        client_endpoint: row.try_get("client_endpoint")?,
        server_endpoint: row.try_get("server_endpoint")?,
        member_id: row.try_get("token_member_id")?,
        domain: row.try_get("token_domain")?,
        scope: row.try_get("scope")?,
    };
    Ok(Installation {
        member_id: row.try_get("member_id")?,
        application_token: Secret::new(row.try_get::<String, _>("application_token")?),
        domain: row.try_get("domain")?,
        tokens,
        status: row.try_get("status")?,
    })
}

impl PgInstallationStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// with the parameters libpq URLs take, e.g. `?sslmode=require`; TLS is rustls with the
    /// Mozilla roots) with a pool of default size (10 connections), and runs
    /// [`migrate`](Self::migrate).
    ///
    /// A server that refuses connections (one still starting) is tried again, with
    /// backoff, for up to 30 seconds (the pool's acquire timeout); other failures return at
    /// once.
    ///
    /// # Errors
    /// A [`StoreError`] when the URL does not parse, the server cannot be reached or refuses
    /// the login, the database does not exist, or the migration fails. It never contains
    /// the password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| db_error("parse the database URL", &[], e))?;
        Self::connect_with(options).await
    }

    /// As [`connect`](Self::connect), with connect options built in code: for example
    /// `PgConnectOptions::new().host(..).password(..).options([("search_path", "bitrix24")])`
    /// to keep the tables in their own schema (which must exist).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .connect_with(options)
            .await
            .map_err(|e| db_error("connect", &[], e))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over a pool you made (your own size, timeouts, TLS settings). Does not touch
    /// the database: call [`migrate`](Self::migrate) before the first use (once per
    /// deployment is enough; it is safe on every start).
    pub fn new(pool: PgPool) -> Self {
        PgInstallationStore { pool }
    }

    /// The connection pool, e.g. to close it on shutdown.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the store's tables, or upgrades them, in the connection's current schema:
    /// applies, in one transaction, each migration shipped with this crate that
    /// `bitrix24_schema_migrations` does not list yet, and records it there.
    ///
    /// Running it again is a no-op. Processes migrating at once are safe: they take a
    /// transaction-level advisory lock first, so one applies and the others then find
    /// nothing to do. Versions recorded by a newer release of this crate are left alone (an
    /// older binary runs against a newer schema while a deployment rolls).
    ///
    /// # Errors
    /// A [`StoreError`] when the database fails (no right to create tables, for example;
    /// then nothing is applied), or when a migration recorded as applied differs from the
    /// one shipped now (its checksum), which means the database was set up by a modified
    /// copy of this crate.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let fail = |e| db_error("migrate its tables", &[], e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS bitrix24_schema_migrations (
                version     bigint PRIMARY KEY,
                description text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        for &(version, description, sql) in MIGRATIONS {
            let applied: Option<bool> = sqlx::query_scalar(
                "SELECT checksum = md5($2) FROM bitrix24_schema_migrations WHERE version = $1",
            )
            .bind(version)
            .bind(sql)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
            match applied {
                Some(true) => continue,
                Some(false) => {
                    return Err(Box::new(PgStoreError {
                        what: "migrate its tables",
                        text: format!(
                            "migration {version} ({description}) recorded in \
                             bitrix24_schema_migrations differs from the one this version \
                             of bitrix24 ships"
                        ),
                    }))
                }
                None => {}
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
            sqlx::query(
                "INSERT INTO bitrix24_schema_migrations (version, description, checksum)
                 VALUES ($1, $2, md5($3))",
            )
            .bind(version)
            .bind(description)
            .bind(sql)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// Every host name the installation of `member_id` was stored under, oldest first (by
    /// [`first_seen`](DomainSeen::first_seen)); the current one is among them. Empty when
    /// nothing is stored for `member_id` (an uninstall deletes the history).
    ///
    /// # Errors
    /// A [`StoreError`] when the database fails.
    pub async fn domain_history(&self, member_id: &str) -> Result<Vec<DomainSeen>, StoreError> {
        let fail = |e| db_error("read the domain history", &[], e);
        let rows = sqlx::query(
            "SELECT domain, first_seen, last_seen FROM bitrix24_domain_history
             WHERE member_id = $1 ORDER BY first_seen, last_seen, domain",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|row| {
                Ok(DomainSeen {
                    domain: row.try_get("domain")?,
                    first_seen: row.try_get("first_seen")?,
                    last_seen: row.try_get("last_seen")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail)
    }

    /// The installation whose portal has the host name `domain` (e.g.
    /// `portal.bitrix24.com`, compared case-insensitively) now, or else had it before a
    /// rename: events sent around a rename may still carry the old name. When several
    /// match, the one that has it now wins, then the one that had it last. `None` when no
    /// installation was ever stored under `domain`.
    ///
    /// Prefer [`get`](InstallationStore::get) by `member_id` where you have it: a host name
    /// can pass from one portal to another, a `member_id` never does.
    ///
    /// # Errors
    /// A [`StoreError`] when the database fails.
    pub async fn find_by_domain(&self, domain: &str) -> Result<Option<Installation>, StoreError> {
        let fail = |e| db_error("find an installation by domain", &[], e);
        let row = sqlx::query(concat!(
            "SELECT ",
            installation_columns!(),
            ", 0 AS rank, i.updated_at AS seen FROM bitrix24_installations i
             WHERE lower(i.domain) = lower($1)
             UNION ALL
             SELECT ",
            installation_columns!(),
            ", 1 AS rank, h.last_seen AS seen FROM bitrix24_domain_history h
             JOIN bitrix24_installations i ON i.member_id = h.member_id
             WHERE lower(h.domain) = lower($1)
             ORDER BY rank, seen DESC
             LIMIT 1"
        ))
        .bind(domain)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        row.as_ref()
            .map(installation_from_row)
            .transpose()
            .map_err(fail)
    }

    /// [`update_tokens`](InstallationStore::update_tokens) (`spent` is `None`) and
    /// [`update_tokens_if`](InstallationStore::update_tokens_if) in one statement.
    async fn write_tokens(
        &self,
        member_id: &str,
        spent: Option<&Secret>,
        tokens: &Tokens,
    ) -> Result<bool, StoreError> {
        let secrets = [
            tokens.access_token.expose(),
            tokens.refresh_token.expose(),
            spent.map_or("", Secret::expose),
        ];
        let fail = |e| db_error("save the tokens", &secrets, e);
        let query = match spent {
            Some(_) => sqlx::query(update_tokens_sql!("member_id = $1 AND refresh_token = $10")),
            None => sqlx::query(update_tokens_sql!("member_id = $1")),
        };
        let query = bind_tokens(query.bind(member_id), tokens);
        let query = match spent {
            Some(spent) => query.bind(spent.expose()),
            None => query,
        };
        let row = query.fetch_one(&self.pool).await.map_err(fail)?;
        let written: bool = row.try_get("written").map_err(fail)?;
        let found: bool = row.try_get("found").map_err(fail)?;
        if written {
            Ok(true)
        } else if found {
            Ok(false)
        } else {
            Err(unknown_installation())
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the fields of `tokens` as the next eight parameters: access and refresh token,
/// expires, client_endpoint, server_endpoint, member_id, domain, scope.
fn bind_tokens<'q>(query: PgQuery<'q>, tokens: &'q Tokens) -> PgQuery<'q> {
    query
        .bind(tokens.access_token.expose())
        .bind(tokens.refresh_token.expose())
        .bind(tokens.expires)
        .bind(tokens.client_endpoint.as_str())
        .bind(tokens.server_endpoint.as_deref())
        .bind(tokens.member_id.as_deref())
        .bind(tokens.domain.as_deref())
        .bind(tokens.scope.as_deref())
}

impl InstallationStore for PgInstallationStore {
    /// The row of `member_id`, or `None`.
    fn get<'a>(
        &'a self,
        member_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Installation>, StoreError>> {
        Box::pin(async move {
            let fail = |e| db_error("read an installation", &[], e);
            let row = sqlx::query(concat!(
                "SELECT ",
                installation_columns!(),
                " FROM bitrix24_installations i WHERE i.member_id = $1"
            ))
            .bind(member_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
            row.as_ref()
                .map(installation_from_row)
                .transpose()
                .map_err(fail)
        })
    }

    /// Inserts the installation, or replaces every field of the one stored under its
    /// `member_id` (keeping `created_at`), and records its domain in the history; one
    /// statement.
    fn put(&self, installation: Installation) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let i = &installation;
            let secrets = [
                i.application_token.expose(),
                i.tokens.access_token.expose(),
                i.tokens.refresh_token.expose(),
            ];
            let fail = |e| db_error("store an installation", &secrets, e);
            let query = sqlx::query(
                "WITH saved AS (
                    INSERT INTO bitrix24_installations (member_id, access_token, refresh_token,
                        expires, client_endpoint, server_endpoint, token_member_id, token_domain,
                        scope, application_token, domain, status)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                    ON CONFLICT (member_id) DO UPDATE SET
                        access_token = EXCLUDED.access_token,
                        refresh_token = EXCLUDED.refresh_token,
                        expires = EXCLUDED.expires,
                        client_endpoint = EXCLUDED.client_endpoint,
                        server_endpoint = EXCLUDED.server_endpoint,
                        token_member_id = EXCLUDED.token_member_id,
                        token_domain = EXCLUDED.token_domain,
                        scope = EXCLUDED.scope,
                        application_token = EXCLUDED.application_token,
                        domain = EXCLUDED.domain,
                        status = EXCLUDED.status,
                        updated_at = now()
                    RETURNING member_id, domain
                )
                INSERT INTO bitrix24_domain_history (member_id, domain)
                SELECT member_id, domain FROM saved WHERE domain <> ''
                ON CONFLICT (member_id, domain) DO UPDATE SET last_seen = now()",
            );
            bind_tokens(query.bind(i.member_id.as_str()), &i.tokens)
                .bind(i.application_token.expose())
                .bind(i.domain.as_str())
                .bind(i.status.as_deref())
                .execute(&self.pool)
                .await
                .map_err(fail)?;
            Ok(())
        })
    }

    /// Deletes the installation of `member_id` with its domain history and its refresh
    /// lock, in one statement; `true` when one was stored.
    fn remove<'a>(&'a self, member_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let fail = |e| db_error("remove an installation", &[], e);
            let done = sqlx::query(
                "WITH unlocked AS (DELETE FROM bitrix24_refresh_locks WHERE member_id = $1)
                 DELETE FROM bitrix24_installations WHERE member_id = $1",
            )
            .bind(member_id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// One `UPDATE` of the token columns (and of `domain`, when `tokens.domain` is set and
    /// differs: the portal was renamed).
    ///
    /// # Errors
    /// [`InstallError::UnknownInstallation`] (as a [`StoreError`]) when nothing is stored
    /// for `member_id`; a database failure otherwise.
    fn update_tokens<'a>(
        &'a self,
        member_id: &'a str,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write_tokens(member_id, None, tokens).await?;
            Ok(())
        })
    }

    /// One conditional `UPDATE ... WHERE member_id = $1 AND refresh_token = $spent`:
    /// `true` when it wrote, `false` when the stored refresh token is another one (a newer
    /// pair, which stays). Renames as [`update_tokens`](InstallationStore::update_tokens).
    ///
    /// # Errors
    /// [`InstallError::UnknownInstallation`] (as a [`StoreError`]) when nothing is stored
    /// for `member_id` (the app was uninstalled); a database failure otherwise.
    fn update_tokens_if<'a>(
        &'a self,
        member_id: &'a str,
        spent: &'a Secret,
        tokens: &'a Tokens,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.write_tokens(member_id, Some(spent), tokens))
    }

    /// Takes the lock row of `member_id` for `ttl` (at most a year) if it is free or its
    /// holder's expiry has passed (on the database server's clock), in one statement;
    /// `Ok(None)` while another lease holds it. Works for a `member_id` with no
    /// installation too.
    fn lock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<RefreshLease>, StoreError>> {
        Box::pin(async move {
            let fail = |e| db_error("take the refresh lock", &[], e);
            let lease = RefreshLease::new();
            let row = sqlx::query(
                "INSERT INTO bitrix24_refresh_locks AS l (member_id, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (member_id) DO UPDATE
                     SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                     WHERE l.expires_at <= now()
                 RETURNING holder",
            )
            .bind(member_id)
            .bind(lease.id())
            .bind(ttl.min(MAX_LOCK_TTL).as_secs_f64())
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
            Ok(row.map(|_| lease))
        })
    }

    /// Deletes the lock row of `member_id` if `lease` still holds it; a lock that expired
    /// and was taken by another lease stays.
    fn unlock_refresh<'a>(
        &'a self,
        member_id: &'a str,
        lease: RefreshLease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let fail = |e| db_error("release the refresh lock", &[], e);
            sqlx::query("DELETE FROM bitrix24_refresh_locks WHERE member_id = $1 AND holder = $2")
                .bind(member_id)
                .bind(lease.id())
                .execute(&self.pool)
                .await
                .map_err(fail)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_unique() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(versions.first(), Some(&1));
    }

    #[test]
    fn errors_carry_no_secret() {
        let e = db_error(
            "save the tokens",
            &["REFRESH-SECRET-1"],
            sqlx::Error::Protocol("server quoted REFRESH-SECRET-1".into()),
        );
        let text = format!("{e} {e:?}");
        assert!(!text.contains("REFRESH-SECRET-1"), "{text}");
        assert!(text.contains("save the tokens"), "{text}");
    }

    #[tokio::test]
    async fn debug_never_shows_the_password() {
        let options: PgConnectOptions = "postgres://app:PASSWORD-123@db.example:5433/app"
            .parse()
            .unwrap();
        let pool = PgPoolOptions::new().connect_lazy_with(options);
        let store = PgInstallationStore::new(pool);
        let text = format!("{store:?}");
        assert!(!text.contains("PASSWORD-123"), "{text}");
        assert!(
            text.contains("db.example") && text.contains("5433"),
            "{text}"
        );
    }
}
