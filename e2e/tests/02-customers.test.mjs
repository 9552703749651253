// Customers: find one by phone and read the 360 page (balances and cards as the API has
// them); create with a bad phone (error beside the field), fix it, land on the new page;
// edit; a phone already in use links to its holder; a cashier's save keeps the phone it
// may not see; merge a duplicate; the English pages.
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

/** ¥1,234.56 from fen, as the pages write money. */
function yuan(fen) {
  const s = (Math.abs(fen) / 100).toFixed(2);
  const [i, d] = s.split(".");
  return `${fen < 0 ? "-" : ""}¥${i.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${d}`;
}

/** A mobile number nobody in the demo has. */
let seq = 0;
function freshPhone() {
  seq += 1;
  return `139${String((Date.now() + seq * 7919) % 1e8).padStart(8, "0")}`;
}

/** A demo member with a phone and a card holding stored value (topped up here). */
async function memberWithBalance() {
  const list = await owner.get("/customers?per_page=50");
  const c = list.items.find((x) => x.phone && x.customer_type === "individual");
  let cards = await owner.get(`/customers/${c.id}/cards`);
  let card = cards.find((k) => k.status === "active" && k.kinds.stored_value);
  if (!card) card = await owner.post("/cards", { customer_id: c.id });
  await owner.post(`/cards/${card.id}/top-ups`, { amount: 50000, tender: "cash", idempotency_key: `e2e-cust-${Date.now()}` });
  cards = await owner.get(`/customers/${c.id}/cards`);
  const views = await Promise.all(cards.map((k) => owner.get(`/cards/${k.id}`)));
  return { c, card: await owner.get(`/cards/${card.id}`), views };
}

pageTest("find a customer by phone and see the 360 page with cards and balances", async (page) => {
  const { c, card, views } = await memberWithBalance();
  await login(page, server.base);
  await page.goto(`${server.base}/customers`);
  await shot(page, "customers-list-zh");
  // Search as you type: the results follow the box without submitting.
  await page.fill("#f-q", c.phone);
  // Found by the whole number (the list before it showed the newest members).
  await page.waitForSelector("#cust-exact");
  assert.equal((await page.textContent("#cust-results a.cust-link")).trim(), c.name);
  assert.match(page.url(), new RegExp(`q=${c.phone}`));
  assert.equal(await page.locator("#cust-results tbody tr").count(), 1);
  await Promise.all([page.waitForURL(`**/customers/${c.id}`), page.click(`#cust-results a.cust-link`)]);

  assert.equal((await page.textContent("#cust-name")).trim(), c.name);
  assert.equal((await page.textContent("#cust-phone")).trim(), c.phone);
  // Stored value = principal + bonus of the customer's own open cards, as the API has them.
  const own = views.filter((v) => !v.pooled && v.status !== "closed");
  const principal = own.reduce((s, v) => s + v.balances.principal, 0);
  const bonus = own.reduce((s, v) => s + v.balances.bonus, 0);
  assert.ok(principal >= 50000, "the top-up is in the principal");
  assert.equal((await page.textContent("#cust-stored")).trim(), yuan(principal + bonus));
  assert.equal((await page.textContent("#cust-principal")).trim(), yuan(principal));
  assert.equal((await page.textContent("#cust-bonus")).trim(), yuan(bonus));
  // The card's row: its number links to its page, with its own balances.
  const row = page.locator(`#cust-cards tr[data-card="${card.number}"]`);
  assert.equal(await row.locator(`a[href="/cards/${card.id}"]`).count(), 1);
  assert.equal((await row.locator(".card-principal").textContent()).trim(), yuan(card.balances.principal));
  assert.equal((await row.locator(".card-bonus").textContent()).trim(), yuan(card.balances.bonus));
  // The top-up is on the timeline, newest first.
  const first = page.locator("#timeline tbody tr").first();
  assert.match(await first.textContent(), /充值/);
  assert.match(await first.textContent(), /¥500\.00/);
  await shot(page, "customer-360-zh");

  // The same page in English.
  await page.goto(`${server.base}/lang/en?next=/customers/${c.id}`);
  await page.waitForURL(`**/customers/${c.id}`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await page.textContent(".cust-tiles"), /Stored value/);
  assert.equal((await page.textContent("#cust-stored")).trim(), yuan(principal + bonus));
  assert.match(await page.textContent("#timeline"), /Top-up/);
  await shot(page, "customer-360-en");
  await page.goto(`${server.base}/customers`);
  assert.match(await page.textContent("h1"), /Customers/);
  await shot(page, "customers-list-en");
});

pageTest("create a customer: a bad phone is named beside the field, fixed, then edited", async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/customers`);
  await Promise.all([page.waitForURL("**/customers/new"), page.click("#cust-new")]);
  await page.fill("#f-name", "测试新客");
  await page.fill("#f-phone", "12345");
  await page.fill("#f-allergies", "花生、海鲜");
  await page.fill("#f-tastes", "微辣");
  await page.click("#cust-save");
  await page.waitForSelector("#e-phone");
  assert.equal((await page.textContent("#e-phone")).trim(), "手机号格式不对");
  // What was typed is still there.
  assert.equal(await page.inputValue("#f-name"), "测试新客");
  assert.equal(await page.inputValue("#f-allergies"), "花生、海鲜");
  await shot(page, "customer-new-error-zh");

  const phone = freshPhone();
  await page.fill("#f-phone", phone);
  await Promise.all([page.waitForURL(/\/customers\/[0-9a-f-]{36}$/), page.click("#cust-save")]);
  const id = new URL(page.url()).pathname.split("/").pop();
  assert.equal((await page.textContent("#cust-name")).trim(), "测试新客");
  assert.equal((await page.textContent("#cust-phone")).trim(), phone);
  assert.match(await page.textContent("#cust-allergies"), /花生.*海鲜/);
  const saved = await owner.get(`/customers/${id}`);
  assert.equal(saved.phone, phone);
  assert.deepEqual(saved.allergies, ["花生", "海鲜"]);
  assert.deepEqual(saved.tastes, ["微辣"]);

  // Edit: tags and seat change, the rest stays.
  await Promise.all([page.waitForURL(`**/customers/${id}/edit`), page.click("#cust-edit")]);
  assert.equal(await page.inputValue("#f-phone"), phone);
  await page.fill("#f-tags", "VIP, 商务宴请");
  await page.fill("#f-seat_preference", "靠窗");
  await Promise.all([page.waitForURL(`**/customers/${id}?saved=1`), page.click("#cust-save")]);
  await page.waitForSelector("#cust-saved");
  assert.match(await page.textContent("#cust-tags"), /VIP.*商务宴请/);
  const edited = await owner.get(`/customers/${id}`);
  assert.deepEqual(edited.tags, ["VIP", "商务宴请"]);
  assert.equal(edited.seat_preference, "靠窗");
  assert.equal(edited.phone, phone);
  assert.deepEqual(edited.allergies, ["花生", "海鲜"]);
  // The change is on the timeline.
  assert.match(await page.textContent("#timeline"), /资料更新/);

  // The same phone again: refused beside the field, with a link to its holder.
  await page.goto(`${server.base}/customers/new`);
  await page.fill("#f-name", "另一位");
  await page.fill("#f-phone", phone);
  await page.click("#cust-save");
  await page.waitForSelector("#e-phone");
  assert.match(await page.textContent("#e-phone"), /已属于另一位客户/);
  assert.equal(await page.getAttribute("#cust-conflict-link", "href"), `/customers/${id}`);
});

pageTest("a cashier sees phone numbers masked, and saving keeps the real one", async (page) => {
  const phone = freshPhone();
  const c = await owner.post("/customers", { name: "收银测试", phone });
  await login(page, server.base, { username: "cashier" });
  // A whole number finds the customer; the page shows it masked.
  await page.goto(`${server.base}/customers?q=${phone}`);
  const masked = `${phone.slice(0, 3)}****${phone.slice(7)}`;
  assert.equal((await page.textContent("#cust-results .cust-phone-cell")).trim(), masked);
  await page.goto(`${server.base}/customers/${c.id}/edit`);
  assert.equal(await page.getAttribute("#f-phone", "readonly"), "");
  await page.fill("#f-tags", "常客");
  await Promise.all([page.waitForURL(`**/customers/${c.id}?saved=1`), page.click("#cust-save")]);
  const after = await owner.get(`/customers/${c.id}`);
  assert.equal(after.phone, phone);
  assert.deepEqual(after.tags, ["常客"]);
  // Merging is not for cashiers.
  const r = await page.goto(`${server.base}/customers/duplicates`);
  assert.equal(r.status(), 403);
});

pageTest("merge a duplicate after seeing what moves", async (page) => {
  const name = `重复${Date.now() % 100000}`;
  const keep = await owner.post("/customers", { name, birthday: "1990-03-04", phone: freshPhone() });
  const dup = await owner.post("/customers", { name, birthday: "1990-03-04", email: "dup@example.com", tags: ["老顾客"] });
  const card = await owner.post("/cards", { customer_id: dup.id });
  await owner.post(`/cards/${card.id}/top-ups`, { amount: 30000, tender: "wechat", idempotency_key: `e2e-merge-${Date.now()}` });

  await login(page, server.base);
  await page.goto(`${server.base}/customers/duplicates`);
  const group = page.locator(".dup-group", { hasText: name });
  await Promise.all([page.waitForURL(/\/merge\?duplicate=/), group.locator(`a[href="/customers/${keep.id}/merge?duplicate=${dup.id}"]`).click()]);
  // The confirmation names the card and its balance, and the fields filled in.
  const moves = await page.textContent("#merge-moves");
  assert.match(moves, new RegExp(card.number));
  assert.match(moves, /¥300\.00/);
  assert.match(moves, /邮箱/);
  await shot(page, "customer-merge-confirm-zh");
  await Promise.all([page.waitForURL(`**/customers/${keep.id}?moved_events=*`), page.click("#merge-confirm")]);
  assert.match(await page.textContent("#cust-merged"), /1 张卡/);
  assert.match(await page.textContent("#cust-cards"), new RegExp(card.number));
  const survivor = await owner.get(`/customers/${keep.id}`);
  assert.equal(survivor.email, "dup@example.com");
  assert.deepEqual(survivor.tags, ["老顾客"]);
  const gone = await owner.get(`/customers/${dup.id}`);
  assert.equal(gone.merged_into, keep.id);
  const cards = await owner.get(`/customers/${keep.id}/cards`);
  assert.ok(cards.some((k) => k.id === card.id));
  // The old record's page leads to the survivor.
  await page.goto(`${server.base}/customers/${dup.id}`);
  await page.waitForURL(`**/customers/${keep.id}?merged_from=${dup.id}`);
});
