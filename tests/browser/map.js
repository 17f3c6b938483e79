// Loads a hamn map page in headless Chromium (Debian's, via playwright-core: no browser
// download), waits until MapLibre is idle, clicks the first drawn feature, and prints a JSON
// report on stdout: {rendered, tiles, tileErrors, popup, errors}. tests/map.rs checks it.
const { chromium } = require("playwright-core");

(async () => {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
  });
  const report = { rendered: 0, tiles: 0, tileErrors: 0, popup: "", errors: [] };
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
    // Click the first rendered feature and read the popup.
    const point = await page.evaluate(() => {
      const map = window.hamnMap;
      const layers = map.getStyle().layers.map((l) => l.id).filter((id) => id !== "background");
      const f = map.queryRenderedFeatures({ layers })[0];
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
    if (process.env.HAMN_SCREENSHOT) await page.screenshot({ path: process.env.HAMN_SCREENSHOT });
  } catch (e) {
    report.errors.push(String(e));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
})();
