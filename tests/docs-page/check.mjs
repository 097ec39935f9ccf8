// Loads sceau's /docs in the system Chromium with every request outside
// 127.0.0.1 blocked and recorded, waits for Redoc to render the operations,
// takes a screenshot, and writes one JSON object to REPORT: the operations in
// Redoc's menu, every URL the page asked for, those outside 127.0.0.1, and the
// page's console errors. What node or the browser prints is never the report.
// Used by tests/docs_page.rs.
//
//     node check.mjs URL SCREENSHOT REPORT
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, screenshot, report] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    // Names resolve to nothing: even a request that escaped the route below
    // could not leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const requested = [];
  const outside = [];
  await context.route("**/*", (route) => {
    const target = new URL(route.request().url());
    requested.push(target.href);
    if (target.hostname === "127.0.0.1") {
      return route.continue();
    }
    outside.push(target.href);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("request", (request) => {
    const target = new URL(request.url());
    if (!["127.0.0.1", ""].includes(target.hostname) && !outside.includes(target.href)) {
      outside.push(target.href);
    }
  });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector('[data-section-id*="operation/"]', { state: "attached", timeout: 30000 });
  const operations = await page.$$eval('[data-section-id*="operation/"]', (items) => [
    ...new Set(items.map((item) => item.getAttribute("data-section-id").split("operation/").pop())),
  ]);
  const title = await page.title();
  await page.screenshot({ path: screenshot });
  writeFileSync(report, JSON.stringify({ title, operations, requested, outside, errors }));
} finally {
  await browser.close();
}
