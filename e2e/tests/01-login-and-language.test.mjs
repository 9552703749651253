// Log in, see the dashboard, switch language and see the same page in English.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, pageTest, login, shot } from "../lib/harness.mjs";

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

pageTest("login refuses a wrong password with the reason next to the form", async (page) => {
  await page.goto(`${server.base}/`);
  assert.match(new URL(page.url()).pathname, /^\/login/);
  await page.fill("#f-tenant", "demo");
  await page.fill("#f-username", "owner");
  await page.fill("#f-password", "wrong-password");
  await page.click("#login-submit");
  await page.waitForSelector(".error.general");
  assert.match(await page.textContent(".error.general"), /密码不正确/);
  // An empty field is named beside the field itself.
  await page.fill("#f-username", "");
  await page.click("#login-submit");
  await page.waitForSelector("#e-username");
  assert.equal((await page.textContent("#e-username")).trim(), "必填");
  await shot(page, "login-error-zh");
});

pageTest("log in, see today's dashboard, switch to English and back", async (page) => {
  await login(page, server.base);
  await page.waitForSelector("h1");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  assert.match(await page.textContent("h1"), /今日概览/);
  assert.match(await page.textContent("#dash-sales"), /^¥\d/);
  await shot(page, "dashboard-zh");
  await page.click("#switch-lang");
  await page.waitForURL((u) => u.pathname === "/");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await page.textContent("h1"), /Today/);
  assert.match(await page.textContent("nav.side"), /Customers/);
  await shot(page, "dashboard-en");
  await page.click("#switch-lang");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  // Log out: back to the login page, and the dashboard is closed again.
  await page.click("#logout");
  await page.waitForURL((u) => u.pathname.startsWith("/login"));
  await page.goto(`${server.base}/`);
  assert.match(new URL(page.url()).pathname, /^\/login/);
});

pageTest("English browsers get English pages", { locale: "en-GB" }, async (page) => {
  await page.goto(`${server.base}/login`);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await page.textContent("#login-submit"), /Log in/);
});
