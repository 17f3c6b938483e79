#!/usr/bin/env bash
# benches/tiles.sh
#
# Vector tile benchmark (issue 4, item 6): hamn vs Martin serving the SAME 1M-point PostGIS
# table as Mapbox Vector Tiles, side by side, in ONE throwaway PostgreSQL + PostGIS cluster
# (scripts/with-postgis.sh):
#
#   1. builds hamn from $HAMN_SRC (cargo build --release under nice; the binary is copied to
#      $HAMN_BENCH_DIR/tiles/hamn and that copy is measured), ensures the 1M-point GeoJSON
#      (benches/gen_points.py, default seed; reused from $HAMN_BENCH_DIR if already there),
#      ingests it with hamn (table hamn_data."points_vN", primary key hamn_fid = hamn_id);
#   2. starts three servers on that table:
#        martin     Martin ($MARTIN) with its tile cache off (cache.size_mb 0), the table
#                   configured explicitly (written to $OUT/martin.yaml): extent 4096,
#                   buffer 64, clip_geom, max_feature_count = TILE_CAP, id_column hamn_fid,
#                   properties = hamn's attribute columns; default workers and pool (20);
#                   RUST_LOG=warn (no line per request then, like hamn below);
#        hamn       hamn serve --tile-cache-mb 0 (every tile encoded per request from its
#                   in-memory R-tree), --tile-max-features TILE_CAP, --access-log false;
#                   hamn's tiles have extent 4096 and a 64-unit buffer (not configurable);
#        hamn-warm  a second hamn process with its tile cache on (--tile-cache-mb
#                   WARM_CACHE_MB), every tile of both lists fetched once before timing;
#   3. writes seeded tile lists over Skåne, where the points are (benches/tiles.py gen):
#        dense  DENSE_COUNT tiles, z10-z14 (DENSE_ZOOMS; z10 tiles hit the 10,000 cap);
#        small  SMALL_COUNT tiles, z15-z16 (a few to a few dozen points each);
#   4. checks every distinct tile of both lists (or CHECK_SAMPLE of each) against both servers
#      (benches/tiles.py check: decodes the MVTs and compares ids, points and properties;
#      tiles of TILE_CAP/2 features or more are checked against PostGIS, and the known
#      differences, Martin's LIMIT before clipping and the outer unit of the buffer, are
#      counted and reported): aborts if they disagree; then fills
#      hamn-warm's cache with every tile of both lists, each checked byte-identical to the
#      uncached hamn's tile (benches/tiles.py warm);
#   5. runs wrk (benches/urls.lua cycling through a list, its 2 threads half a list apart),
#      interleaved martin, hamn, hamn-warm per round, each run a WARMUP_SECONDS warm-up then
#      BENCH_SECONDS measured, 2 threads, CONNS connections, --latency; wrk sends no
#      Accept-Encoding, so neither server compresses;
#      then, for a breakdown, each zoom's tiles of the lists alone (z10 ... z16), martin and hamn
#      (uncached), one round of ZOOM_SECONDS;
#   6. prints a table (req/s, p50, p99, non-2xx (204s are 2xx), socket errors, CPU accounting)
#      and the ratios hamn/Martin and hamn-warm/Martin per set, against the issue's goals.
#
# Before timing it also checks that Martin's cache is really off: 50 requests for one z10 tile
# must make at least 50 PostgreSQL transactions (pg_stat_database).
#
# Needs: cargo, python3, curl, psql, ss, wrk (installed with apt-get if missing, as root),
# /usr/bin/time, PostgreSQL + PostGIS server binaries (bash scripts/deps.sh postgis) and Martin
# built with PostgreSQL support (cargo install martin --no-default-features --features postgres).
# Raw outputs go to $HAMN_BENCH_DIR/tiles (default /tmp/hamn-bench/tiles): the summary
# (summary.txt), one line per run (runs.tsv), wrk's and the servers' output (logs/), the tile
# lists (urls/), martin.yaml and the measured hamn binary.
#
# The machine may be shared (2 cores here): before each run the script waits until the machine
# is idle (below QUIET_BUSY % busy over 2 s) for up to QUIET_WAIT s, and it accounts each run's
# CPU (benches/cpustat.py): the table shows how much went to foreign processes and to steal.
#
# Knobs (environment): HAMN_SRC (the hamn source tree to build; default: the repository this
# script is in), MARTIN (martin binary; default: martin on PATH, else ~/.cargo/bin/martin),
# BENCH_SECONDS (10), WARMUP_SECONDS (3), ROUNDS (2), CONNS (8), DENSE_COUNT (1000),
# SMALL_COUNT (5000), DENSE_ZOOMS (10-14: the dense list's zoom levels), TILE_SEED (20240401), CHECK_SAMPLE (0: check every distinct tile),
# TILE_CAP (10000: hamn --tile-max-features and Martin max_feature_count), WARM_CACHE_MB (256),
# QUIET_BUSY (20), QUIET_WAIT (300, per run), FOREIGN_MAX (10: a run during which other
# processes took more than this % of the CPU is repeated, up to ATTEMPTS (5) times in all; the
# disturbed outputs are kept as *.disturbed-N; the means use undisturbed runs only, where there
# are any), HAMN_PORT (39080: the servers on the first free ports from there), ZOOM_SECONDS (5:
# the per-zoom runs; 0 skips them), CHECK_ONLY (1: stop after the correctness check),
# MARTIN_LOG (RUST_LOG for Martin, warn), HAMN_BENCH_DIR (/tmp/hamn-bench).
set -euo pipefail

BENCH_DIR=${HAMN_BENCH_DIR:-/tmp/hamn-bench}
OUT="${BENCH_OUT:-$BENCH_DIR/tiles}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HAMN_SRC=$(cd "${HAMN_SRC:-$ROOT}" && pwd)
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
if [ -z "${MARTIN:-}" ]; then
    MARTIN=$(command -v martin 2>/dev/null || echo "$HOME/.cargo/bin/martin")
fi
BENCH_SECONDS=${BENCH_SECONDS:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-3}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-8}
DENSE_COUNT=${DENSE_COUNT:-1000}
SMALL_COUNT=${SMALL_COUNT:-5000}
DENSE_ZOOMS=${DENSE_ZOOMS:-10-14}
TILE_SEED=${TILE_SEED:-20240401}
CHECK_SAMPLE=${CHECK_SAMPLE:-0}
TILE_CAP=${TILE_CAP:-10000}
TILE_BUFFER=64   # hamn's (src/tiles/mvt.rs TileOptions); Martin is configured to match
TILE_EXTENT=4096
WARM_CACHE_MB=${WARM_CACHE_MB:-256}
QUIET_BUSY=${QUIET_BUSY:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
FOREIGN_MAX=${FOREIGN_MAX:-10}
ATTEMPTS=${ATTEMPTS:-5}
HAMN_PORT=${HAMN_PORT:-39080}
CHECK_ONLY=${CHECK_ONLY:-0}
ZOOM_SECONDS=${ZOOM_SECONDS:-5}
THREADS=2

die() {
    printf 'tiles.sh: error: %s\n' "$*" >&2
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
    warm_pid=""
    martin_pid=""
    # shellcheck disable=SC2317  # invoked through the trap
    stop_servers() {
        local p
        for p in $hamn_pid $warm_pid $martin_pid; do
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
        warm_pid=""
        martin_pid=""
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
    info postgres "$(q "SELECT 'PostgreSQL ' || current_setting('server_version') || ', PostGIS ' || postgis_full_version() || ' (shared_buffers=' || current_setting('shared_buffers') || ', fsync=' || current_setting('fsync') || ', max_parallel_workers_per_gather=' || current_setting('max_parallel_workers_per_gather') || ')'")"
    info hamn "$("$HAMN" --version), built from $HAMN_BUILT_FROM"
    info martin "$("$MARTIN" --version) ($MARTIN)"
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
    # Martin's feature id is its id_column (hamn_fid, an integer), hamn's the numeric hamn_id.
    odd=$(q "SELECT count(*) FROM hamn_data.\"$table\" WHERE hamn_id IS DISTINCT FROM hamn_fid::text")
    [ "$odd" -eq 0 ] || die "$odd rows have hamn_id <> hamn_fid: tile feature ids would differ between the servers"
    info table "hamn_data.\"$table\": $n rows, $(q "SELECT pg_size_pretty(pg_total_relation_size('hamn_data.\"$table\"'))") with indexes ($(q "SELECT string_agg(indexdef, '; ') FROM pg_indexes WHERE schemaname = 'hamn_data' AND tablename = '$table'"))"
    # hamn's attribute columns (all but hamn_fid, hamn_id, geom): Martin's properties.
    props=$(q "SELECT string_agg(format('        %s: %s', column_name, udt_name), E'\n' ORDER BY ordinal_position)
               FROM information_schema.columns
               WHERE table_schema = 'hamn_data' AND table_name = '$table'
                 AND column_name NOT IN ('hamn_fid', 'hamn_id', 'geom', 'hamn_prio')")
    info columns "$(q "SELECT string_agg(column_name || ' ' || udt_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'hamn_data' AND table_name = '$table'")"

    wait_http() { # PID LOG URL SECONDS WHAT [GREP]: until URL answers (and its body matches GREP)
        local pid=$1 log=$2 url=$3 secs=$4 what=$5 pat=${6:-} c
        for _ in $(seq 1 $((secs * 20))); do
            kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$what exited during start-up (log above)"; }
            if c=$(curl -sf -m 2 "$url" 2>/dev/null); then
                if [ -z "$pat" ] || printf '%s' "$c" | grep -q "$pat"; then
                    return 0
                fi
            fi
            sleep 0.05
        done
        cat "$log" >&2
        die "$what did not answer $url within $secs s"
    }

    # --- hamn, uncached and warm ------------------------------------------------------------
    hamn_port=$(free_port "$HAMN_PORT")
    t0=$(now)
    "$HAMN" --database-url "$URL" serve $HAMN_SERVE_ARGS --no-demo --bind "127.0.0.1:$hamn_port" \
        --tile-cache-mb 0 --tile-max-features "$TILE_CAP" --access-log false \
        >"$LOGS/hamn.log" 2>&1 &
    hamn_pid=$!
    wait_http "$hamn_pid" "$LOGS/hamn.log" "http://127.0.0.1:$hamn_port/collections/points" 300 hamn "\"itemCount\":$COUNT"
    info hamn_start "$(elapsed "$t0" "$(now)") s to /collections/points with itemCount $COUNT; RSS $(rss_kib "$hamn_pid") KiB; $(grep -o 'snapshot built.*' "$LOGS/hamn.log" | sed 's/\x1b\[[0-9;]*m//g' | head -1)"
    warm_port=$(free_port $((hamn_port + 1)))
    "$HAMN" --database-url "$URL" serve $HAMN_SERVE_ARGS --no-demo --bind "127.0.0.1:$warm_port" \
        --tile-cache-mb "$WARM_CACHE_MB" --tile-max-features "$TILE_CAP" --access-log false \
        >"$LOGS/hamn-warm.log" 2>&1 &
    warm_pid=$!
    wait_http "$warm_pid" "$LOGS/hamn-warm.log" "http://127.0.0.1:$warm_port/collections/points" 300 hamn-warm "\"itemCount\":$COUNT"

    # --- Martin -------------------------------------------------------------------------------
    martin_port=$(free_port $((warm_port + 1)))
    cat >"$OUT/martin.yaml" <<EOF
# written by benches/tiles.sh
listen_addresses: 127.0.0.1:$martin_port
cache:
  size_mb: 0
postgres:
  connection_string: $URL
  auto_publish: false
  max_feature_count: $TILE_CAP
  tables:
    points:
      schema: hamn_data
      table: $table
      srid: 4326
      geometry_column: geom
      geometry_type: GEOMETRY
      id_column: hamn_fid
      extent: $TILE_EXTENT
      buffer: $TILE_BUFFER
      clip_geom: true
      properties:
$props
EOF
    t0=$(now)
    RUST_LOG=${MARTIN_LOG:-warn} "$MARTIN" --config "$OUT/martin.yaml" >"$LOGS/martin.log" 2>&1 &
    martin_pid=$!
    wait_http "$martin_pid" "$LOGS/martin.log" "http://127.0.0.1:$martin_port/catalog" 120 martin '"points"'
    if grep -i 'unrecognized' "$LOGS/martin.log" >&2; then
        die "martin ignored part of $OUT/martin.yaml (above)"
    fi
    info martin_start "$(elapsed "$t0" "$(now)") s to /catalog listing points; RSS $(rss_kib "$martin_pid") KiB; config $OUT/martin.yaml"
    # --- tile lists and the correctness check -------------------------------------------------
    python3 "$ROOT/benches/tiles.py" gen --out "$OUT/urls" --seed "$TILE_SEED" \
        --dense-count "$DENSE_COUNT" --small-count "$SMALL_COUNT" --dense-zooms "$DENSE_ZOOMS" 2>"$LOGS/gen.log"
    while IFS= read -r line; do info tiles "$line"; done <"$LOGS/gen.log"
    t0=$(now)
    python3 "$ROOT/benches/tiles.py" check --out "$OUT/urls" --seed "$TILE_SEED" --sample "$CHECK_SAMPLE" \
        --hamn "http://127.0.0.1:$hamn_port" --martin "http://127.0.0.1:$martin_port" \
        --db "$URL" --table "hamn_data.\"$table\"" --cap "$TILE_CAP" --buffer "$TILE_BUFFER" --extent "$TILE_EXTENT" \
        >"$LOGS/check.log" 2>&1 || { cat "$LOGS/check.log" >&2; die "the servers disagree (see above); not timing"; }
    while IFS= read -r line; do info check "$line"; done <"$LOGS/check.log"
    info check_time "$(elapsed "$t0" "$(now)") s"
    for set in dense small; do
        python3 "$ROOT/benches/tiles.py" warm --out "$OUT/urls" --list "$set" \
            --warm "http://127.0.0.1:$warm_port" --cold "http://127.0.0.1:$hamn_port" 2>"$LOGS/warm-$set.log" ||
            { cat "$LOGS/warm-$set.log" >&2; die "hamn with and without its tile cache disagree"; }
        info warm "$(cat "$LOGS/warm-$set.log")"
    done
    info hamn_warm_rss "$(rss_kib "$warm_pid") KiB with both lists in the tile cache (uncached hamn: $(rss_kib "$hamn_pid") KiB)"

    # Martin's tile cache must be off: N requests for one tile must make N PostgreSQL
    # transactions (counted in pg_stat_database, which backends flush within 10 s when idle;
    # hamn's refresh polls add a few). And the same for hamn: none (it serves from memory).
    xacts() { q "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }
    probe=$(sed -n 1p "$OUT/urls/z${DENSE_ZOOMS%%-*}.tiles") # a dense tile (z10: ~100 ms of PostGIS work each time)
    read -r pz px py <<<"$probe"
    sleep 11
    x0=$(xacts)
    ms=$(for _ in $(seq 1 50); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$martin_port/points/$pz/$px/$py"; done |
        python3 -c "import sys, statistics; v = [float(l) * 1e3 for l in sys.stdin]; print(f'first {v[0]:.1f} ms, median of the other 49 {statistics.median(v[1:]):.1f} ms')")
    sleep 11
    x1=$(xacts)
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$hamn_port/collections/points/tiles/WebMercatorQuad/$pz/$py/$px"; done
    sleep 11
    x2=$(xacts)
    info martin_cache "50 requests for tile $pz/$px/$py: $((x1 - x0)) PostgreSQL transactions ($ms); then 50 to hamn: $((x2 - x1)) transactions"
    [ $((x1 - x0)) -ge 50 ] || die "martin answered 50 requests for one tile with $((x1 - x0)) PostgreSQL transactions: is its tile cache on?"
    if [ "$CHECK_ONLY" = 1 ]; then
        say "CHECK_ONLY=1: stopping before the timed runs"
        stop_servers
        exit 0
    fi

    # --- wrk ----------------------------------------------------------------------------------
    # The machine may be shared: before each run wait (up to QUIET_WAIT s) until it is idle
    # (< QUIET_BUSY % busy over 2 s, our servers being idle then), and account each measured
    # run's CPU (benches/cpustat.py): ours = both hamns, Martin, our postmaster's children
    # (Martin's backends) and wrk; "foreign" = the rest, which is noted in the results.
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
    run() { # SET SERVER ROUND [SECONDS]
        local sc=$1 srv=$2 r=$3 secs=${4:-$BENCH_SECONDS} conns=$CONNS port paths stride log load acct wu ws foreign attempt=0
        case $srv in
        martin) port=$martin_port paths="$OUT/urls/$sc.martin.txt" ;;
        hamn) port=$hamn_port paths="$OUT/urls/$sc.hamn.txt" ;;
        hamn-warm) port=$warm_port paths="$OUT/urls/$sc.hamn.txt" ;;
        esac
        log="$LOGS/wrk-$sc-$srv-c$conns-r$r.txt"
        stride=$(($(wc -l <"$paths") / THREADS)) # wrk's threads start this many lines apart
        while :; do
            attempt=$((attempt + 1))
            kill -0 "$hamn_pid" 2>/dev/null || die "hamn died (log: $LOGS/hamn.log)"
            kill -0 "$warm_pid" 2>/dev/null || die "hamn-warm died (log: $LOGS/hamn-warm.log)"
            kill -0 "$martin_pid" 2>/dev/null || die "martin died (log: $LOGS/martin.log)"
            wait_quiet
            wrk -t"$THREADS" -c"$conns" -d"${WARMUP_SECONDS}s" --timeout 10s -s "$ROOT/benches/urls.lua" \
                "http://127.0.0.1:$port" -- "$paths" "$stride" >"$log.warmup" 2>&1 || die "wrk failed (warm-up, $log.warmup)"
            load=$(cut -d' ' -f1 /proc/loadavg)
            cpustat snap "$LOGS/cpu.before"
            /usr/bin/time -f '%U %S' -o "$LOGS/wrk.time" \
                wrk -t"$THREADS" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$ROOT/benches/urls.lua" \
                "http://127.0.0.1:$port" -- "$paths" "$stride" >"$log" 2>&1 || die "wrk failed ($log)"
            cpustat snap "$LOGS/cpu.after"
            read -r wu ws <"$LOGS/wrk.time"
            acct=$(cpustat diff "$LOGS/cpu.before" "$LOGS/cpu.after" --ours "$hamn_pid,$warm_pid,$martin_pid" \
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
    for sc in dense small; do
        for r in $(seq 1 "$ROUNDS"); do
            run "$sc" martin "$r"
            run "$sc" hamn "$r"
            run "$sc" hamn-warm "$r"
        done
    done
    # Breakdown by zoom (uncached servers only, one round): where the ratio comes from.
    if [ "$ZOOM_SECONDS" -gt 0 ]; then
        for z in 10 11 12 13 14 15 16; do
            [ -s "$OUT/urls/z$z.hamn.txt" ] || continue
            run "z$z" martin 1 "$ZOOM_SECONDS"
            run "z$z" hamn 1 "$ZOOM_SECONDS"
        done
    fi

    info hamn_rss_after "$(rss_kib "$hamn_pid") KiB (uncached), $(rss_kib "$warm_pid") KiB (warm) after all runs"
    info martin_rss_after "$(rss_kib "$martin_pid") KiB after all runs (martin process; PostgreSQL backends not counted)"
    info logs "hamn: $(wc -l <"$LOGS/hamn.log") lines, $(grep -ciE ' (warn|error)' "$LOGS/hamn.log" || true) WARN/ERROR; hamn-warm: $(wc -l <"$LOGS/hamn-warm.log") lines, $(grep -ciE ' (warn|error)' "$LOGS/hamn-warm.log" || true) WARN/ERROR; martin: $(wc -l <"$LOGS/martin.log") lines"
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
[ -x "$MARTIN" ] || die "martin not found (set MARTIN=/path/to/martin; install: cargo install martin --no-default-features --features postgres)"
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

say "building hamn (release) in $HAMN_SRC"
mkdir -p "$BENCH_DIR" "$OUT"
built_from="$HAMN_SRC, git $(cd "$HAMN_SRC" && git rev-parse --short HEAD)$(cd "$HAMN_SRC" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes in src/')"
(cd "$HAMN_SRC" && nice cargo build --release --quiet) || die "cargo build --release failed"
cp "$HAMN_SRC/target/release/hamn" "$HAMN"
if [ ! -s "$FILE" ]; then
    say "generating $FILE ($COUNT points)"
    python3 "$ROOT/benches/gen_points.py" --count "$COUNT" "$FILE"
fi
cat "$FILE" >/dev/null # page cache

HAMN_BUILT_FROM=$built_from HAMN_BENCH_INNER=1 MARTIN=$MARTIN bash "$ROOT/scripts/with-postgis.sh" bash "${BASH_SOURCE[0]}"
[ "$CHECK_ONLY" = 1 ] && { say "total time $(($(date +%s) - started)) s; check output in $OUT/info.txt"; exit 0; }

python3 - "$OUT" "$QUIET_BUSY" "$FOREIGN_MAX" "$ZOOM_SECONDS" <<'EOF' | tee "$OUT/summary.txt"
import csv, os, re, statistics, sys

out = sys.argv[1]
quiet_busy = int(sys.argv[2])
foreign_max = int(sys.argv[3])
zoom_seconds = sys.argv[4]
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
print(f"{'set':<6} {'server':<9} {'conn':>4} {'round':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
      f"{'KB/resp':>8} {'non-2xx':>8} {'sockerr':>7} {'load1':>6} {'server%':>7} {'wrk%':>5} {'foreign%':>8} {'steal%':>6}  top foreign")
for row in rows:
    r = parse(row["log"])
    r["disturbed"] = int(row["foreign"]) > foreign_max
    key = (row["scenario"], row["server"])
    groups.setdefault(key, []).append(r)
    print(f"{row['scenario']:<6} {row['server']:<9} {row['connections']:>4} {row['round']:>5} {r['rps']:>10.1f} "
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
print(f"{'set':<6} {'server':<9} | {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'req/s x martin':>14} {'p50 martin/x':>12} {'p99 martin/x':>12}")
means = {}
by_zoom_said = False
for sc in ["dense", "small"] + [f"z{z}" for z in range(10, 17)]:
    if sc.startswith("z") and (sc, "hamn") in groups and not by_zoom_said:
        by_zoom_said = True
        print(f"by zoom (the same tiles, uncached servers, one round of {zoom_seconds} s):")
    m = (sc, "martin")
    for srv in ("martin", "hamn", "hamn-warm"):
        k = (sc, srv)
        if k not in groups:
            continue
        rps, p50, p99 = mean(k, "rps"), mean(k, "p50"), mean(k, "p99")
        means[k] = rps
        if m in groups and srv != "martin":
            ratio = f"{rps / mean(m, 'rps'):>13.1f}x {mean(m, 'p50') / p50:>11.1f}x {mean(m, 'p99') / p99:>11.1f}x"
        else:
            ratio = f"{'':>14} {'':>12} {'':>12}"
        print(f"{sc:<6} {srv:<9} | {rps:>10.1f}{mark(k)}{p50:>8.2f} {p99:>8.2f} | {ratio}")
print("(x = that row's server; latencies in ms)")
bad = sum(r["non2xx"] + r["sockerr"] for g in groups.values() for r in g)
print(f"non-2xx responses + socket errors over all runs: {bad}")
print("(server%, wrk%, foreign%, steal%: shares of all cores during the measured run; foreign = other processes on the machine)")
print()
print("Goals (issue 4, item 6):")
for sc in ("dense", "small"):
    if (sc, "hamn") in means and (sc, "martin") in means:
        r = means[(sc, "hamn")] / means[(sc, "martin")]
        print(f"  hamn uncached >= 5x Martin on {sc}: {means[(sc, 'hamn')]:.1f} / {means[(sc, 'martin')]:.1f} = {r:.1f}x  {'met' if r >= 5 else 'NOT met'}")
if ("small", "hamn-warm") in means:
    w = means[("small", "hamn-warm")]
    print(f"  hamn warm cache >= 20,000 req/s on small: {w:,.0f} req/s  {'met' if w >= 20000 else 'NOT met'}")
print()
for k in ("machine", "postgres", "hamn", "martin", "wrk", "ingest", "table", "columns", "hamn_start",
          "martin_start", "tiles", "check", "check_time", "warm", "hamn_warm_rss", "martin_cache", "hamn_rss_after",
          "martin_rss_after", "logs"):
    for v in info.get(k, []):
        print(f"{k}: {v}")
EOF
say "total time $(($(date +%s) - started)) s; raw results in $OUT"
