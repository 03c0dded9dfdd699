// Measures the dashboard's first paint against a running `crv serve` (benches/README.md,
// "Dashboard first paint"): N fresh page loads in headless Chromium (new profile, no cache),
// each timed by the browser's own Performance API: first contentful paint, the moment
// /v1/summary's answer arrived, the moment the charts were drawn, and bytes transferred.
//
// Usage: node first-paint.mjs BASE_URL [LOADS=7]
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, loads = "7"] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "crv-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium", headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-cache"],
});
const rows = [];
for (let i = 0; i < Number(loads); i++) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1366, height: 768 });
  await page.route("**/*", route => route.continue({ headers: { ...route.request().headers(), "cache-control": "no-cache" } }));
  await page.goto(base + "/", { waitUntil: "load" });
  await page.waitForSelector("#frontier-chart svg");
  const t = await page.evaluate(() => {
    const fcp = performance.getEntriesByType("paint").find(e => e.name === "first-contentful-paint");
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource");
    const summary = res.find(r => r.name.endsWith("/v1/summary"));
    const drawn = performance.getEntriesByName("crv-charts-drawn")[0];
    return { fcp: fcp.startTime, summary: summary.responseEnd, charts: drawn ? drawn.startTime : NaN,
             bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0) };
  });
  rows.push(t);
  await page.close();
}
await context.close();
rmSync(profile, { recursive: true, force: true });
const median = key => { const v = rows.map(r => r[key]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
console.log(`loads ${rows.length}: median first contentful paint ${median("fcp").toFixed(0)} ms, ` +
  `summary answered ${median("summary").toFixed(0)} ms, charts drawn ${median("charts").toFixed(0)} ms, ` +
  `${median("bytes")} bytes transferred (times from navigation start)`);
