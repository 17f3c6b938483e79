// Loads a hamn map page in headless Chromium (Debian's, via playwright-core: no browser
// download), waits until MapLibre is idle, reads the map's pixels, clicks the first drawn
// feature, and prints a JSON report on stdout:
//   {rendered, highlighted, tiles, tileErrors, popup, errors,
//    pixels: {total, sea, land, highlight, palette, ...extra}}
// where pixels counts the map canvas's pixels of each of the viewer's colours (window.hamnColours;
// palette: any collection colour) and of the colours given as JSON in the second argument
// ({"name": "#rrggbb"}). tests/tiles.rs checks it. With HAMN_SCREENSHOT=file.png the page is
// also saved as a screenshot.
const { chromium } = require("playwright-core");

(async () => {
  const url = process.argv[2];
  const extra = JSON.parse(process.argv[3] || "{}");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
  });
  const report = { rendered: 0, highlighted: 0, tiles: 0, tileErrors: 0, popup: "", pixels: {}, errors: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (e) => report.errors.push(e.message));
    page.on("response", (r) => {
      if (/\/tiles\/WebMercatorQuad\/\d+\/\d+\/\d+/.test(r.url())) {
        report.tiles += 1;
        if (r.status() >= 400) report.tileErrors += 1;
      }
    });
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.idle === "yes", null, { timeout: 60000 });
    report.rendered = Number(await page.evaluate(() => document.body.dataset.rendered));
    report.highlighted = Number(await page.evaluate(() => document.body.dataset.highlighted));
    // The canvas's pixels, read in the render event of a fresh frame: the drawing buffer still
    // holds it then (MapLibre does not keep it, preserveDrawingBuffer being off).
    report.pixels = await page.evaluate((extra) => new Promise((resolve) => {
      const map = window.hamnMap;
      const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const c = window.hamnColours;
      const named = Object.assign({ sea: c.sea, land: c.land, highlight: c.highlight }, extra);
      const targets = Object.keys(named).map((k) => [k, rgb(named[k])])
        .concat(c.palette.map((hex) => ["palette", rgb(hex)]));
      map.once("render", () => {
        const canvas = map.getCanvas();
        const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
        const w = gl.drawingBufferWidth;
        const h = gl.drawingBufferHeight;
        const px = new Uint8Array(w * h * 4);
        gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
        const counts = { total: w * h, palette: 0 };
        Object.keys(named).forEach((k) => { counts[k] = 0; });
        for (let i = 0; i < px.length; i += 4) {
          for (const [name, [r, g, b]] of targets) {
            if (Math.abs(px[i] - r) <= 3 && Math.abs(px[i + 1] - g) <= 3 && Math.abs(px[i + 2] - b) <= 3) {
              counts[name] += 1;
              break;
            }
          }
        }
        resolve(counts);
      });
      map.triggerRepaint();
    }), extra);
    if (process.env.HAMN_SCREENSHOT) await page.screenshot({ path: process.env.HAMN_SCREENSHOT });
    // Click the first rendered feature (the page's own first, on items pages) and read the popup.
    const point = await page.evaluate(() => {
      const map = window.hamnMap;
      const f = map.queryRenderedFeatures({ layers: window.hamnLayers() })[0];
      if (!f) return null;
      let c = f.geometry.coordinates;
      while (Array.isArray(c[0])) c = c[0];
      const p = map.project(c);
      const box = map.getCanvas().getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    });
    if (point) {
      await page.mouse.click(point.x, point.y);
      const popup = await page.waitForSelector(".maplibregl-popup", { timeout: 10000 }).catch(() => null);
      if (popup) report.popup = await popup.innerText();
    }
  } catch (e) {
    report.errors.push(String(e));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
})();
