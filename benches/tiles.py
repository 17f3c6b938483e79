#!/usr/bin/env python3
"""Seeded tile lists for the vector tile benchmark (benches/tiles.sh), the correctness check that
hamn and Martin put the same features in them, and the warm-up of hamn's tile cache.

    python3 benches/tiles.py gen   --out DIR [--seed S] [--dense-count N] [--small-count M]
                                   [--hamn-collection ID] [--martin-source ID]
    python3 benches/tiles.py check --out DIR --hamn URL --martin URL --db URL --table SCHEMA.TABLE
                                   [--cap C] [--buffer B] [--extent E] [--sample K] [--seed S]
    python3 benches/tiles.py warm  --out DIR --list NAME --warm URL --cold URL

`gen` picks tiles where the points of benches/gen_points.py are (lon 12.4-14.6, lat 55.3-56.5,
Skåne): for each tile a seeded random point uniform over that extent and a zoom uniform over the
set's zooms, and the tile holding that point. Two sets:

    dense   z10-z14   (z10 tiles hold ~27,000 of the 1M points, so they hit the 10,000 cap;
                       z11 ~6,700, z12 ~1,700, z13 ~420, z14 ~100)
    small   z15-z16   (~26 and ~6.5 points a tile)

It writes DIR/<set>.tiles ("z x y" a line) and one file of request paths per server,
DIR/<set>.hamn.txt (/collections/ID/tiles/WebMercatorQuad/z/y/x: row before column) and
DIR/<set>.martin.txt (/ID/z/x/y), the same tiles in the same order; and the same three files
per zoom (DIR/z<zoom>.*: that zoom's tiles of its set, in the same order). A tile can occur more than
once (z10 has only ~40 tiles over Skåne). The same --seed always gives the same lists.

`check` fetches every distinct tile of both lists (or a seeded sample of K distinct tiles of each
list when K > 0) from both servers (HTTP 200 with an MVT, or 204 for an empty tile; no
Accept-Encoding is sent, so neither compresses), decodes the MVTs (a small protobuf decoder here,
standard library only) and requires, tile by tile:

  - at most one layer, the same extent, unique ids, at most C features (the cap) from each;
  - for every feature in both tiles: the same point on the tile grid (at most 1 unit apart:
    two Web Mercator implementations could round differently) and the same property values;
  - tiles with fewer than C/2 features in both answers: the SAME set of feature ids (hamn's MVT
    id is the numeric hamn_id, Martin's its id_column hamn_fid, equal in this table), except
    features at the outer edge of the buffer (see "edge" below);
  - tiles with C/2 or more features in either answer are checked against PostGIS: hamn must
    return the min(C, n) points of its clip box of lowest thinning priority (src/tiles/mvt.rs;
    the box compared exactly with ST_X/ST_Y, as `&&` rounds boxes to float4). Martin must
    return the same ids as hamn (except edge features), unless its own search box holds at
    least C rows: then its LIMIT C cut them (see "short" below), and its ids must be a subset
    of hamn's (plus edge features), or, when hamn is at the cap too, only fewer than C.

"edge": hamn clips points to the tile grown by buffer-1 units before rounding (so rounding
cannot carry a vertex past the buffer); ST_AsMVTGeom (Martin) clips to the tile grown by about
buffer + 1/2 units, so a point that lands 63 or 64 units outside the tile is in Martin's tile and
not in hamn's. Such features are counted (by how far out they are) and reported, not treated as
disagreement; a feature in one tile and not the other anywhere else aborts the check.

"short": Martin's query (SRID 4326 table) pre-selects rows with
    geom && ST_Expand(ST_Transform(ST_TileEnvelope(z, x, y), 4326), buffer/extent * 360 / 2^z)
which grows the box by as many degrees of latitude as of longitude, about 1.8 times the buffer
at 56 degrees north; its LIMIT C applies to those rows, and the ones outside the clip box then
become NULL geometries that ST_AsMVT leaves out. So where the box holds C rows or more, Martin
returns somewhat fewer than C features (and at the cap an arbitrary C rows, not the lowest
fids). Reported with the shortfall.

It prints a summary (one line per list) and exits 1 on any disagreement, printing what differs.

`warm` fetches every distinct path of DIR/<list>.hamn.txt from the WARM server (hamn with its
tile cache on), so each is in its cache, and compares every body with the COLD server's (hamn
with --tile-cache-mb 0): they must be byte-identical.
"""

import argparse
import concurrent.futures
import math
import os
import random
import struct
import subprocess
import sys
import urllib.error
import urllib.request

LON_MIN, LON_MAX = 12.4, 14.6
LAT_MIN, LAT_MAX = 55.3, 56.5
SETS = {"dense": (10, 14), "small": (15, 16)}
SERVERS = ("hamn", "martin")





def thinning_priority(fid):
    """hamn's order for thinning a capped tile (src/tiles/mvt.rs `priority`): a hash of the
    fid in 31-bit steps (so PostgreSQL computes it too); ties, which distinct fids below 2^31
    never make, by fid."""
    m = 0x7FFFFFFF
    z = ((fid & m) * 1_103_515_245) & m
    return (((z ^ (z >> 15)) * 739_982_445) & m, fid)

def lonlat_tile(lon, lat, z):
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    r = math.radians(lat)
    y = int((1.0 - math.log(math.tan(r) + 1.0 / math.cos(r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def read_tiles(out, name):
    with open(os.path.join(out, f"{name}.tiles")) as f:
        return [tuple(int(v) for v in line.split()) for line in f if line.strip()]


def hamn_path(col, z, x, y):
    return f"/collections/{col}/tiles/WebMercatorQuad/{z}/{y}/{x}"


def martin_path(src, z, x, y):
    return f"/{src}/{z}/{x}/{y}"


def gen(args):
    os.makedirs(args.out, exist_ok=True)
    counts = {"dense": args.dense_count, "small": args.small_count}
    lo, _, hi = args.dense_zooms.partition("-")
    sets = dict(SETS, dense=(int(lo), int(hi or lo)))
    for name, (zmin, zmax) in sets.items():
        rng = random.Random(f"{args.seed}/{name}")  # one stream per set
        tiles = []
        for _ in range(counts[name]):
            lon = rng.uniform(LON_MIN, LON_MAX)
            lat = rng.uniform(LAT_MIN, LAT_MAX)
            z = rng.randint(zmin, zmax)
            x, y = lonlat_tile(lon, lat, z)
            tiles.append((z, x, y))
        with open(os.path.join(args.out, f"{name}.tiles"), "w") as f:
            f.writelines(f"{z} {x} {y}\n" for z, x, y in tiles)
        with open(os.path.join(args.out, f"{name}.hamn.txt"), "w") as f:
            f.writelines(hamn_path(args.hamn_collection, *t) + "\n" for t in tiles)
        with open(os.path.join(args.out, f"{name}.martin.txt"), "w") as f:
            f.writelines(martin_path(args.martin_source, *t) + "\n" for t in tiles)
        per_zoom = {}
        for z, _, _ in tiles:
            per_zoom[z] = per_zoom.get(z, 0) + 1
        # One list per zoom too (the same tiles, in the same order), for a breakdown.
        for zoom in per_zoom:
            sub = [t for t in tiles if t[0] == zoom]
            with open(os.path.join(args.out, f"z{zoom}.tiles"), "w") as f:
                f.writelines(f"{z} {x} {y}\n" for z, x, y in sub)
            with open(os.path.join(args.out, f"z{zoom}.hamn.txt"), "w") as f:
                f.writelines(hamn_path(args.hamn_collection, *t) + "\n" for t in sub)
            with open(os.path.join(args.out, f"z{zoom}.martin.txt"), "w") as f:
                f.writelines(martin_path(args.martin_source, *t) + "\n" for t in sub)
        print(f"{name}: {len(tiles)} tiles ({len(set(tiles))} distinct), per zoom "
              + ", ".join(f"z{z}: {n}" for z, n in sorted(per_zoom.items())), file=sys.stderr)


# --- a minimal MVT (protobuf) decoder -------------------------------------------------------

def varint(buf, i):
    b = buf[i]
    if b < 0x80:
        return b, i + 1
    result = b & 0x7F
    shift = 7
    i += 1
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, wire type, value) of one message; length-delimited values as memoryview."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            ln, i = varint(buf, i)
            v = buf[i:i + ln]
            i += ln
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield fn, wt, v


def packed(buf):
    out, i, n = [], 0, len(buf)
    while i < n:
        v, i = varint(buf, i)
        out.append(v)
    return out


def zigzag(v):
    return (v >> 1) ^ -(v & 1)


def value(buf):
    for fn, _, v in fields(buf):
        if fn == 1:
            return bytes(v).decode("utf-8")
        if fn == 2:
            return float(struct.unpack("<f", v)[0])
        if fn == 3:
            return float(struct.unpack("<d", v)[0])
        if fn == 4:
            return v - (1 << 64) if v >= 1 << 63 else v
        if fn == 5:
            return v
        if fn == 6:
            return zigzag(v)
        if fn == 7:
            return bool(v)
    return None


def geometry_points(cmds):
    """The vertices of an MVT geometry command list, in tile units."""
    pts, x, y, i = [], 0, 0, 0
    while i < len(cmds):
        c = cmds[i]
        i += 1
        op, count = c & 7, c >> 3
        if op == 7:  # ClosePath
            continue
        for _ in range(count):
            x += zigzag(cmds[i])
            y += zigzag(cmds[i + 1])
            i += 2
            pts.append((x, y))
    return pts


def decode(data):
    """[layer dict]: name, extent, features {id: (type, [points], {key: value})}, dup ids."""
    layers = []
    for fn, _, lbuf in fields(memoryview(data)):
        if fn != 3:
            continue
        layer = {"name": None, "extent": 4096, "features": {}, "dups": 0, "noid": 0}
        keys, values, raw = [], [], []
        for lf, _, v in fields(lbuf):
            if lf == 1:
                layer["name"] = bytes(v).decode("utf-8")
            elif lf == 2:
                raw.append(v)
            elif lf == 3:
                keys.append(bytes(v).decode("utf-8"))
            elif lf == 4:
                values.append(value(v))
            elif lf == 5:
                layer["extent"] = v
            elif lf == 15:
                layer["version"] = v
        for fbuf in raw:
            fid, gtype, tags, geom = None, 0, [], []
            for ff, wt, v in fields(fbuf):
                if ff == 1:
                    fid = v
                elif ff == 2:
                    tags = packed(v) if wt == 2 else [v]
                elif ff == 3:
                    gtype = v
                elif ff == 4:
                    geom = packed(v) if wt == 2 else [v]
            props = {keys[tags[j]]: values[tags[j + 1]] for j in range(0, len(tags) - 1, 2)}
            if fid is None:
                layer["noid"] += 1
                continue
            if fid in layer["features"]:
                layer["dups"] += 1
            layer["features"][fid] = (gtype, geometry_points(geom), props)
        layers.append(layer)
    return layers


# --- check -----------------------------------------------------------------------------------

def fetch(base, path):
    req = urllib.request.Request(base + path, headers={"Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get("Content-Encoding"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read()


def same_value(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b


def psql(db, sql):
    r = subprocess.run(["psql", db, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"],
                       input=sql, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"tiles.py: psql failed: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def in_edge(pts, lo, hi):
    """Every vertex within 2 units of hamn's clip box [lo, hi]^2 and some vertex on or past its
    edge: a point Martin keeps (up to about buffer + 1/2 out) and hamn does not (buffer - 1)."""
    return all(lo - 2 <= x <= hi + 2 and lo - 2 <= y <= hi + 2 for x, y in pts) and any(
        x <= lo or x >= hi or y <= lo or y >= hi for x, y in pts)


def compare_ids(hf, mf, lo, hi, extent, st, strict_subset):
    """Martin's ids against hamn's: the same (strict_subset False), or Martin's a subset of
    hamn's (True: Martin's LIMIT cut its rows). Martin-only features at the outer edge of the
    buffer are counted in st and allowed. Returns a failure text or None."""
    only_h = set(hf) - set(mf)
    only_m = set(mf) - set(hf)
    odd_m = [i for i in only_m if not in_edge(mf[i][1], lo, hi)]
    for i in only_m:
        if i not in odd_m:
            st["edge"] += 1
            out = max(max(-px, px - extent, -py, py - extent) for px, py in mf[i][1])
            st["edge_out"][out] = st["edge_out"].get(out, 0) + 1
    odd_h = [] if strict_subset else sorted(only_h)  # hamn keeps nothing Martin does not
    if odd_h or odd_m:
        return (f"{len(hf)} features in hamn's tile, {len(mf)} in martin's; not in martin's: "
                + ", ".join(f"{i} at {hf[i][1][:3]}" for i in odd_h[:10])
                + "; not in hamn's: "
                + ", ".join(f"{i} at {mf[i][1][:3]}" for i in sorted(odd_m)[:10]))
    return None


def check(args):
    cap, extent, buffer = args.cap, args.extent, args.buffer
    # hamn keeps a point if it is within buffer-1 units of the tile (before rounding): on the
    # grid, in [-(buffer-1), extent+buffer-1]. Martin (ST_AsMVTGeom) keeps it up to ~buffer + 1/2.
    lo, hi = -(buffer - 1), extent + buffer - 1
    failures = []
    summary = []
    # Tiles with at least cap/2 features in either answer, decided after asking PostGIS:
    # (name, (z, x, y), hamn features, martin features, stats)
    large = []

    for name in SETS:
        tiles = list(dict.fromkeys(read_tiles(args.out, name)))  # distinct, in list order
        if 0 < args.sample < len(tiles):
            tiles = random.Random(f"{args.seed}/check/{name}").sample(tiles, args.sample)
        st = dict(tiles=len(tiles), empty=0, empty_status={}, features=0, large=0, capped=0, limited=0, short_min=None,
                  short_max=0, edge=0, edge_out={}, coord1=0, props=0, bytes_hamn=0, bytes_martin=0)

        def both(t):
            z, x, y = t
            return (fetch(args.hamn, hamn_path(args.hamn_collection, z, x, y)),
                    fetch(args.martin, martin_path(args.martin_source, z, x, y)))

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
            for t, (h, m) in zip(tiles, pool.map(both, tiles)):
                z, x, y = t
                where = f"{name} tile z{z}/x{x}/y{y}"

                def fail(msg):
                    failures.append(f"{where}: {msg}")

                bad = False
                for srv, (status, enc, body) in (("hamn", h), ("martin", m)):
                    if status not in (200, 204):
                        fail(f"{srv} answered HTTP {status}: {body[:300]!r}")
                        bad = True
                    elif enc not in (None, "identity"):
                        fail(f"{srv} sent Content-Encoding {enc} although not asked to")
                        bad = True
                if bad:
                    continue
                st["bytes_hamn"] += len(h[2])
                st["bytes_martin"] += len(m[2])
                hl = decode(h[2]) if h[0] == 200 else []
                ml = decode(m[2]) if m[0] == 200 else []
                hl = [la for la in hl if la["features"] or la["noid"]]
                ml = [la for la in ml if la["features"] or la["noid"]]
                if len(hl) > 1 or len(ml) > 1:
                    fail(f"more than one layer: hamn {len(hl)}, martin {len(ml)}")
                    continue
                hf = hl[0]["features"] if hl else {}
                mf = ml[0]["features"] if ml else {}
                for srv, la in (("hamn", hl), ("martin", ml)):
                    if la and (la[0]["dups"] or la[0]["noid"]):
                        fail(f"{srv}: {la[0]['dups']} duplicate ids, {la[0]['noid']} features without id")
                if hl and ml and hl[0]["extent"] != ml[0]["extent"]:
                    fail(f"extent: hamn {hl[0]['extent']}, martin {ml[0]['extent']}")
                if not hf and not mf:
                    st["empty"] += 1
                    k = f"hamn {h[0]}, martin {m[0]}"
                    st["empty_status"][k] = st["empty_status"].get(k, 0) + 1
                    continue
                st["features"] += len(hf)
                hn, mn = len(hf), len(mf)
                if hn > cap or mn > cap:
                    fail(f"more features than the cap {cap}: hamn {hn}, martin {mn}")
                elif max(hn, mn) >= cap // 2:
                    # Martin's LIMIT may have cut it: decided below, with PostGIS.
                    large.append((name, t, hf, mf, st))
                else:
                    msg = compare_ids(hf, mf, lo, hi, extent, st, False)
                    if msg:
                        fail(msg)
                # Same point and properties for the features in both.
                for i in set(hf) & set(mf):
                    (ht, hp, hpr), (mt, mp, mpr) = hf[i], mf[i]
                    if ht != mt or len(hp) != len(mp):
                        fail(f"feature {i}: geometry type/size {ht}/{len(hp)} vs {mt}/{len(mp)}")
                        break
                    dmax = max((max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(hp, mp)), default=0)
                    if dmax > 1:
                        fail(f"feature {i}: hamn at {hp[:3]}, martin at {mp[:3]}")
                        break
                    if dmax == 1:
                        st["coord1"] += 1
                    if set(hpr) != set(mpr) or any(not same_value(hpr[k], mpr[k]) for k in hpr):
                        st["props"] += 1
                        if st["props"] <= 3:
                            fail(f"feature {i}: properties differ: hamn {hpr}, martin {mpr}")
                if len(failures) > 20:
                    break
        summary.append((name, st))
        if len(failures) > 20:
            break

    # Large tiles, with PostGIS as the referee. hamn: its ids must be the min(cap, n) lowest
    # fids of the n points in its clip box (the tile grown by buffer-1 units, in Web Mercator).
    # Martin: when its own search box (the query it runs, see the module doc) holds at least
    # `cap` rows, its LIMIT cut them and its ids must be a subset of hamn's (plus edge points)
    # unless hamn is at the cap too; otherwise its ids must be hamn's (plus edge points).
    if large and not failures:
        # hamn's clip box in EPSG:3857 metres, computed as hamn computes it (src/tiles/tms.rs);
        # compared exactly with ST_X/ST_Y: `&&` compares float4-rounded boxes, too coarse here.
        half = math.pi * 6378137.0
        boxes = []
        for _, (z, x, y), _, _, _ in large:
            span = 2.0 * half / (1 << z)
            left, top = -half + x * span, half - y * span
            pad = span * (buffer - 1) / extent
            boxes.append(f"({z},{x},{y},{left - pad!r},{top - span - pad!r},{left + span + pad!r},{top + pad!r})")
        # The points in hamn's clip box (the index prefilter with a margin of buffer+1 units).
        inbox = f"""(
       SELECT hamn_fid AS f, ST_Transform(geom, 3857) AS p FROM {args.table}
       WHERE geom && ST_Transform(ST_TileEnvelope(v.z, v.x, v.y, margin => {(buffer + 1) / extent}), 4326)) c
     WHERE ST_X(p) BETWEEN v.l AND v.r AND ST_Y(p) BETWEEN v.b AND v.t"""
        rows = psql(args.db, f"""
SELECT v.z, v.x, v.y,
  (SELECT count(*) FROM {inbox}),
  (SELECT string_agg(f::text, ',') FROM {inbox}),
  (SELECT count(*) FROM (
     SELECT 1 FROM {args.table}
     WHERE geom && ST_Expand(ST_Transform(ST_TileEnvelope(v.z, v.x, v.y), 4326), ({buffer / extent} * 360) / 2^v.z)
     LIMIT {cap}) s)
FROM (VALUES {",".join(boxes)}) AS v(z, x, y, l, b, r, t);
""")
        for (name, (z, x, y), hf, mf, st), (rz, rx, ry, total, in_box, mcand) in zip(large, rows):
            assert (str(z), str(x), str(y)) == (rz, rx, ry)
            where = f"{name} tile z{z}/x{x}/y{y}"
            total, mcand = int(total), int(mcand)
            hn, mn = len(hf), len(mf)
            st["large"] += 1
            want = min(cap, total)
            # A capped tile keeps the features of lowest thinning priority (src/tiles/mvt.rs).
            box = [int(f) for f in in_box.split(",")] if in_box else []
            expected = set(sorted(box, key=thinning_priority)[:cap])
            if hn != want or set(hf) != expected:
                failures.append(f"{where}: hamn returned {hn} features; PostGIS finds {total} in its clip box, "
                                f"so it should return the {want} of lowest thinning priority" + (" (it has other ids)" if hn == want else ""))
                continue
            hcapped = total >= cap
            st["capped"] += hcapped
            if mcand >= cap:
                st["limited"] += 1
                d = cap - mn
                st["short_min"] = d if st["short_min"] is None else min(st["short_min"], d)
                st["short_max"] = max(st["short_max"], d)
                if not hcapped:
                    msg = compare_ids(hf, mf, lo, hi, extent, st, True)
                    if msg:
                        failures.append(f"{where}: (martin's LIMIT {cap} cut its rows) {msg}")
            elif hcapped:
                failures.append(f"{where}: hamn is at the cap ({total} points in its clip box) but martin's search box holds only {mcand} rows")
            else:
                msg = compare_ids(hf, mf, lo, hi, extent, st, False)
                if msg:
                    failures.append(f"{where}: {msg}")

    for name, st in summary:
        print(f"{name}: {st['tiles']} distinct tiles checked, {st['empty']} empty on both ("
              + (", ".join(f"{n}x HTTP {k}" for k, n in st["empty_status"].items()) or "none") + "); "
              f"{st['features']} features in hamn's tiles ({st['bytes_hamn'] / max(st['tiles'], 1) / 1024:.1f} KB/tile; "
              f"martin {st['bytes_martin'] / max(st['tiles'], 1) / 1024:.1f} KB/tile); "
              f"same points (at most 1 unit apart: {st['coord1']} features) and properties ({st['props']} differ) for every feature in both; "
              f"{st['large']} tiles with >= {cap // 2} features checked against PostGIS: hamn at the cap {cap} in {st['capped']}, "
              f"each time with the {cap} features of its clip box of lowest thinning priority; martin's LIMIT {cap} cut its rows in {st['limited']}"
              + (f", leaving it {st['short_min']}-{st['short_max']} features short of {cap}" if st["limited"] else "")
              + "; otherwise the same ids, except "
              f"{st['edge']} features at the outer edge of the buffer in martin's tile only ("
              + (", ".join(f"{n} at {o} units out" for o, n in sorted(st["edge_out"].items())) or "none") + ")")
    if failures:
        print("tiles.py check: the servers disagree:", file=sys.stderr)
        for f in failures[:20]:
            print("  " + f, file=sys.stderr)
        return 1
    return 0


def warm(args):
    with open(os.path.join(args.out, f"{args.list}.hamn.txt")) as f:
        paths = list(dict.fromkeys(line.strip() for line in f if line.strip()))
    total = 0
    for p in paths:
        w, c = fetch(args.warm, p), fetch(args.cold, p)
        if w[0] != c[0] or w[2] != c[2]:
            print(f"tiles.py warm: {p}: the cached server answered {w[0]} ({len(w[2])} bytes), "
                  f"the uncached one {c[0]} ({len(c[2])} bytes)", file=sys.stderr)
            return 1
        total += len(w[2])
    print(f"{args.list}: {len(paths)} distinct tiles fetched into the cache ({total / 1048576:.1f} MiB), "
          f"each byte-identical to the uncached server's", file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=20240401)
    g.add_argument("--dense-count", type=int, default=1000)
    g.add_argument("--small-count", type=int, default=5000)
    g.add_argument("--dense-zooms", default="10-14", help="zoom range of the dense list, e.g. 12-14")
    g.add_argument("--hamn-collection", default="points")
    g.add_argument("--martin-source", default="points")
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    c.add_argument("--hamn", required=True)
    c.add_argument("--martin", required=True)
    c.add_argument("--db", required=True)
    c.add_argument("--table", required=True, help='e.g. hamn_data."points_v1"')
    c.add_argument("--hamn-collection", default="points")
    c.add_argument("--martin-source", default="points")
    c.add_argument("--cap", type=int, default=10000)
    c.add_argument("--buffer", type=int, default=64)
    c.add_argument("--extent", type=int, default=4096)
    c.add_argument("--sample", type=int, default=0, help="distinct tiles per list; 0: all")
    c.add_argument("--seed", type=int, default=20240401)
    c.add_argument("--workers", type=int, default=4)
    w = sub.add_parser("warm")
    w.add_argument("--out", required=True)
    w.add_argument("--list", required=True)
    w.add_argument("--warm", required=True)
    w.add_argument("--cold", required=True)
    args = ap.parse_args()
    return {"gen": gen, "check": check, "warm": warm}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
