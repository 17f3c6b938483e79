#!/usr/bin/env python3
"""Generate the SYNTHETIC demo datasets for Malmö and Lund.

Writes (relative to this script's folder):
  synthetic/noise_malmo_lund_synthetic.geojson           road-traffic noise zones
  synthetic/traffic_counts_malmo_lund_synthetic.geojson  traffic count points

Nothing here is measured data. Road alignments are rough hand-drawn
approximations of real streets; noise bands, traffic volumes, shares of heavy
vehicles, speeds and dates are invented. Every feature has kalla = "syntetisk".

Python 3 standard library only, no network, deterministic (fixed seed):
running it twice gives byte-identical files.

Usage:  python3 data/generate_synthetic.py
"""

import json
import math
import os
import random
from datetime import date, timedelta

SEED = 20231101
COORD_DECIMALS = 6
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic")
NOISE_FILE = "noise_malmo_lund_synthetic.geojson"
COUNTS_FILE = "traffic_counts_malmo_lund_synthetic.geojson"

# Approximate centre lines (lon, lat), WGS 84. "adt" is a typical annual
# average daily traffic for the road; "speeds" are the posted limits used.
ROADS = [
    # ---- Malmö ----
    {"kommun": "Malmö", "vag": "Inre Ringvägen", "adt": 32000, "speeds": [50, 60, 70],
     "line": [(12.9705, 55.5905), (12.9850, 55.5838), (13.0050, 55.5812),
              (13.0240, 55.5842), (13.0355, 55.5925), (13.0390, 55.6030)]},
    {"kommun": "Malmö", "vag": "Södra Förstadsgatan", "adt": 9000, "speeds": [30, 40],
     "line": [(13.0006, 55.6030), (12.9998, 55.5975), (12.9996, 55.5940),
              (13.0030, 55.5880)]},
    {"kommun": "Malmö", "vag": "Amiralsgatan", "adt": 22000, "speeds": [40, 50],
     "line": [(13.0080, 55.6030), (13.0160, 55.5975), (13.0260, 55.5905),
              (13.0370, 55.5840)]},
    {"kommun": "Malmö", "vag": "Lundavägen", "adt": 18000, "speeds": [40, 50],
     "line": [(13.0120, 55.6065), (13.0250, 55.6085), (13.0400, 55.6105),
              (13.0520, 55.6140)]},
    {"kommun": "Malmö", "vag": "Ystadvägen", "adt": 26000, "speeds": [50, 60, 70],
     "line": [(13.0330, 55.5860), (13.0480, 55.5800), (13.0640, 55.5735),
              (13.0800, 55.5680)]},
    {"kommun": "Malmö", "vag": "Limhamnsvägen", "adt": 14000, "speeds": [40, 50],
     "line": [(12.9820, 55.5980), (12.9700, 55.5930), (12.9580, 55.5880)]},
    # ---- Lund ----
    {"kommun": "Lund", "vag": "Getingevägen", "adt": 16000, "speeds": [40, 50],
     "line": [(13.1960, 55.7075), (13.2010, 55.7120), (13.2055, 55.7180),
              (13.2120, 55.7235)]},
    {"kommun": "Lund", "vag": "Norra Ringen", "adt": 20000, "speeds": [50, 60],
     "line": [(13.1830, 55.7155), (13.1930, 55.7185), (13.2030, 55.7190),
              (13.2140, 55.7160)]},
    {"kommun": "Lund", "vag": "Västra Ringen", "adt": 15000, "speeds": [40, 50],
     "line": [(13.1800, 55.6985), (13.1795, 55.7050), (13.1810, 55.7110),
              (13.1830, 55.7155)]},
    {"kommun": "Lund", "vag": "Malmövägen", "adt": 12000, "speeds": [50, 60, 70],
     "line": [(13.1850, 55.6950), (13.1760, 55.6870), (13.1650, 55.6790),
              (13.1540, 55.6720)]},
    {"kommun": "Lund", "vag": "Södra Vägen", "adt": 7000, "speeds": [30, 40],
     "line": [(13.1920, 55.7010), (13.1905, 55.6960), (13.1885, 55.6905)]},
]

# Lden bands (dB) and their distance from the road centre line in metres:
# (lden_db, inner, outer). The highest band is a single strip over the road
# (Polygon); lower bands are a pair of strips, one on each side (MultiPolygon).
BANDS = [(70, 0.0, 12.0), (65, 12.0, 30.0), (60, 30.0, 60.0), (55, 60.0, 110.0)]

M_PER_DEG_LAT = 110574.0


def m_per_deg_lon(lat):
    return 111320.0 * math.cos(math.radians(lat))


def rnd(v):
    return round(v, COORD_DECIMALS)


def signed_area(ring):
    """Shoelace; positive = counter-clockwise (lon = x, lat = y)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:])) / 2.0


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_intersect(p1, p2, p3, p4):
    d1, d2 = _cross(p3, p4, p1), _cross(p3, p4, p2)
    d3, d4 = _cross(p1, p2, p3), _cross(p1, p2, p4)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True  # proper crossing
    return _touch(p1, p2, p3, p4)  # an end point lies on the other segment


def _on_segment(p, a, b):
    return (min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])
            and _cross(a, b, p) == 0)


def _touch(p1, p2, p3, p4):
    return (_on_segment(p1, p3, p4) or _on_segment(p2, p3, p4)
            or _on_segment(p3, p1, p2) or _on_segment(p4, p1, p2))


def check_ring(ring):
    """Closed, >= 4 positions, CCW, no self-intersection (non-adjacent edges)."""
    assert ring[0] == ring[-1], "ring not closed"
    assert len(ring) >= 4, "ring too short"
    assert signed_area(ring) > 0, "ring not counter-clockwise"
    edges = list(zip(ring, ring[1:]))
    n = len(edges)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex
            assert not _segments_intersect(*edges[i], *edges[j]), "self-intersection"


def quad(p0, p1, d_from, d_to):
    """Quadrilateral beside segment p0->p1, offset d_from..d_to metres
    (positive = left of the direction of travel). Returns a closed CCW ring."""
    lat0 = (p0[1] + p1[1]) / 2.0
    kx, ky = m_per_deg_lon(lat0), M_PER_DEG_LAT
    dx, dy = (p1[0] - p0[0]) * kx, (p1[1] - p0[1]) * ky
    length = math.hypot(dx, dy)
    nx, ny = -dy / length, dx / length  # unit normal to the left, metres

    def off(p, d):
        return (rnd(p[0] + nx * d / kx), rnd(p[1] + ny * d / ky))

    ring = [off(p0, d_from), off(p1, d_from), off(p1, d_to), off(p0, d_to)]
    if signed_area(ring + ring[:1]) < 0:
        ring.reverse()
    ring.append(ring[0])
    check_ring(ring)
    return [list(c) for c in ring]


def max_band_for(adt):
    if adt >= 25000:
        return 70
    if adt >= 10000:
        return 65
    return 60


def make_noise(rng):
    features = []
    zon_id = 0
    for road in ROADS:
        top = max_band_for(road["adt"])
        line = road["line"]
        for p0, p1 in zip(line, line[1:]):
            # Segments with lighter traffic lose their top band now and then.
            seg_top = top - 5 if (top > 60 and rng.random() < 0.25) else top
            bands = [b for b in BANDS if b[0] <= seg_top]
            first = True
            for lden, inner, outer in bands:
                # Widen the strips a little at random so segments differ.
                k = 1.0 + rng.uniform(-0.15, 0.15)
                if first:
                    # Highest band on this segment: one strip across the road.
                    half = outer * k
                    geom = {"type": "Polygon", "coordinates": [quad(p0, p1, -half, half)]}
                    reach = half
                    first = False
                else:
                    width = (outer - inner) * k
                    left = quad(p0, p1, reach, reach + width)
                    right = quad(p0, p1, -(reach + width), -reach)
                    geom = {"type": "MultiPolygon", "coordinates": [[left], [right]]}
                    reach += width
                zon_id += 1
                features.append({
                    "type": "Feature",
                    "properties": {
                        "zon_id": zon_id,
                        "kommun": road["kommun"],
                        "vag": road["vag"],
                        "lden_db": lden,
                        "matar": "Lden",
                        "berakningsar": 2022,
                        "kalla": "syntetisk",
                    },
                    "geometry": geom,
                })
    return features


def line_length_m(line):
    total = 0.0
    for p0, p1 in zip(line, line[1:]):
        lat = (p0[1] + p1[1]) / 2.0
        total += math.hypot((p1[0] - p0[0]) * m_per_deg_lon(lat),
                            (p1[1] - p0[1]) * M_PER_DEG_LAT)
    return total


def point_along(line, t):
    """Point at fraction t (0..1) of the line's length."""
    target = t * line_length_m(line)
    for p0, p1 in zip(line, line[1:]):
        lat = (p0[1] + p1[1]) / 2.0
        seg = math.hypot((p1[0] - p0[0]) * m_per_deg_lon(lat),
                         (p1[1] - p0[1]) * M_PER_DEG_LAT)
        if target <= seg or p1 == line[-1]:
            f = min(target / seg, 1.0) if seg else 0.0
            return (p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1]))
        target -= seg
    return line[-1]


def make_counts(rng, total=150):
    lengths = [line_length_m(r["line"]) for r in ROADS]
    # Share the points out by road length, at least 5 per road.
    alloc = [max(5, int(total * L / sum(lengths))) for L in lengths]
    i = 0
    while sum(alloc) < total:
        alloc[i % len(alloc)] += 1
        i += 1
    while sum(alloc) > total:
        j = max(range(len(alloc)), key=lambda k: alloc[k])
        alloc[j] -= 1

    prefix = {"Malmö": "MLM", "Lund": "LND"}
    serial = {"Malmö": 0, "Lund": 0}
    start, days = date(2023, 1, 1), (date(2024, 12, 31) - date(2023, 1, 1)).days
    features = []
    for road, n in zip(ROADS, alloc):
        for k in range(n):
            t = (k + 0.5) / n + rng.uniform(-0.3, 0.3) / n
            lon, lat = point_along(road["line"], min(max(t, 0.0), 1.0))
            # Put the counter a few metres off the centre line.
            lon += rng.uniform(-8, 8) / m_per_deg_lon(lat)
            lat += rng.uniform(-8, 8) / M_PER_DEG_LAT
            adt = int(round(road["adt"] * rng.uniform(0.7, 1.3), -1))
            adt = min(max(adt, 2000), 45000)
            serial[road["kommun"]] += 1
            features.append({
                "type": "Feature",
                "properties": {
                    "matpunkt_id": "%s-%04d" % (prefix[road["kommun"]], serial[road["kommun"]]),
                    "kommun": road["kommun"],
                    "vag": road["vag"],
                    "adt": adt,
                    "andel_tung": round(rng.uniform(0.03, 0.15), 3),
                    "hastighet": rng.choice(road["speeds"]),
                    "matdatum": (start + timedelta(days=rng.randint(0, days))).isoformat(),
                    "kalla": "syntetisk",
                },
                "geometry": {"type": "Point", "coordinates": [rnd(lon), rnd(lat)]},
            })
    return features


def write_fc(path, features):
    """FeatureCollection, one feature per line, raw UTF-8, trailing newline."""
    parts = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(parts) + "\n]}\n"
    json.loads(text)  # sanity check
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def main():
    rng = random.Random(SEED)
    os.makedirs(OUT_DIR, exist_ok=True)
    noise = make_noise(rng)
    counts = make_counts(rng)
    write_fc(os.path.join(OUT_DIR, NOISE_FILE), noise)
    write_fc(os.path.join(OUT_DIR, COUNTS_FILE), counts)
    print("wrote %d noise zones   -> %s" % (len(noise), os.path.join(OUT_DIR, NOISE_FILE)))
    print("wrote %d count points  -> %s" % (len(counts), os.path.join(OUT_DIR, COUNTS_FILE)))


if __name__ == "__main__":
    main()
