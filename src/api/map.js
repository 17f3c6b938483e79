// hamn's map viewer: draws collections from the server's vector tiles over a background (the
// land and borders of Natural Earth that hamn serves, or a configured basemap style), with a
// layer list, a popup of the clicked feature's attributes, and the view fitted on load. Items and
// feature pages give their own features (cfg.highlight, GeoJSON): those are drawn highlighted and
// the collection's tiles dimmed to context.
// For tests, the page reports progress in document.body.dataset (tiles, rendered, highlighted,
// idle), and window.hamnMap, hamnLayers (hamn's own style layers) and hamnColours.
(function () {
  "use strict";
  var cfg = window.HAMN_MAP;
  document.getElementById("map-block").style.display = "flex";
  var palette = ["#d9480f", "#1971c2", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];
  var colours = { sea: "#b3d1e6", land: "#f2efe6", border: "#a08fa8", context: "#6c7a89", highlight: "#e6007e" };
  window.hamnColours = { sea: colours.sea, land: colours.land, highlight: colours.highlight, palette: palette };

  // The offline background: sea, land and the borders between countries.
  function offline() {
    return {
      version: 8,
      sources: {
        world: {
          type: "geojson", data: cfg.world, tolerance: 0.5,
          attribution: '<a href="' + cfg.world.replace(/[^/]*$/, "README.txt") + '">Natural Earth</a>'
        }
      },
      layers: [
        { id: "sea", type: "background", paint: { "background-color": colours.sea } },
        { id: "land", type: "fill", source: "world", filter: ["==", ["get", "kind"], "land"],
          paint: { "fill-color": colours.land } },
        { id: "borders", type: "line", source: "world", filter: ["==", ["get", "kind"], "border"],
          paint: { "line-color": colours.border, "line-dasharray": [4, 2],
            "line-width": ["interpolate", ["linear"], ["zoom"], 2, 0.6, 10, 1.6] } }
      ]
    };
  }

  var map = new maplibregl.Map({
    container: "map",
    style: cfg.basemap || offline(),
    bounds: cfg.bounds || [-180, -80, 180, 80],
    fitBoundsOptions: { padding: 32, maxZoom: 15 },
    attributionControl: { compact: true }
  });
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-left");
  // A basemap style that cannot be had (no internet, a wrong URL): the offline background.
  var styleArrived = false;
  map.once("styledata", function () { styleArrived = true; });
  map.on("error", function (e) {
    if (cfg.basemap && !styleArrived) {
      styleArrived = true;
      console.warn("the basemap style did not load; drawing the offline background", e.error);
      map.setStyle(offline());
    }
  });

  var styleLayers = {};
  var dim = !!cfg.highlight;

  function listRow(title, colour, ids, list) {
    var row = document.createElement("label");
    row.style.display = "block";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.addEventListener("change", function () {
      ids.forEach(function (id) { map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none"); });
    });
    var swatch = document.createElement("span");
    swatch.textContent = " \u25cf ";
    swatch.style.color = colour;
    row.appendChild(box);
    row.appendChild(swatch);
    row.appendChild(document.createTextNode(title));
    list.appendChild(row);
  }

  // Fill, line and circle layers of `source` (and `sourceLayer` for tiles) in `colour`.
  function addLayers(key, source, sourceLayer, colour, strong, zooms) {
    var ids = [key + "-fill", key + "-line", key + "-point"];
    var common = function (id, type, filter, paint) {
      var l = { id: id, type: type, source: source, filter: filter, paint: paint };
      if (sourceLayer) l["source-layer"] = sourceLayer;
      if (zooms) { l.minzoom = zooms.minzoom; l.maxzoom = zooms.maxzoom; }
      return l;
    };
    var polygon = ["==", ["geometry-type"], "Polygon"];
    var point = ["==", ["geometry-type"], "Point"];
    map.addLayer(common(ids[0], "fill", polygon,
      { "fill-color": colour, "fill-opacity": strong ? 0.35 : dim ? 0.12 : 0.3 }));
    map.addLayer(common(ids[1], "line", ["!", point],
      { "line-color": colour, "line-width": strong ? 3 : 1.5, "line-opacity": dim && !strong ? 0.6 : 1 }));
    map.addLayer(common(ids[2], "circle", point, strong
      ? { "circle-color": colour, "circle-radius": 7, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 }
      : { "circle-color": colour, "circle-radius": dim ? 3 : 4, "circle-opacity": dim ? 0.7 : 1,
          "circle-stroke-color": "#fff", "circle-stroke-width": dim ? 0.5 : 1 }));
    styleLayers[key] = ids;
    return ids;
  }

  map.on("load", function () {
    var list = document.getElementById("layers");
    map.addSource("hamn", { type: "vector", url: cfg.tilejson });
    cfg.layers.forEach(function (l, i) {
      var c = dim ? colours.context : palette[i % palette.length];
      var ids = addLayers("tiles-" + l.id, "hamn", l.id, c, false, { minzoom: l.minzoom, maxzoom: l.maxzoom + 1 });
      listRow(l.title, c, ids, list);
    });
    if (cfg.highlight) {
      map.addSource("page", { type: "geojson", data: cfg.highlight });
      listRow(cfg.highlightTitle, colours.highlight, addLayers("page", "page", null, colours.highlight, true), list);
    }
  });

  var all = function () { return [].concat.apply([], Object.keys(styleLayers).map(function (k) { return styleLayers[k]; })); };
  window.hamnLayers = all;
  map.on("click", function (e) {
    var hits = map.queryRenderedFeatures(e.point, { layers: all() });
    if (!hits.length) return;
    var f = hits[0];
    var title = f.source === "page" ? cfg.highlightTitle : f.sourceLayer;
    var table = document.createElement("table");
    var head = table.insertRow();
    var th = document.createElement("th");
    th.colSpan = 2;
    th.textContent = title + (f.id !== undefined ? " #" + f.id : "");
    head.appendChild(th);
    Object.keys(f.properties).forEach(function (k) {
      var r = table.insertRow();
      r.insertCell().textContent = k;
      r.insertCell().textContent = String(f.properties[k]);
    });
    new maplibregl.Popup({ maxWidth: "24rem" }).setLngLat(e.lngLat).setDOMContent(table).addTo(map);
  });
  map.on("mousemove", function (e) {
    map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: all() }).length ? "pointer" : "";
  });
  var tiles = 0;
  map.on("data", function (e) {
    if (e.dataType === "source" && e.tile && e.sourceId === "hamn") { tiles += 1; document.body.dataset.tiles = String(tiles); }
  });
  map.on("idle", function () {
    document.body.dataset.rendered = String(map.queryRenderedFeatures({ layers: all() }).length);
    document.body.dataset.highlighted = String(styleLayers.page ? map.queryRenderedFeatures({ layers: styleLayers.page }).length : 0);
    document.body.dataset.idle = "yes";
  });
  window.hamnMap = map;
})();
