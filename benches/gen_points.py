#!/usr/bin/env python3
"""Generate a deterministic GeoJSON FeatureCollection of N points over Skåne, for benchmarks.

    python3 benches/gen_points.py [--count N] [--seed S] [OUTPUT]

Default: 1,000,000 points written to /tmp/hamn-bench/points_1m.geojson. Python 3 standard
library only. Features are streamed to the file one at a time (memory does not grow with N),
into OUTPUT.tmp first, which is renamed to OUTPUT when complete, so an interrupted run never
leaves a truncated file behind under the final name. The same --count and --seed always give
byte-identical output.

Every feature is a Point in WGS 84 lon/lat (lon 12.4-14.6, lat 55.3-56.5, 6 decimals), with an
integer "id" (1..N) and the properties
    name      text, Swedish place/street names, so å/ä/ö occur often but not always
    kind      one of a few strings
    capacity  integer
    price     float (2 decimals), null for about 5 % of features
    updated   ISO date (YYYY-MM-DD)
"""

import argparse
import datetime
import json
import os
import random
import sys

PLACES = [
    "Malmö", "Lund", "Helsingborg", "Kristianstad", "Landskrona", "Trelleborg", "Ystad",
    "Ängelholm", "Hässleholm", "Eslöv", "Höganäs", "Simrishamn", "Åhus", "Höör", "Hörby",
    "Staffanstorp", "Svedala", "Vellinge", "Skurup", "Sjöbo", "Tomelilla", "Båstad",
    "Klippan", "Perstorp", "Bjuv", "Åstorp", "Örkelljunga", "Osby", "Östra Göinge",
    "Kävlinge", "Lomma", "Burlöv", "Svalöv", "Bromölla",
]
STREETS = [
    "Storgatan", "Kyrkogatan", "Stationsvägen", "Järnvägsgatan", "Skolgatan", "Torggatan",
    "Ringvägen", "Parkgatan", "Strandvägen", "Hamngatan", "Ågatan", "Östergatan",
    "Västergatan", "Norra vägen", "Södra Förstadsgatan", "Bäckvägen", "Ängsvägen",
    "Smedjegatan", "Industrigatan", "Lundavägen",
]
KINDS = ["parkering", "laddplats", "cykelparkering", "pendelparkering", "besöksparkering"]
KIND_WEIGHTS = [50, 15, 20, 10, 5]

LON_MIN, LON_MAX = 12.4, 14.6
LAT_MIN, LAT_MAX = 55.3, 56.5
DAY0 = datetime.date(2015, 1, 1).toordinal()
DAYS = datetime.date(2024, 12, 31).toordinal() - DAY0


def feature(rng, i):
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    place = rng.choice(PLACES)
    if rng.random() < 0.7:
        name = f"{place}, {rng.choice(STREETS)} {rng.randint(1, 120)}"
    else:
        name = f"{kind.capitalize()} {place} {rng.randint(1, 999)}"
    capacity = rng.randint(2, 40) if kind in ("laddplats", "besöksparkering") else rng.randint(5, 800)
    price = None if rng.random() < 0.05 else round(rng.uniform(0.0, 45.0), 2)
    updated = datetime.date.fromordinal(DAY0 + rng.randrange(DAYS + 1)).isoformat()
    lon = round(rng.uniform(LON_MIN, LON_MAX), 6)
    lat = round(rng.uniform(LAT_MIN, LAT_MAX), 6)
    props = {
        "name": name,
        "kind": kind,
        "capacity": capacity,
        "price": price,
        "updated": updated,
    }
    return (
        '{"type":"Feature","id":%d,"geometry":{"type":"Point","coordinates":[%.6f,%.6f]},'
        '"properties":%s}' % (i, lon, lat, json.dumps(props, ensure_ascii=False, separators=(",", ":")))
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", nargs="?", default="/tmp/hamn-bench/points_1m.geojson")
    ap.add_argument("--count", type=int, default=1_000_000, help="number of points")
    ap.add_argument("--seed", type=int, default=20240210, help="random seed")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")

    rng = random.Random(args.seed)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        # RFC 7946: no "crs" member; coordinates are WGS 84 lon/lat.
        f.write('{"type":"FeatureCollection","name":"points","features":[\n')
        for i in range(1, args.count + 1):
            if i > 1:
                f.write(",\n")
            f.write(feature(rng, i))
        f.write("\n]}\n")
    os.replace(tmp, args.output)
    print(f"wrote {args.count} points to {args.output} ({os.path.getsize(args.output)} bytes)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
