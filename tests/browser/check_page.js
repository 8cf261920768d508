// Opens a report in Debian's chromium (playwright-core), as a reader would, and reports what a
// test checks: every request the page made (each one but the page itself is blocked), console
// errors, each chart with its legend and lines, what the tooltip says when the mouse is on a
// point of each chart, how long the page took to be drawn, and a screenshot.
// usage: node check_page.js PAGE_URL SCREENSHOT_PATH   (prints one JSON object)
const { chromium } = require("playwright-core");

// Each chart as drawn: plotly.js's (div.chart) or the inline SVG fallback's (svg.chart).
function charts() {
  const texts = (root, selector) => [...root.querySelectorAll(selector)].map((e) => e.textContent);
  return [...document.querySelectorAll(".chart")].map((el) => {
    if (el.tagName.toLowerCase() === "svg") {
      return {
        id: el.id, kind: "svg", title: el.getAttribute("aria-label"),
        legend: texts(el, "line.key + text"),
        lines: [...el.querySelectorAll("polyline")].filter((p) => p.getAttribute("points")).length,
      };
    }
    const paths = [...el.querySelectorAll(".scatterlayer .trace path.js-line")];
    return {
      id: el.id, kind: "plotly", title: texts(el, ".gtitle").join(""),
      legend: texts(el, ".legend .traces .legendtext"),
      lines: paths.filter((p) => (p.getAttribute("d") || "").length > 2).length,
      axes: texts(el, ".g-xtitle, .g-ytitle"),
      yticks: texts(el, ".yaxislayer-above .ytick text, .yaxislayer-above text.ytick"),
    };
  });
}

// Where on the screen point `index` of a plotly chart's first line is.
function pointOnScreen([id, index]) {
  const gd = document.getElementById(id);
  gd.scrollIntoView({ block: "center" });
  const layout = gd._fullLayout, trace = gd._fullData[0];
  const box = gd.getBoundingClientRect();
  const x = trace.x[index], y = trace.y[index];
  return {
    x, y,
    left: box.left + layout._size.l + layout.xaxis.c2p(x),
    top: box.top + layout._size.t + layout.yaxis.c2p(y),
  };
}

async function hover(page, chart) {
  const n = await page.evaluate((id) => {
    const data = document.getElementById(id)._fullData;
    return data.length ? data[0].x.length : 0;
  }, chart.id);
  if (!n) return null;
  const at = await page.evaluate(pointOnScreen, [chart.id, Math.floor(n / 2)]);
  await page.mouse.move(at.left, at.top);
  const tooltip = `#${chart.id} .hoverlayer`;
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent, tooltip, { timeout: 5000 });
  const text = await page.evaluate((sel) => document.querySelector(sel).textContent, tooltip);
  await page.mouse.move(0, 0);
  return { x: at.x, y: at.y, text };
}

(async () => {
  const [pageUrl, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
           "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  const requests = [];
  const dialogs = [];  // an alert() a hostile string got to run
  page.on("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => requests.push(request.url()));
  // Anything the page asks for but itself fails: a page that needs the network shows it.
  await page.route("**/*", (route) =>
    route.request().url() === pageUrl ? route.continue() : route.abort());
  await page.goto(pageUrl, { waitUntil: "load" });
  // Drawn: two frames painted after the load event (scripts, if any, have run by then).
  const drawnMs = await page.evaluate(() => new Promise((done) =>
    requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())))));
  const found = await page.evaluate(charts);
  for (const chart of found) if (chart.kind === "plotly") chart.hover = await hover(page, chart);
  const info = await page.evaluate(() => ({
    title: document.title,
    scripts: document.querySelectorAll("script").length,
    texts: document.body.innerText.length,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ ...info, charts: found, drawn_ms: drawnMs, errors, requests, dialogs }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
