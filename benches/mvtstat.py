#!/usr/bin/env python3
"""Where the bytes of a Mapbox Vector Tile go: per-part byte counts (feature ids, tags,
geometry, keys, values), for benches/tile_bytes.sh.  python3 benches/mvtstat.py TILE..."""
import sys
def varint(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i
def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i); f, t = key >> 3, key & 7
        start = i
        if t == 0: _, i = varint(b, i); yield f, t, b[start:i], i - start + 1
        elif t == 2:
            n, j = varint(b, i); i = j + n; yield f, t, b[j:i], i - start + 1
        elif t == 1: i += 8; yield f, t, b[start:i], 9
        elif t == 5: i += 4; yield f, t, b[start:i], 5
def stat(b):
    out = {"features": 0, "feature_id": 0, "feature_tags": 0, "feature_geom": 0, "feature_type": 0, "feature_overhead": 0,
           "keys": 0, "values": 0, "n_features": 0, "n_keys": 0, "n_values": 0, "other": 0}
    for f, t, v, size in fields(b):
        if f != 3: out["other"] += size; continue
        for lf, lt, lv, lsize in fields(v):
            if lf == 2:
                out["n_features"] += 1; out["features"] += lsize
                inner = 0
                for ff, ft, fv, fsize in fields(lv):
                    name = {1: "feature_id", 2: "feature_tags", 3: "feature_type", 4: "feature_geom"}.get(ff, "other")
                    out[name] += fsize; inner += fsize
                out["feature_overhead"] += lsize - inner
            elif lf == 3: out["keys"] += lsize; out["n_keys"] += 1
            elif lf == 4: out["values"] += lsize; out["n_values"] += 1
            else: out["other"] += lsize
    return out
if __name__ == "__main__":
    for p in sys.argv[1:]:
        b = open(p, "rb").read(); print(p, len(b), stat(b))
