#!/usr/bin/env bash
# benches/heavy.sh — cheap-request latency while heavy requests run (issue 11, item 4).
#
#   bash benches/heavy.sh
#
# hamn (release build) serves 1M points (benches/gen_points.py, ingested once into an embedded
# store under $HAMN_BENCH_DIR/heavy) with the access log off. For two settings of the same
# binary:
#   inline  --heavy-threshold above any collection: every request runs on the HTTP workers,
#           as before the heavy pool existed;
#   pooled  the defaults: requests estimated to look at more than 50,000 features run on the
#           bounded pool (cores at once, 4 x cores waiting, 30 s deadline);
# it measures single-item requests (random ids, wrk: 1 thread, 2 connections, --latency)
#   1. alone, then
#   2. while 8 connections send a full-scan CQL2 filter (name LIKE '%zz%') without pause,
# and prints req/s, p50 and p99 of the single items, and what the heavy connections got
# (requests, non-2xx = 503s). Loopback only, bounded in time (BENCH_SECONDS per run, 20).
# Everything runs on the same machine, wrk included: read the ratios, not the absolutes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bench=${HAMN_BENCH_DIR:-/tmp/hamn-bench}
dir=$bench/heavy
points=$bench/points_1m.geojson
secs=${BENCH_SECONDS:-20}
port=${HEAVY_PORT:-18471}
mkdir -p "$dir"

command -v wrk >/dev/null || { echo "heavy.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -f "$points" ] || python3 benches/gen_points.py "$points"
cargo build --release --quiet
bin=$dir/hamn
cp target/release/hamn "$bin"

if [ ! -f "$dir/store/catalog.json" ]; then
    echo "heavy.sh: ingesting 1M points (once)" >&2
    HAMN_LOG=warn "$bin" --data-dir "$dir/store" ingest "$points" -c points --quiet
fi

python3 - "$dir/items.txt" <<'EOF'
import random, sys
r = random.Random(20241130)
with open(sys.argv[1], "w") as f:
    for _ in range(10000):
        f.write(f"/collections/points/items/{r.randint(1, 1000000)}\n")
EOF
heavy_path="/collections/points/items?filter=name%20LIKE%20%27%25zz%25%27&limit=10"

run() { # mode extra-args...
    local mode=$1
    shift
    HAMN_LOG=warn "$bin" --data-dir "$dir/store" serve --bind "127.0.0.1:$port" \
        --access-log false "$@" >"$dir/$mode.server.log" 2>&1 &
    local pid=$!
    local t=0
    until curl -sf "http://127.0.0.1:$port/collections/points" >/dev/null; do
        sleep 1
        t=$((t + 1))
        [ "$t" -lt 300 ] || { echo "server did not start" >&2; kill "$pid"; exit 1; }
    done
    wrk -t1 -c2 -d"${secs}s" --latency -s benches/urls.lua "http://127.0.0.1:$port" -- "$dir/items.txt" \
        >"$dir/$mode.alone.txt"
    wrk -t1 -c8 -d"$((secs + 6))s" "http://127.0.0.1:$port$heavy_path" >"$dir/$mode.heavy.txt" &
    local heavy=$!
    sleep 3
    wrk -t1 -c2 -d"${secs}s" --latency -s benches/urls.lua "http://127.0.0.1:$port" -- "$dir/items.txt" \
        >"$dir/$mode.loaded.txt"
    wait "$heavy" || true
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

run inline --heavy-threshold 1000000000000
run pooled

summary() { # file
    awk '/Requests\/sec/ { rps = $2 } /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        END { printf "%10s %10s %10s", rps, p50, p99 }' "$1"
}
heavy_summary() { # file
    awk '/requests in/ { n = $1 } /Non-2xx/ { bad = $NF } END { printf "%8s %8s", n, bad + 0 }' "$1"
}
{
    printf '%-8s %-28s %-32s %s\n' mode "items alone: req/s p50 p99" "items + 8 heavy: req/s p50 p99" "heavy: requests non-2xx"
    for mode in inline pooled; do
        printf '%-8s %s   %s   %s\n' "$mode" "$(summary "$dir/$mode.alone.txt")" \
            "$(summary "$dir/$mode.loaded.txt")" "$(heavy_summary "$dir/$mode.heavy.txt")"
    done
} | tee "$dir/summary.txt"
