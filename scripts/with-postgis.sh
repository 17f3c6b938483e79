#!/usr/bin/env bash
# scripts/with-postgis.sh CMD [ARGS...]
#
# Starts a throwaway PostgreSQL + PostGIS cluster of its own (data directory under
# /tmp, free port from 55432 upward, listening on 127.0.0.1 only), runs CMD with
#   HAMN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/hamn_test
# exported (DATABASE_URL is unset), then stops the cluster and deletes its data
# directory, also on Ctrl-C/TERM. Exits with CMD's exit code.
#
# With HAMN_TEST_PG_TLS=1 (scripts/test.sh sets it) the server also accepts TLS, with a
# certificate for localhost and 127.0.0.1 signed by a test authority, both made here by
# openssl, and CMD gets
#   HAMN_TEST_PG_CA=<the authority's certificate>  HAMN_TEST_PG_OTHER_CA=<an unrelated one>
# (clients that do not ask for TLS still connect without it).
#
# It never touches a system cluster. Server binaries: the newest
# /usr/lib/postgresql/<v>/bin that has PostGIS (override: HAMN_PG_BINDIR).
# Install them with: bash scripts/deps.sh postgis
#
# CMD also gets HAMN_TEST_PG_CTL, a script that stops (`stop`) and starts again (`start`) the
# cluster on the same data, for fault tests.
#
# With HAMN_TEST_PG_REPLICA=1 (scripts/test.sh sets it) a second cluster is made from the
# first with pg_basebackup and runs as its hot-standby streaming replica on the next free
# port; CMD gets HAMN_TEST_REPLICA_URL=postgres://postgres@127.0.0.1:PORT2/hamn_test.
#
# With HAMN_TEST_PGBOUNCER=1 (scripts/test.sh sets it) PgBouncer runs in front of the first
# cluster in session pooling, every database of it reachable, and CMD gets
# HAMN_TEST_PGBOUNCER_URL=postgres://postgres@127.0.0.1:PORT3/hamn_test.
#
# Example:
#   bash scripts/with-postgis.sh sh -c 'psql "$HAMN_TEST_DATABASE_URL" -c "select postgis_full_version()"'
set -euo pipefail

prog=with-postgis
PORT_FIRST=55432
PORT_LAST=55999

msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit 1
}

if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi

# --- server binaries --------------------------------------------------------
find_bindir() {
    local d v best="" newest=""
    if [ -n "${HAMN_PG_BINDIR:-}" ]; then
        printf '%s\n' "$HAMN_PG_BINDIR"
        return 0
    fi
    for v in $(for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        d=${d#/usr/lib/postgresql/}
        printf '%s\n' "${d%/bin}"
    done | sort -V); do
        newest=$v
        if [ -f "/usr/share/postgresql/$v/extension/postgis.control" ]; then
            best=$v
        fi
    done
    if [ -n "$best" ]; then
        printf '/usr/lib/postgresql/%s/bin\n' "$best"
    elif [ -n "$newest" ]; then
        # No PostGIS anywhere: use the newest; CREATE EXTENSION below explains.
        printf '/usr/lib/postgresql/%s/bin\n' "$newest"
    elif command -v initdb >/dev/null 2>&1; then
        # Not Debian's layout (e.g. Fedora): server binaries on PATH.
        dirname "$(command -v initdb)"
    else
        return 1
    fi
}

bindir=$(find_bindir) ||
    die "no PostgreSQL server found (no /usr/lib/postgresql/*/bin/initdb); install one with: bash scripts/deps.sh postgis"
for b in initdb pg_ctl pg_isready psql pg_basebackup; do
    [ -x "$bindir/$b" ] || die "$bindir/$b not found"
done

# --- who runs the server ----------------------------------------------------
# initdb/postgres refuse to run as root: as root, run them as the postgres OS user.
as_root=0
if [ "$(id -u)" -eq 0 ]; then
    as_root=1
    id -u postgres >/dev/null 2>&1 ||
        die "running as root but there is no 'postgres' OS user to run the server as (install PostgreSQL: bash scripts/deps.sh postgis)"
fi

tmp=""
pgdata=""

# Run server commands (initdb, postgres, pg_ctl, ...) as the server's owner, from
# inside the throwaway directory (the cwd may be unreadable for postgres). The
# subshell execs, so `(... exec ...) &` gives the pid of setpriv(=the command)/runuser/su.
# setpriv execs directly (no intermediate process), so the postmaster is our own
# child and we reap it ourselves even when the whole process group is killed.
as_owner=()
if [ "$as_root" -eq 1 ]; then
    if command -v setpriv >/dev/null 2>&1; then
        as_owner=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    elif command -v runuser >/dev/null 2>&1; then
        as_owner=(runuser -u postgres --)
    else
        # shellcheck disable=SC2016  # expanded by that /bin/sh
        as_owner=(su -s /bin/sh -c 'exec "$0" "$@"' -- postgres)
    fi
fi
run_pg() {
    (cd "$tmp" && exec ${as_owner[@]+"${as_owner[@]}"} "$@")
}

pgpid=""   # our background child running the postmaster
replica=""  # the replica's data directory, when there is one
replicapid=""
bouncerpid=""

# shellcheck disable=SC2317  # only invoked through the trap
cleanup() {
    set +e
    local pid
    if [ -n "$replica" ] && [ -f "$replica/postmaster.pid" ]; then
        if ! run_pg "$bindir/pg_ctl" -D "$replica" -m immediate -w -t 30 -s stop >/dev/null 2>&1; then
            pid=$(head -n 1 "$replica/postmaster.pid" 2>/dev/null)
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        fi
    fi
    if [ -n "$bouncerpid" ]; then
        kill "$bouncerpid" 2>/dev/null
        wait "$bouncerpid" 2>/dev/null
    fi
    if [ -n "$replicapid" ]; then
        kill "$replicapid" 2>/dev/null
        wait "$replicapid" 2>/dev/null
    fi
    if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
        # Immediate shutdown (the data is thrown away anyway); waits for the exit.
        if ! run_pg "$bindir/pg_ctl" -D "$pgdata" -m immediate -w -t 30 -s stop >/dev/null 2>&1; then
            pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        fi
    fi
    if [ -n "$pgpid" ]; then
        kill "$pgpid" 2>/dev/null
        wait "$pgpid" 2>/dev/null # reap our child: no zombie left behind
    fi
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        rm -rf -- "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- throwaway cluster --------------------------------------------------------
tmp=$(mktemp -d /tmp/hamn-pg.XXXXXX)
pgdata="$tmp/data"   # the socket directory is inside it too
if [ "$as_root" -eq 1 ]; then
    chown postgres: "$tmp"
fi

locale=C
if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
    locale=C.UTF-8
fi

if ! run_pg "$bindir/initdb" -D "$pgdata" -A trust -U postgres --encoding=UTF8 \
    "--locale=$locale" --no-sync >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    die "initdb failed"
fi

tls_args=()
if [ "${HAMN_TEST_PG_TLS:-}" = 1 ]; then
    command -v openssl >/dev/null 2>&1 ||
        die "HAMN_TEST_PG_TLS=1 needs openssl (Debian: apt-get install openssl)"
    tls="$tmp/tls"
    mkdir -p "$tls"
    # A test authority, a server certificate it signs (as a managed service's would be), and
    # an unrelated authority.
    ossl() { openssl "$@" >>"$tmp/openssl.log" 2>&1 || {
        cat "$tmp/openssl.log" >&2
        die "openssl could not make the test certificates"
    }; }
    for ca in ca other; do
        ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hamn test $ca" \
            -keyout "$tls/$ca.key" -out "$tls/$ca.crt"
    done
    ossl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$tls/server.ext"
    ossl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 2 -extfile "$tls/server.ext" -out "$tls/server.crt"
    chmod 600 "$tls"/*.key
    chmod 644 "$tls"/*.crt
    if [ "$as_root" -eq 1 ]; then
        chown -R postgres: "$tls"
    fi
    tls_args=(-c ssl=on -c "ssl_cert_file=$tls/server.crt" -c "ssl_key_file=$tls/server.key")
    export HAMN_TEST_PG_CA="$tls/ca.crt" HAMN_TEST_PG_OTHER_CA="$tls/other.crt"
fi

port_free() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        if ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            return 1
        fi
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null
    else
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            return 1
        fi
    fi
}

# Start the server as our own child process (not daemonized by pg_ctl, so we
# reap it ourselves), on the first free port. If a concurrent run grabs the same
# port between the check and the bind, our server exits and we try the next port.
# Readiness is checked with pg_isready on our own unix socket, so another server
# on the same TCP port cannot fool us. Bounded to ~30 s.
port=$PORT_FIRST
ready=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    while ! port_free "$port"; do
        port=$((port + 1))
        [ "$port" -le "$PORT_LAST" ] || die "no free TCP port in $PORT_FIRST-$PORT_LAST"
    done
    log="$tmp/server-$attempt.log"
    (cd "$tmp" && exec ${as_owner[@]+"${as_owner[@]}"} "$bindir/postgres" -D "$pgdata" -p "$port" \
        -c listen_addresses=127.0.0.1 -c "unix_socket_directories=$pgdata" \
        -c max_connections=200 \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        ${tls_args[@]+"${tls_args[@]}"}) \
        </dev/null >"$log" 2>&1 &
    pgpid=$!
    for _ in $(seq 1 150); do
        if run_pg "$bindir/pg_isready" -q -h "$pgdata" -p "$port" -U postgres -d postgres -t 2; then
            ready=1
            break
        fi
        kill -0 "$pgpid" 2>/dev/null || break # the server exited
        sleep 0.2
    done
    [ "$ready" -eq 1 ] && break
    if ! kill -0 "$pgpid" 2>/dev/null &&
        grep -qE 'could not (bind|create any TCP/IP sockets)|already in use' "$log"; then
        wait "$pgpid" 2>/dev/null || true
        pgpid=""
        msg "port $port was taken meanwhile (attempt $attempt), trying the next one"
        port=$((port + 1))
        continue
    fi
    cat "$log" >&2
    if kill -0 "$pgpid" 2>/dev/null; then
        die "the PostgreSQL server is not ready after 30 s (its log is above)"
    fi
    die "the PostgreSQL server did not start (its log is above)"
done
[ "$ready" -eq 1 ] || die "could not start the PostgreSQL server: ports kept being taken"

psql_admin() {
    run_pg "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$pgdata" -p "$port" -U postgres "$@"
}

psql_admin -d postgres -c 'CREATE DATABASE hamn_test' >/dev/null ||
    die "could not create database hamn_test"
if ! err=$(psql_admin -d hamn_test -c 'CREATE EXTENSION postgis' 2>&1); then
    die "PostGIS does not work with the PostgreSQL server in $bindir: $err
Install it with: bash scripts/deps.sh postgis"
fi
versions=$(psql_admin -d hamn_test -c \
    "SELECT current_setting('server_version') || ' + PostGIS ' || postgis_lib_version()")

export HAMN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/hamn_test"
unset DATABASE_URL

# A control script for fault tests (tests/faults.rs): `HAMN_TEST_PG_CTL stop|start` stops this
# cluster (fast shutdown) and starts it again on the same data, port and settings. Started
# again, the server is pg_ctl's daemon instead of our child; cleanup stops it either way.
{
    printf '#!/usr/bin/env bash\nset -euo pipefail\ncd %q\n' "$tmp"
    printf 'case "${1:-}" in\n'
    printf 'stop) exec %s %q -D %q -m fast -w -t 30 -s stop ;;\n' \
        "${as_owner[*]+$(printf '%q ' "${as_owner[@]}")}" "$bindir/pg_ctl" "$pgdata"
    printf 'start) exec %s %q -D %q -w -t 30 -s -l %q -o %q start ;;\n' \
        "${as_owner[*]+$(printf '%q ' "${as_owner[@]}")}" "$bindir/pg_ctl" "$pgdata" "$pgdata/restarted.log" \
        "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdata -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${tls_args[*]+${tls_args[*]}}"
    printf '*) echo "usage: $0 stop|start" >&2; exit 2 ;;\nesac\n'
} >"$tmp/pgctl"
chmod 755 "$tmp/pgctl"
export HAMN_TEST_PG_CTL="$tmp/pgctl"

# --- a streaming replica (HAMN_TEST_PG_REPLICA=1) ------------------------------
if [ "${HAMN_TEST_PG_REPLICA:-}" = 1 ]; then
    replica="$tmp/replica"
    # -R writes standby.signal and primary_conninfo (the primary's socket); -X stream brings
    # the WAL written meanwhile. initdb's pg_hba.conf already trusts local replication.
    if ! run_pg "$bindir/pg_basebackup" -h "$pgdata" -p "$port" -U postgres -D "$replica" \
        -R -X stream -c fast --no-sync >"$tmp/basebackup.log" 2>&1; then
        cat "$tmp/basebackup.log" >&2
        die "pg_basebackup could not copy the primary for the replica"
    fi
    rport=$((port + 1))
    while ! port_free "$rport"; do
        rport=$((rport + 1))
        [ "$rport" -le "$PORT_LAST" ] || die "no free TCP port for the replica"
    done
    (cd "$tmp" && exec ${as_owner[@]+"${as_owner[@]}"} "$bindir/postgres" -D "$replica" -p "$rport" \
        -c listen_addresses=127.0.0.1 -c "unix_socket_directories=$replica" \
        -c max_connections=200 -c hot_standby=on -c fsync=off -c full_page_writes=off \
        -c ssl=off) </dev/null >"$tmp/replica.log" 2>&1 &
    replicapid=$!
    rready=0
    for _ in $(seq 1 150); do
        if run_pg "$bindir/pg_isready" -q -h "$replica" -p "$rport" -U postgres -d postgres -t 2; then
            rready=1
            break
        fi
        kill -0 "$replicapid" 2>/dev/null || break
        sleep 0.2
    done
    if [ "$rready" -ne 1 ]; then
        cat "$tmp/replica.log" >&2
        die "the replica did not start (its log is above)"
    fi
    export HAMN_TEST_REPLICA_URL="postgres://postgres@127.0.0.1:$rport/hamn_test"
    msg "streaming replica running at $HAMN_TEST_REPLICA_URL"
fi

# --- PgBouncer in front (HAMN_TEST_PGBOUNCER=1) ----------------------------------
if [ "${HAMN_TEST_PGBOUNCER:-}" = 1 ]; then
    bouncer=$(command -v pgbouncer || true)
    [ -n "$bouncer" ] || { [ -x /usr/sbin/pgbouncer ] && bouncer=/usr/sbin/pgbouncer; } ||
        die "HAMN_TEST_PGBOUNCER=1 needs pgbouncer; install it with: bash scripts/deps.sh postgis"
    bport=$((port + 2))
    while ! port_free "$bport"; do
        bport=$((bport + 1))
        [ "$bport" -le "$PORT_LAST" ] || die "no free TCP port for PgBouncer"
    done
    mkdir -p "$tmp/pgbouncer"
    printf '"postgres" ""\n' >"$tmp/pgbouncer/users.txt"
    # Every database of the cluster (`*`), so the tests' own databases are reachable.
    cat >"$tmp/pgbouncer/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $tmp/pgbouncer/users.txt
pool_mode = session
max_client_conn = 400
default_pool_size = 40
logfile = $tmp/pgbouncer/pgbouncer.log
INI
    if [ "$as_root" -eq 1 ]; then
        chown -R postgres: "$tmp/pgbouncer"
    fi
    (cd "$tmp" && exec ${as_owner[@]+"${as_owner[@]}"} "$bouncer" "$tmp/pgbouncer/pgbouncer.ini") \
        </dev/null >"$tmp/pgbouncer/stdout.log" 2>&1 &
    bouncerpid=$!
    bready=0
    for _ in $(seq 1 100); do
        if run_pg "$bindir/pg_isready" -q -h 127.0.0.1 -p "$bport" -U postgres -d hamn_test -t 2; then
            bready=1
            break
        fi
        kill -0 "$bouncerpid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$bready" -ne 1 ]; then
        cat "$tmp/pgbouncer/stdout.log" "$tmp/pgbouncer/pgbouncer.log" >&2 2>/dev/null
        die "PgBouncer did not start (its log is above)"
    fi
    export HAMN_TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:$bport/hamn_test"
    msg "PgBouncer (session pooling) running at $HAMN_TEST_PGBOUNCER_URL"
fi

msg "PostgreSQL $versions running at $HAMN_TEST_DATABASE_URL (throwaway, data in $tmp)"

rc=0
"$@" || rc=$?
exit "$rc"
