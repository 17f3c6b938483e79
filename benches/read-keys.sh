#!/usr/bin/env bash
# benches/read-keys.sh — what read API keys cost (issue 12): the same release binary on the
# demo data, one small items page (`limit=10`) requested over and over (wrk: 2 threads, 16
# connections, BENCH_SECONDS s after 3 s of warm-up), with --read-keys off, and required with
# a read key (a quota too large to be reached: the cost of checking, not of refusing) and with
# an admin token (no quota). Interleaved twice. Prints req/s and p99 of each run and the ratio
# of each to off. Loopback only, bounded in time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=${HAMN_BENCH_DIR:-/tmp/hamn-bench}/keys
port=${KEYS_PORT:-18474}
secs=${BENCH_SECONDS:-15}
cargo build --release --quiet
bin=target/release/hamn
rm -rf "$dir" && mkdir -p "$dir"
store=(--data-dir "$dir/store")
key=$("$bin" "${store[@]}" tokens create --name bench --read-key --per-minute 2000000000 2>/dev/null)
admin=$("$bin" "${store[@]}" tokens create --name bench --admin 2>/dev/null)
url="http://127.0.0.1:$port/collections/hav-bathing-waters/items?limit=10"

run() { # name mode header round
    local name=$1 mode=$2 header=$3 round=$4
    HAMN_LOG=warn "$bin" "${store[@]}" serve --bind "127.0.0.1:$port" --demo-data data \
        --access-log false --read-keys "$mode" >"$dir/$name-$round.server.log" 2>&1 &
    local pid=$!
    until curl -sf -H "$header" "$url" >/dev/null; do sleep 1; done
    wrk -t2 -c16 -d3s -H "$header" "$url" >/dev/null
    wrk -t2 -c16 -d"${secs}s" --latency -H "$header" "$url" >"$dir/$name-$round.txt"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for round in 1 2; do
    run off off "X-Bench: none" "$round"
    run key required "X-API-Key: $key" "$round"
    run admin required "Authorization: Bearer $admin" "$round"
done
for f in "$dir"/{off,key,admin}-{1,2}.txt; do
    awk -v name="$(basename "$f" .txt)" '/Requests\/sec/ { rps = $2 } /^ +99%/ { p99 = $2 }
        END { printf "%-8s %10.0f req/s  p99 %s\n", name, rps, p99 }' "$f"
done
mean() { awk '/Requests\/sec/ { s += $2; n++ } END { print s / n }' "$@"; }
off=$(mean "$dir"/off-*.txt)
for name in key admin; do
    awk -v name="$name" -v a="$(mean "$dir"/$name-*.txt)" -v b="$off" \
        'BEGIN { printf "%s / off: %.3f\n", name, a / b }'
done
