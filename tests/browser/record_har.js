// Records a HAR the way a user would: Debian's chromium, driven by playwright-core, opens the
// test's page on the test's own nginx, which fetches a few more URLs on the same origin.
// usage: node record_har.js PAGE_URL HAR_PATH
const { chromium } = require("playwright-core");

(async () => {
  const [pageUrl, harPath] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Nothing leaves this host: no background traffic, and every name but 127.0.0.1 fails
    // to resolve inside the browser (the page's redirect to example.org goes nowhere).
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
           "--no-first-run", "--disable-sync", "--disable-domain-reliability",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
  const context = await browser.newContext({ recordHar: { path: harPath, content: "embed" } });

  const page = await context.newPage();
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.fetchesDone === true, null, { timeout: 10000 });
  await context.close();
  await browser.close();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
