#!/usr/bin/env python3
"""Seeded URL lists for the OGC API Features load benchmark (benches/features.sh), and the
correctness check that both servers answer them alike.

    python3 benches/gen_urls.py gen   --out DIR [--seed S] [--count N] [--max-id M]
                                      --hamn-collection ID --tipg-collection ID
    python3 benches/gen_urls.py check --out DIR --hamn URL --tipg URL [--sample K] [--seed S]

`gen` writes, for each scenario, one file of request paths per server (DIR/<scenario>.<server>.txt,
one path a line, N lines), built from the SAME boxes and ids in the same order:

    small   ~1 km boxes: 0.016 deg lon x 0.009 deg lat, limit=100
    city    ~10 km boxes: 0.16 deg lon x 0.09 deg lat, limit=1000
    item    single features by id, ids uniform in 1..M
    filter-attr     CQL2 attribute filter: kind = '<one of 5>' AND capacity > C (C in 100..700),
                    limit=100 (no index helps either server: a scan of all features)
    filter-spatial  CQL2 S_INTERSECTS(geometry, POLYGON(~1 km box)), limit=100
    filter-both     CQL2 S_INTERSECTS(geometry, POLYGON(~10 km box)) AND capacity > C, limit=100

Filters go as CQL2-Text (`filter-lang=cql2-text`); the geometry is `geometry` for hamn and the
column name `geom` for tipg. Only some scenarios can be asked for with --scenarios.

Box corners are uniform over the data's extent (lon 12.4-14.6, lat 55.3-56.5, the box wholly
inside it) and written with 7 decimals, so no corner coincides with a 6-decimal point coordinate
of benches/gen_points.py (both servers count points on the edge anyway). The same --seed always
gives the same lists. Python 3 standard library only.

`check` fetches a seeded sample of K paths of each list from both servers and requires, for the
bbox lists, the same numberReturned, the same numberMatched (both servers report it), and the
same feature ids in the same order (both order by the primary key / fid); for single items, HTTP
200 from both with the same id, coordinates and property values. It exits 1 on the first
disagreement, printing both answers.
"""

import argparse
import json
import math
import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

LON_MIN, LON_MAX = 12.4, 14.6
LAT_MIN, LAT_MAX = 55.3, 56.5

# name: (box width deg lon, box height deg lat, limit); None: single items; a string: a filter kind
SCENARIOS = {
    "small": (0.016, 0.009, 100),
    "city": (0.16, 0.09, 1000),
    "item": None,
    "filter-attr": "attr",
    "filter-spatial": "spatial",
    "filter-both": "both",
}
KINDS = ["parkering", "laddplats", "cykelparkering", "pendelparkering", "besöksparkering"]
GEOMETRY = {"hamn": "geometry", "tipg": "geom"}


def box(rng, w, h):
    x0 = rng.uniform(LON_MIN, LON_MAX - w)
    y0 = rng.uniform(LAT_MIN, LAT_MAX - h)
    return f"{x0:.7f},{y0:.7f},{x0 + w:.7f},{y0 + h:.7f}"


def polygon(rng, w, h):
    """A box as a WKT polygon: tipg 1.6 gives BBOX(...) literals SRID 0, which PostGIS refuses
    to compare with the SRID 4326 column, but reads WKT polygons right."""
    x0, y0, x1, y1 = box(rng, w, h).split(",")
    return f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


def filter_path(rng, kind, col, server):
    if kind == "attr":
        text = f"kind = '{rng.choice(KINDS)}' AND capacity > {rng.randint(100, 700)}"
    elif kind == "spatial":
        text = f"S_INTERSECTS({GEOMETRY[server]}, {polygon(rng, 0.016, 0.009)})"
    else:
        text = f"S_INTERSECTS({GEOMETRY[server]}, {polygon(rng, 0.16, 0.09)}) AND capacity > {rng.randint(100, 700)}"
    q = urllib.parse.urlencode({"filter": text, "filter-lang": "cql2-text", "limit": 100})
    return f"/collections/{col}/items?{q}"
SERVERS = ("hamn", "tipg")


def gen(args):
    os.makedirs(args.out, exist_ok=True)
    cols = {"hamn": args.hamn_collection, "tipg": args.tipg_collection}
    for k, (name, spec) in enumerate(SCENARIOS.items()):
        # One stream per scenario, so adding a scenario never changes the others.
        rng = random.Random(f"{args.seed}/{name}")
        lines = {s: [] for s in SERVERS}
        for _ in range(args.count):
            if isinstance(spec, str):
                # Both servers get the same filter: replay the same draws for each.
                state = rng.getstate()
                for s in SERVERS:
                    rng.setstate(state)
                    lines[s].append(filter_path(rng, spec, cols[s], s))
            elif spec is None:
                fid = rng.randint(1, args.max_id)
                for s in SERVERS:
                    lines[s].append(f"/collections/{cols[s]}/items/{fid}")
            else:
                w, h, limit = spec
                x0 = rng.uniform(LON_MIN, LON_MAX - w)
                y0 = rng.uniform(LAT_MIN, LAT_MAX - h)
                bbox = f"{x0:.7f},{y0:.7f},{x0 + w:.7f},{y0 + h:.7f}"
                for s in SERVERS:
                    lines[s].append(f"/collections/{cols[s]}/items?bbox={bbox}&limit={limit}")
        for s in SERVERS:
            path = os.path.join(args.out, f"{name}.{s}.txt")
            with open(path, "w", encoding="ascii", newline="\n") as f:
                f.write("\n".join(lines[s]) + "\n")
        print(f"{name}: {args.count} paths per server, seed {args.seed}", file=sys.stderr)


def fetch(base, path):
    req = urllib.request.Request(base + path, headers={"Accept": "application/geo+json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()[:500]
        return e.code, body.decode("utf-8", "replace")


def same_value(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def check(args):
    failures = []
    summary = []
    for name, spec in SCENARIOS.items():
        paths = {}
        for s in SERVERS:
            with open(os.path.join(args.out, f"{name}.{s}.txt"), encoding="ascii") as f:
                paths[s] = [l.strip() for l in f if l.strip()]
        n = len(paths["hamn"])
        if n != len(paths["tipg"]):
            sys.exit(f"check: {name}: the two lists differ in length")
        rng = random.Random(f"{args.seed}/check/{name}")
        picks = sorted(rng.sample(range(n), min(args.sample, n)))
        returned = []
        matched = []
        uncounted = 0
        for i in picks:
            hs, hb = fetch(args.hamn, paths["hamn"][i])
            ts, tb = fetch(args.tipg, paths["tipg"][i])
            where = f"{name} line {i + 1}: hamn {paths['hamn'][i]}  tipg {paths['tipg'][i]}"
            if hs != 200 or ts != 200:
                failures.append(f"{where}: HTTP hamn {hs}, tipg {ts}: hamn {str(hb)[:300]} tipg {str(tb)[:300]}")
                continue
            if spec is None:
                hp, tp = hb.get("properties", {}), tb.get("properties", {})
                problems = []
                if str(hb.get("id")) != str(tb.get("id")):
                    problems.append(f"id {hb.get('id')!r} vs {tb.get('id')!r}")
                hc = (hb.get("geometry") or {}).get("coordinates")
                tc = (tb.get("geometry") or {}).get("coordinates")
                if hc is None or tc is None or len(hc) != len(tc) or not all(
                    same_value(a, b) for a, b in zip(hc, tc)
                ):
                    problems.append(f"coordinates {hc} vs {tc}")
                for key, hv in hp.items():
                    if key not in tp:
                        problems.append(f"property {key} missing in tipg")
                    elif not same_value(hv, tp[key]):
                        problems.append(f"property {key}: {hv!r} vs {tp[key]!r}")
                if problems:
                    failures.append(f"{where}: " + "; ".join(problems))
                returned.append(1)
                continue
            hr, tr = hb.get("numberReturned"), tb.get("numberReturned")
            hm, tm = hb.get("numberMatched"), tb.get("numberMatched")
            hids = [f.get("id") for f in hb.get("features", [])]
            tids = [f.get("id") for f in tb.get("features", [])]
            problems = []
            if hr != tr:
                problems.append(f"numberReturned {hr} vs {tr}")
            if hm is None and tm is not None and tm > args.count_limit:
                # hamn's PostGIS engine counts only up to --count-limit and leaves the
                # count out above it (OGC API Features makes numberMatched optional).
                uncounted += 1
            elif tm is not None and hm != tm:
                problems.append(f"numberMatched {hm} vs {tm}")
            if hr != len(hids) or tr != len(tids):
                problems.append(f"numberReturned vs features: hamn {hr}/{len(hids)}, tipg {tr}/{len(tids)}")
            if [str(x) for x in hids] != [str(x) for x in tids]:
                diff = set(map(str, hids)) ^ set(map(str, tids))
                problems.append(f"feature ids differ ({len(diff)} not in both, e.g. {sorted(diff)[:5]})")
            if problems:
                failures.append(f"{where}: " + "; ".join(problems))
            returned.append(hr or 0)
            matched.append(hm or 0)
        if not returned:
            summary.append(f"{name}: no sample answered 200 by both servers")
        elif spec is None:
            summary.append(f"{name}: {len(picks)} ids, all 200 with the same id, coordinates and properties")
        else:
            summary.append(
                f"{name}: {len(picks)} boxes, numberReturned min/mean/max "
                f"{min(returned)}/{sum(returned) / len(returned):.1f}/{max(returned)}, "
                f"numberMatched min/mean/max {min(matched)}/{sum(matched) / len(matched):.1f}/{max(matched)}"
                + (f", {uncounted} left out by hamn (tipg counted more than {args.count_limit})" if uncounted else "")
            )
    if failures:
        for f in failures[:20]:
            print(f"check: MISMATCH {f}", file=sys.stderr)
        sys.exit(f"check: {len(failures)} disagreement(s) between hamn and tipg; not timing")
    for s in summary:
        print(f"check ok: {s}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=20240301)
    g.add_argument("--count", type=int, default=2000)
    g.add_argument("--max-id", type=int, default=1_000_000)
    g.add_argument("--hamn-collection", required=True)
    g.add_argument("--tipg-collection", required=True)
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    c.add_argument("--hamn", required=True, help="base URL, e.g. http://127.0.0.1:18080")
    c.add_argument("--tipg", required=True)
    c.add_argument("--sample", type=int, default=50)
    c.add_argument("--seed", type=int, default=20240301)
    c.add_argument("--count-limit", type=int, default=100_000, help="hamn --count-limit: above it hamn may leave numberMatched out")
    args = ap.parse_args()
    if args.cmd == "gen":
        if args.count < 1 or args.max_id < 1:
            ap.error("--count and --max-id must be at least 1")
        gen(args)
    else:
        check(args)


if __name__ == "__main__":
    main()
