#!/usr/bin/env bash
# Redis and PostgreSQL on loopback for the tests of the shared stores and the shared limiter.
#
#   eval "$(.ci/servers.sh start)"   # installs them if missing, starts both, prints `export`s
#   .ci/servers.sh stop              # stops both
#
# Each gets its own port and data directory (under $B24_SERVERS_DIR, default
# /tmp/bitrix24-test-servers), so a Redis or PostgreSQL the machine runs anyway is not
# touched. Fails (non-zero) if either cannot be started. PostgreSQL refuses to run as root,
# so as root it runs as the `postgres` user the Debian package creates.
set -euo pipefail

dir=${B24_SERVERS_DIR:-/tmp/bitrix24-test-servers}
redis_port=${B24_REDIS_PORT:-63790}
pg_port=${B24_PG_PORT:-54329}

log() { echo "servers: $*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install() {
    if command -v redis-server >/dev/null && [ -x "$(pg_bin)/postgres" ]; then
        return
    fi
    log "installing redis-server and postgresql (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends redis-server postgresql >&2
}

# Runs a PostgreSQL tool as the user that owns the data directory.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_redis() {
    mkdir -p "$dir/redis"
    if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
        log "redis already up on $redis_port"
        return
    fi
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --save '' \
        --appendonly no --daemonize yes --pidfile "$dir/redis/redis.pid" \
        --logfile "$dir/redis/redis.log" >&2
    for _ in $(seq 50); do
        if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
            log "redis up on 127.0.0.1:$redis_port"
            return
        fi
        sleep 0.2
    done
    log "redis did not start:"; cat "$dir/redis/redis.log" >&2 || true
    exit 1
}

start_pg() {
    local bin data
    bin=$(pg_bin)
    data="$dir/pg/data"
    mkdir -p "$dir/pg"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir/pg"
        chmod 755 "$dir"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$data" -U b24 --auth=trust -E UTF8 >"$dir/pg/initdb.log" 2>&1 || {
            log "initdb failed:"; cat "$dir/pg/initdb.log" >&2; exit 1; }
    fi
    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$data" -l "$dir/pg/postgres.log" -w -t 30 \
            -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
            start >&2 || { log "postgres did not start:"; cat "$dir/pg/postgres.log" >&2; exit 1; }
    fi
    if ! psql -h 127.0.0.1 -p "$pg_port" -U b24 -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'bitrix24_test'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$pg_port" -U b24 -d postgres -qc "CREATE DATABASE bitrix24_test" >&2
    fi
    log "postgres up on 127.0.0.1:$pg_port"
}

case "${1:-}" in
start)
    install
    start_redis
    start_pg
    echo "export BITRIX24_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/"
    echo "export BITRIX24_TEST_DATABASE_URL=postgres://b24@127.0.0.1:$pg_port/bitrix24_test"
    ;;
stop)
    redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    if [ -f "$dir/pg/data/PG_VERSION" ]; then
        as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    log "stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
