#!/usr/bin/env bash
# benches/ingest.sh [COUNT] [ROUNDS]
#
# Ingest benchmark (issue 2, item 10): the same COUNT-point GeoJSON (default 1000000) loaded
# into PostGIS by hamn and by `ogr2ogr -f PostgreSQL` (PG_USE_COPY=YES), ROUNDS times each
# (default 3), interleaved, in ONE throwaway PostgreSQL + PostGIS cluster
# (scripts/with-postgis.sh). Then hamn once more on a COUNT/10 file, to show that its memory
# does not grow with the file.
#
#   hamn:    hamn --database-url URL ingest FILE -c bench --mode replace --force --quiet
#            (binary COPY in one transaction + primary key + unique id index + GIST + ANALYZE)
#   ogr2ogr: PG_USE_COPY=YES ogr2ogr -f PostgreSQL PG:... FILE -nln bench_ogr -overwrite
#              -lco GEOMETRY_NAME=geom -lco SPATIAL_INDEX=GIST -lco FID=fid -nlt POINT
#            followed by ANALYZE bench_ogr (timed separately, added to ogr2ogr's time)
#
# Each run is timed with /usr/bin/time -f '%e %M %U %S' (wall seconds, max RSS in KiB, client
# user and system CPU seconds), with the share of CPU that other processes on the machine took
# meanwhile ("foreign CPU", from /proc/stat minus the client and our cluster), and checked:
# the loaded table must hold exactly COUNT rows. Prints per-round results, medians, the ratio
# ogr2ogr_time / hamn_time (> 1: hamn faster) and both max RSS. Raw results go to
# $HAMN_BENCH_DIR/results.tsv (default /tmp/hamn-bench).
#
# Needs: cargo, python3, ogr2ogr (gdal-bin), psql, PostgreSQL + PostGIS server binaries
# (bash scripts/deps.sh postgis), /usr/bin/time (package "time": installed if missing, as root).
set -euo pipefail

COUNT=${1:-1000000}
ROUNDS=${2:-3}
BENCH_DIR=${HAMN_BENCH_DIR:-/tmp/hamn-bench}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HAMN="$ROOT/target/release/hamn"

die() {
    printf 'ingest.sh: error: %s\n' "$*" >&2
    exit 1
}
say() { printf '==> %s\n' "$*" >&2; }

if ! [[ "$COUNT" =~ ^[0-9]+$ ]] || [ "$COUNT" -lt 10 ]; then
    die "COUNT must be an integer >= 10 (got $COUNT)"
fi
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || [ "$ROUNDS" -lt 1 ]; then
    die "ROUNDS must be an integer >= 1 (got $ROUNDS)"
fi
SMALL=$((COUNT / 10))

data_file() { # points_1m.geojson for 1000000, points_100k for 100000, else points_N
    local n=$1 label=$1
    if [ $((n % 1000000)) -eq 0 ]; then
        label="$((n / 1000000))m"
    elif [ $((n % 1000)) -eq 0 ]; then
        label="$((n / 1000))k"
    fi
    printf '%s/points_%s.geojson\n' "$BENCH_DIR" "$label"
}
FILE=$(data_file "$COUNT")
SMALL_FILE=$(data_file "$SMALL")

# ---------------------------------------------------------------------------------------------
# Inside the throwaway cluster (re-invoked by with-postgis.sh below).
# ---------------------------------------------------------------------------------------------
if [ "${HAMN_BENCH_INNER:-}" = 1 ]; then
    URL=${HAMN_TEST_DATABASE_URL:?not run by scripts/with-postgis.sh}
    # postgres://postgres@127.0.0.1:PORT/hamn_test -> libpq conninfo for GDAL's PG: driver
    hostport=${URL#*@}
    hostport=${hostport%%/*}
    db=${URL##*/}
    PGCONN="host=${hostport%:*} port=${hostport##*:} dbname=$db user=postgres"
    RESULTS="$BENCH_DIR/results.tsv"
    LOGS="$BENCH_DIR/logs"
    mkdir -p "$LOGS"
    rm -f "$LOGS"/*.log

    q() { psql "$URL" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

    say "server: $(q "SELECT current_setting('server_version') || ', PostGIS ' || postgis_lib_version() || ', fsync=' || current_setting('fsync') || ', shared_buffers=' || current_setting('shared_buffers') || ', maintenance_work_mem=' || current_setting('maintenance_work_mem')")"
    say "$(ogr2ogr --version); $("$HAMN" --version)"

    # The machine may be shared: account for CPU used by anything but this benchmark. Our
    # postmaster's cumulative CPU includes its exited children (the backends of each run).
    PMPID=$(head -n 1 "$(q 'SHOW data_directory')/postmaster.pid")
    # Prints "uptime_s busy_jiffies_of_the_machine postmaster_jiffies_incl_reaped_children".
    cpu_snap() {
        local up a b c rest st
        read -r up rest </proc/uptime
        read -r _ a b c rest </proc/stat
        read -r -a st <"/proc/$PMPID/stat"
        echo "$up $((a + b + c)) $((st[13] + st[14] + st[15] + st[16]))"
    }

    # Runs a command under /usr/bin/time; sets T_WALL (s), T_RSS (KiB), T_CPU (user+sys s of
    # the client process) and T_FOREIGN (% of all cores busy with processes that are neither the
    # client nor our PostgreSQL cluster, while it ran). Output to $1.log.
    timed() {
        local name=$1
        shift
        local log="$LOGS/$name.log" tf="$LOGS/$name.time" before after user sys
        before=$(cpu_snap)
        if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$log" 2>&1; then
            cat "$log" >&2
            die "$name failed (log: $log)"
        fi
        sleep 0.1 # let the postmaster reap the run's backend
        after=$(cpu_snap)
        read -r T_WALL T_RSS user sys <"$tf"
        # shellcheck disable=SC2086  # the snapshots are lists of numbers
        read -r T_CPU T_FOREIGN < <(python3 -c '
import os, sys
user, sys_, t0, b0, p0, t1, b1, p1 = map(float, sys.argv[1:])
hz, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count()
ours = (p1 - p0) / hz + user + sys_
foreign = max(0.0, (b1 - b0) / hz - ours) / (max(t1 - t0, 0.01) * ncpu) * 100
print(f"{user + sys_:.2f} {foreign:.0f}")' "$user" "$sys" $before $after)
    }

    hamn_table() {
        q "SELECT data_table FROM hamn.collections WHERE id = 'bench'"
    }

    check_count() { # TABLE_SQL EXPECTED WHAT
        local n
        n=$(q "SELECT count(*) FROM $1")
        [ "$n" -eq "$2" ] || die "$3: $1 holds $n rows, expected exactly $2"
    }

    # Quiet the cluster between runs (untimed): flush dirty buffers of the previous run.
    settle() {
        q "CHECKPOINT" >/dev/null
        sync
    }

    run_hamn() { # NAME FILE EXPECTED
        settle
        timed "$1" "$HAMN" --database-url "$URL" ingest "$2" -c bench --mode replace --force --quiet
        local table
        table=$(hamn_table)
        [ -n "$table" ] || die "$1: no catalog row for collection bench"
        check_count "hamn_data.\"$table\"" "$3" "$1"
        printf '%s\thamn\t%s\t%s\t%s\t%s\t%s\n' "$1" "$T_WALL" "$T_RSS" "$3" "$T_CPU" "$T_FOREIGN" >>"$RESULTS"
        say "$1: $T_WALL s (client CPU $T_CPU s, foreign CPU $T_FOREIGN %), max RSS $T_RSS KiB ($(sed 's/\x1b\[[0-9;]*m//g' "$LOGS/$1.log" | tr '\n' ' '))"
    }

    run_ogr() { # NAME FILE EXPECTED
        settle
        timed "$1" env PG_USE_COPY=YES ogr2ogr -f PostgreSQL "PG:$PGCONN" "$2" \
            -nln bench_ogr -overwrite -lco GEOMETRY_NAME=geom -lco SPATIAL_INDEX=GIST \
            -lco FID=fid -nlt POINT
        local ogr_wall=$T_WALL ogr_rss=$T_RSS ogr_cpu=$T_CPU ogr_foreign=$T_FOREIGN
        timed "$1-analyze" psql "$URL" -X -q -v ON_ERROR_STOP=1 -c "ANALYZE bench_ogr"
        local an_wall=$T_WALL total
        total=$(python3 -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.2f}')" "$ogr_wall" "$an_wall")
        check_count bench_ogr "$3" "$1"
        printf '%s\togr2ogr\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$total" "$ogr_rss" "$3" "$ogr_cpu" "$ogr_foreign" "$ogr_wall" "$an_wall" >>"$RESULTS"
        say "$1: $total s (ogr2ogr $ogr_wall s + ANALYZE $an_wall s; client CPU $ogr_cpu s, foreign CPU $ogr_foreign %), max RSS $ogr_rss KiB"
    }

    : >"$RESULTS"
    # Warm the page cache so neither tool pays for the first read of the file from disk.
    cat "$FILE" "$SMALL_FILE" >/dev/null

    for r in $(seq 1 "$ROUNDS"); do
        say "round $r/$ROUNDS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
        run_hamn "hamn-r$r" "$FILE" "$COUNT"
        run_ogr "ogr2ogr-r$r" "$FILE" "$COUNT"
    done
    say "memory check: $SMALL points"
    run_hamn "hamn-small" "$SMALL_FILE" "$SMALL"
    run_ogr "ogr2ogr-small" "$SMALL_FILE" "$SMALL"

    # Same data in both tables? (count, attribute sums, extent of the last loads)
    table=$(hamn_table)
    a=$(q "SELECT count(*), sum(capacity), count(price), round(sum(price)::numeric, 2), min(updated), max(updated), ST_Extent(geom)::text FROM hamn_data.\"$table\"")
    b=$(q "SELECT count(*), sum(capacity), count(price), round(sum(price)::numeric, 2), min(updated), max(updated), ST_Extent(geom)::text FROM bench_ogr")
    [ "$a" = "$b" ] || die "the two tables differ: hamn $a, ogr2ogr $b"
    say "same content in both tables ($SMALL-point loads): $a"
    q "SELECT 'hamn    ' || pg_size_pretty(pg_total_relation_size('hamn_data.\"$table\"')) || ' total, indexes: ' || string_agg(indexname, ', ') FROM pg_indexes WHERE schemaname = 'hamn_data' AND tablename = '$table'" >&2
    q "SELECT 'ogr2ogr ' || pg_size_pretty(pg_total_relation_size('bench_ogr')) || ' total, indexes: ' || string_agg(indexname, ', ') FROM pg_indexes WHERE tablename = 'bench_ogr'" >&2
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outside: build, generate, start the cluster, summarise.
# ---------------------------------------------------------------------------------------------
started=$(date +%s)
for tool in cargo python3 ogr2ogr psql; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
if [ ! -x /usr/bin/time ]; then
    [ "$(id -u)" -eq 0 ] || die "/usr/bin/time missing: install the package 'time'"
    say "installing /usr/bin/time (package time)"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

say "building hamn (release)"
(cd "$ROOT" && cargo build --release --quiet)

mkdir -p "$BENCH_DIR"
gen() { # N FILE
    if [ ! -s "$2" ]; then
        say "generating $2 ($1 points)"
        python3 "$ROOT/benches/gen_points.py" --count "$1" "$2"
    fi
}
gen "$COUNT" "$FILE"
gen "$SMALL" "$SMALL_FILE"
say "data: $FILE ($(du -h "$FILE" | cut -f1)), $SMALL_FILE ($(du -h "$SMALL_FILE" | cut -f1))"

HAMN_BENCH_INNER=1 bash "$ROOT/scripts/with-postgis.sh" bash "${BASH_SOURCE[0]}" "$COUNT" "$ROUNDS"

python3 - "$BENCH_DIR/results.tsv" "$COUNT" "$SMALL" <<'EOF'
import statistics, sys

path, count, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
big = {"hamn": [], "ogr2ogr": []}
rss_small = {}
noisy = 0
print()
print(f"{'run':<16} {'tool':<8} {'rows':>8} {'wall s':>8} {'client CPU s':>13} {'max RSS MiB':>12} {'foreign CPU %':>14}")
for r in rows:
    name, tool, wall, rss, n, cpu, foreign = r[0], r[1], float(r[2]), int(r[3]), int(r[4]), float(r[5]), int(r[6])
    extra = f"   (ogr2ogr {r[7]} s + ANALYZE {r[8]} s)" if tool == "ogr2ogr" else ""
    print(f"{name:<16} {tool:<8} {n:>8} {wall:>8.2f} {cpu:>13.2f} {rss / 1024:>12.1f} {foreign:>14}{extra}")
    if n == count:
        big[tool].append((wall, rss, cpu))
        noisy += foreign > 10
    elif n == small:
        rss_small[tool] = rss
h = statistics.median(w for w, _, _ in big["hamn"])
o = statistics.median(w for w, _, _ in big["ogr2ogr"])
h_rss = max(m for _, m, _ in big["hamn"])
o_rss = max(m for _, m, _ in big["ogr2ogr"])
per_round = [ow / hw for (hw, _, _), (ow, _, _) in zip(big["hamn"], big["ogr2ogr"])]
print()
print(f"median wall, {count} points: hamn {h:.2f} s, ogr2ogr (+ANALYZE) {o:.2f} s")
print(f"ratio ogr2ogr_time / hamn_time = {o / h:.2f} of the medians "
      f"({'hamn faster' if o > h else 'hamn slower' if o < h else 'equal'}); "
      f"per round: {', '.join(f'{x:.2f}' for x in per_round)}")
print(f"median client CPU: hamn {statistics.median(c for _, _, c in big['hamn']):.2f} s, "
      f"ogr2ogr {statistics.median(c for _, _, c in big['ogr2ogr']):.2f} s")
print(f"max RSS, {count} points: hamn {h_rss / 1024:.1f} MiB, ogr2ogr {o_rss / 1024:.1f} MiB")
if noisy:
    print(f"warning: {noisy} of the {count}-point runs had more than 10 % foreign CPU "
          "(other processes on the machine): the times are not clean; rerun when idle")
print(f"max RSS, {small} points: hamn {rss_small.get('hamn', 0) / 1024:.1f} MiB, "
      f"ogr2ogr {rss_small.get('ogr2ogr', 0) / 1024:.1f} MiB")
EOF
say "total time $(( $(date +%s) - started )) s"
