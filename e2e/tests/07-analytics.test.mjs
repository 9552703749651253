// The analytics pages over a demo chain with two years of visits: the figures on the
// pages are the API's, the charts render, the lists behind them open, English works.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, pageTest, login, shot, api } from "../lib/harness.mjs";

let server, owner;
before(async () => {
  server = await startServer({ members: 150, history: true });
  owner = await api(server.base);
});
after(async () => { await server?.stop(); });

const num = (s) => Number(String(s).replace(/[^\d.-]/g, ""));

pageTest("quadrants: the page's counts are the report's, the chart draws, the list opens", async (page) => {
  const report = await owner.get("/analytics/quadrants");
  assert.ok(report.active_customers > 0, "the demo history has active members");
  await login(page, server.base);
  await page.click("[data-nav=analytics]");
  await page.waitForSelector("#quadrant-table");
  assert.equal(num(await page.textContent("#ana-active")), report.active_customers);
  for (const q of report.quadrants) {
    const row = page.locator(`#quadrant-table tr[data-quadrant=${q.quadrant}] td`).nth(1);
    assert.equal(num(await row.textContent()), q.customers, `quadrant ${q.quadrant}`);
  }
  await page.waitForSelector("#scatter svg");
  await shot(page, "analytics-quadrants-zh");
  const b = report.quadrants.find((q) => q.quadrant === "B");
  await page.click("#quadrant-table tr[data-quadrant=B] a");
  await page.waitForSelector("table.grid tbody tr");
  const rows = await page.locator("table.grid tbody tr").count();
  assert.equal(rows, Math.min(b.customers, 50) || 1);
  await page.goto(`${server.base}/lang/en?next=/analytics`);
  await page.waitForSelector("#scatter svg");
  assert.match(await page.textContent("h1"), /Customer value/);
  await shot(page, "analytics-quadrants-en");
});

pageTest("migration, value pyramid, churn, cohorts and trends pages show their reports", async (page) => {
  await login(page, server.base);
  const mig = await owner.get("/analytics/migration");
  await page.goto(`${server.base}/analytics/migration`);
  await page.waitForSelector("#heat svg");
  assert.equal(num(await page.textContent("#a-to-b")), mig.a_to_b);
  await shot(page, "analytics-migration");

  const pyr = await owner.get("/analytics/pyramid");
  await page.goto(`${server.base}/analytics/value`);
  await page.waitForSelector("#pyramid svg");
  await page.waitForSelector("#rfm svg");
  const counts = await page.locator("#pyramid-table tbody tr td:nth-child(2)").allTextContents();
  assert.deepEqual(counts.map(num), pyr.tiers.map((t) => t.customers));
  await shot(page, "analytics-value");

  const churn = await owner.get("/analytics/churn");
  await page.goto(`${server.base}/analytics/churn`);
  assert.equal(num(await page.textContent("#at-risk")), churn.at_risk);
  await shot(page, "analytics-churn");

  await page.goto(`${server.base}/analytics/cohorts`);
  await page.waitForSelector("#cohorts svg");
  assert.ok((await page.locator("#cohort-table tbody tr").count()) > 0);
  await shot(page, "analytics-cohorts");

  await page.goto(`${server.base}/analytics/trends`);
  await page.waitForSelector("#liability svg");
  assert.ok((await page.locator("#level-table tbody tr").count()) > 0);
  await shot(page, "analytics-trends");

  // A bad date is explained, not a crash.
  await page.goto(`${server.base}/analytics?from=2026-13-45`);
  assert.match(await page.textContent(".error.general"), /日期格式不对/);
});

pageTest("the customer page shows the customer's quadrant, RFM score and churn risk", async (page) => {
  const list = await owner.get("/analytics/quadrants/B/customers");
  assert.ok(list.items.length > 0, "someone is in quadrant B");
  const id = list.items[0].customer_id;
  const v = await owner.get(`/customers/${id}/value`);
  await login(page, server.base);
  await page.goto(`${server.base}/customers/${id}`);
  await page.waitForSelector("#customer-value #cv-quadrant");
  assert.match(await page.textContent("#cv-quadrant"), /^B /);
  assert.equal((await page.textContent("#cv-rfm")).trim(), `R${v.rfm.r} F${v.rfm.f} M${v.rfm.m}`);
  await shot(page, "customer-360-with-value");
});
