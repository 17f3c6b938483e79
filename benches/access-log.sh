#!/usr/bin/env bash
# benches/access-log.sh — what the access log costs (issue 11, item 9).
#
#   bash benches/access-log.sh        (after benches/heavy.sh, whose 1M-point store it reuses)
#
# Single-item requests (random ids over 1M points; wrk: 2 threads, 8 connections, 15 s, after
# 3 s of warm-up) against the same release binary with the access log on (text lines to a
# file, as under a supervisor that collects stderr) and off, interleaved on, off, on, off.
# Prints req/s and p99 of each run and the ratio of the means. Loopback only, bounded in time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=${HAMN_BENCH_DIR:-/tmp/hamn-bench}/heavy
bin=$dir/hamn
port=${ACCESS_PORT:-18473}
secs=${BENCH_SECONDS:-15}
[ -x "$bin" ] && [ -f "$dir/store/catalog.json" ] && [ -f "$dir/items.txt" ] ||
    { echo "access-log.sh: run benches/heavy.sh first (it builds and ingests)" >&2; exit 1; }

run() { # on|off round
    local log=$1 round=$2
    HAMN_LOG=info "$bin" --data-dir "$dir/store" serve --bind "127.0.0.1:$port" \
        --access-log "$([ "$log" = on ] && echo true || echo false)" \
        >"$dir/access-$log-$round.server.log" 2>&1 &
    local pid=$!
    until curl -sf "http://127.0.0.1:$port/collections/points" >/dev/null; do sleep 1; done
    wrk -t2 -c8 -d3s -s benches/urls.lua "http://127.0.0.1:$port" -- "$dir/items.txt" >/dev/null
    wrk -t2 -c8 -d"${secs}s" --latency -s benches/urls.lua "http://127.0.0.1:$port" -- "$dir/items.txt" \
        >"$dir/access-$log-$round.txt"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for round in 1 2; do
    run on "$round"
    run off "$round"
done
for f in "$dir"/access-{on,off}-{1,2}.txt; do
    awk -v name="$(basename "$f" .txt)" '/Requests\/sec/ { rps = $2 } /^ +99%/ { p99 = $2 }
        END { printf "%-16s %10s req/s   p99 %s\n", name, rps, p99 }' "$f"
done | tee "$dir/access-summary.txt"
awk '/Requests\/sec/ { if (FILENAME ~ /-on-/) { on += $2; n++ } else { off += $2; m++ } }
    END { printf "access log on / off: %.3f\n", (on / n) / (off / m) }' "$dir"/access-{on,off}-{1,2}.txt |
    tee -a "$dir/access-summary.txt"
