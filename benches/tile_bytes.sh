#!/usr/bin/env bash
# benches/tile_bytes.sh — where the bytes of hamn's vector tiles go, against PostGIS's own
# encoder (ST_AsMVT over ST_AsMVTGeom, what Martin runs) on the same features (issue 11, item 6).
#
#   cargo build --release && bash scripts/with-postgis.sh bash benches/tile_bytes.sh
#
# Ingests the 1M benchmark points (benches/gen_points.py) into the throwaway cluster, serves
# them with hamn (tile cache off, no per-tile cap, so both encode the same features), and for
# 20 tiles (zoom 10-14, four places in Skåne) prints the total bytes of each and a breakdown
# (benches/mvtstat.py): feature ids, tags, geometry, keys, values.
set -euo pipefail
BIN=${HAMN_BIN:-target/release/hamn}
POINTS=${HAMN_BENCH_DIR:-/tmp/hamn-bench}/points_1m.geojson
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -f "$POINTS" ] || python3 benches/gen_points.py "$POINTS"
URL="$HAMN_TEST_DATABASE_URL"
HAMN_LOG=warn $BIN --database-url "$URL" ingest "$POINTS" -c points --quiet
TABLE=$(psql "$URL" -Atc "select data_table from hamn.collections where id='points'")
HAMN_LOG=warn $BIN --database-url "$URL" serve --bind 127.0.0.1:18490 --access-log false --tile-cache-mb 0 --tile-max-features 100000000 &
PID=$!
until curl -sf http://127.0.0.1:18490/collections/points >/dev/null; do sleep 1; done
python3 - "$URL" "$TABLE" <<'PY'
import math, subprocess, sys, urllib.request
sys.path.insert(0, "benches")
from mvtstat import stat
url, table = sys.argv[1], sys.argv[2]
def tile_xy(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    return x, y
tot = {"hamn": {}, "postgis": {}}
sizes = {"hamn": 0, "postgis": 0}
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
        for name, b in (("hamn", h), ("postgis", p)):
            sizes[name] += len(b)
            for k, v in stat(b).items():
                tot[name][k] = tot[name].get(k, 0) + v
print("bytes", sizes, "ratio", round(sizes["hamn"] / sizes["postgis"], 3))
for k in tot["hamn"]:
    print(f"{k:18} hamn {tot['hamn'][k]:>10}  postgis {tot['postgis'][k]:>10}")
PY
kill $PID
