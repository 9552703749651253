// The loyalty pages, as the owner in English: points rules and levels saved and kept (and
// seen through the API), an invalid value refused beside its field with nothing changed,
// a member price on a dish (seen in the API's menu), a coupon template created and issued
// to a demo customer, then voided; top-up tiers and gifts edited.
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

const EN = { locale: "en-GB" };
const field = (name) => `[name="${name}"]`;
const errorOf = (name) => `[id="e-${name}"]`;

pageTest("the overview links every part of the programme (Chinese)", async (page) => {
  await login(page, server.base);
  await page.click('[data-nav="loyalty"]');
  await page.waitForSelector("#loy-card-points");
  assert.match(await page.textContent("h1"), /会员营销/);
  assert.match(await page.textContent("#loy-card-points"), /每消费 ¥1 得 1 分/);
  assert.match(await page.textContent("#loy-card-levels"), /钻石卡/);
  await shot(page, "loyalty-overview-zh");
  await page.click('[data-tab="points"]');
  await page.waitForSelector("#loy-points-form");
  assert.match(await page.textContent("#loy-examples"), /金卡/);
  await shot(page, "loyalty-points-zh");
  await page.goto(`${server.base}/loyalty/coupons/new`);
  await page.waitForSelector("#loy-coupon-form");
  await shot(page, "loyalty-coupon-new-zh");
});

pageTest("a manager reads the rules but only the owner changes them", EN, async (page) => {
  await login(page, server.base, { username: "manager" });
  await page.goto(`${server.base}/loyalty/points`);
  await page.waitForSelector(".loy-readonly");
  assert.equal(await page.$("#loy-save"), null);
  assert.equal(await page.isDisabled(field("points_per_yuan")), true);
  // Member prices are a manager's to set.
  await page.goto(`${server.base}/loyalty/prices`);
  assert.ok(await page.$("[data-edit]"));
});

pageTest("points rate and a level threshold are saved, kept on reload and in the API", EN, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/points`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(await page.inputValue(field("points_per_yuan")), "1");
  // Multipliers read as people say them, not in basis points.
  assert.equal(await page.inputValue(field("levels[2].multiplier_bp")), "1.5");
  assert.equal(await page.inputValue(field("redemption.max_share_bp")), "50");
  await shot(page, "loyalty-points-en");

  await page.fill(field("points_per_yuan"), "2");
  await page.fill(field("levels[2].multiplier_bp"), "1.8");
  await page.check(field("threshold_bonus"));
  await page.fill(field("threshold_bonus.min_spend"), "800");
  await page.fill(field("threshold_bonus.points"), "88");
  await page.click("#loy-save");
  await page.waitForSelector("#loy-saved");
  await page.reload();
  assert.equal(await page.inputValue(field("points_per_yuan")), "2");
  assert.equal(await page.inputValue(field("levels[2].multiplier_bp")), "1.8");
  assert.equal(await page.isChecked(field("threshold_bonus")), true);
  // The example follows the saved rules: ¥286 × 2 points × 1.8 (gold) = 1,029.
  assert.match(await page.textContent("#loy-examples"), /1,029/);
  let s = await owner.get("/settings");
  assert.equal(s.points.points_per_yuan, 2);
  assert.equal(s.levels.levels[2].multiplier_bp, 18000);
  assert.deepEqual(s.points.threshold_bonus, { min_spend: 80000, points: 88 });

  await page.click('[data-tab="levels"]');
  await page.waitForSelector("#loy-levels-form");
  assert.equal(await page.inputValue(field("levels[1].threshold")), "2000");
  assert.equal(await page.inputValue(field("levels[2].discount_bp")), "5");
  await page.fill(field("levels[1].threshold"), "2500");
  await page.click("#loy-save");
  await page.waitForSelector("#loy-saved");
  await page.reload();
  assert.equal(await page.inputValue(field("levels[1].threshold")), "2500");
  s = await owner.get("/settings");
  assert.equal(s.levels.levels[1].threshold, 250000);
  // Saving levels kept the points rules saved before.
  assert.equal(s.points.points_per_yuan, 2);
  await shot(page, "loyalty-levels-en");
});

pageTest("an invalid value is shown beside its field and changes nothing", EN, async (page) => {
  await login(page, server.base);
  const before = await owner.get("/settings");
  await page.goto(`${server.base}/loyalty/points`);
  await page.fill(field("points_per_yuan"), "20000");
  await page.fill(field("birthday.multiplier_bp"), "abc");
  await page.click("#loy-save");
  await page.waitForSelector(errorOf("points_per_yuan"));
  assert.match(await page.textContent(errorOf("points_per_yuan")), /Between 0 and 10,000/);
  assert.match(await page.textContent(errorOf("birthday.multiplier_bp")), /number/);
  // What was typed stays in the form, to be corrected.
  assert.equal(await page.inputValue(field("points_per_yuan")), "20000");
  assert.equal(await page.$("#loy-saved"), null);
  await shot(page, "loyalty-points-error-en");

  await page.goto(`${server.base}/loyalty/levels`);
  await page.fill(field("levels[2].threshold"), "100");
  await page.click("#loy-save");
  await page.waitForSelector(errorOf("levels[2].threshold"));
  assert.match(await page.textContent(errorOf("levels[2].threshold")), /more than the level below/);
  await shot(page, "loyalty-levels-error-en");

  const after = await owner.get("/settings");
  assert.deepEqual(after, before);
});

pageTest("top-up tiers: add one, remove one, save", EN, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/top-up`);
  await page.click("#loy-add-tier");
  await page.fill(field("tiers[4].min_amount"), "5000");
  await page.fill(field("tiers[4].bonus"), "1000");
  // The ¥300 tier goes.
  await page.click('#loy-tier-rows tr:first-child [data-remove-row]');
  await page.click("#loy-save");
  await page.waitForSelector("#loy-saved");
  const s = await owner.get("/settings");
  assert.deepEqual(s.top_up.tiers.map((t) => [t.min_amount, t.bonus]), [
    [100000, 15000], [300000, 50000], [500000, 100000], [1000000, 200000],
  ]);
  assert.match(await page.textContent("#loy-tier-examples"), /¥5,000\.00/);
  await shot(page, "loyalty-top-up-en");
});

pageTest("a member price set on a dish is in the API's menu", EN, async (page) => {
  const items = await owner.get("/menu/items?q=" + encodeURIComponent("红烧肉"));
  const dish = items.find((i) => i.name === "红烧肉");
  assert.ok(dish, "the demo menu has 红烧肉");
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/prices`);
  await page.waitForSelector("#loy-prices");
  await shot(page, "loyalty-prices-en");
  await page.fill('input[name="q"]', "红烧肉");
  await page.press('input[name="q"]', "Enter");
  await page.waitForSelector(`#price-${dish.id}`);
  await page.click(`[data-edit="${dish.id}"]`);
  await page.waitForSelector(`#price-${dish.id}.loy-editing`);
  // Above the regular price: refused beside the box.
  await page.fill(`#price-${dish.id} ${field("level.diamond")}`, "999");
  await page.click(`[data-save="${dish.id}"]`);
  await page.waitForSelector(errorOf("level.diamond"));
  assert.match(await page.textContent(errorOf("level.diamond")), /above the regular price/);
  await shot(page, "loyalty-price-error-en");
  await page.fill(`#price-${dish.id} ${field("level.diamond")}`, "52.50");
  await page.press(`#price-${dish.id} ${field("level.diamond")}`, "Enter");
  await page.waitForSelector(`#price-${dish.id}.loy-just-saved`);
  assert.match(await page.textContent(`#price-${dish.id} [data-col="level.diamond"]`), /¥52\.50/);
  const after = await owner.get(`/menu/items/${dish.id}`);
  assert.deepEqual(
    after.member_prices.find((m) => m.level === "diamond"),
    { level: "diamond", price: 5250 },
  );
  // The other member prices stayed.
  assert.equal(after.member_prices.length, dish.member_prices.length + 1);
  await page.goto(`${server.base}/loyalty/prices/${dish.id}`);
  assert.match(await page.textContent("#loy-price-history"), /Member prices changed/);
  await shot(page, "loyalty-price-history-en");
});

pageTest("a coupon template is created, issued to a customer once, and voided", EN, async (page) => {
  const customers = await owner.get("/customers?per_page=5");
  const customer = customers.items.find((c) => c.phone);
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/coupons`);
  await shot(page, "loyalty-coupons-en");
  await page.click("#loy-new-template");
  await page.waitForSelector("#loy-coupon-form");
  // Nothing filled in: the name and the amount are asked for beside their boxes.
  await page.click("#loy-save-template");
  await page.waitForSelector(errorOf("kind.value"));
  assert.match(await page.textContent(errorOf("name")), /Required|name/i);
  await page.fill(field("name"), "E2E 满100减20");
  await page.fill(field("name_en"), "E2E ¥20 off ¥100");
  await page.fill(field("kind.value"), "20");
  await page.fill(field("kind.min_spend"), "100");
  await page.fill(field("per_customer_limit"), "1");
  await page.check('input[name="excluded_weekdays"][value="6"]');
  await shot(page, "loyalty-coupon-new-en");
  await page.click("#loy-save-template");
  await page.waitForURL(/\/loyalty\/coupons\/[0-9a-f-]+\?created=1/);
  const templateId = new URL(page.url()).pathname.split("/").pop();
  assert.match(await page.textContent("#loy-worth"), /¥20\.00 off on bills of ¥100\.00 or more/);
  const t = await owner.get(`/coupon-templates/${templateId}`);
  assert.deepEqual(t.kind, { type: "cash", value: 2000, min_spend: 10000 });
  assert.deepEqual(t.excluded_weekdays, [6]);
  assert.equal(t.per_customer_limit, 1);

  // Issue to the customer found by phone.
  await page.fill("#f-q", customer.phone);
  await page.waitForSelector(".loy-candidate");
  assert.match(await page.textContent("#loy-candidates"), new RegExp(customer.name));
  await page.click("#loy-issue-submit");
  await page.waitForSelector("#loy-issued");
  const issuedText = await page.textContent("#loy-issued");
  const code = issuedText.match(/[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/)[0];
  await shot(page, "loyalty-coupon-issued-en");
  const held = await owner.get(`/coupons?customer_id=${customer.id}`);
  const mine = held.filter((c) => c.template_id === templateId);
  assert.equal(mine.length, 1);
  assert.equal(mine[0].code, code);
  assert.equal(mine[0].status, "issued");
  // The list of issued coupons shows it without a reload.
  await page.waitForSelector(`#loy-coupons >> text=${code}`);

  // The limit is one per person: a second one is refused, beside the customer box.
  await page.fill("#f-q", customer.phone);
  await page.press("#f-q", "Enter");
  await page.waitForSelector(errorOf("q"));
  assert.match(await page.textContent(errorOf("q")), /already holds/);
  assert.equal((await owner.get(`/coupons?customer_id=${customer.id}`)).filter((c) => c.template_id === templateId).length, 1);

  // Void it, with a reason.
  await page.goto(`${server.base}/loyalty/coupons/code?code=${code}`);
  await page.click("#loy-void");
  await page.waitForSelector(errorOf("reason"));
  await page.fill(field("reason"), "issued by mistake");
  await page.click("#loy-void");
  await page.waitForSelector("#loy-voided");
  assert.match(await page.textContent("#loy-coupon-status"), /Voided/);
  const voided = await owner.get(`/coupons/${code}`);
  assert.equal(voided.status, "voided");
  assert.equal(voided.void_reason, "issued by mistake");
  await shot(page, "loyalty-coupon-voided-en");
});

pageTest("a gift is added and its stock edited", EN, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/gifts`);
  await page.fill(field("name"), "E2E 帆布袋");
  await page.fill(field("name_en"), "E2E tote bag");
  await page.fill(field("points_price"), "1200");
  await page.fill(field("stock"), "30");
  await page.click("#loy-add-gift");
  await page.waitForSelector("#loy-gift-created");
  let gift = (await owner.get("/gifts?all=true")).find((g) => g.name === "E2E 帆布袋");
  assert.equal(gift.points_price, 1200);
  assert.equal(gift.stock, 30);
  await page.click(`[data-edit="${gift.id}"]`);
  await page.waitForSelector(`#gift-${gift.id}.loy-editing`);
  await page.fill(`#gift-${gift.id} ${field("stock")}`, "25");
  await page.click(`[data-save="${gift.id}"]`);
  await page.waitForSelector(`#gift-${gift.id}.loy-just-saved`);
  gift = (await owner.get("/gifts?all=true")).find((g) => g.id === gift.id);
  assert.equal(gift.stock, 25);
  await shot(page, "loyalty-gifts-en");
});

pageTest("the same issue form sent twice issues one coupon", EN, async (page) => {
  const t = await owner.post("/coupon-templates", {
    name: "E2E 重复提交", name_en: "E2E double submit",
    kind: { type: "cash", value: 500 }, validity: { type: "end_of_month" },
  });
  const customer = (await owner.get("/customers?per_page=5")).items[1];
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/coupons/${t.id}`);
  const key = await page.inputValue('#loy-issue-form input[name="key"]');
  // Two requests with the form's key, as a double click or a retry would send them.
  const statuses = await page.evaluate(async ({ id, key, customer }) => {
    const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
    const send = () => fetch(`/loyalty/coupons/${id}/issue`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf, "hx-request": "true" },
      body: new URLSearchParams({ key, customer_id: customer, q: "" }),
    }).then((r) => r.status);
    const first = await send();
    const second = await send();
    return [first, second];
  }, { id: t.id, key, customer: customer.id });
  assert.deepEqual(statuses, [200, 200]);
  const held = (await owner.get(`/coupons?customer_id=${customer.id}`)).filter((c) => c.template_id === t.id);
  assert.equal(held.length, 1);
});

pageTest("saving over rules someone changed meanwhile is refused", EN, async (page) => {
  await login(page, server.base);
  await page.goto(`${server.base}/loyalty/points`);
  const s = await owner.get("/settings");
  s.points.points_per_yuan = 3;
  await owner.put("/settings", s);
  await page.fill(field("points_per_yuan"), "4");
  await page.click("#loy-save");
  await page.waitForSelector(".error.general");
  assert.match(await page.textContent(".error.general"), /Someone else saved/);
  assert.equal((await owner.get("/settings")).points.points_per_yuan, 3);
});
