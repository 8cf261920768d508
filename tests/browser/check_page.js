// Opens a page in Debian's chromium (playwright-core), as a reader would, and reports what a
// test checks: console errors, the plots in the DOM, and a screenshot.
// usage: node check_page.js PAGE_URL SCREENSHOT_PATH   (prints one JSON object)
const { chromium } = require("playwright-core");

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
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => requests.push(request.url()));
  await page.goto(pageUrl);
  const found = await page.evaluate(() => ({
    title: document.title,
    charts: document.querySelectorAll("svg.chart").length,
    lines: [...document.querySelectorAll("svg.chart")].map((svg) =>
      [...svg.querySelectorAll("polyline")].filter((p) => p.getAttribute("points")).length),
    scripts: document.querySelectorAll("script").length,
    texts: document.body.innerText.length,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ ...found, errors, requests }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
