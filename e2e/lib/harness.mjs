// Shared helpers for the browser tests: a real `patron serve` on an ephemeral port over a
// fresh SQLite database with the demo chain, and Debian's chromium driven by
// playwright-core. A failing test leaves a screenshot in target/e2e-screenshots/.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const PATRON = process.env.PATRON_BIN || join(root, "target/debug/patron");
export const SHOTS = join(root, "target/e2e-screenshots");
mkdirSync(SHOTS, { recursive: true });

/**
 * Starts the server on a fresh database holding the demo chain: members only, or with
 * `history: true` also their two years of visits through the till (slower).
 */
export async function startServer({ members = 120, history = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "patron-e2e-"));
  const env = { ...process.env, PATRON_LOG: "warn" };
  const demo = spawnSync(PATRON, ["demo", ...(history ? [] : ["--no-history"]), "--members", String(members)], { cwd: dir, env, encoding: "utf8" });
  if (demo.status !== 0) throw new Error(`patron demo failed:\n${demo.stdout}\n${demo.stderr}`);
  const proc = spawn(PATRON, ["serve", "--listen", "127.0.0.1:0", "--jobs-interval", "0"], { cwd: dir, env });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const base = await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${out}\n${stderr}`)), 60000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    proc.on("exit", (code) => fail(new Error(`server exited (${code}):\n${out}\n${stderr}`)));
  });
  return {
    base, dir,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/**
 * A test with a fresh browser page (1280×800, Chinese unless `locale` says otherwise).
 * On failure the page is saved as target/e2e-screenshots/FAILED-<name>.png; `shot(page,
 * name)` saves pages worth looking at on success too.
 */
export function pageTest(name, opts, fn) {
  if (typeof opts === "function") { fn = opts; opts = {}; }
  test(name, async (t) => {
    const browser = await launchBrowser();
    const context = await browser.newContext({ locale: opts.locale || "zh-CN", viewport: opts.viewport || { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    try {
      await fn(page, t);
      if (errors.length) throw new Error(`JavaScript errors on the page: ${errors.join("; ")}`);
    } catch (e) {
      await page.screenshot({ path: join(SHOTS, `FAILED-${slug(name)}.png`), fullPage: true }).catch(() => {});
      throw e;
    } finally {
      await browser.close();
    }
  });
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${slug(name)}.png`), fullPage: true });
}

function slug(s) { return s.replace(/[^A-Za-z0-9\u4e00-\u9fa5]+/g, "-").slice(0, 80); }

/** Logs in through the login page; `store` is a store code (money is taken at a store). */
export async function login(page, base, { username = "owner", password = "patron-demo", store = "sh-jingansi" } = {}) {
  await page.goto(`${base}/login`);
  await page.fill("#f-tenant", "demo");
  await page.fill("#f-username", username);
  await page.fill("#f-password", password);
  if (store) await page.fill("#f-store", store);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.click("#login-submit")]);
}

/** The JSON API with the owner's bearer token, for setting up and checking data. */
export async function api(base, { username = "owner", store = "sh-jingansi" } = {}) {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: "demo", username, password: "patron-demo", store }),
  });
  if (!res.ok) throw new Error(`API login: ${res.status} ${await res.text()}`);
  const { token } = await res.json();
  const call = async (method, path, body) => {
    const r = await fetch(`${base}/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null; try { json = JSON.parse(text); } catch {}
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return json;
  };
  return { get: (p) => call("GET", p), post: (p, b) => call("POST", p, b ?? {}), put: (p, b) => call("PUT", p, b), patch: (p, b) => call("PATCH", p, b) };
}

/** Waits until htmx has finished its requests and swaps, and has set up what it swapped
 *  in: a key pressed in a field it has just swapped in, before that, does nothing. */
export async function settled(page) {
  await page.waitForFunction(() => !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling"));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
}
