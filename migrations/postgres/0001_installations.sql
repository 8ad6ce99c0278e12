-- bitrix24::postgres, migration 1: installations, the domains they were seen under, and the
-- refresh locks. Applied once per schema by PgInstallationStore::migrate (recorded in
-- bitrix24_schema_migrations); never edit it after a release, add a new file instead.

-- One row per portal the application is installed on, as ONAPPINSTALL delivered it
-- (https://apidocs.bitrix24.com/api-reference/common/events/on-app-install.html), with the
-- current OAuth token pair. Tokens are stored as they are: protect the database.
CREATE TABLE bitrix24_installations (
    member_id         text PRIMARY KEY,      -- the portal's stable id, auth[member_id]
    application_token text NOT NULL,         -- auth[application_token], secret
    domain            text NOT NULL,         -- the portal's current host name
    access_token      text NOT NULL,         -- secret
    refresh_token     text NOT NULL,         -- secret; the compare-and-swap compares it
    expires           bigint,                -- access_token's expiry, unix seconds
    client_endpoint   text NOT NULL,         -- the portal's REST base URL
    server_endpoint   text,                  -- the OAuth server's REST base URL
    token_member_id   text,                  -- Tokens::member_id
    token_domain      text,                  -- Tokens::domain
    scope             text,                  -- comma-separated scopes
    status            text,                  -- auth[status]: L, F, D, T, P or S
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bitrix24_installations_domain ON bitrix24_installations (lower(domain));

-- Every host name an installation was stored under (a portal can be renamed; events sent
-- before or around a rename may carry the old one). Deleted with the installation.
CREATE TABLE bitrix24_domain_history (
    member_id  text NOT NULL REFERENCES bitrix24_installations (member_id) ON DELETE CASCADE,
    domain     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),  -- first write under this domain
    last_seen  timestamptz NOT NULL DEFAULT now(),  -- latest write under this domain
    PRIMARY KEY (member_id, domain)
);
CREATE INDEX bitrix24_domain_history_domain ON bitrix24_domain_history (lower(domain));

-- The refresh lock of each portal: at most one process refreshes its tokens at a time. A row
-- whose expires_at has passed is free (its holder died or hung).
CREATE TABLE bitrix24_refresh_locks (
    member_id  text PRIMARY KEY,
    holder     text NOT NULL,        -- the RefreshLease id of the holder
    expires_at timestamptz NOT NULL  -- on the database server's clock
);
