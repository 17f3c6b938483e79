#!/usr/bin/env bash
# benches/tile_bytes.sh — where the bytes of hamn's vector tiles go, against PostGIS's own
# encoder (ST_AsMVT over ST_AsMVTGeom, what Martin runs) on the same features (issue 11, item 6).
#
#   cargo build --release && bash scripts/with-postgis.sh bash benches/tile_bytes.sh
#
# Ingests the 1M benchmark points (benches/gen_points.py) into the throwaway cluster, serves
# them with hamn (tile cache off, no per-tile cap, so both encode the same features), and for
# 20 tiles (zoom 10-14, four places in Skåne) prints the total bytes of each and a breakdown
# (benches/mvtstat.py): feature ids, tags, geometry, keys, values. MARTIN=/path/to/martin adds
# Martin on the same table; TILE_CAP=N caps hamn (--tile-max-features) and Martin
# (max_feature_count) alike, as benches/tiles.sh does.
set -euo pipefail
BIN=${HAMN_BIN:-target/release/hamn}
POINTS=${HAMN_BENCH_DIR:-/tmp/hamn-bench}/points_1m.geojson
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -f "$POINTS" ] || python3 benches/gen_points.py "$POINTS"
URL="$HAMN_TEST_DATABASE_URL"
HAMN_LOG=warn $BIN --database-url "$URL" ingest "$POINTS" -c points --quiet
TABLE=$(psql "$URL" -Atc "select data_table from hamn.collections where id='points'")
CAP=${TILE_CAP:-100000000}
HAMN_LOG=warn $BIN --database-url "$URL" serve --bind 127.0.0.1:18490 --access-log false --tile-cache-mb 0 --tile-max-features "$CAP" &
PID=$!
MPID=""
# With MARTIN=/path/to/martin (cargo install martin --no-default-features --features postgres),
# Martin serves the same table too (its configuration as in benches/tiles.sh; with TILE_CAP set,
# its max_feature_count is the same cap).
if [ -n "${MARTIN:-}" ]; then
    LIMIT=""
    [ -n "${TILE_CAP:-}" ] && LIMIT="  max_feature_count: $TILE_CAP"
    cat >/tmp/tile_bytes_martin.yaml <<YAML
listen_addresses: 127.0.0.1:18491
cache:
  size_mb: 0
postgres:
  connection_string: $URL
  auto_publish: false
$LIMIT
  tables:
    points:
      schema: hamn_data
      table: $TABLE
      srid: 4326
      geometry_column: geom
      geometry_type: GEOMETRY
      id_column: hamn_fid
      extent: 4096
      buffer: 64
      clip_geom: true
      properties:
        name: text
        kind: text
        capacity: int8
        price: float8
        updated: date
YAML
    RUST_LOG=warn "$MARTIN" --config /tmp/tile_bytes_martin.yaml >/tmp/tile_bytes_martin.log 2>&1 &
    MPID=$!
    until curl -sf http://127.0.0.1:18491/catalog >/dev/null; do sleep 1; done
fi
until curl -sf http://127.0.0.1:18490/collections/points >/dev/null; do sleep 1; done
python3 - "$URL" "$TABLE" <<'PY'
import math, os, subprocess, sys, urllib.request
sys.path.insert(0, "benches")
from mvtstat import stat
url, table = sys.argv[1], sys.argv[2]
def tile_xy(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    return x, y
martin = os.environ.get("MARTIN")
names = ["hamn", "postgis"] + (["martin"] if martin else [])
tot = {n: {} for n in names}
sizes = {n: 0 for n in names}
for z in [10, 11, 12, 13, 14]:
    for (lon, lat) in [(13.0, 55.6), (13.2, 55.7), (13.6, 56.0), (14.1, 55.9)]:
        x, y = tile_xy(lon, lat, z)
        h = urllib.request.urlopen(f"http://127.0.0.1:18490/collections/points/tiles/WebMercatorQuad/{z}/{y}/{x}").read()
        q = f"""SELECT encode(ST_AsMVT(t, 'points', 4096, 'geom'), 'hex') FROM (
          SELECT ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope({z},{x},{y}), 4096, 64, true) AS geom,
                 name, kind, capacity, price, updated
          FROM hamn_data."{table}"
          WHERE geom && ST_Transform(ST_TileEnvelope({z},{x},{y}, margin => 64.0/4096), 4326)) t
          WHERE geom IS NOT NULL"""
        p = bytes.fromhex(subprocess.run(["psql", url, "-Atc", q], capture_output=True, text=True, check=True).stdout.strip())
        got = [("hamn", h), ("postgis", p)]
        if martin:
            got.append(("martin", urllib.request.urlopen(f"http://127.0.0.1:18491/points/{z}/{x}/{y}").read()))
        for name, b in got:
            sizes[name] += len(b)
            for k, v in stat(b).items():
                tot[name][k] = tot[name].get(k, 0) + v
print("bytes", sizes, "hamn/postgis", round(sizes["hamn"] / sizes["postgis"], 3),
      *(["hamn/martin", round(sizes["hamn"] / sizes["martin"], 3)] if martin else []))
for k in tot["hamn"]:
    print(f"{k:18}" + "".join(f" {n} {tot[n][k]:>10}" for n in names))
PY
kill $PID ${MPID:+$MPID}
