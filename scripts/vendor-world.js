// Makes assets/world/world.geojson, the map's offline background, from Natural Earth's land and
// country outlines as world-atlas ships them (TopoJSON). Run by scripts/vendor-world.sh, which
// fetches the two npm packages; the output is committed, so nothing runs at build or run time.
//
// Three scales, each only where it is needed, so the file stays small and Sweden reads well:
// 1:10m over the Nordic countries and the Baltic (NORDIC), 1:50m over the rest of Europe
// (EUROPE), 1:110m elsewhere. world-atlas joins shapes across the antimeridian (it is drawn on a
// sphere); MapLibre draws the plane, so shapes are cut there again, and Antarctica is closed
// along the south pole. Coordinates are rounded to 0.001° (the sources are quantised to
// 0.0036° × 0.0017° already).
"use strict";
const fs = require("fs");
const path = require("path");

const [atlasDir, clientFile, outFile] = process.argv.slice(2);
const topojson = require(path.resolve(clientFile));
const read = (name) => JSON.parse(fs.readFileSync(path.join(atlasDir, name), "utf8"));

const WORLD = [-180, -90, 180, 90];
const EUROPE = [-25, 34, 45, 82];
const NORDIC = [2, 53.5, 33, 71.5];

// The boxes that cover `outer` but not `inner` (inner lies inside outer).
function around(outer, inner) {
  const [w, s, e, n] = outer;
  const [iw, is, ie, iN] = inner;
  return [[w, s, iw, n], [ie, s, e, n], [iw, s, ie, is], [iw, iN, ie, n]];
}

const TIERS = [
  { scale: "10m", boxes: [NORDIC] },
  { scale: "50m", boxes: around(EUROPE, NORDIC) },
  { scale: "110m", boxes: around(WORLD, EUROPE) },
];

// Longitudes made continuous (no step over 180°); `turn` is ±360 for a ring round a pole.
function unwrap(coords) {
  const out = [];
  let offset = 0;
  for (let i = 0; i < coords.length; i++) {
    if (i > 0) {
      const d = coords[i][0] - coords[i - 1][0];
      if (d > 180) offset -= 360;
      else if (d < -180) offset += 360;
    }
    out.push([coords[i][0] + offset, coords[i][1]]);
  }
  return { coords: out, turn: out[out.length - 1][0] - out[0][0] };
}

// Sutherland–Hodgman: a ring clipped by the half-plane where inside(p) holds.
function clipEdge(ring, inside, cross) {
  const out = [];
  for (let i = 0; i < ring.length; i++) {
    const a = ring[i];
    const b = ring[(i + 1) % ring.length];
    const ia = inside(a);
    const ib = inside(b);
    if (ia) out.push(a);
    if (ia !== ib) out.push(cross(a, b));
  }
  return out;
}

const atX = (x) => (a, b) => [x, a[1] + ((b[1] - a[1]) * (x - a[0])) / (b[0] - a[0])];
const atY = (y) => (a, b) => [a[0] + ((b[0] - a[0]) * (y - a[1])) / (b[1] - a[1]), y];

// A ring (open: last point not repeated) clipped to a box.
function clipRing(ring, [w, s, e, n]) {
  let r = ring;
  r = clipEdge(r, (p) => p[0] >= w, atX(w));
  r = clipEdge(r, (p) => p[0] <= e, atX(e));
  r = clipEdge(r, (p) => p[1] >= s, atY(s));
  r = clipEdge(r, (p) => p[1] <= n, atY(n));
  return r;
}

// A line clipped to a box: the pieces inside (Liang–Barsky per segment, joined when they meet).
function clipLine(line, [w, s, e, n]) {
  const pieces = [];
  let current = null;
  for (let i = 1; i < line.length; i++) {
    const [x0, y0] = line[i - 1];
    const [x1, y1] = line[i];
    const dx = x1 - x0;
    const dy = y1 - y0;
    let t0 = 0;
    let t1 = 1;
    let visible = true;
    for (const [p, q] of [[-dx, x0 - w], [dx, e - x0], [-dy, y0 - s], [dy, n - y0]]) {
      if (p === 0) {
        if (q < 0) visible = false;
      } else {
        const t = q / p;
        if (p < 0) t0 = Math.max(t0, t);
        else t1 = Math.min(t1, t);
      }
    }
    if (!visible || t0 > t1) {
      current = null;
      continue;
    }
    const a = [x0 + t0 * dx, y0 + t0 * dy];
    const b = [x0 + t1 * dx, y0 + t1 * dy];
    if (current && t0 === 0) {
      current.push(b);
    } else {
      current = [a, b];
      pieces.push(current);
    }
    if (t1 < 1) current = null;
  }
  return pieces;
}

const round = (v) => Math.round(v * 1000) / 1000;

function tidy(coords) {
  const out = [];
  for (const [x, y] of coords) {
    const p = [round(x), round(y)];
    const last = out[out.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) out.push(p);
  }
  return out;
}

function area(ring) {
  let a = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i];
    const [x1, y1] = ring[(i + 1) % ring.length];
    a += x0 * y1 - x1 * y0;
  }
  return a / 2;
}

// A closed ring from an open one, or null when rounding left nothing of it.
function closeRing(open) {
  let r = tidy(open);
  if (r.length > 1 && r[0][0] === r[r.length - 1][0] && r[0][1] === r[r.length - 1][1]) r.pop();
  if (r.length < 3 || area(r) === 0) return null;
  return r.concat([r[0]]);
}

// Polygons (GeoJSON coordinates) of one shape on the sphere, cut into `boxes` on the plane.
function polygons(polygon, boxes) {
  const rings = [];
  for (const ring of polygon) {
    // The whole closed ring: its last point is its first again, or 360° on for a polar ring.
    const u = unwrap(ring);
    if (Math.abs(u.turn) < 180) {
      u.coords.pop();
    } else {
      // Round a pole: drop a ring that is only the pole itself, close any other along it.
      if (u.coords.every((p) => Math.abs(p[1]) > 89.9)) continue;
      const pole = u.coords[0][1] < 0 ? -90 : 90;
      const c = u.coords;
      c.push([c[c.length - 1][0], pole], [c[0][0], pole]);
    }
    rings.push(u.coords);
  }
  if (!rings.length) return [];
  const out = [];
  for (const shift of [-360, 0, 360]) {
    const moved = rings.map((r) => r.map(([x, y]) => [x + shift, y]));
    for (const box of boxes) {
      const exterior = closeRing(clipRing(moved[0], box));
      if (!exterior) continue;
      const holes = moved.slice(1).map((h) => closeRing(clipRing(h, box))).filter(Boolean);
      out.push([exterior, ...holes]);
    }
  }
  return out;
}

function lines(line, boxes) {
  const u = unwrap(line).coords;
  const out = [];
  for (const shift of [-360, 0, 360]) {
    const moved = u.map(([x, y]) => [x + shift, y]);
    for (const box of boxes) {
      for (const piece of clipLine(moved, box)) {
        const t = tidy(piece);
        if (t.length >= 2) out.push(t);
      }
    }
  }
  return out;
}

const features = [];
let points = 0;
const count = (c) => (typeof c[0] === "number" ? 1 : c.reduce((n, x) => n + count(x), 0));
for (const { scale, boxes } of TIERS) {
  const land = read(`land-${scale}.json`);
  const countries = read(`countries-${scale}.json`);
  const shapes = topojson.feature(land, land.objects.land).features.map((f) => f.geometry);
  const polys = [];
  for (const g of shapes) {
    for (const p of g.type === "Polygon" ? [g.coordinates] : g.coordinates) polys.push(...polygons(p, boxes));
  }
  // Borders between countries only (a !== b): coasts are where land meets sea.
  const mesh = topojson.mesh(countries, countries.objects.countries, (a, b) => a !== b);
  const borders = [];
  for (const l of mesh.coordinates) borders.push(...lines(l, boxes));
  features.push({ type: "Feature", properties: { kind: "land", scale },
    geometry: { type: "MultiPolygon", coordinates: polys } });
  features.push({ type: "Feature", properties: { kind: "border", scale },
    geometry: { type: "MultiLineString", coordinates: borders } });
  process.stderr.write(`${scale}: ${polys.length} polygons (${count(polys)} points), ` +
    `${borders.length} border lines (${count(borders)} points)\n`);
  points += count(polys) + count(borders);
}
const text = JSON.stringify({ type: "FeatureCollection", features }) + "\n";
fs.writeFileSync(outFile, text);
process.stderr.write(`${outFile}: ${points} points, ${text.length} bytes\n`);
