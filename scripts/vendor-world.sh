#!/usr/bin/env bash
# Remakes assets/world/world.geojson (the maps' offline background; see assets/world/README.txt)
# from two npm packages: world-atlas (Natural Earth as TopoJSON) and topojson-client (to turn
# TopoJSON into GeoJSON). Needs node and npm; nothing of it is needed to build or run hamn.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent world-atlas@2.0.2 topojson-client@3.1.0 >/dev/null
sha256sum -c - <<'SUMS'
032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97  world-atlas-2.0.2.tgz
889fadb422f6236d0f8337a236ce6499f258b75e44b81733b13bd971067322bf  topojson-client-3.1.0.tgz
SUMS
mkdir atlas client
tar xzf world-atlas-2.0.2.tgz -C atlas
tar xzf topojson-client-3.1.0.tgz -C client
node "$repo/scripts/vendor-world.js" atlas/package client/package/dist/topojson-client.js \
  "$repo/assets/world/world.geojson"
