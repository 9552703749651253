// The till: a cashier finds a member by phone, builds the bill from the menu, sees the
// price step by step, pays from the card with its PIN, gets the receipt with the balance
// and points before and after, and reverses the bill with a manager's approval. Then a
// second run in English: a member found by card number pays by splitting between the
// card and WeChat. Every figure is checked against the JSON API.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { startServer, pageTest, login, shot, api, settled } from "../lib/harness.mjs";

let server;
let owner;
let menu;
before(async () => {
  server = await startServer();
  owner = await api(server.base);
  menu = await owner.get("/menu");
});
after(async () => { await server?.stop(); });

const yuan = (fen) => {
  const abs = Math.abs(fen);
  const int = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${fen < 0 ? "-" : ""}¥${int}.${String(abs % 100).padStart(2, "0")}`;
};
const text = async (page, sel) => (await page.textContent(sel)).replace(/\s+/g, " ").trim();
const num = (n) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

const used = new Set();
/** A member with an active, unpooled stored-value card no other test took; topped up when empty. */
async function memberWithCard(topUp = 50000) {
  const list = await owner.get("/customers?per_page=100");
  for (const c of list.items) {
    if (!c.phone || used.has(c.id)) continue;
    const cards = await owner.get(`/customers/${c.id}/cards`);
    const card = cards.find((k) => k.status === "active" && k.kinds.stored_value && k.kinds.points && !k.pool_to_org);
    if (!card) continue;
    used.add(c.id);
    let view = await owner.get(`/cards/${card.id}`);
    if (view.balances.principal + view.balances.bonus < topUp) {
      await owner.post(`/cards/${card.id}/top-ups`, { amount: topUp, tender: "cash", idempotency_key: randomUUID() });
      view = await owner.get(`/cards/${card.id}`);
    }
    return { customer: c, card: view };
  }
  throw new Error("no demo member with a stored-value card");
}

/** Two dishes from the hot dishes and one from the rice: names as the till shows them. */
function dishes(lang = "zh") {
  const active = menu.items.filter((i) => i.active);
  const byCat = (name) => {
    const cat = menu.categories.find((c) => c.name === name);
    return active.filter((i) => i.category_id === cat.id);
  };
  const hot = byCat("热菜");
  const rice = byCat("主食");
  const pick = [hot[0], hot[1], rice[0]];
  return pick.map((i) => ({ ...i, label: lang === "zh" ? i.name : i.name_en }));
}

async function addDish(page, dish, times = 1) {
  for (let n = 0; n < times; n++) {
    const prev = await page.inputValue("#bill-form input[name=lines]");
    await page.click(`.dish[data-id="${dish.id}"]`);
    // Each tap answers with the bill priced again; wait for it before the next.
    await page.waitForFunction(
      ([id, prev]) => {
        const v = document.querySelector("#bill-form input[name=lines]")?.value || "";
        return v.includes(id) && v !== prev;
      },
      [dish.id, prev],
    );
  }
}

/** A member without a card gets one with ¥50 on it (no bonus below ¥300). */
async function memberWithSmallCard() {
  const list = await owner.get("/customers?per_page=100");
  for (const c of list.items) {
    if (!c.phone || used.has(c.id)) continue;
    const cards = await owner.get(`/customers/${c.id}/cards`);
    if (cards.length) continue;
    used.add(c.id);
    const card = await owner.post("/cards", { customer_id: c.id, kinds: { stored_value: true, points: true, member_price: true } });
    await owner.post(`/cards/${card.id}/top-ups`, { amount: 5000, tender: "cash", idempotency_key: randomUUID() });
    return { customer: c, card: await owner.get(`/cards/${card.id}`) };
  }
  throw new Error("no demo member without a card");
}

pageTest("cashier: member by phone, bill with quote, card + PIN, receipt, manager-approved reversal", async (page) => {
  const { customer, card } = await memberWithCard();
  // A PIN on the card: the till asks for it.
  await owner.put(`/cards/${card.id}/pin`, { pin: "135790" });
  const start = card.balances;
  const [a, b, rice] = dishes("zh");

  await login(page, server.base, { username: "cashier", store: "sh-jingansi" });
  await page.click("nav.side a[data-nav=till]");
  await page.waitForURL((u) => u.pathname === "/till");
  // The card field has the focus: a swipe (or a typed phone) and Enter find the member.
  assert.equal(await page.evaluate(() => document.activeElement?.id), "f-q");
  await page.keyboard.type(customer.phone);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#who-name");
  assert.equal(await text(page, "#who-name"), customer.name);
  assert.equal(await text(page, "#who-money"), yuan(start.principal + start.bonus));
  assert.equal(await text(page, "#who-points"), num(start.points));

  // The bill: two of the first hot dish, one of the second, one rice (found by search).
  await addDish(page, a, 2);
  await addDish(page, b);
  await page.fill("#dish-q", rice.name);
  assert.equal(await page.locator(".dish:not([hidden])").count() >= 1, true);
  await page.press("#dish-q", "Enter");
  await page.waitForFunction((id) => document.querySelector("#bill-form input[name=lines]").value.includes(id), rice.id);
  assert.equal(await page.locator("#lines tr").count(), 3);
  assert.deepEqual(
    (await page.locator("#lines .n").allTextContents()).map((s) => s.trim()),
    ["2", "1", "1"],
  );
  // One less of the first dish and back: the quantity buttons work.
  await page.click('#lines tr[data-line="0"] button[aria-label*="减"]');
  await page.waitForFunction(() => document.querySelector("#lines .n").textContent.trim() === "1");
  await page.click('#lines tr[data-line="0"] button[aria-label*="加"]');
  await page.waitForFunction(() => document.querySelector("#lines .n").textContent.trim() === "2");

  // Pay from the card: the price is the server's quote for exactly this bill.
  await page.click("#pay-stored_value");
  await page.waitForSelector("#f-pin");
  const body = {
    lines: [{ item_id: a.id, quantity: 2 }, { item_id: b.id, quantity: 1 }, { item_id: rice.id, quantity: 1 }],
    customer: { customer_id: customer.id }, card_id: card.id, tenders: [{ method: "stored_value" }],
  };
  const quote = await owner.post("/checkouts/quote", body);
  const due = quote.breakdown.amount_due;
  assert.equal(await text(page, "#amount-due"), yuan(due));
  assert.equal(await text(page, "#gross"), yuan(quote.breakdown.gross));
  assert.equal(await page.locator("#steps dd.off").count(), quote.breakdown.discounts.length);
  assert.match(await text(page, "#confirm"), new RegExp(yuan(due).replace(/[.$]/g, "\\$&")));
  await shot(page, "till-bill-zh");

  // Without the PIN: asked for it, nothing taken.
  await page.click("#confirm");
  await page.waitForSelector("#e-pin");
  assert.match(await text(page, "#e-pin"), /密码/);
  // A wrong PIN: refused beside the field.
  await settled(page);
  await page.fill("#f-pin", "000000");
  await page.press("#f-pin", "Enter");
  await page.waitForFunction(() => /密码错误/.test(document.querySelector("#e-pin")?.textContent || ""));
  assert.equal((await owner.get(`/cards/${card.id}`)).balances.principal, start.principal, "nothing taken");
  // The right PIN, Enter: the receipt (once htmx has set up the field it swapped in).
  await settled(page);
  await page.fill("#f-pin", "135790");
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith("/till/receipts/")),
    page.press("#f-pin", "Enter"),
  ]);
  const checkoutId = new URL(page.url()).pathname.split("/").pop();
  const out = await owner.get(`/checkouts/${checkoutId}`);
  const after = (await owner.get(`/cards/${card.id}`)).balances;
  assert.equal(out.receipt.amount_due, due);
  assert.equal(await text(page, "#paid-amount"), yuan(due));
  assert.equal(await text(page, "#sv-before"), yuan(start.principal + start.bonus));
  assert.equal(await text(page, "#sv-after"), yuan(after.principal + after.bonus));
  assert.equal(after.principal + after.bonus, start.principal + start.bonus - due);
  assert.equal(await text(page, "#points-before"), num(start.points));
  assert.equal(await text(page, "#points-earned"), `+${num(out.earned.points_earned)}`);
  assert.ok(out.earned.points_earned > 0);
  assert.equal(await text(page, "#points-after"), num(after.points));
  assert.equal(after.points, start.points + out.earned.points_earned);
  // The printable receipt is in the frame.
  const frame = page.frameLocator("#receipt-frame");
  await frame.locator("main.receipt").waitFor();
  assert.match(await frame.locator("main.receipt").textContent(), new RegExp(out.number));
  assert.equal(await page.evaluate(() => document.activeElement?.id), "next-customer");
  await shot(page, "till-receipt-zh");

  // Reverse: the cashier cannot approve it themselves.
  await page.click("#reverse summary");
  await page.fill("#f-reason", "顾客投诉菜品，整单撤销");
  await page.fill("#f-approver", "cashier");
  await page.fill("#f-approver_secret", "patron-demo");
  await page.click("#reverse-submit");
  await page.waitForSelector("#e-approval");
  assert.match(await text(page, "#e-approval"), /店长/);
  assert.equal((await owner.get(`/cards/${card.id}`)).balances.points, after.points, "nothing reversed");
  // The manager's approval PIN.
  await page.fill("#f-approver", "manager");
  await page.fill("#f-approver_secret", "2468");
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith("/till/receipts/") && !u.pathname.endsWith(checkoutId)),
    page.click("#reverse-submit"),
  ]);
  await page.waitForSelector("#reversal-banner");
  const restored = (await owner.get(`/cards/${card.id}`)).balances;
  assert.deepEqual(restored, start, "balance and points back exactly");
  assert.equal(await text(page, "#sv-before"), yuan(after.principal + after.bonus));
  assert.equal(await text(page, "#sv-after"), yuan(start.principal + start.bonus));
  assert.equal(await text(page, "#points-after"), num(start.points));
  await shot(page, "till-reversal-zh");

  // Today's bills: the bill is there, reversed; its receipt says so.
  await page.click("a[href='/till/bills']");
  await page.waitForURL((u) => u.pathname === "/till/bills");
  const row = page.locator(`#bills tr:has(a[href="/till/receipts/${checkoutId}"])`);
  assert.equal(await row.getAttribute("data-status"), "reversed");
  assert.match(await row.textContent(), new RegExp(out.number));
  await shot(page, "till-bills-zh");
  await row.locator("a").click();
  await page.waitForSelector("#was-reversed");
  assert.equal(await page.locator("#reverse").count(), 0, "a reversed bill cannot be reversed again");

  // The receipt in English.
  await page.goto(`${server.base}/lang/en?next=/till/receipts/${checkoutId}`);
  await page.waitForSelector("#paid-amount");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await text(page, "h1"), /Paid/);
  assert.match(await text(page, "#was-reversed"), /reversed/);
  await shot(page, "till-receipt-en");
});

pageTest("English till: the card number picks that card; the card pays what it holds, WeChat the rest", { locale: "en-GB" }, async (page) => {
  const { customer, card } = await memberWithSmallCard();
  const start = card.balances;
  const [a, b] = dishes("en");
  await login(page, server.base, { username: "cashier", store: "sh-jingansi" });
  await page.goto(`${server.base}/till`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await page.fill("#f-q", card.number);
  await page.click("#find");
  await page.waitForSelector("#who-name");
  assert.equal(await text(page, "#who-name"), customer.name);
  assert.equal(await page.inputValue("#bill-form input[name=card_id]"), card.id);
  // Dishes by category button.
  const cat = menu.categories.find((c) => c.id === a.category_id);
  await page.click(`.cats button[data-cat="${cat.id}"]`);
  assert.equal(await page.locator(`.dish:not([hidden])`).count(), menu.items.filter((i) => i.active && i.category_id === cat.id).length);
  await addDish(page, a, 3);
  await addDish(page, b, 2);
  assert.match(await text(page, "#lines"), new RegExp(a.label.replace(/[()]/g, ".")));
  // The card alone is short: use its balance, pay the rest by WeChat.
  await page.click("#pay-stored_value");
  await page.waitForSelector("#sv-short");
  await page.click("#use-balance");
  await page.waitForSelector(".paid-row");
  await page.click("#pay-wechat");
  await page.waitForSelector("#confirm:not([disabled])");
  const body = {
    lines: [{ item_id: a.id, quantity: 3 }, { item_id: b.id, quantity: 2 }],
    customer: { customer_id: customer.id }, card_id: card.id,
    tenders: [{ method: "stored_value", amount: start.principal + start.bonus }, { method: "wechat" }],
  };
  const quote = await owner.post("/checkouts/quote", body);
  assert.equal(await text(page, "#amount-due"), yuan(quote.breakdown.amount_due));
  assert.match(await text(page, ".rest"), new RegExp(`Still to pay ${yuan(quote.breakdown.amount_due - start.principal - start.bonus).replace(/[.$]/g, "\\$&")}`));
  await shot(page, "till-bill-en");
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith("/till/receipts/")),
    page.click("#confirm"),
  ]);
  const id = new URL(page.url()).pathname.split("/").pop();
  const out = await owner.get(`/checkouts/${id}`);
  assert.ok(out.receipt.tenders.some((t) => t.label_en === "WeChat Pay" && t.amount === quote.breakdown.amount_due - 5000), JSON.stringify(out.receipt.tenders));
  assert.equal(await text(page, "#sv-after"), yuan(0));
  assert.equal((await owner.get(`/cards/${card.id}`)).balances.principal, 0);
  assert.match(await text(page, ".tenders-table"), /WeChat Pay/);
  await shot(page, "till-receipt-split-en");
});

pageTest("coupon and points step by step: a coupon below its threshold is refused, then used with points, paid in cash", async (page) => {
  const { customer, card } = await memberWithCard();
  await owner.post(`/cards/${card.id}/adjustments`, { balance: "points", amount: 2000, reason: "收银测试", idempotency_key: randomUUID() });
  const points = (await owner.get(`/cards/${card.id}`)).balances.points;
  const tpl = await owner.post("/coupon-templates", {
    name: "满100减10", kind: { type: "cash", value: 1000, min_spend: 10000 }, validity: { type: "days_after_issue", days: 30 },
  });
  const [issued] = await owner.post(`/coupon-templates/${tpl.id}/issue`, { customer_ids: [customer.id] });
  const code = issued.code;
  const [a, , rice] = dishes("zh");

  await login(page, server.base, { username: "cashier", store: "sh-jingansi" });
  await page.goto(`${server.base}/till`);
  await page.fill("#f-q", customer.phone);
  await page.press("#f-q", "Enter");
  await page.waitForSelector(`.coupon[data-code="${code}"]`);
  // Rice alone is under the ¥100 threshold: refused beside the coupons, not kept.
  await addDish(page, rice);
  await page.click(`.coupon[data-code="${code}"]`);
  await page.waitForSelector("#e-coupons");
  assert.match(await text(page, "#e-coupons"), /门槛/);
  assert.equal(await page.inputValue("#bill-form input[name=coupons]"), "");
  // Enough on the bill: the coupon, then points as cash, each a step of the price.
  await addDish(page, a, 2);
  await page.click(`.coupon[data-code="${code}"]`);
  await page.waitForSelector("dd.step-coupon");
  assert.equal(await page.getAttribute(`.coupon[data-code="${code}"]`, "aria-pressed"), "true");
  await page.click("#points-max");
  await page.waitForSelector("dd.step-points");
  await page.click("#pay-cash");
  await page.waitForSelector("#confirm:not([disabled])");
  assert.equal(await page.locator("#f-pin").count(), 0, "no PIN for cash");
  const quote = await owner.post("/checkouts/quote", {
    lines: [{ item_id: rice.id, quantity: 1 }, { item_id: a.id, quantity: 2 }],
    customer: { customer_id: customer.id }, card_id: card.id, coupons: [code], points, tenders: [{ method: "cash" }],
  });
  const b = quote.breakdown;
  assert.equal(await text(page, "#amount-due"), yuan(b.amount_due));
  const coupon = b.discounts.find((d) => d.kind === "coupon");
  const usedPoints = b.discounts.find((d) => d.kind === "points");
  assert.equal(await text(page, "dd.step-coupon"), `−${yuan(coupon.amount)}`);
  assert.equal(await text(page, "dd.step-points"), `−${yuan(usedPoints.amount)}`);
  await shot(page, "till-coupon-points-zh");
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith("/till/receipts/")),
    page.click("#confirm"),
  ]);
  const id = new URL(page.url()).pathname.split("/").pop();
  const out = await owner.get(`/checkouts/${id}`);
  assert.equal(out.receipt.amount_due, b.amount_due);
  assert.equal(await text(page, "#points-used"), `−${num(b.points_used)}`);
  assert.equal(await text(page, "#points-after"), num((await owner.get(`/cards/${card.id}`)).balances.points));
  assert.equal(await page.locator("#sv-after").count(), 0, "the card's money was not touched");
  assert.equal((await owner.get(`/coupons/${code}`)).status, "redeemed");

  // The till's network printer (a listener standing in for it) gets the ESC/POS receipt;
  // the browser remembers its address for the next receipt.
  const received = [];
  let job;
  const done = new Promise((ok) => { job = ok; });
  const printer = createServer((sock) => {
    sock.on("data", (d) => received.push(d));
    sock.on("end", () => job());
  });
  await new Promise((ok) => printer.listen(0, "127.0.0.1", ok));
  const addr = `127.0.0.1:${printer.address().port}`;
  try {
    await page.click("details.printer summary");
    await page.fill("#f-printer", addr);
    await page.dispatchEvent("#f-printer", "change");
    await page.click("#printer-form button[type=submit]");
    await page.waitForSelector("#printed.notice");
    assert.match(await text(page, "#printed"), new RegExp(addr.replace(/\./g, "\\.")));
    await done;
    const bytes = Buffer.concat(received);
    assert.ok(bytes.length > 200, `printer got ${bytes.length} bytes`);
    assert.deepEqual([...bytes.subarray(0, 2)], [0x1b, 0x40], "starts with ESC @ (initialise)");
    await page.reload();
    assert.equal(await page.inputValue("#f-printer"), addr);
  } finally {
    printer.close();
  }
});
