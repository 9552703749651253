// Daily settlement: business done through the API shows on the page to the fen; a shift
// is opened and handed over with a shortage; the day is closed (signed snapshot, same
// totals) and refuses postings; the owner reopens it; the inter-store statement nets
// stored value sold at one store and spent at another.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, pageTest, login, shot, api } from "../lib/harness.mjs";

let server;
let owner;
let cards = [];
// What was done, summed as the settlement must show it (fen).
const done = { principal: 0, bonus: 0, topUps: 0, due: 0, bills: 0, tender: { cash: 0, wechat: 0, alipay: 0 } };

const key = () => randomUUID();
/** Fen as the page writes money: ¥1,234.56. */
const yuan = (fen) => {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  const whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}¥${whole}.${String(abs % 100).padStart(2, "0")}`;
};
const moneyIn = () => Object.values(done.tender).reduce((a, b) => a + b, 0);

async function topUp(card, amount, tender) {
  const r = await owner.post(`/cards/${card}/top-ups`, { amount, tender, idempotency_key: key() });
  done.principal += r.details.amount;
  done.bonus += r.details.bonus;
  done.topUps += 1;
  done.tender[tender] += amount;
  return r;
}

before(async () => {
  server = await startServer();
  owner = await api(server.base); // the owner at sh-jingansi
  for (const phone of ["13900000101", "13900000102"]) {
    const c = await owner.post("/customers", { name: "日结测试", phone });
    cards.push((await owner.post("/cards", { customer_id: c.id })).id);
  }
  // Top-ups: ¥1,000 cash (+¥150), ¥300 WeChat (+¥30), ¥500 Alipay.
  await topUp(cards[0], 100_000, "cash");
  await topUp(cards[1], 30_000, "wechat");
  await topUp(cards[1], 50_000, "alipay");
  // Checkouts: a dish from the menu and an open line in cash, one by WeChat, one from a card.
  const items = await owner.get("/menu/items?active=true");
  const dish = items[0].id ?? items[0].item.id;
  const bills = [
    { lines: [{ item_id: dish, quantity: 2 }, { name: "茶位费", quantity: 2, unit_price: 500 }], tenders: [{ method: "cash" }] },
    { lines: [{ name: "小炒", quantity: 3, unit_price: 4_250 }], tenders: [{ method: "wechat" }] },
    { lines: [{ name: "宴席套餐", quantity: 1, unit_price: 26_800 }], card_id: cards[0], tenders: [{ method: "stored_value" }] },
  ];
  for (const b of bills) {
    const r = await owner.post("/checkouts", { ...b, idempotency_key: key() });
    const due = r.receipt.amount_due;
    assert.ok(due > 0);
    done.due += due;
    done.bills += 1;
    const method = b.tenders[0].method;
    if (method !== "stored_value") done.tender[method] += due;
  }
});
after(async () => { await server?.stop(); });

/** The page's key figures equal what was done. */
async function assertTotals(page) {
  assert.equal((await page.textContent("#set-amount-due")).trim(), yuan(done.due));
  assert.equal((await page.textContent("#set-bills")).trim(), String(done.bills));
  assert.equal((await page.textContent("#set-top-up-principal")).trim(), yuan(done.principal));
  assert.equal((await page.textContent("#set-top-up-bonus")).trim(), yuan(done.bonus));
  assert.equal((await page.textContent("#set-n-top-ups")).trim(), String(done.topUps));
  for (const [tender, fen] of Object.entries(done.tender)) {
    assert.equal((await page.textContent(`#set-tender-${tender}`)).trim(), yuan(fen), tender);
  }
  assert.equal((await page.textContent("#set-money-in")).trim(), yuan(moneyIn()));
  assert.equal((await page.textContent("#set-tender-total")).trim(), yuan(moneyIn()));
  assert.equal(await page.getAttribute("#set-balanced", "data-balanced"), "true");
}

pageTest("the daily settlement shows today's business to the fen, in Chinese and English", async (page) => {
  await login(page, server.base);
  await page.click("nav.side [data-nav=settlement]");
  await page.waitForURL((u) => u.pathname === "/settlement");
  assert.match(await page.textContent("h1"), /日结单/);
  assert.equal(await page.getAttribute("#set-day-status", "data-status"), "open");
  await assertTotals(page);
  // The owner works chain-wide: the store picker lists the three stores.
  assert.equal(await page.locator("#set-store option").count(), 3);
  await shot(page, "settlement-daily-zh");
  // English.
  await page.goto(`${server.base}/lang/en?next=/settlement`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await page.textContent("h1"), /Daily settlement/);
  assert.match(await page.textContent("#h-tenders"), /Money in by tender/);
  assert.match(await page.textContent("[data-tender=wechat]"), /WeChat Pay/);
  await assertTotals(page);
  await shot(page, "settlement-daily-en");
  // Another store's day is empty.
  await page.selectOption("#set-store", "sh-lujiazui");
  await page.waitForURL((u) => u.searchParams.get("store") === "sh-lujiazui");
  assert.equal((await page.textContent("#set-money-in")).trim(), "¥0.00");
});

pageTest("a shift is opened with a float and handed over with the counted cash", { locale: "en-GB" }, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/settlement/shifts`);
  await page.fill("#f-opening_float", "abc");
  await page.click("#set-open-button");
  await page.waitForSelector("#e-opening_float");
  assert.match(await page.textContent("#e-opening_float"), /Not an amount/);
  await page.fill("#f-opening_float", "500");
  await Promise.all([page.waitForURL(/\/settlement\/shifts\/[0-9a-f-]{36}$/), page.click("#set-open-button")]);
  assert.equal(await page.getAttribute("#set-shift-status", "data-status"), "open");
  // A cash top-up during the shift (same staff member, same store).
  await topUp(cards[0], 30_000, "cash");
  await page.reload();
  assert.equal((await page.textContent("#set-cash-expected")).trim(), yuan(50_000 + 30_000));
  // Counted ¥5 short.
  await page.fill("#f-counted_cash", "795");
  await page.click("#set-hand-over-button");
  await page.waitForSelector("#set-shift-status[data-status=closed]");
  assert.equal((await page.textContent("#set-cash-counted")).trim(), "¥795.00");
  assert.equal((await page.textContent("#set-variance")).trim(), "-¥5.00");
  assert.match(await page.textContent(".tile.set-bad"), /short/);
  await shot(page, "settlement-shift-handed-over-en");
  // The day lists the shift with its difference.
  await page.goto(`${server.base}/settlement`);
  assert.match(await page.textContent(".set-shift-table"), /-¥5\.00/);
  // A bad shift id is a 404 page.
  const res = await page.goto(`${server.base}/settlement/shifts/not-a-shift`);
  assert.equal(res.status(), 404);
});

pageTest("a cashier opens a shift but sees no daily settlement", async (page) => {
  await login(page, server.base, { username: "cashier" });
  assert.equal(await page.locator("nav.side [data-nav=settlement]").count(), 0);
  const res = await page.goto(`${server.base}/settlement`);
  assert.equal(res.status(), 403);
  await page.goto(`${server.base}/settlement/shifts`);
  assert.equal(await page.locator(".set-tabs a").count(), 1, "only the shifts tab");
  await page.fill("#f-opening_float", "200");
  await Promise.all([page.waitForURL(/\/settlement\/shifts\/[0-9a-f-]{36}$/), page.click("#set-open-button")]);
  assert.equal((await page.textContent("#set-cash-expected")).trim(), "¥200.00");
  // Left open: the manager must hand it over before the day can close (next test).
});

pageTest("closing the day signs the same totals and refuses postings; the owner reopens it", { locale: "en-GB" }, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/settlement`);
  await assertTotals(page);
  const date = await page.getAttribute("#set-date-pick", "value");
  // The cashier's shift is still open: it is listed, and closing is refused.
  assert.equal(await page.locator("#set-open-shifts li").count(), 1);
  page.once("dialog", (d) => d.accept());
  await page.click("#set-close-day");
  await page.waitForSelector("#set-close form .error.general");
  assert.match(await page.textContent("#set-close form .error.general"), /Close the open shifts first/);
  assert.equal(await page.getAttribute("#set-day-status", "data-status"), "open");
  await shot(page, "settlement-close-refused-en");
  // The owner counts the cashier's drawer and hands the shift over.
  await Promise.all([page.waitForURL(/\/settlement\/shifts\//), page.click("#set-open-shifts li a")]);
  await page.fill("#f-counted_cash", "200");
  await page.click("#set-hand-over-button");
  await page.waitForSelector("#set-shift-status[data-status=closed]");
  assert.equal((await page.textContent("#set-variance")).trim(), "¥0.00");
  await page.goto(`${server.base}/settlement`);
  assert.equal(await page.locator("#set-open-shifts").count(), 0);
  page.once("dialog", (d) => d.accept());
  await page.fill("#f-note", "Manager Wang");
  await page.click("#set-close-day");
  await page.waitForSelector("#set-day-status[data-status=closed]");
  assert.match(await page.textContent(".set-head"), /closed by \S+, \d+ \w+ \d{4}/);
  assert.match(await page.textContent(".set-head"), /Manager Wang/);
  await assertTotals(page);
  await shot(page, "settlement-closed-en");
  // Nothing more can be posted to the day at this store.
  await assert.rejects(
    owner.post(`/cards/${cards[0]}/top-ups`, { amount: 10_000, tender: "cash", idempotency_key: key() }),
    /409.*day_closed/,
  );
  await assert.rejects(
    owner.post("/checkouts", { lines: [{ name: "小炒", quantity: 1, unit_price: 3_000 }], tenders: [{ method: "cash" }], idempotency_key: key() }),
    /409.*day_closed/,
  );
  const day = await owner.get(`/settlement/daily?date=${date}`);
  assert.equal(day.source, "snapshot");
  assert.equal(day.checkouts.amount_due, done.due);
  await page.reload();
  await assertTotals(page);
  // Print view: no navigation, no forms.
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.isVisible("nav.side"), false);
  assert.equal(await page.isVisible("#set-reopen"), false);
  await shot(page, "settlement-closed-print");
  await page.emulateMedia({ media: "screen" });
  // The owner reopens it with a reason; postings are taken again.
  await page.fill("#f-reason", "Late WeChat top-up to record");
  await page.click("#set-reopen-day");
  await page.waitForSelector("#set-day-status[data-status=open]");
  assert.match(await page.textContent("#set-reopened"), /Late WeChat top-up to record/);
  await topUp(cards[1], 10_000, "wechat");
  await page.reload();
  await assertTotals(page);
});

pageTest("the inter-store statement nets stored value sold at one store and spent at another", async (page) => {
  // ¥200 from a card topped up at sh-jingansi, spent at sh-lujiazui: 静安寺 owes 陆家嘴 the principal part.
  const there = await api(server.base, { store: "sh-lujiazui" });
  const spend = await there.post(`/cards/${cards[1]}/spends`, { amount: 20_000, idempotency_key: key() });
  const principal = spend.details.principal;
  assert.ok(principal > 0);
  await login(page, server.base);
  await page.click("nav.side [data-nav=settlement]");
  await page.click(".set-tabs >> text=跨店结算");
  await page.waitForURL((u) => u.pathname === "/settlement/inter-store");
  assert.equal((await page.textContent("#set-net-total")).trim(), yuan(principal));
  assert.equal((await page.textContent("#set-cross-total")).trim(), yuan(principal));
  const debt = await page.textContent("#set-debts tbody tr");
  assert.match(debt, /静安寺店[\s\S]*陆家嘴店/);
  await shot(page, "settlement-inter-store-zh");
  // A period ending before it starts is refused beside the field.
  await page.goto(`${server.base}/settlement/inter-store?from=2026-02-01&to=2026-01-01`);
  await page.waitForSelector("#e-to");
});
