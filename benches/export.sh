#!/usr/bin/env bash
# benches/export.sh
#
# Export benchmark (issue 15): FlatGeobuf and CSV export of a whole collection of POINTS points
# (default 1,000,000), hamn against ogr2ogr from the same PostGIS table and against tipg's CSV;
# then one page (limit=1000, a bbox) as GeoJSON, JSON-FG, FlatGeobuf, CSV and NDJSON: bytes per
# response and req/s, hamn and tipg (where tipg has the format). All in ONE throwaway
# PostgreSQL + PostGIS cluster (scripts/with-postgis.sh):
#
#   1. builds hamn (cargo build --release; the binary is copied to $HAMN_BENCH_DIR/export/hamn
#      and that copy is measured), ensures the POINTS-point GeoJSON (benches/gen_points.py,
#      default seed; at 1,000,000 the file benches/features.sh uses), ingests it with hamn;
#   2. starts hamn (serve --no-demo --max-limit POINTS, so one request can export the whole
#      collection) and tipg (uvicorn, one worker, TIPG_MAX_FEATURES_PER_QUERY=POINTS) on the
#      table hamn wrote (hamn_data."points_vN");
#   3. exports (EXPORTS): hamn items?f=fgb&limit=POINTS and ?f=csv, tipg ?f=csv, and
#      `ogr2ogr -f FlatGeobuf -lco SPATIAL_INDEX=NO` / `ogr2ogr -f CSV -lco GEOMETRY=AS_XY` from
#      the same table (PG: connection), interleaved, ROUNDS times each after an untimed round 0
#      that writes each export to a file and checks it holds POINTS features (benches/export.py
#      count: every feature decoded). Timed rounds: curl to /dev/null (time to first byte,
#      total, bytes); ogr2ogr to a file (wall time; it has no first byte). Memory: the server's
#      peak RSS during each export (VmHWM, reset before through /proc/PID/clear_refs) and its RSS
#      before and after; ogr2ogr's own peak RSS (/usr/bin/time);
#   4. pages (benches/export.py pages): PAGE_BOXES seeded boxes (each about 5,500 points, the
#      "city" boxes of features.sh at 1M, scaled with POINTS), limit=PAGE_LIMIT; checks for the
#      first boxes that every format holds the same number of features and that hamn and tipg
#      return the same ids; bytes per response with curl (plain and `Accept-Encoding: gzip`);
#      wrk (2 threads, CONNECTIONS connections, WARMUP_SECONDS warm-up, PAGE_SECONDS measured)
#      per format and server, plain and with gzip (PAGE_ENCODINGS);
#   5. prints markdown tables to $HAMN_BENCH_DIR/export/summary.txt.
#
# Needs: cargo, python3, curl, wrk, /usr/bin/time (wrk and time installed if missing, as root),
# GDAL's ogr2ogr/ogrinfo, PostgreSQL + PostGIS server binaries (bash scripts/deps.sh postgis),
# and tipg + uvicorn in a venv ($TIPG_VENV, default /tmp/tipg-venv; created with
# `pip install tipg 'uvicorn[standard]'` if missing). Output in $HAMN_BENCH_DIR/export (default
# /tmp/hamn-bench/export): summary.txt, exports.tsv and pages.tsv (one line per run, with the CPU
# accounting), info.txt, logs/ (curl, wrk, /usr/bin/time, servers), urls/, files/ (the checked
# round-0 exports; deleted at the end unless KEEP_FILES=1).
#
# The machine may be shared: before each timed run the script waits (up to QUIET_WAIT s) until it
# is below QUIET_BUSY % busy, accounts the run's CPU (benches/cpustat.py) and repeats a run during
# which other processes took more than FOREIGN_MAX % of the CPU, up to ATTEMPTS attempts.
#
# Knobs (environment): POINTS (1000000), ROUNDS (3), EXPORTS ("hamn-fgb hamn-csv ogr2ogr-fgb
# ogr2ogr-csv tipg-csv hamn-dl-fgb hamn-dl-gpkg ogr2ogr-fgbidx ogr2ogr-gpkg": the dl- ones are the
# bulk downloads, files with a spatial index built once per version, beside ogr2ogr writing the
# same formats with their index; also hamn-geojson, hamn-ndjson, tipg-geojson, tipg-ndjson),
# EXPORT_TIMEOUT (1800 s per export), PAGE_FORMATS ("geojson jsonfg fgb csv ndjson"),
# PAGE_ENCODINGS ("identity gzip"), PAGE_BOXES (20), PAGE_LIMIT (1000), PAGE_SECONDS (10),
# WARMUP_SECONDS (2), CONNECTIONS (4), QUIET_BUSY (20), QUIET_WAIT (300), FOREIGN_MAX (10),
# ATTEMPTS (3), HAMN_PORT (38180: hamn on the first free port from there, tipg on the next),
# KEEP_FILES (0), TIPG_VENV, HAMN_BENCH_DIR.
set -euo pipefail

BENCH_DIR=${HAMN_BENCH_DIR:-/tmp/hamn-bench}
OUT="$BENCH_DIR/export"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HAMN="$OUT/hamn" # a copy made right after the build: a concurrent rebuild cannot swap it
POINTS=${POINTS:-1000000}
if [ "$POINTS" -eq 1000000 ]; then
    FILE="$BENCH_DIR/points_1m.geojson" # the file benches/features.sh uses
else
    FILE="$BENCH_DIR/points_$POINTS.geojson"
fi
TIPG_VENV=${TIPG_VENV:-/tmp/tipg-venv}
ROUNDS=${ROUNDS:-3}
EXPORTS=${EXPORTS:-hamn-fgb hamn-csv ogr2ogr-fgb ogr2ogr-csv tipg-csv hamn-dl-fgb hamn-dl-gpkg ogr2ogr-fgbidx ogr2ogr-gpkg}
EXPORT_TIMEOUT=${EXPORT_TIMEOUT:-1800}
PAGE_FORMATS=${PAGE_FORMATS:-geojson jsonfg fgb csv ndjson}
PAGE_ENCODINGS=${PAGE_ENCODINGS:-identity gzip}
PAGE_BOXES=${PAGE_BOXES:-20}
PAGE_LIMIT=${PAGE_LIMIT:-1000}
PAGE_SECONDS=${PAGE_SECONDS:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
CONNECTIONS=${CONNECTIONS:-4}
QUIET_BUSY=${QUIET_BUSY:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
FOREIGN_MAX=${FOREIGN_MAX:-10}
ATTEMPTS=${ATTEMPTS:-3}
HAMN_PORT=${HAMN_PORT:-38180}
KEEP_FILES=${KEEP_FILES:-0}
THREADS=2
TIPG_FORMATS=" geojson csv ndjson " # what tipg 1.6 serves of PAGE_FORMATS / EXPORTS

die() {
    printf 'export.sh: error: %s\n' "$*" >&2
    exit 1
}
say() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Inside the throwaway cluster (re-invoked by with-postgis.sh below).
# ---------------------------------------------------------------------------------------------
if [ "${HAMN_BENCH_INNER:-}" = 1 ]; then
    URL=${HAMN_TEST_DATABASE_URL:?not run by scripts/with-postgis.sh}
    LOGS="$OUT/logs"
    FILES="$OUT/files"
    EXPORTS_TSV="$OUT/exports.tsv"
    PAGES_TSV="$OUT/pages.tsv"
    INFO="$OUT/info.txt"
    mkdir -p "$LOGS" "$FILES"
    rm -rf "${LOGS:?}"/* "${FILES:?}"/* "$OUT/urls" "$EXPORTS_TSV" "$PAGES_TSV" "$OUT/bytes.tsv" "$INFO"

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
    status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
    # Resets the peak RSS (VmHWM) of a process to its current RSS (Linux >= 4.0).
    reset_hwm() { { printf '5\n' >"/proc/$1/clear_refs"; } 2>/dev/null; }

    info points "$POINTS"
    info foreign_max "$FOREIGN_MAX"
    info machine "$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r)"
    info postgres "$(q "SELECT 'PostgreSQL ' || current_setting('server_version') || ', PostGIS ' || postgis_lib_version() || ' (shared_buffers=' || current_setting('shared_buffers') || ', fsync=' || current_setting('fsync') || ')'")"
    info hamn "$("$HAMN" --version), built from $HAMN_BUILT_FROM"
    info tipg "tipg $("$TIPG_VENV/bin/python" -c 'import tipg; print(tipg.__version__)'), uvicorn $("$TIPG_VENV/bin/python" -c 'import uvicorn; print(uvicorn.__version__)'), uvloop $("$TIPG_VENV/bin/python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none), asyncpg $("$TIPG_VENV/bin/python" -c 'import asyncpg; print(asyncpg.__version__)'), Python $("$TIPG_VENV/bin/python" -c 'import platform; print(platform.python_version())')"
    info gdal "$(ogr2ogr --version)"
    info clients "$(curl --version | head -1 | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

    # --- ingest ---------------------------------------------------------------------------
    t0=$(now)
    "$HAMN" --database-url "$URL" ingest "$FILE" -c points --quiet >"$LOGS/ingest.log" 2>&1 ||
        { cat "$LOGS/ingest.log" >&2; die "hamn ingest failed"; }
    info ingest "$(elapsed "$t0" "$(now)") s ($(grep -v 'applied migration' "$LOGS/ingest.log" | tr '\n' ' ' | sed 's/\x1b\[[0-9;]*m//g'))"
    table=$(q "SELECT data_table FROM hamn.collections WHERE id = 'points'")
    [ -n "$table" ] || die "no catalog row for collection points"
    n=$(q "SELECT count(*) FROM hamn_data.\"$table\"")
    [ "$n" -eq "$POINTS" ] || die "hamn_data.$table holds $n rows, expected $POINTS"
    odd=$(q "SELECT count(*) FROM hamn_data.\"$table\" WHERE hamn_id IS DISTINCT FROM hamn_fid::text")
    [ "$odd" -eq 0 ] || die "$odd rows have hamn_id <> hamn_fid: ids would differ between the servers"
    columns=$(q "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'hamn_data' AND table_name = '$table'")
    info table "hamn_data.\"$table\": $n rows, $(q "SELECT pg_size_pretty(pg_total_relation_size('hamn_data.\"$table\"'))") with indexes; columns $columns"
    # ogr2ogr exports what hamn and tipg do: the id (hamn_id; hamn_fid is the primary key, which
    # GDAL takes as the FID and does not write), the attributes, the geometry.
    attrs=$(q "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'hamn_data' AND table_name = '$table' AND column_name NOT IN ('hamn_fid', 'hamn_id', 'geom')")
    ogr_sql="SELECT hamn_id AS id, $attrs, geom FROM hamn_data.\"$table\""
    pg_port=${URL##*:}
    pg_port=${pg_port%%/*}
    ogr_src="PG:host=127.0.0.1 port=$pg_port dbname=hamn_test user=postgres"
    info ogr2ogr_source "$ogr_src, -sql '$ogr_sql'"

    # --- hamn -------------------------------------------------------------------------------
    hamn_port=$(free_port "$HAMN_PORT")
    t0=$(now)
    "$HAMN" --database-url "$URL" serve --no-demo --bind "127.0.0.1:$hamn_port" --max-limit "$POINTS" \
        >"$LOGS/hamn.log" 2>&1 &
    hamn_pid=$!
    ready=0
    for _ in $(seq 1 6000); do # up to 300 s
        kill -0 "$hamn_pid" 2>/dev/null || { cat "$LOGS/hamn.log" >&2; die "hamn exited during start-up"; }
        c=$(curl -s -m 2 "http://127.0.0.1:$hamn_port/collections/points" 2>/dev/null || true)
        if [ -n "$c" ] && printf '%s' "$c" | grep -q "\"itemCount\":${POINTS}[,}]"; then
            ready=1
            break
        fi
        sleep 0.05
    done
    [ "$ready" -eq 1 ] || die "hamn did not serve /collections/points with itemCount $POINTS within 300 s"
    info hamn_start "$(elapsed "$t0" "$(now)") s to /collections/points answering; RSS $(status_kib "$hamn_pid" VmRSS) KiB, peak during start-up $(status_kib "$hamn_pid" VmHWM) KiB"

    # --- tipg -------------------------------------------------------------------------------
    tipg_port=$(free_port $((hamn_port + 1)))
    tipg_col="hamn_data.$table"
    tipg_max=$((POINTS > 10000 ? POINTS : 10000))
    tipg_dir=$(mktemp -d /tmp/tipg-run.XXXXXX) # an empty cwd: no stray .env is read
    t0=$(now)
    (cd "$tipg_dir" && exec env \
        DATABASE_URL="postgresql://postgres@${URL#postgres://postgres@}" \
        TIPG_DB_SCHEMAS='["hamn_data"]' \
        TIPG_MAX_FEATURES_PER_QUERY="$tipg_max" \
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
    info tipg_start "$(elapsed "$t0" "$(now)") s to /collections/$tipg_col answering; RSS $(status_kib "$tipg_pid" VmRSS) KiB (uvicorn process; PostgreSQL backends not counted); TIPG_MAX_FEATURES_PER_QUERY=$tipg_max"
    rm -rf "$tipg_dir"
    if reset_hwm "$hamn_pid"; then
        info memory "peak RSS per export: VmHWM after resetting it (/proc/PID/clear_refs 5) just before"
        hwm_reset=1
    else
        info memory "/proc/PID/clear_refs not writable: peak RSS is VmHWM since process start"
        hwm_reset=0
    fi

    # --- CPU accounting ---------------------------------------------------------------------
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
    }
    alive() {
        kill -0 "$hamn_pid" 2>/dev/null || die "hamn died (log: $LOGS/hamn.log)"
        kill -0 "$tipg_pid" 2>/dev/null || die "tipg died (log: $LOGS/tipg.log)"
    }
    # timed CMD...: runs CMD under /usr/bin/time between two CPU snapshots; sets T_WALL, T_CPU
    # (the command's user+sys), T_MAXRSS (its peak RSS, KiB), ACCT (cpustat diff) and FOREIGN.
    timed() {
        local u s
        cpustat snap "$LOGS/cpu.before"
        /usr/bin/time -f '%e %U %S %M' -o "$LOGS/time.txt" "$@" || true
        cpustat snap "$LOGS/cpu.after"
        read -r T_WALL u s T_MAXRSS <<<"$(tail -1 "$LOGS/time.txt")"
        T_CPU=$(python3 -c "print($u + $s)")
        ACCT=$(cpustat diff "$LOGS/cpu.before" "$LOGS/cpu.after" --ours "$hamn_pid,$tipg_pid" \
            --children-of "$postmaster" --extra-cpu "$T_CPU")
        FOREIGN=$(printf '%s' "$ACCT" | cut -f6)
    }

    # --- full exports -------------------------------------------------------------------------
    printf 'label\tround\tattempts\tok\tnote\thttp\tfeatures\tttfb_s\ttotal_s\tbytes\tclient_cpu_s\tpeak_kib\trss_before_kib\trss_after_kib\tbusy\tsoftirq\tsteal\tserver_cpu\tclient_cpu\tforeign\ttop_foreign\n' >"$EXPORTS_TSV"
    export_run() { # LABEL ROUND: round 0 writes the file and checks it; others are timed
        local label=$1 r=$2 tool=${1%%-*} fmt=${1#*-} pid="" dest http ttfb total bytes
        local features ok note attempt=0 before after peak base col opts url ext
        while :; do
            attempt=$((attempt + 1))
            http="" ttfb="-" features="-" ok=1 note=""
            alive
            [ "$r" -eq 0 ] || wait_quiet
            case $tool in
                hamn | tipg)
                    if [ "$tool" = hamn ]; then
                        pid=$hamn_pid base="http://127.0.0.1:$hamn_port" col=points
                    else
                        pid=$tipg_pid base="http://127.0.0.1:$tipg_port" col=$tipg_col
                    fi
                    if [ "$r" -eq 0 ]; then dest="$FILES/$label.${fmt#dl-}"; else dest=/dev/null; fi
                    before=$(status_kib "$pid" VmRSS)
                    reset_hwm "$pid" || true
                    # dl-fgb, dl-gpkg: the bulk download (the collection's enclosure link),
                    # built once per version; round 0 waits for the build if it is not done.
                    case $fmt in
                        dl-*) url="$base/collections/$col/download/${fmt#dl-}" ;;
                        *) url="$base/collections/$col/items?f=$fmt&limit=$POINTS" ;;
                    esac
                    timed curl -s -m "$EXPORT_TIMEOUT" -o "$dest" \
                        -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n' \
                        "$url" >"$LOGS/curl.txt" 2>&1
                    read -r http ttfb total bytes <"$LOGS/curl.txt" || true
                    peak=$(status_kib "$pid" VmHWM)
                    after=$(status_kib "$pid" VmRSS)
                    [ "$http" = 200 ] || { ok=0 note="HTTP ${http:-none}"; }
                    ;;
                ogr2ogr)
                    case $fmt in
                        fgb) opts=(-f FlatGeobuf -lco SPATIAL_INDEX=NO) ;;
                        fgbidx) opts=(-f FlatGeobuf -lco SPATIAL_INDEX=YES) ;;
                        gpkg) opts=(-f GPKG -lco SPATIAL_INDEX=YES) ;;
                        csv) opts=(-f CSV -lco GEOMETRY=AS_XY) ;;
                        *) die "ogr2ogr-$fmt: only ogr2ogr-fgb, -fgbidx, -gpkg and -csv" ;;
                    esac
                    # A FlatGeobuf name must end in .fgb (else GDAL makes a directory of layers).
                    ext=$fmt
                    [ "$fmt" = fgbidx ] && ext=fgb
                    if [ "$r" -eq 0 ]; then dest="$FILES/$label.$ext"; else dest="$FILES/$label.timed.$ext"; fi
                    rm -f "$dest"
                    before="-" after="-"
                    timed ogr2ogr "${opts[@]}" -nln points "$dest" "$ogr_src" -sql "$ogr_sql" \
                        >"$LOGS/ogr2ogr-$label-r$r.log" 2>&1
                    peak=$T_MAXRSS total=$T_WALL
                    bytes=$(stat -c %s "$dest" 2>/dev/null || echo 0)
                    if grep -q '^Command exited with non-zero status' "$LOGS/time.txt"; then
                        ok=0 note="ogr2ogr failed: $(head -c 300 "$LOGS/ogr2ogr-$label-r$r.log" | tr '\n\t' '  ')"
                    fi
                    [ "$r" -eq 0 ] || rm -f "$dest"
                    ;;
                *) die "unknown export $label (EXPORTS: hamn-FORMAT, tipg-FORMAT, ogr2ogr-fgb, ogr2ogr-csv)" ;;
            esac
            if [ "$r" -eq 0 ] || [ "$FOREIGN" -le "$FOREIGN_MAX" ] || [ "$attempt" -ge "$ATTEMPTS" ]; then
                break
            fi
            say "  other processes took $FOREIGN % of the CPU during $label round $r: repeating it (attempt $((attempt + 1))/$ATTEMPTS)"
        done
        if [ "$r" -eq 0 ] && [ "$ok" -eq 1 ]; then
            if features=$(python3 "$ROOT/benches/export.py" count "$dest" "$fmt" 2>"$LOGS/count.txt"); then
                [ "$features" = "$POINTS" ] || { ok=0 note="$features features, expected $POINTS"; }
            else
                ok=0 features="-" note="unreadable: $(head -c 300 "$LOGS/count.txt" | tr '\n\t' '  ')"
            fi
            if [ "$fmt" = fgb ]; then
                note="${note:+$note; }header: $(ogrinfo -so -al "$dest" 2>/dev/null | sed -n 's/^Feature Count: //p') features"
            fi
        fi
        say "$label round $r: ${http:+HTTP $http, }TTFB $ttfb s, total $total s, $bytes bytes, $features features, peak RSS $peak KiB (before $before, after $after)${note:+; $note}; cpu busy/softirq/steal/server/client/foreign % $(printf '%s' "$ACCT" | cut -f1-6 | tr '\t' '/')"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$r" "$attempt" "$ok" "$note" \
            "${http:--}" "$features" "$ttfb" "$total" "$bytes" "$T_CPU" "$peak" "$before" "$after" "$ACCT" >>"$EXPORTS_TSV"
    }
    todo=""
    for e in $EXPORTS; do
        case $e in
            tipg-*) [[ "$TIPG_FORMATS" == *" ${e#tipg-} "* ]] || { say "skipping $e: tipg has no ${e#tipg-}"; continue; } ;;
        esac
        todo="$todo $e"
    done
    for r in $(seq 0 "$ROUNDS"); do
        for e in $todo; do export_run "$e" "$r"; done
    done
    # The bulk downloads' one-off builds (from the snapshot in memory, on one blocking thread).
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/hamn.log" | grep 'download built' |
        sed -n 's/.*format="\{0,1\}\([a-z]*\)"\{0,1\} bytes=\([0-9]*\) seconds=\([0-9.]*\).*/\1 \2 \3/p' |
        while read -r f b sec; do info "hamn_download_build_$f" "$sec s, $b bytes"; done
    [ "$hwm_reset" -eq 1 ] || say "(peak RSS figures are since process start)"
    info hamn_rss_after_exports "$(status_kib "$hamn_pid" VmRSS) KiB"
    info tipg_rss_after_exports "$(status_kib "$tipg_pid" VmRSS) KiB"

    # --- one page in several formats ----------------------------------------------------------
    info pages "$(python3 "$ROOT/benches/export.py" pages --out "$OUT/urls" --points "$POINTS" \
        --boxes "$PAGE_BOXES" --limit "$PAGE_LIMIT" --hamn-collection points --tipg-collection "$tipg_col")"
    servers_of() { # FORMAT: the servers that have it
        printf 'hamn'
        [[ "$TIPG_FORMATS" != *" $1 "* ]] || printf ' tipg'
        printf '\n'
    }
    base_of() { if [ "$1" = hamn ]; then echo "http://127.0.0.1:$hamn_port"; else echo "http://127.0.0.1:$tipg_port"; fi; }
    # Check: for the first boxes, every format and server holds the same number of features
    # (PAGE_LIMIT, the boxes holding more), and hamn and tipg return the same ids.
    mkdir -p "$LOGS/pages"
    nbox=$((PAGE_BOXES < 3 ? PAGE_BOXES : 3))
    for k in $(seq 1 "$nbox"); do
        for fmt in $PAGE_FORMATS; do
            for srv in $(servers_of "$fmt"); do
                f="$LOGS/pages/box$k-$fmt.$srv"
                path=$(sed -n "${k}p" "$OUT/urls/page-$fmt.$srv.txt")
                code=$(curl -s -m 120 -o "$f" -w '%{http_code}' "$(base_of "$srv")$path")
                [ "$code" = 200 ] || die "$srv $path: HTTP $code ($(head -c 300 "$f"))"
                c=$(python3 "$ROOT/benches/export.py" count "$f" "$fmt") || die "cannot read $srv's $fmt page ($f)"
                [ "$c" -eq "$PAGE_LIMIT" ] || die "$srv $path: $c features, expected $PAGE_LIMIT"
            done
        done
        if [[ " $PAGE_FORMATS " == *" geojson "* ]]; then
            python3 "$ROOT/benches/export.py" ids "$LOGS/pages/box$k-geojson.hamn" >"$LOGS/pages/ids.hamn"
            python3 "$ROOT/benches/export.py" ids "$LOGS/pages/box$k-geojson.tipg" >"$LOGS/pages/ids.tipg"
            cmp -s "$LOGS/pages/ids.hamn" "$LOGS/pages/ids.tipg" ||
                die "box $k: hamn and tipg return different ids (diff $LOGS/pages/ids.hamn $LOGS/pages/ids.tipg)"
        fi
    done
    info page_check "the first $nbox boxes: $PAGE_LIMIT features in every format from each server; hamn's GeoJSON ids = tipg's, in order"

    # Bytes per response: every box, plain and asking for gzip (curl stores what came).
    page_bytes() { # SERVER FORMAT [CURL ARGS]: mean KB per response, how many were gzip-encoded
        local srv=$1 fmt=$2 sum=0 n=0 gz=0 size enc path
        shift 2
        while IFS= read -r path; do
            read -r size enc < <(curl -s -m 120 -o /dev/null "$@" -w '%{size_download} %header{content-encoding}\n' "$(base_of "$srv")$path")
            sum=$((sum + size))
            n=$((n + 1))
            [ "${enc:-}" != gzip ] || gz=$((gz + 1))
        done <"$OUT/urls/page-$fmt.$srv.txt"
        printf '%s\t%s/%s\n' "$(python3 -c "print(f'{$sum / $n / 1024:.1f}')")" "$gz" "$n"
    }
    printf 'format\tserver\tkb_plain\tkb_gzip\tgzip_encoded\n' >"$OUT/bytes.tsv"
    for fmt in $PAGE_FORMATS; do
        for srv in $(servers_of "$fmt"); do
            plain=$(page_bytes "$srv" "$fmt" | cut -f1)
            gzip=$(page_bytes "$srv" "$fmt" -H 'Accept-Encoding: gzip')
            printf '%s\t%s\t%s\t%s\n' "$fmt" "$srv" "$plain" "$gzip" >>"$OUT/bytes.tsv"
            say "page $fmt $srv: $plain KB plain, ${gzip%%$'\t'*} KB asking for gzip (${gzip#*$'\t'} responses gzip-encoded)"
        done
    done
    printf 'format\tserver\tencoding\tlog\tattempts\tbusy\tsoftirq\tsteal\tserver_cpu\twrk_cpu\tforeign\ttop_foreign\n' >"$PAGES_TSV"
    for enc in $PAGE_ENCODINGS; do
        hdr=()
        [ "$enc" = identity ] || hdr=(-H "Accept-Encoding: $enc")
        for fmt in $PAGE_FORMATS; do
            for srv in $(servers_of "$fmt"); do
                log="$LOGS/wrk-$fmt-$srv-$enc.txt"
                paths="$OUT/urls/page-$fmt.$srv.txt"
                attempt=0
                while :; do
                    attempt=$((attempt + 1))
                    alive
                    wait_quiet
                    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP_SECONDS}s" --timeout 30s ${hdr[@]+"${hdr[@]}"} \
                        -s "$ROOT/benches/urls.lua" "$(base_of "$srv")" -- "$paths" 7 >"$log.warmup" 2>&1 ||
                        die "wrk failed (warm-up, $log.warmup)"
                    timed wrk -t"$THREADS" -c"$CONNECTIONS" -d"${PAGE_SECONDS}s" --timeout 30s --latency ${hdr[@]+"${hdr[@]}"} \
                        -s "$ROOT/benches/urls.lua" "$(base_of "$srv")" -- "$paths" 7 >"$log" 2>&1
                    grep -q 'Requests/sec' "$log" || die "wrk failed ($log)"
                    if [ "$FOREIGN" -le "$FOREIGN_MAX" ] || [ "$attempt" -ge "$ATTEMPTS" ]; then break; fi
                    say "  other processes took $FOREIGN % of the CPU: repeating (attempt $((attempt + 1))/$ATTEMPTS)"
                    mv "$log" "$log.disturbed-$attempt"
                done
                say "page $fmt $srv $enc: $(grep -E 'Requests/sec' "$log" | tr -s ' ') | p50 $(awk '$1 == "50%" {print $2}' "$log") p99 $(awk '$1 == "99%" {print $2}' "$log") | $(grep -E 'Non-2xx|Socket errors' "$log" | tr -s ' ' | tr '\n' ' ')(cpu busy/softirq/steal/server/wrk/foreign % $(printf '%s' "$ACCT" | cut -f1-6 | tr '\t' '/'))"
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$fmt" "$srv" "$enc" "$log" "$attempt" "$ACCT" >>"$PAGES_TSV"
            done
        done
    done

    info hamn_rss_end "$(status_kib "$hamn_pid" VmRSS) KiB"
    info tipg_rss_end "$(status_kib "$tipg_pid" VmRSS) KiB"
    info hamn_log "$(wc -l <"$LOGS/hamn.log") lines; $(grep -ciE ' (warn|error)' "$LOGS/hamn.log" || true) WARN/ERROR lines"
    info tipg_log "$(wc -l <"$LOGS/tipg.log") lines; status codes logged: $(grep -oE '" [0-9]{3}' "$LOGS/tipg.log" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
    stop_servers
    [ "$KEEP_FILES" = 1 ] || rm -rf "${FILES:?}"/*
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outside: tools, build, data, start the cluster, summarise.
# ---------------------------------------------------------------------------------------------
started=$(date +%s)
for tool in cargo python3 psql curl ss ogr2ogr ogrinfo; do
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
    say "generating $FILE ($POINTS points)"
    python3 "$ROOT/benches/gen_points.py" --count "$POINTS" "$FILE"
fi
cat "$FILE" >/dev/null # page cache

HAMN_BUILT_FROM=$built_from HAMN_BENCH_INNER=1 bash "$ROOT/scripts/with-postgis.sh" bash "${BASH_SOURCE[0]}"

python3 "$ROOT/benches/export.py" summary "$OUT" | tee "$OUT/summary.txt"
say "total time $(($(date +%s) - started)) s; raw results in $OUT"
