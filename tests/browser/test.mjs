// Browser test: a person registers, logs in, sees the home screen and the
// access log (including a staff read made through the API), and switches
// the language. Debian's Chromium through playwright-core; no browser download.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const base = process.env.YIZHAN_URL;
const shots = process.env.SCREENSHOT_DIR || "/tmp";
const DEMO_PASSWORD = "demo-pass-2026";
let passed = 0, failed = 0;

async function api(method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function step(name, fn) {
  try { await fn(); passed++; console.log(`ok - ${name}`); }
  catch (e) { failed++; console.log(`not ok - ${name}\n${e.stack}`); }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"],
});
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US", isMobile: true, hasTouch: true });
const page = await context.newPage();
const login = `1391${String(Date.now()).slice(-7)}`;

await step("register and land on the home screen", async () => {
  await page.goto(base + "/register");
  await page.fill("#name", "Browser Tester");
  await page.fill("#login", login);
  await page.fill("#password", "correct horse battery");
  await page.click("#submit");
  await page.waitForURL(base + "/home");
  assert.match(await page.textContent("#greeting"), /Hello, Browser Tester/);
  const services = await page.$$eval("#services a", as => as.map(a => a.dataset.service));
  assert.ok(services.includes("inbox") && services.includes("access"), services.join(","));
  await page.screenshot({ path: `${shots}/home.png`, fullPage: true });
});

await step("log out and log in again", async () => {
  await page.click("#logout");
  await page.waitForURL(base + "/");
  await page.goto(base + "/login");
  await page.fill("#login", login);
  await page.fill("#password", "correct horse battery");
  await page.click("#submit");
  await page.waitForURL(base + "/home");
});

await step("the access log starts empty", async () => {
  await page.goto(base + "/access-log");
  assert.match(await page.textContent("h1"), /Who accessed my data/);
  assert.ok(await page.isVisible("#access-empty"));
});

await step("a staff read shows in the resident's access log", async () => {
  const resident = await api("POST", "/api/v1/auth/login", null, { login: "13800000001", password: DEMO_PASSWORD });
  assert.equal(resident.status, 200);
  const staff = await api("POST", "/api/v1/auth/login", null, { login: "clinic@demo.yizhan.local", password: DEMO_PASSWORD });
  assert.equal(staff.status, 200);
  const me = await api("GET", "/api/v1/me", staff.body.token);
  const org = me.body.memberships[0].org_id;
  const read = await api("GET", `/api/v1/orgs/${org}/residents/${resident.body.user_id}?reason=outpatient%20registration`, staff.body.token);
  assert.equal(read.status, 200, JSON.stringify(read.body));

  const p2 = await context.newPage();
  await p2.goto(base + "/login");
  await p2.click("#logout").catch(() => {});
  await p2.goto(base + "/login");
  await p2.fill("#login", "13800000001");
  await p2.fill("#password", DEMO_PASSWORD);
  await p2.click("#submit");
  await p2.waitForURL(base + "/home");
  await p2.goto(base + "/access-log");
  const text = await p2.textContent("#access-entries");
  assert.match(text, /Dr\. Chen/);
  assert.match(text, /outpatient registration/);
  assert.match(await p2.textContent("#chain"), /Chain verified/);
  await p2.screenshot({ path: `${shots}/access-log.png`, fullPage: true });
  await p2.close();
});

await step("switch to Chinese", async () => {
  await page.goto(base + "/home");
  await page.click("#lang-switch");
  await page.waitForURL(base + "/home");
  assert.match(await page.textContent("#greeting"), /你好/);
  await page.screenshot({ path: `${shots}/home-zh.png`, fullPage: true });
});

await browser.close();
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
