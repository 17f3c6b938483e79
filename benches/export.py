#!/usr/bin/env python3
"""Helpers for benches/export.sh (issue 15: full-collection exports and one page in several
formats, hamn vs ogr2ogr and tipg).

    python3 benches/export.py pages --out DIR --points N [--boxes K] [--seed S] [--limit L]
                                    --hamn-collection ID --tipg-collection ID
    python3 benches/export.py count FILE FORMAT
    python3 benches/export.py ids FILE
    python3 benches/export.py summary OUT

`pages` writes one file of request paths per server and format (DIR/page-<format>.<server>.txt,
one path a line, K lines): the SAME K seeded bounding boxes, `limit=L`, in each. A box covers
0.16 x 0.09 deg at 1,000,000 points (benches/features.sh's "city" boxes, about 5,500 points
each) and is scaled with the point count so that it holds about as many points at any N
(benches/gen_points.py spreads them uniformly), so every page is full. Formats: geojson,
jsonfg (hamn only: profile=jsonfg), fgb (hamn only), csv, ndjson; tipg gets only the formats it
has (geojson, csv, ndjson).

`count` reads a whole downloaded file and prints how many features it holds: fgb through GDAL
(every feature decoded: `ogr2ogr -f CSV /vsistdout/`; a truncated file fails), csv as records
(Python's csv module, so quoted newlines are no records) minus the header, ndjson/jsonseq as
non-empty lines, geojson/jsonfg as the length of `features`.

`ids` prints the feature ids of a GeoJSON response, one a line.

`summary` prints the markdown tables of a run from OUT/info.txt, OUT/exports.tsv and
OUT/bytes.tsv and OUT/pages.tsv (with the wrk logs they name). Python 3 standard library only (plus GDAL's
command-line tools for fgb).
"""

import argparse
import csv
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys

LON_MIN, LON_MAX = 12.4, 14.6
LAT_MIN, LAT_MAX = 55.3, 56.5
CITY_W, CITY_H = 0.16, 0.09  # benches/gen_urls.py "city" at 1,000,000 points
FORMATS = {
    # format: (query for hamn, query for tipg or None)
    "geojson": ("f=geojson", "f=geojson"),
    "jsonfg": ("f=geojson&profile=jsonfg", None),
    "fgb": ("f=fgb", None),
    "csv": ("f=csv", "f=csv"),
    "ndjson": ("f=ndjson", "f=ndjson"),
}


def pages(args):
    os.makedirs(args.out, exist_ok=True)
    scale = math.sqrt(1_000_000 / args.points)
    w = min(CITY_W * scale, LON_MAX - LON_MIN)
    h = min(CITY_H * scale, LAT_MAX - LAT_MIN)
    rng = random.Random(f"{args.seed}/pages")
    boxes = []
    for _ in range(args.boxes):
        x0 = rng.uniform(LON_MIN, LON_MAX - w)
        y0 = rng.uniform(LAT_MIN, LAT_MAX - h)
        boxes.append(f"{x0:.7f},{y0:.7f},{x0 + w:.7f},{y0 + h:.7f}")
    cols = {"hamn": args.hamn_collection, "tipg": args.tipg_collection}
    for fmt, queries in FORMATS.items():
        for server, q in zip(("hamn", "tipg"), queries):
            if q is None:
                continue
            path = os.path.join(args.out, f"page-{fmt}.{server}.txt")
            with open(path, "w", encoding="ascii", newline="\n") as f:
                for b in boxes:
                    f.write(f"/collections/{cols[server]}/items?bbox={b}&limit={args.limit}&{q}\n")
    expect = args.points * w * h / ((LON_MAX - LON_MIN) * (LAT_MAX - LAT_MIN))
    print(f"{args.boxes} boxes of {w:.4f} x {h:.4f} deg (about {expect:.0f} points each), "
          f"limit={args.limit}, seed {args.seed}")


def count(path, fmt):
    if fmt in ("fgb", "gpkg", "dl-fgb", "dl-gpkg", "fgbidx"):
        p = subprocess.run(["ogr2ogr", "-f", "CSV", "/vsistdout/", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if p.returncode != 0 or p.stderr.strip():
            sys.exit(f"export.py: GDAL could not read {path}: {p.stderr.decode(errors='replace')[:500]}")
        return p.stdout.count(b"\n") - 1
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            return sum(1 for _ in csv.reader(f)) - 1
    if fmt in ("ndjson", "jsonseq"):
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip(b"\x1e \r\n"))
    with open(path, encoding="utf-8") as f:
        return len(json.load(f)["features"])


def ids(path):
    with open(path, encoding="utf-8") as f:
        for feat in json.load(f)["features"]:
            print(feat["id"])


# --- summary ------------------------------------------------------------------------------------

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT[m.group(2)]


def wrk(path):
    t = open(path, encoding="utf-8").read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))}
    for p in ("50", "99"):
        r["p" + p] = ms(re.search(rf"^\s+{p}%\s+(\S+)", t, re.M).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    r["sockerr"] = sum(map(int, m.groups())) if m else 0
    return r


def fmt_n(x, digits=0):
    return f"{x:,.{digits}f}"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def summary(out):
    info = {}
    if os.path.exists(os.path.join(out, "info.txt")):
        for line in open(os.path.join(out, "info.txt"), encoding="utf-8"):
            k, _, v = line.rstrip("\n").partition("\t")
            info.setdefault(k, []).append(v)
    foreign_max = int(info.get("foreign_max", ["10"])[0])
    points = int(info.get("points", ["0"])[0])

    rows = read_tsv(os.path.join(out, "exports.tsv"))
    print(f"## Full-collection export, {fmt_n(points)} points\n")
    print("Timed rounds only (round 0 wrote the file that was checked and is not in the figures); "
          "median, with min–max. TTFB: curl's time_starttransfer; ogr2ogr has no first byte "
          "(it writes a file). Peak RSS: the server process during the export (VmHWM after "
          "resetting it through /proc/PID/clear_refs), for ogr2ogr the ogr2ogr process "
          "(/usr/bin/time); PostgreSQL backends not counted.\n")
    print("| export | features (checked) | MB | TTFB s | total s | MB/s | peak RSS MiB | RSS before → after MiB | foreign CPU % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
    for label in labels:
        rs = [r for r in rows if r["label"] == label]
        check = [r for r in rs if r["round"] == "0"]
        timed = [r for r in rs if r["round"] != "0" and r["ok"] == "1"]
        failed = [r for r in rs if r["ok"] != "1"]
        counted = check[0]["features"] if check else "-"
        if check and check[0]["ok"] != "1":
            counted = f"{counted} (FAILED: {check[0]['note']})"
        if not timed:
            note = failed[0]["note"] if failed else "not run"
            print(f"| {label} | {counted} | - | - | - | - | - | - | - ({note}) |")
            continue

        def col(name):
            return [float(r[name]) for r in timed if r[name] not in ("", "-")]

        def span(vals, d=2):
            if not vals:
                return "–"
            med = statistics.median(vals)
            if len(vals) == 1:
                return f"{med:.{d}f}"
            return f"{med:.{d}f} ({min(vals):.{d}f}–{max(vals):.{d}f})"

        mb = statistics.median(col("bytes")) / 1e6
        total = col("total_s")
        mbs = mb / statistics.median(total) if total else 0
        peak = [v / 1024 for v in col("peak_kib")]
        before = col("rss_before_kib")
        after = col("rss_after_kib")
        rss = f"{min(before) / 1024:.0f} → {max(after) / 1024:.0f}" if before and after else "–"
        foreign = col("foreign")
        fl = f"{max(foreign):.0f}" if foreign else "–"
        if foreign and max(foreign) > foreign_max:
            fl += " (disturbed)"
        fails = f" ({len(failed)} failed)" if failed else ""
        print(f"| {label} | {counted} | {mb:,.1f} | {span(col('ttfb_s'), 3)} | {span(total)} | "
              f"{mbs:,.1f} | {span(peak, 0)} | {rss} | {fl}{fails} |")

    pr = read_tsv(os.path.join(out, "pages.tsv"))
    br = read_tsv(os.path.join(out, "bytes.tsv"))
    if br:
        print(f"\n## One page in several formats ({info.get('pages', ['?'])[0]})\n")
        print("KB: mean over the boxes of curl's size_download, without and with "
              "`Accept-Encoding: gzip` (how many of the responses came gzip-encoded). "
              "req/s, p50 and p99 (ms): wrk over the same boxes, without and with gzip.\n")
        enc_order = []
        for r in pr:
            if r["encoding"] not in enc_order:
                enc_order.append(r["encoding"])
        hdr = "| format | server | KB plain | KB gzip |"
        sep = "|---|---|---:|---:|"
        for e in enc_order:
            hdr += f" req/s {e} | p50 {e} | p99 {e} |"
            sep += "---:|---:|---:|"
        print(hdr)
        print(sep)
        for b in br:
            key = (b["format"], b["server"])
            line = f"| {key[0]} | {key[1]} | {float(b['kb_plain']):,.1f} | {float(b['kb_gzip']):,.1f} ({b['gzip_encoded']}) |"
            for e in enc_order:
                m = [x for x in pr if (x["format"], x["server"], x["encoding"]) == (*key, e)]
                if not m:
                    line += " – | – | – |"
                    continue
                w = wrk(m[0]["log"])
                mark = "*" if int(m[0]["foreign"]) > foreign_max else ""
                err = f" ({w['non2xx']} non-2xx, {w['sockerr']} socket errors)" if w["non2xx"] or w["sockerr"] else ""
                line += f" {w['rps']:,.0f}{mark}{err} | {w['p50']:.2f} | {w['p99']:.2f} |"
            print(line)
        print(f"\n(* = other processes took more than {foreign_max} % of the CPU during that run)")
    print()
    for k, vs in info.items():
        if k in ("foreign_max", "points"):
            continue
        for v in vs:
            print(f"- {k}: {v}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pages")
    p.add_argument("--out", required=True)
    p.add_argument("--points", type=int, required=True)
    p.add_argument("--boxes", type=int, default=20)
    p.add_argument("--seed", default="20240315")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--hamn-collection", required=True)
    p.add_argument("--tipg-collection", required=True)
    c = sub.add_parser("count")
    c.add_argument("file")
    c.add_argument("format")
    i = sub.add_parser("ids")
    i.add_argument("file")
    s = sub.add_parser("summary")
    s.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "pages":
        pages(a)
    elif a.cmd == "count":
        print(count(a.file, a.format))
    elif a.cmd == "ids":
        ids(a.file)
    else:
        summary(a.out)


if __name__ == "__main__":
    main()
