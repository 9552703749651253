// Cards: find a member's card, top up with the bonus shown before confirming, a top-up the
// prepaid-card rules refuse, issue, freeze, statement, report lost and replace, close
// with refund, and the card page in English. Figures are checked against the JSON API.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, pageTest, login, shot, api } from "../lib/harness.mjs";

let server;
let owner;
before(async () => {
  server = await startServer();
  owner = await api(server.base);
});
after(async () => { await server?.stop(); });

const yuan = (fen) => {
  const abs = Math.abs(fen);
  const int = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${fen < 0 ? "-" : ""}¥${int}.${String(abs % 100).padStart(2, "0")}`;
};
const text = async (page, sel) => (await page.textContent(sel)).replace(/\s+/g, " ").trim();

const used = new Set();
/** A registered member holding an active stored-value card no other test took, with its balances. */
async function memberWithCard() {
  const list = await owner.get("/customers?per_page=50");
  for (const c of list.items) {
    if (!c.phone || used.has(c.id)) continue;
    const cards = await owner.get(`/customers/${c.id}/cards`);
    const card = cards.find((k) => k.status === "active" && k.kinds.stored_value && !k.pool_to_org);
    if (!card) continue;
    const view = await owner.get(`/cards/${card.id}`);
    // Room under the registered cap (¥5,000) for a ¥1,000 top-up and its bonus.
    if (view.balances.principal + view.balances.bonus > 300000) continue;
    used.add(c.id);
    return { customer: c, card: view };
  }
  throw new Error("no demo member with a card");
}

pageTest("find a member's card by phone, see the bonus before confirming, top up ¥1,000 by cash", async (page) => {
  const { customer, card } = await memberWithCard();
  const before = card.balances;
  await login(page, server.base);
  await page.click("nav.side a[data-nav=cards]");
  await page.waitForURL((u) => u.pathname === "/cards");
  await page.fill("#f-q", customer.phone);
  await page.press("#f-q", "Enter");
  await page.waitForSelector("#find-results");
  await shot(page, "cards-find-zh");
  await Promise.all([
    page.waitForURL((u) => u.pathname === `/cards/${card.id}`),
    page.click(`#find-results a[href="/cards/${card.id}"]`),
  ]);
  assert.equal(await page.getAttribute("#card-number", "data-number"), card.number);
  assert.equal(await text(page, "#card-holder"), customer.name);
  assert.equal(await text(page, "#bal-principal"), yuan(before.principal));
  assert.equal(await text(page, "#bal-bonus"), yuan(before.bonus));
  assert.equal(await text(page, "#bal-total"), yuan(before.principal + before.bonus));

  // The bonus appears as the amount is typed, before anything is confirmed.
  await page.fill("#f-amount", "1000");
  await page.waitForSelector("#preview-line");
  assert.equal(await text(page, "#preview-line"), "充 ¥1,000.00 送 ¥150.00");
  assert.match(await text(page, "#top-up-preview"), new RegExp(`本金 ${yuan(before.principal + 100000).replace("$", "\\$")}`));
  await shot(page, "card-top-up-preview-zh");
  const unchanged = await owner.get(`/cards/${card.id}`);
  assert.deepEqual(unchanged.balances, before, "the preview changes nothing");

  await page.check("input[name=tender][value=cash]");
  await page.click("#top-up-submit");
  await page.waitForSelector("#top-up-result");
  const now = (await owner.get(`/cards/${card.id}`)).balances;
  assert.equal(now.principal, before.principal + 100000);
  assert.equal(now.bonus, before.bonus + 15000);
  assert.equal(await text(page, "#after-principal"), yuan(now.principal));
  assert.equal(await text(page, "#after-bonus"), yuan(now.bonus));
  assert.equal(await text(page, "#bal-principal"), yuan(now.principal));
  assert.equal(await text(page, "#bal-bonus"), yuan(now.bonus));
  assert.equal(await text(page, "#bal-total"), yuan(now.principal + now.bonus));
  assert.match(await text(page, "#top-up-result"), /充 ¥1,000\.00 送 ¥150\.00（现金）/);
  // The form is ready for the next top-up, with a new key.
  assert.equal(await page.inputValue("#f-amount"), "");
  await shot(page, "card-topped-up-zh");

  // The statement shows that top-up first, with the running balances after it.
  await page.click("#statement-link");
  await page.waitForURL((u) => u.pathname === `/cards/${card.id}/statement`);
  const row = page.locator("#statement tbody tr").first();
  assert.equal(await row.getAttribute("data-kind"), "top_up");
  assert.equal((await row.locator(".d-principal").textContent()).trim(), `+${yuan(100000)}`);
  assert.equal((await row.locator(".a-principal").textContent()).trim(), yuan(now.principal));
  assert.equal((await row.locator(".d-bonus").textContent()).trim(), `+${yuan(15000)}`);
  assert.equal((await row.locator(".a-bonus").textContent()).trim(), yuan(now.bonus));
  const st = await owner.get(`/cards/${card.id}/statement`);
  const last = st.lines.filter((l) => l.balance === "principal").at(-1);
  assert.equal(last.kind, "top_up");
  assert.equal(last.balance_after, now.principal);
  assert.match(await page.getAttribute("#stmt-csv", "href"), /format=csv/);
  const csv = await page.evaluate(async (href) => (await fetch(href)).text(), await page.getAttribute("#stmt-csv", "href"));
  assert.match(csv, /top_up/);
  await shot(page, "card-statement-zh");
  await page.emulateMedia({ media: "print" });
  await shot(page, "card-statement-print");
});

pageTest("issue an anonymous card; a top-up over its limit is refused beside the amount", async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/cards`);
  await Promise.all([page.waitForURL((u) => u.pathname === "/cards/new"), page.click("#issue-link")]);
  // A holder who is nobody is named beside the field.
  await page.fill("#f-holder", "13900000000");
  await page.click("#issue-submit");
  await page.waitForSelector("#e-holder");
  assert.match(await text(page, "#e-holder"), /没有找到这位会员/);
  await shot(page, "card-issue-form-zh");
  // Empty: an anonymous stored-value card.
  await page.fill("#f-holder", "");
  await page.uncheck("input[name=kind_points]");
  await Promise.all([page.waitForURL((u) => /^\/cards\/[0-9a-f-]{36}$/.test(u.pathname)), page.click("#issue-submit")]);
  const anon = await owner.get(`/cards/${new URL(page.url()).pathname.split("/").pop()}`);
  assert.equal(anon.customer_id, null);
  assert.deepEqual(anon.kinds, { stored_value: true, points: false, member_price: false });
  assert.match(await text(page, "#card-holder"), /不记名卡/);
  assert.match(await text(page, ".tile.total .sub"), /上限 ¥1,000\.00/);
  await page.fill("#f-amount", "1000");
  // Warned before confirming ...
  await page.waitForSelector("#preview-refusal");
  assert.match(await text(page, "#preview-refusal"), /不记名卡余额最多 ¥1,000\.00/);
  // ... and refused when confirmed anyway, next to the amount.
  await page.click("#top-up-submit");
  await page.waitForSelector("#e-amount");
  const reason = await text(page, "#e-amount");
  assert.match(reason, /不记名卡余额最多 ¥1,000\.00，这次充值（含赠送）后将有 ¥1,150\.00/);
  assert.equal(await page.getAttribute("#f-amount", "aria-invalid"), "true");
  assert.equal(await page.inputValue("#f-amount"), "1000");
  await shot(page, "card-top-up-refused-zh");
  const view = await owner.get(`/cards/${anon.id}`);
  assert.equal(view.balances.principal, 0);
  assert.equal(view.balances.bonus, 0);

  // A smaller amount within the limit goes through.
  await page.fill("#f-amount", "500");
  await page.waitForFunction(() => !document.querySelector("#preview-refusal") && /¥500\.00/.test(document.querySelector("#preview-line")?.textContent || ""));
  // A double click tops up once.
  await page.dblclick("#top-up-submit");
  await page.waitForSelector("#top-up-result");
  const after = await owner.get(`/cards/${anon.id}`);
  assert.equal(after.balances.principal, 50000);
  assert.equal(after.balances.bonus, 3000);
  assert.equal(await text(page, "#bal-total"), "¥530.00");
});

pageTest("a cashier tops up but does not freeze, replace or close cards", async (page) => {
  const { customer, card } = await memberWithCard();
  await login(page, server.base, { username: "cashier" });
  await page.goto(`${server.base}/cards/${card.id}`);
  assert.ok(await page.isVisible("#f-amount"));
  assert.equal(await page.locator("#freeze, #replace-panel, #close-panel").count(), 0);
  // Cashiers see phone numbers masked.
  assert.doesNotMatch(await text(page, ".card-meta"), new RegExp(customer.phone));
  await page.fill("#f-amount", "300");
  await page.waitForSelector("#preview-line");
  assert.equal(await text(page, "#preview-line"), "充 ¥300.00 送 ¥30.00");
  await page.check("input[name=tender][value=wechat]");
  await page.press("#f-amount", "Enter");
  await page.waitForSelector("#top-up-result");
  const now = (await owner.get(`/cards/${card.id}`)).balances;
  assert.equal(now.principal, card.balances.principal + 30000);
  assert.equal(now.bonus, card.balances.bonus + 3000);
  assert.match(await text(page, "#top-up-result"), /微信/);
  await shot(page, "card-cashier-zh");

  // The same form sent twice (a retry after a lost answer) is one top-up: the second
  // answer says so.
  const answers = await page.evaluate(async (id) => {
    const key = document.querySelector("#top-up-form input[name=key]").value;
    const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
    const send = () => fetch(`/cards/${id}/top-up`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf, "hx-request": "true" },
      body: new URLSearchParams({ amount: "300", tender: "cash", key }),
    }).then((r) => r.text());
    return [await send(), await send()];
  }, card.id);
  assert.doesNotMatch(answers[0], /刚才已经完成/);
  assert.match(answers[1], /这笔充值刚才已经完成/);
  const twice = (await owner.get(`/cards/${card.id}`)).balances;
  assert.equal(twice.principal, now.principal + 30000);
  assert.equal(twice.bonus, now.bonus + 3000);
});

pageTest("issue a card to a member, freeze it, unfreeze it", async (page) => {
  const { customer } = await memberWithCard();
  const had = (await owner.get(`/customers/${customer.id}/cards`)).length;
  await login(page, server.base);
  await page.goto(`${server.base}/cards/new?customer=${customer.id}`);
  assert.match(await text(page, "#issue-holder"), new RegExp(customer.name));
  await page.check("input[name=kind_member_price]");
  await page.fill("#f-pin", "12345");
  await page.click("#issue-submit");
  await page.waitForSelector("#e-pin");
  assert.match(await text(page, "#e-pin"), /6 位数字/);
  await page.fill("#f-pin", "");
  await Promise.all([page.waitForURL((u) => /^\/cards\/[0-9a-f-]{36}$/.test(u.pathname)), page.click("#issue-submit")]);
  const id = new URL(page.url()).pathname.split("/").pop();
  const cards = await owner.get(`/customers/${customer.id}/cards`);
  assert.equal(cards.length, had + 1);
  const made = cards.find((c) => c.id === id);
  assert.deepEqual(made.kinds, { stored_value: true, points: true, member_price: true });
  assert.match(await text(page, "#card-notice"), /发卡成功/);
  assert.equal(await text(page, "#card-status"), "正常");
  assert.equal(await text(page, "#bal-total"), "¥0.00");
  await shot(page, "card-issued-zh");

  await page.click("#freeze");
  await page.waitForSelector("#card-body[data-status=frozen]");
  assert.equal(await text(page, "#card-status"), "已冻结");
  assert.match(await text(page, "#card-notice"), /已冻结/);
  assert.match(await text(page, "#top-up-blocked"), /解冻后才能充值/);
  assert.equal((await owner.get(`/cards/${id}`)).status, "frozen");
  await shot(page, "card-frozen-zh");
  await page.click("#unfreeze");
  await page.waitForSelector("#card-body[data-status=active]");
  assert.equal((await owner.get(`/cards/${id}`)).status, "active");
  assert.ok(await page.isVisible("#f-amount"));
});

pageTest("report a card lost: the balances move to the new card shown", async (page) => {
  const { card } = await memberWithCard();
  await owner.post(`/cards/${card.id}/top-ups`, { amount: 30000, tender: "wechat", idempotency_key: `e2e-replace-${card.id}` });
  const old = await owner.get(`/cards/${card.id}`);
  await login(page, server.base);
  await page.goto(`${server.base}/cards/${card.id}`);
  await page.click("#replace-panel summary");
  await Promise.all([page.waitForURL((u) => !u.pathname.endsWith(card.id)), page.click("#replace-submit")]);
  const newId = new URL(page.url()).pathname.split("/").pop();
  const gone = await owner.get(`/cards/${card.id}`);
  assert.equal(gone.status, "lost");
  assert.equal(gone.replaced_by, newId);
  const fresh = await owner.get(`/cards/${newId}`);
  assert.deepEqual(fresh.balances, old.balances);
  assert.match(await text(page, "#card-notice"), /补卡成功/);
  assert.equal(await page.getAttribute("#card-number", "data-number"), fresh.number);
  assert.equal(await text(page, "#bal-principal"), yuan(old.balances.principal));
  assert.equal(await text(page, "#bal-bonus"), yuan(old.balances.bonus));
  await shot(page, "card-replaced-zh");
  // The old card says where its balances went.
  await page.goto(`${server.base}/cards/${card.id}`);
  assert.equal(await text(page, "#card-status"), "已挂失");
  assert.equal(await page.getAttribute("#card-replaced-by a", "data-number"), fresh.number);
});

pageTest("close a card: the refund of unused principal is shown before confirming", async (page) => {
  const { card } = await memberWithCard();
  await owner.post(`/cards/${card.id}/top-ups`, { amount: 30000, tender: "cash", idempotency_key: `e2e-close-${card.id}` });
  const held = (await owner.get(`/cards/${card.id}`)).balances;
  await login(page, server.base);
  await page.goto(`${server.base}/cards/${card.id}`);
  await page.click("#close-panel summary");
  assert.equal(await text(page, "#close-refund"), `将退还本金 ${yuan(held.principal)}`);
  await page.click("#close-submit");
  await page.waitForSelector("#close-form .field.invalid");
  assert.equal((await owner.get(`/cards/${card.id}`)).status, "active", "no reason, no closing");
  await page.fill("#f-close-reason", "会员搬家");
  await page.click("#close-submit");
  await page.waitForSelector("#card-body[data-status=closed]");
  assert.match(await text(page, "#card-notice"), new RegExp(`退还本金 ${yuan(held.principal).replace("$", "\\$")}`));
  const closed = await owner.get(`/cards/${card.id}`);
  assert.equal(closed.status, "closed");
  assert.equal(closed.balances.principal, 0);
  await shot(page, "card-closed-zh");
});

pageTest("the card page in English", async (page) => {
  const { customer, card } = await memberWithCard();
  await login(page, server.base);
  await page.goto(`${server.base}/lang/en?next=/cards/${card.id}`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await text(page, "h1"), /Card/);
  assert.match(await text(page, "#card-balances"), /Principal/);
  assert.match(await text(page, "#card-balances"), /Bonus/);
  await page.fill("#f-amount", "3000");
  await page.waitForSelector("#preview-line");
  assert.equal(await text(page, "#preview-line"), "Top up ¥3,000.00, get ¥500.00 bonus");
  await shot(page, "card-en");
  await page.goto(`${server.base}/cards/${card.id}/statement`);
  assert.match(await text(page, "h1"), /Statement/);
  await page.goto(`${server.base}/cards?q=${encodeURIComponent(customer.name.slice(0, 1))}`);
  await shot(page, "cards-find-en");
  // An id that is no card is a 404 page, in English.
  const res = await page.goto(`${server.base}/cards/not-a-card`);
  assert.equal(res.status(), 404);
  await page.goto(`${server.base}/lang/zh-CN?next=/`);
});
