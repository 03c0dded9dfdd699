// crv's browser test (run by tests/dashboard.rs): loads the dashboard of a running `crv serve`
// in Debian's headless Chromium, checks what appears and that no console error was logged,
// measures first paint and bytes transferred, and saves a screenshot at 1366x768 and at 390x844
// (phone width), named dashboard-MODE-WIDTHxHEIGHT.png.
// MODE `plain`: a generated store (20,000 customers): types a budget and a customer id.
// MODE `full`: a server with a purchase model (holdout columns), events and a campaign plan,
// behind a bearer token: the P(alive) matrix, the holdout calibration and the live events are
// drawn; the plan asks for the token, and is drawn once it is typed; the customer looked up
// shows the events it was given.
//
// Usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR CUSTOMER_ID MODE [TOKEN]
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, shots, customer, mode, token] = process.argv.slice(2);
if (!base || !shots || !customer || !["plain", "full"].includes(mode)) throw new Error("usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR CUSTOMER_ID plain|full");

const profile = mkdtempSync(join(tmpdir(), "crv-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

// The generated store: tiers, a budget solved exactly on the frontier.
async function plain(page, width) {
  const meta = await page.textContent("#meta");
  check(/20,000 customers/.test(meta), `${width}: header says ${meta}`);
  const tiers = await page.textContent("#tiers-table");
  check(/A.*B.*C.*N/s.test(tiers) && tiers.includes("%"), `${width}: tiers table ${tiers}`);

  // A budget: a tenth of what takes every customer of positive value.
  const full = await page.evaluate(() => state.summary.frontier.full_budget);
  const budget = String(Math.round(full / 10));
  await page.fill("#budget", budget);
  await page.click("#budget-form button");
  await page.waitForSelector("#selection dd", { timeout: 30000 });
  const selection = await page.textContent("#selection");
  for (const fact of ["optimum value", "ROI", "gap", "proof: upper bound", "value of the next EUR 1"]) {
    check(selection.includes(fact), `${width}: the selection lacks "${fact}": ${selection}`);
  }
  check(/\d+(\.\d+)?%/.test(selection), `${width}: ROI is not a percent: ${selection}`);
  check(await page.locator("#frontier-chart svg text", { hasText: "your budget" }).count() === 1,
    `${width}: the budget is not marked on the frontier`);
}

// A panel is shown and holds at least `charts` charts.
async function panel(page, width, id, charts) {
  check(await page.isVisible(`#${id}`), `${width}: #${id} is hidden`);
  const drawn = await page.locator(`#${id} svg`).count();
  check(drawn >= charts, `${width}: #${id} has ${drawn} charts`);
}

// The model, events and plan panels.
async function full(page, width) {
  const meta = await page.textContent("#meta");
  check(/2,357 customers/.test(meta), `${width}: header says ${meta}`);
  await page.waitForSelector("#rate-chart svg", { timeout: 10000 });
  if (token) {
    await page.waitForSelector("#plan-facts p", { timeout: 10000 });
    const asked = await page.textContent("#plan-facts");
    check(/bearer token/.test(asked), `${width}: without the token the plan panel says ${asked}`);
    await page.fill("#token", token);
    await page.dispatchEvent("#token", "change");
  }
  await page.waitForSelector("#resource-chart svg", { timeout: 10000 });
  await panel(page, width, "model-panel", 1);
  await panel(page, width, "matrix-panel", 1);
  check(await page.locator("#matrix-chart rect[fill^='rgb']").count() >= 100, `${width}: the P(alive) matrix has few cells`);
  check(await page.locator("#matrix-chart svg text", { hasText: "(weeks)" }).count() === 1, `${width}: the P(alive) matrix's axis does not name the weeks`);
  await panel(page, width, "holdout-panel", 1);
  for (const label of ["actual", "predicted (bgnbd)"]) {
    check(await page.locator("#holdout-chart svg text", { hasText: label }).count() === 1, `${width}: the holdout chart has no legend "${label}"`);
  }
  await panel(page, width, "live-panel", 1);
  const live = await page.textContent("#live-facts");
  check(/events applied\s*1\d\d/.test(live), `${width}: live facts ${live}`);
  const changes = await page.locator("#tier-changes tbody tr").count();
  check(changes >= 3, `${width}: ${changes} changes of tier listed`);
  check((await page.textContent("#tier-changes")).includes("A"), `${width}: no change to tier A`);
  await panel(page, width, "plan-panel", 1);
  const plan = await page.textContent("#plan-facts");
  for (const fact of ["value of the plan", "gap", "customers assigned"]) check(plan.includes(fact), `${width}: the plan lacks "${fact}": ${plan}`);
  const resources = await page.textContent("#plan-resources");
  check(/calls/.test(resources) && /budget/.test(resources) && /shadow price/.test(resources) && /%/.test(resources), `${width}: resources ${resources}`);
  const offers = await page.textContent("#plan-offers");
  check(/call/.test(offers) && /email/.test(offers), `${width}: offers ${offers}`);
  check(await page.isVisible("#customer-panel"), `${width}: no customer search`);
}

try {
  for (const [width, height] of [[1366, 768], [390, 844]]) {
    const page = await context.newPage();
    await page.setViewportSize({ width, height });
    const errors = [];
    page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", e => errors.push(String(e)));
    const answer = await page.goto(base + "/", { waitUntil: "load" });
    check(answer && answer.status() === 200, `${width}: GET / answered ${answer && answer.status()}`);
    await page.waitForSelector("#lorenz-chart svg", { timeout: 10000 });
    const charts = await page.locator("main svg").count();
    check(charts >= 3, `${width}: ${charts} charts`);
    const timing = await page.evaluate(() => {
      const paint = performance.getEntriesByType("paint").find(e => e.name === "first-contentful-paint");
      const nav = performance.getEntriesByType("navigation")[0];
      const resources = performance.getEntriesByType("resource");
      const bytes = nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0);
      const summary = resources.find(r => r.name.endsWith("/v1/summary"));
      return { fcp: paint ? paint.startTime : null, bytes, chartsDrawnBy: summary ? summary.responseEnd : null };
    });
    console.log(`${width}x${height}: first contentful paint ${timing.fcp?.toFixed(0)} ms, summary answered at ${timing.chartsDrawnBy?.toFixed(0)} ms, ${timing.bytes} bytes transferred, ${charts} charts`);
    check(timing.bytes < 100_000, `${width}: ${timing.bytes} bytes transferred`);
    if (mode === "plain") await plain(page, width);
    else await full(page, width);
    await page.fill("#customer-id", customer);
    await page.click("#customer-form button");
    await page.waitForSelector("#customer dd", { timeout: 10000 });
    const card = await page.textContent("#customer");
    check(/CRV/.test(card) && /tier[ABCN]/.test(card.replace(/\s+/g, "")) && /rank/.test(card), `${width}: customer card ${card}`);
    const history = await page.textContent("#customer-history");
    check(/Stored columns/.test(history) && /frequency|retention/.test(history), `${width}: customer history ${history}`);
    if (mode === "full") {
      check(/events\s*3/.test(card), `${width}: the customer's event count: ${card}`);
      check(await page.locator("#customer-history tr", { hasText: "set" }).count() === 3, `${width}: the customer's recent events: ${history}`);
    }

    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${width}: the page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(shots, `dashboard-${mode}-${width}x${height}.png`), fullPage: true });
    check(errors.length === 0, `${width}: console errors: ${errors.join(" | ")}`);
    await page.close();
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failures.length) {
  console.error("FAILED:\n" + failures.join("\n"));
  process.exit(1);
}
console.log("dashboard e2e ok");
