#!/usr/bin/env bash
# benches/features.sh
#
# Load benchmark (issue 3, item 9): hamn vs tipg serving the SAME 1M-point PostGIS table over
# OGC API - Features, side by side, in ONE throwaway PostgreSQL + PostGIS cluster
# (scripts/with-postgis.sh):
#
#   1. builds hamn (cargo build --release; the binary is copied to $HAMN_BENCH_DIR/features/hamn
#      and that copy is measured), ensures the 1M-point GeoJSON (benches/gen_points.py, default
#      seed; reused from $HAMN_BENCH_DIR if already there), ingests it with hamn;
#   2. starts hamn (serve --no-demo, in-memory R-tree; start-up time to /collections/points
#      answering with itemCount $COUNT, and RSS) and tipg (uvicorn, one worker) on the table
#      hamn wrote (hamn_data."points_vN", primary key hamn_fid);
#   3. writes seeded URL lists (benches/gen_urls.py): ~1 km boxes limit=100, ~10 km boxes
#      limit=1000, single items by random id, the same boxes/ids for both servers;
#   4. checks 50 seeded URLs of each list against both servers (same numberReturned,
#      numberMatched, ids in order; single items: same id, coordinates, properties): aborts if
#      they disagree;
#   5. runs wrk (benches/urls.lua cycling through a list), interleaved hamn, tipg, hamn, tipg,
#      each run a 3 s warm-up then 15 s measured, 2 threads, 8 connections (small boxes also
#      32 connections, both servers), --latency; wrk sends no Accept-Encoding, so neither server
#      compresses, except in the last scenario, small-gzip: the small boxes again with
#      "Accept-Encoding: gzip", as browsers, QGIS/GDAL and Python requests send it;
#   6. prints a table (req/s, p50, p99, non-2xx, socket errors) and the ratios hamn/tipg.
#
# Needs: cargo, python3, curl, wrk (apt-get install wrk; installed if missing, as root), PostgreSQL
# + PostGIS server binaries (bash scripts/deps.sh postgis), and tipg + uvicorn in a venv
# ($TIPG_VENV, default /tmp/tipg-venv; created with `pip install tipg 'uvicorn[standard]'` if
# missing). Raw outputs go to $HAMN_BENCH_DIR/features (default /tmp/hamn-bench/features): the
# summary (summary.txt), one line per run (runs.tsv), wrk's and the servers' output (logs/; hamn
# writes an access-log line per request, some 0.7 GB per run) and the URL lists (urls/).
#
# The machine may be shared (2 cores here): before each run the script waits until the machine
# is idle (below QUIET_BUSY % busy over 2 s) for up to QUIET_WAIT s, and it accounts each run's
# CPU (benches/cpustat.py): the table shows how much went to foreign processes and to steal.
#
# Knobs (environment): SCENARIOS ("small city item small-gzip"; the CQL2 filter lists are
# filter-attr, filter-spatial and filter-both), BENCH_SECONDS (15), WARMUP_SECONDS (3), ROUNDS (2), URL_COUNT (10000),
# URL_SEED (20240301), QUIET_BUSY (20), QUIET_WAIT (300, per run), FOREIGN_MAX (10: a run
# during which other processes took more than this % of the CPU is repeated, up to ATTEMPTS (5)
# times in all; the disturbed outputs are kept as *.disturbed-N; the means use undisturbed runs
# only, where there are any), HAMN_PORT (38080: hamn on the first free port from there, tipg
# on the next).
set -euo pipefail

BENCH_DIR=${HAMN_BENCH_DIR:-/tmp/hamn-bench}
OUT="${BENCH_OUT:-$BENCH_DIR/features}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The binary measured: a copy made right after the build, so a concurrent rebuild of
# target/release cannot swap it under the benchmark.
HAMN="$OUT/hamn"
COUNT=${POINTS:-1000000}
if [ "$COUNT" -eq 1000000 ]; then
    FILE="$BENCH_DIR/points_1m.geojson"
else
    FILE="$BENCH_DIR/points_$COUNT.geojson"
fi
# Extra arguments for `hamn serve` (e.g. --max-features 0: the PostGIS engine).
HAMN_SERVE_ARGS=${HAMN_SERVE_ARGS:-}
TIPG_VENV=${TIPG_VENV:-/tmp/tipg-venv}
BENCH_SECONDS=${BENCH_SECONDS:-15}
WARMUP_SECONDS=${WARMUP_SECONDS:-3}
ROUNDS=${ROUNDS:-2}
URL_COUNT=${URL_COUNT:-10000}
URL_SEED=${URL_SEED:-20240301}
QUIET_BUSY=${QUIET_BUSY:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
FOREIGN_MAX=${FOREIGN_MAX:-10}
ATTEMPTS=${ATTEMPTS:-5}
HAMN_PORT=${HAMN_PORT:-38080}
# Which URL lists to time (benches/gen_urls.py): the CQL2 ones are filter-attr,
# filter-spatial and filter-both.
SCENARIOS=${SCENARIOS:-small city item small-gzip}
THREADS=2

die() {
    printf 'features.sh: error: %s\n' "$*" >&2
    exit 1
}
say() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Inside the throwaway cluster (re-invoked by with-postgis.sh below).
# ---------------------------------------------------------------------------------------------
if [ "${HAMN_BENCH_INNER:-}" = 1 ]; then
    URL=${HAMN_TEST_DATABASE_URL:?not run by scripts/with-postgis.sh}
    LOGS="$OUT/logs"
    RESULTS="$OUT/runs.tsv"
    INFO="$OUT/info.txt"
    mkdir -p "$LOGS"
    rm -f "$LOGS"/* "$RESULTS" "$INFO"

    hamn_pid=""
    tipg_pid=""
    # shellcheck disable=SC2317  # invoked through the trap
    stop_servers() {
        local p
        for p in $hamn_pid $tipg_pid; do
            if kill -0 "$p" 2>/dev/null; then
                kill -TERM "$p" 2>/dev/null || true
                for _ in $(seq 1 50); do
                    kill -0 "$p" 2>/dev/null || break
                    sleep 0.1
                done
                kill -KILL "$p" 2>/dev/null || true
            fi
            wait "$p" 2>/dev/null || true
        done
        hamn_pid=""
        tipg_pid=""
    }
    trap stop_servers EXIT

    q() { psql "$URL" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
    info() { # KEY VALUE...: recorded for the summary
        printf '%s\t%s\n' "$1" "${*:2}" >>"$INFO"
        say "$1: ${*:2}"
    }
    port_free() { ! ss -Htan "sport = :$1" 2>/dev/null | grep -q .; }
    free_port() {
        local p=$1
        while ! port_free "$p"; do p=$((p + 1)); done
        printf '%s\n' "$p"
    }
    now() { date +%s.%N; }
    elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
    rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }

    info machine "$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r)"
    info postgres "$(q "SELECT 'PostgreSQL ' || current_setting('server_version') || ', PostGIS ' || postgis_lib_version() || ' (shared_buffers=' || current_setting('shared_buffers') || ', fsync=' || current_setting('fsync') || ')'")"
    info hamn "$("$HAMN" --version), built from $HAMN_BUILT_FROM"
    info tipg "tipg $("$TIPG_VENV/bin/python" -c 'import tipg; print(tipg.__version__)'), uvicorn $("$TIPG_VENV/bin/python" -c 'import uvicorn; print(uvicorn.__version__)'), uvloop $("$TIPG_VENV/bin/python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none), httptools $("$TIPG_VENV/bin/python" -c 'import httptools; print(httptools.__version__)' 2>/dev/null || echo none), asyncpg $("$TIPG_VENV/bin/python" -c 'import asyncpg; print(asyncpg.__version__)'), Python $("$TIPG_VENV/bin/python" -c 'import platform; print(platform.python_version())')"
    info wrk "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

    # --- ingest ---------------------------------------------------------------------------
    t0=$(now)
    "$HAMN" --database-url "$URL" ingest "$FILE" -c points --quiet >"$LOGS/ingest.log" 2>&1 ||
        { cat "$LOGS/ingest.log" >&2; die "hamn ingest failed"; }
    info ingest "$(elapsed "$t0" "$(now)") s ($(tr '\n' ' ' <"$LOGS/ingest.log" | sed 's/\x1b\[[0-9;]*m//g'))"
    table=$(q "SELECT data_table FROM hamn.collections WHERE id = 'points'")
    [ -n "$table" ] || die "no catalog row for collection points"
    n=$(q "SELECT count(*) FROM hamn_data.\"$table\"")
    [ "$n" -eq "$COUNT" ] || die "hamn_data.$table holds $n rows, expected $COUNT"
    # tipg uses the primary key (hamn_fid) as feature id, hamn uses hamn_id: the same here?
    odd=$(q "SELECT count(*) FROM hamn_data.\"$table\" WHERE hamn_id IS DISTINCT FROM hamn_fid::text")
    [ "$odd" -eq 0 ] || die "$odd rows have hamn_id <> hamn_fid: ids would differ between the servers"
    info table "hamn_data.\"$table\": $n rows, $(q "SELECT pg_size_pretty(pg_total_relation_size('hamn_data.\"$table\"'))") with indexes ($(q "SELECT string_agg(indexdef, '; ') FROM pg_indexes WHERE schemaname = 'hamn_data' AND tablename = '$table'"))"

    # --- hamn -------------------------------------------------------------------------------
    hamn_port=$(free_port "$HAMN_PORT")
    t0=$(now)
    "$HAMN" --database-url "$URL" serve $HAMN_SERVE_ARGS --no-demo --bind "127.0.0.1:$hamn_port" --max-limit 10000 \
        >"$LOGS/hamn.log" 2>&1 &
    hamn_pid=$!
    ready=0
    for _ in $(seq 1 6000); do # up to 300 s
        kill -0 "$hamn_pid" 2>/dev/null || { cat "$LOGS/hamn.log" >&2; die "hamn exited during start-up"; }
        c=$(curl -s -m 2 "http://127.0.0.1:$hamn_port/collections/points" 2>/dev/null || true)
        if [ -n "$c" ] && printf '%s' "$c" | grep -q "\"itemCount\":$COUNT"; then
            ready=1
            break
        fi
        sleep 0.05
    done
    t1=$(now)
    [ "$ready" -eq 1 ] || die "hamn did not serve /collections/points with itemCount $COUNT within 300 s"
    hamn_start=$(elapsed "$t0" "$t1")
    sleep 1
    hamn_rss0=$(rss_kib "$hamn_pid")
    info hamn_start "$hamn_start s from process start to /collections/points answering (itemCount $COUNT); $(grep -o 'snapshot built.*' "$LOGS/hamn.log" | sed 's/\x1b\[[0-9;]*m//g' | head -1)"
    info hamn_rss_start "$hamn_rss0 KiB ($((hamn_rss0 / 1024)) MiB) after start; peak during start-up (VmHWM) $(awk '/^VmHWM/ {print $2}' "/proc/$hamn_pid/status") KiB"

    # --- tipg -------------------------------------------------------------------------------
    tipg_port=$(free_port $((hamn_port + 1)))
    tipg_col="hamn_data.$table"
    tipg_dir=$(mktemp -d /tmp/tipg-run.XXXXXX) # an empty cwd: no stray .env is read
    t0=$(now)
    (cd "$tipg_dir" && exec env \
        DATABASE_URL="postgresql://postgres@${URL#postgres://postgres@}" \
        TIPG_DB_SCHEMAS='["hamn_data"]' \
        TIPG_MAX_FEATURES_PER_QUERY=10000 \
        "$TIPG_VENV/bin/uvicorn" tipg.main:app --host 127.0.0.1 --port "$tipg_port" --workers 1) \
        >"$LOGS/tipg.log" 2>&1 &
    tipg_pid=$!
    ready=0
    for _ in $(seq 1 1200); do # up to 120 s
        kill -0 "$tipg_pid" 2>/dev/null || { cat "$LOGS/tipg.log" >&2; die "tipg exited during start-up (log above)"; }
        if curl -sf -m 5 -o /dev/null "http://127.0.0.1:$tipg_port/collections/$tipg_col"; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ "$ready" -eq 1 ] || { cat "$LOGS/tipg.log" >&2; die "tipg did not serve /collections/$tipg_col within 120 s"; }
    info tipg_start "$(elapsed "$t0" "$(now)") s to /collections/$tipg_col answering; RSS $(rss_kib "$tipg_pid") KiB (uvicorn process; PostgreSQL backends not counted)"
    rm -rf "$tipg_dir"

    # --- URL lists and the correctness check -------------------------------------------------
    python3 "$ROOT/benches/gen_urls.py" gen --out "$OUT/urls" --seed "$URL_SEED" --count "$URL_COUNT" \
        --max-id "$COUNT" --hamn-collection points --tipg-collection "$tipg_col"
    info urls "$URL_COUNT paths per list and server, seed $URL_SEED, in $OUT/urls"
    python3 "$ROOT/benches/gen_urls.py" check --out "$OUT/urls" --seed "$URL_SEED" --sample 50 \
        --hamn "http://127.0.0.1:$hamn_port" --tipg "http://127.0.0.1:$tipg_port" | tee "$LOGS/check.log" >&2 ||
        die "the servers disagree (see above); not timing"
    while IFS= read -r line; do info check "$line"; done <"$LOGS/check.log"

    # --- wrk ----------------------------------------------------------------------------------
    # The machine may be shared: before each run wait (up to QUIET_WAIT s) until it is idle
    # (< QUIET_BUSY % busy over 2 s, our servers being idle then), and account each measured
    # run's CPU (benches/cpustat.py): ours = hamn, tipg, our postmaster's children (tipg's
    # backends) and wrk; "foreign" = the rest, which is noted in the results.
    pg_port=${URL##*:}
    pg_port=${pg_port%%/*}
    postmaster=$(ss -Htlnp "sport = :$pg_port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    [ -n "$postmaster" ] || die "cannot find our postmaster on port $pg_port"
    cpustat() { python3 "$ROOT/benches/cpustat.py" "$@"; }
    wait_quiet() {
        local waited=0 b
        b=$(cpustat busy 2)
        while [ "$b" -ge "$QUIET_BUSY" ]; do
            if [ "$waited" -ge "$QUIET_WAIT" ]; then
                say "machine still ${b}% busy after waiting $waited s: timing anyway (noted)"
                break
            fi
            [ "$waited" -eq 0 ] && say "machine ${b}% busy with other work ($(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | tr -s ' ' | tr '\n' ';')); waiting up to $QUIET_WAIT s"
            sleep 5
            waited=$((waited + 5))
            b=$(cpustat busy 2)
        done
        WAITED=$waited
        BUSY_BEFORE=$b
    }
    printf 'scenario\tserver\tconnections\tround\tlog\tload1\twaited_s\tbusy_before\tattempts\tbusy\tsoftirq\tsteal\tserver_cpu\twrk_cpu\tforeign\ttop_foreign\n' >"$RESULTS"
    run() { # SCENARIO SERVER CONNECTIONS ROUND
        local sc=$1 srv=$2 conns=$3 r=$4 port paths log load acct wu ws foreign attempt=0
        local hdr=() # scenario "<list>-gzip": that list, asking for gzip
        if [ "$srv" = hamn ]; then port=$hamn_port; else port=$tipg_port; fi
        paths="$OUT/urls/${sc%-gzip}.$srv.txt"
        if [ "$sc" != "${sc%-gzip}" ]; then hdr=(-H "Accept-Encoding: gzip"); fi
        log="$LOGS/wrk-$sc-$srv-c$conns-r$r.txt"
        while :; do
            attempt=$((attempt + 1))
            kill -0 "$hamn_pid" 2>/dev/null || die "hamn died (log: $LOGS/hamn.log)"
            kill -0 "$tipg_pid" 2>/dev/null || die "tipg died (log: $LOGS/tipg.log)"
            wait_quiet
            wrk -t"$THREADS" -c"$conns" -d"${WARMUP_SECONDS}s" --timeout 10s "${hdr[@]}" -s "$ROOT/benches/urls.lua" \
                "http://127.0.0.1:$port" -- "$paths" >"$log.warmup" 2>&1 || die "wrk failed (warm-up, $log.warmup)"
            load=$(cut -d' ' -f1 /proc/loadavg)
            cpustat snap "$LOGS/cpu.before"
            /usr/bin/time -f '%U %S' -o "$LOGS/wrk.time" \
                wrk -t"$THREADS" -c"$conns" -d"${BENCH_SECONDS}s" --timeout 10s --latency "${hdr[@]}" -s "$ROOT/benches/urls.lua" \
                "http://127.0.0.1:$port" -- "$paths" >"$log" 2>&1 || die "wrk failed ($log)"
            cpustat snap "$LOGS/cpu.after"
            read -r wu ws <"$LOGS/wrk.time"
            acct=$(cpustat diff "$LOGS/cpu.before" "$LOGS/cpu.after" --ours "$hamn_pid,$tipg_pid" \
                --children-of "$postmaster" --extra-cpu "$(python3 -c "print($wu + $ws)")")
            foreign=$(printf '%s' "$acct" | cut -f6)
            say "$sc $srv c=$conns round $r: $(grep -E 'Requests/sec' "$log" | tr -s ' ') | p50 $(awk '$1 == "50%" {print $2}' "$log") p99 $(awk '$1 == "99%" {print $2}' "$log") | $(grep -E 'Non-2xx|Socket errors' "$log" | tr -s ' ' | tr '\n' ' ')(load $load; cpu busy/softirq/steal/server/wrk/foreign % $(printf '%s' "$acct" | cut -f1-6 | tr '\t' '/'), top foreign $(printf '%s' "$acct" | cut -f7))"
            if [ "$foreign" -gt "$FOREIGN_MAX" ] && [ "$attempt" -lt "$ATTEMPTS" ]; then
                say "  other processes took $foreign % of the CPU during that run: repeating it (attempt $((attempt + 1))/$ATTEMPTS)"
                mv "$log" "$log.disturbed-$attempt"
                continue
            fi
            break
        done
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$srv" "$conns" "$r" "$log" "$load" "$WAITED" "$BUSY_BEFORE" "$attempt" "$acct" >>"$RESULTS"
    }
    for sc in $SCENARIOS; do
        for r in $(seq 1 "$ROUNDS"); do
            run "$sc" hamn 8 "$r"
            run "$sc" tipg 8 "$r"
            if [ "$sc" = small ]; then
                run "$sc" hamn 32 "$r"
                run "$sc" tipg 32 "$r"
            fi
        done
    done

    hamn_rss1=$(rss_kib "$hamn_pid")
    info hamn_rss_after "$hamn_rss1 KiB ($((hamn_rss1 / 1024)) MiB) after all runs"
    info tipg_rss_after "$(rss_kib "$tipg_pid") KiB after all runs (uvicorn process)"
    info hamn_log "$(wc -l <"$LOGS/hamn.log") lines; $(grep -ciE ' (warn|error)' "$LOGS/hamn.log" || true) WARN/ERROR lines; status codes logged: $(grep -oE '" [0-9]{3} ' "$LOGS/hamn.log" | sort | uniq -c | tr -s ' ' | tr '\n' ',' )"
    info tipg_log "$(wc -l <"$LOGS/tipg.log") lines; status codes logged: $(grep -oE '" [0-9]{3}' "$LOGS/tipg.log" | sort | uniq -c | tr -s ' ' | tr '\n' ',' )"
    stop_servers
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outside: tools, build, data, start the cluster, summarise.
# ---------------------------------------------------------------------------------------------
started=$(date +%s)
for tool in cargo python3 psql curl ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
if [ ! -x /usr/bin/time ]; then
    [ "$(id -u)" -eq 0 ] || die "/usr/bin/time missing: install the package 'time'"
    say "installing /usr/bin/time (package time)"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "wrk missing: apt-get install wrk"
    say "installing wrk"
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
if [ ! -x "$TIPG_VENV/bin/uvicorn" ] || ! "$TIPG_VENV/bin/python" -c 'import tipg' 2>/dev/null; then
    say "installing tipg and uvicorn into $TIPG_VENV"
    python3 -m venv "$TIPG_VENV"
    "$TIPG_VENV/bin/pip" install -q tipg 'uvicorn[standard]' || die "could not install tipg into $TIPG_VENV"
fi

say "building hamn (release)"
mkdir -p "$BENCH_DIR" "$OUT"
built_from="git $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes in src/')"
(cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
cp "$ROOT/target/release/hamn" "$HAMN"
if [ ! -s "$FILE" ]; then
    say "generating $FILE ($COUNT points)"
    python3 "$ROOT/benches/gen_points.py" --count "$COUNT" "$FILE"
fi
cat "$FILE" >/dev/null # page cache

HAMN_BUILT_FROM=$built_from HAMN_BENCH_INNER=1 bash "$ROOT/scripts/with-postgis.sh" bash "${BASH_SOURCE[0]}"

python3 - "$OUT" "$QUIET_BUSY" "$FOREIGN_MAX" <<'EOF' | tee "$OUT/summary.txt"
import csv, os, re, statistics, sys

out = sys.argv[1]
quiet_busy = int(sys.argv[2])
foreign_max = int(sys.argv[3])
info = {}
for line in open(os.path.join(out, "info.txt"), encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    info.setdefault(k, []).append(v)

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}

def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT[m.group(2)]

def size(text):
    m = re.fullmatch(r"([0-9.]+)([KMG]?B)", text)
    return float(m.group(1)) * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[m.group(2)]

def parse(path):
    t = open(path, encoding="utf-8").read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))}
    for p in ("50", "99"):
        r["p" + p] = ms(re.search(rf"^\s+{p}%\s+(\S+)", t, re.M).group(1))
    m = re.search(r"(\d+) requests in ([0-9.]+)(\w+), (\S+) read", t)
    r["requests"] = int(m.group(1))
    r["bytes"] = size(m.group(4))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    r["sockerr"] = sum(map(int, m.groups())) if m else 0
    return r

rows = list(csv.DictReader(open(os.path.join(out, "runs.tsv"), encoding="utf-8"), delimiter="\t"))
groups = {}
print()
print(f"{'scenario':<14} {'server':<5} {'conn':>4} {'round':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
      f"{'KB/resp':>8} {'non-2xx':>8} {'sockerr':>7} {'load1':>6} {'server%':>7} {'wrk%':>5} {'foreign%':>8} {'steal%':>6}  top foreign")
for row in rows:
    r = parse(row["log"])
    r["disturbed"] = int(row["foreign"]) > foreign_max
    key = (row["scenario"], row["server"], int(row["connections"]))
    groups.setdefault(key, []).append(r)
    print(f"{row['scenario']:<14} {row['server']:<5} {key[2]:>4} {row['round']:>5} {r['rps']:>10.1f} "
          f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['bytes'] / max(r['requests'], 1) / 1024:>8.1f} "
          f"{r['non2xx']:>8} {r['sockerr']:>7} {row['load1']:>6} {row['server_cpu']:>7} {row['wrk_cpu']:>5} "
          f"{row['foreign']:>8} {row['steal']:>6}  {row['top_foreign']}"
          + (f"  (waited {row['waited_s']} s for quiet; {row['busy_before']}% busy just before)" if row["waited_s"] != "0" or int(row["busy_before"]) >= quiet_busy else "")
          + (f"  (attempt {row['attempts']}: the earlier ones were disturbed)" if row["attempts"] != "1" else "")
          + (f"  DISTURBED: other processes took {row['foreign']}% of the CPU" if r["disturbed"] else ""))

def mean(key, field):
    clean = [r for r in groups[key] if not r["disturbed"]] or groups[key]
    return statistics.mean(r[field] for r in clean)

def mark(key):
    return "*" if all(r["disturbed"] for r in groups[key]) else " "

print()
print(f"Mean of the rounds (undisturbed runs only, i.e. other processes took <= {foreign_max}% of the CPU;")
print(" * = every run of that cell was disturbed, so the mean is of disturbed runs):")
print(f"{'scenario':<14} {'conn':>4} | {'hamn req/s':>10} {'p50':>7} {'p99':>7} | {'tipg req/s':>10} {'p50':>7} {'p99':>7} | "
      f"{'req/s ratio':>11} {'p50 ratio':>9} {'p99 ratio':>9}")
for sc in ("small", "city", "item", "small-gzip", "filter-attr", "filter-spatial", "filter-both"):
    for c in (8, 32):
        h, t = (sc, "hamn", c), (sc, "tipg", c)
        if h not in groups:
            continue
        hr, hp50, hp99 = mean(h, "rps"), mean(h, "p50"), mean(h, "p99")
        if t in groups:
            tr, tp50, tp99 = mean(t, "rps"), mean(t, "p50"), mean(t, "p99")
            print(f"{sc:<14} {c:>4} | {hr:>10.1f}{mark(h)}{hp50:>7.2f} {hp99:>7.2f} | {tr:>10.1f}{mark(t)}{tp50:>7.2f} {tp99:>7.2f} | "
                  f"{hr / tr:>10.1f}x {tp50 / hp50:>8.1f}x {tp99 / hp99:>8.1f}x")
        else:
            print(f"{sc:<14} {c:>4} | {hr:>10.1f}{mark(h)}{hp50:>7.2f} {hp99:>7.2f} | {'-':>10} {'-':>7} {'-':>7} |")
print("(req/s ratio = hamn/tipg; latency ratios = tipg/hamn; latencies in ms)")
bad = sum(r["non2xx"] + r["sockerr"] for g in groups.values() for r in g)
print(f"non-2xx responses + socket errors over all runs: {bad}")
print("(server%, wrk%, foreign%, steal%: shares of all cores during the measured run; foreign = other processes on the machine)")
print()
for k in ("machine", "postgres", "hamn", "tipg", "wrk", "ingest", "table", "hamn_start", "hamn_rss_start",
          "hamn_rss_after", "tipg_start", "tipg_rss_after", "urls", "check", "hamn_log", "tipg_log"):
    for v in info.get(k, []):
        print(f"{k}: {v}")
EOF
say "total time $(($(date +%s) - started)) s; raw results in $OUT"
