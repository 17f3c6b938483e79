// hamn's map viewer: draws every configured collection from the server's vector tiles, with a
// layer list, a popup of the clicked feature's attributes, and the view fitted on load.
// For tests, the page reports progress in document.body.dataset (tiles, rendered).
(function () {
  "use strict";
  var cfg = window.HAMN_MAP;
  var palette = ["#d9480f", "#1971c2", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];
  var map = new maplibregl.Map({
    container: "map",
    style: {
      version: 8,
      sources: { hamn: { type: "vector", url: cfg.tilejson } },
      layers: [{ id: "background", type: "background", paint: { "background-color": "#f4f7fb" } }]
    },
    bounds: cfg.bounds || [-180, -80, 180, 80],
    fitBoundsOptions: { padding: 24 },
    attributionControl: { compact: true }
  });
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  var styleLayers = {};
  map.on("load", function () {
    var list = document.getElementById("layers");
    cfg.layers.forEach(function (l, i) {
      var c = palette[i % palette.length];
      var ids = [l.id + "-fill", l.id + "-line", l.id + "-point"];
      var zooms = { minzoom: l.minzoom, maxzoom: l.maxzoom + 1 };
      map.addLayer({ id: ids[0], type: "fill", source: "hamn", "source-layer": l.id, minzoom: zooms.minzoom, maxzoom: zooms.maxzoom,
        filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": c, "fill-opacity": 0.3 } });
      map.addLayer({ id: ids[1], type: "line", source: "hamn", "source-layer": l.id, minzoom: zooms.minzoom, maxzoom: zooms.maxzoom,
        filter: ["!=", ["geometry-type"], "Point"], paint: { "line-color": c, "line-width": 1.5 } });
      map.addLayer({ id: ids[2], type: "circle", source: "hamn", "source-layer": l.id, minzoom: zooms.minzoom, maxzoom: zooms.maxzoom,
        filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-color": c, "circle-radius": 4, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
      styleLayers[l.id] = ids;
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
      swatch.style.color = c;
      row.appendChild(box);
      row.appendChild(swatch);
      row.appendChild(document.createTextNode(l.title));
      list.appendChild(row);
    });
  });
  var all = function () { return [].concat.apply([], Object.keys(styleLayers).map(function (k) { return styleLayers[k]; })); };
  map.on("click", function (e) {
    var hits = map.queryRenderedFeatures(e.point, { layers: all() });
    if (!hits.length) return;
    var f = hits[0];
    var table = document.createElement("table");
    var head = table.insertRow();
    var th = document.createElement("th");
    th.colSpan = 2;
    th.textContent = f.sourceLayer + (f.id !== undefined ? " #" + f.id : "");
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
    if (e.dataType === "source" && e.tile) { tiles += 1; document.body.dataset.tiles = String(tiles); }
  });
  map.on("idle", function () {
    document.body.dataset.rendered = String(map.queryRenderedFeatures({ layers: all() }).length);
    document.body.dataset.idle = "yes";
  });
  window.hamnMap = map;
})();
