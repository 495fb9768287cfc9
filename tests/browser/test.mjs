// Browser test: a person registers, logs in, sees the home screen and the
// access log (including a staff read made through the API), uses the wallet
// (top-up with the sandbox's default card, the QR code, paying another person
// by login and by their code, the history), a demo resident pays a bill, the
// person verifies their real name through the sandbox verifier and binds a
// plate, traffic-police staff verify them at the counter, a large pay code
// charge waits on the pay code page until they confirm it, and the language
// switches. Debian's Chromium through playwright-core; no browser download.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

const base = process.env.YIZHAN_URL;
const shots = process.env.SCREENSHOT_DIR || "/tmp";
const DEMO_PASSWORD = "demo-pass-2026";
// The server's sandbox outbox: every code sent by text message or mail is a file there.
const outbox = `${process.env.YIZHAN_DATA_DIR}/outbox`;

// The newest one-time code sent to a phone number or address (its first run of exactly 6 digits).
function codeFor(dest) {
  const files = readdirSync(outbox).filter((f) => f.endsWith("-sms.txt") || f.endsWith("-mail.txt")).sort().reverse();
  for (const f of files) {
    const text = readFileSync(`${outbox}/${f}`, "utf8");
    if (!text.includes(`\nTo: ${dest}\n`)) continue;
    const m = text.split("\n\n").slice(1).join("\n\n").match(/(?<![0-9])[0-9]{6}(?![0-9])/);
    if (m) return m[0];
  }
  throw new Error(`no code was sent to ${dest}`);
}
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

await step("register, enter the code from the text message and land on the home screen", async () => {
  await page.goto(base + "/register");
  await page.fill("#name", "Browser Tester");
  await page.fill("#login", login);
  await page.fill("#password", "correct horse battery");
  await page.click("#submit");
  await page.waitForURL(/\/register\/verify/);
  await page.fill("#verify-code", "000000" === codeFor(login) ? "000001" : "000000");
  await page.click("#verify-submit");
  assert.ok(await page.isVisible("#code-error"), "a wrong code is shown at its field");
  await page.fill("#verify-code", codeFor(login));
  await page.click("#verify-submit");
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

async function loginAs(p, who, password) {
  await p.goto(base + "/login");
  await p.fill("#login", who);
  await p.fill("#password", password);
  await p.click("#submit");
  await p.waitForURL(base + "/home");
}

await step("top up the wallet with the sandbox default card and see the balance and my QR code", async () => {
  // The pages share cookies: the staff-read step left the demo resident logged in.
  await loginAs(page, login, "correct horse battery");
  await page.goto(base + "/wallet");
  assert.match(await page.textContent("#balance"), /¥0\.00/);
  assert.ok(await page.isVisible("#my-qr svg"), "my QR code is on the wallet page");
  const box = await page.$eval("#my-qr svg", (s) => { const r = s.getBoundingClientRect(); return [r.width, r.height]; });
  assert.ok(box[0] > 100 && box[1] > 100, `QR code size ${box}`);
  await page.fill("#topup-amount", "100");
  await page.click("#topup-submit");
  // Post/redirect/get: the answer is the transfer's page.
  await page.waitForURL(/\/wallet\/history\/[^/?]+\?done=1$/);
  assert.match(await page.textContent(".flash.ok"), /Topped up ¥100\.00/);
  assert.match(await page.textContent("#transfer-amount"), /\+100\.00/);
  await page.goto(base + "/wallet");
  assert.match(await page.textContent("#balance"), /¥100\.00/);
  await page.screenshot({ path: `${shots}/wallet.png`, fullPage: true });
});

await step("pay another person by login, then by their payment code", async () => {
  await page.goto(base + "/wallet/send");
  await page.fill("#send-to", "13800000002");
  await page.fill("#send-amount", "12.34");
  await page.fill("#send-memo", "dumplings");
  await page.click("#send-submit");
  // The confirmation shows the payee's name masked, so a wrong number shows before paying.
  await page.waitForSelector("#confirm-form");
  assert.match(await page.textContent("#check-payee"), /^\*+\S$/u);
  assert.match(await page.textContent("#check-login"), /138\*\*\*\*0002/);
  await page.screenshot({ path: `${shots}/send-check.png`, fullPage: true });
  await page.click("#confirm-submit");
  await page.waitForSelector("#receipt");
  assert.match(await page.textContent("#receipt-payee"), /^\*+\S$/u);
  assert.match(await page.textContent("#transfer-memo"), /dumplings/);

  const wang = await api("POST", "/api/v1/auth/login", null, { login: "13800000002", password: DEMO_PASSWORD });
  assert.equal(wang.status, 200);
  const qr = await api("GET", "/api/v1/qr/me", wang.body.token);
  assert.equal(qr.status, 200);
  await page.goto(base + "/wallet/pay");
  await page.fill("#payload", qr.body.payload);
  await page.click("#preview-submit");
  await page.waitForSelector("#payee-name");
  // A person's name is masked on the preview too.
  assert.match(await page.textContent("#payee-name"), /^\*+\S$/u);
  await page.fill("#pay-amount", "1");
  await page.click("#pay-next");
  await page.waitForSelector("#confirm-form");
  assert.match(await page.textContent("#check-amount"), /¥1\.00/);
  await page.click("#confirm-submit");
  await page.waitForSelector("#receipt");
  assert.match(await page.textContent("#receipt-payee"), /^\*+\S$/u);
  const w = await api("GET", "/api/v1/wallet", wang.body.token);
  // The demo topped Wang Fang (not verified) up by 200 yuan, the most an unverified account may at a time.
  assert.equal(w.body.balance, 20000 + 1234 + 100);
  await page.goto(base + "/wallet");
  assert.match(await page.textContent("#balance"), /¥86\.66/);
});

await step("the history shows every payment", async () => {
  await page.goto(base + "/wallet/history");
  const text = await page.textContent("#history");
  assert.match(text, /Wang Fang/);
  assert.match(text, /-12\.34/);
  assert.match(text, /dumplings/);
  assert.match(text, /\+100\.00/);
  await page.screenshot({ path: `${shots}/history.png`, fullPage: true });
  await page.goto(base + "/wallet/statement");
  assert.ok(await page.isVisible("#statement-chart"));
  assert.match(await page.textContent("#total-out"), /13\.34/);
});

await step("a demo resident pays a bill from the bills page", async () => {
  const p3 = await context.newPage();
  await loginAs(p3, "13800000001", DEMO_PASSWORD);
  const services = await p3.$$eval("#services a", (as) => as.map((a) => a.dataset.service));
  assert.ok(services.includes("wallet"), services.join(","));
  await p3.click("#services a[data-service=wallet]");
  await p3.waitForURL(base + "/wallet");
  await p3.click("#go-bills");
  await p3.waitForURL(base + "/bills");
  assert.equal(await p3.$$eval("#bills li", (li) => li.length), 2);
  await p3.click("#bills li:has-text('Hangzhou Water') button.pay-bill");
  await p3.waitForSelector("#confirm-form");
  assert.match(await p3.textContent("#check-payee"), /Hangzhou Water/);
  await p3.click("#confirm-submit");
  await p3.waitForSelector("#receipt");
  assert.match(await p3.textContent("#receipt"), /46\.80/);
  await p3.goto(base + "/bills");
  assert.match(await p3.textContent("#bills"), /Paid/);
  await p3.screenshot({ path: `${shots}/bills.png`, fullPage: true });
  await p3.close();
  await loginAs(page, login, "correct horse battery");
});

await step("send a lucky red packet to a group; another person opens it", async () => {
  await page.goto(base + "/red-packets");
  await page.fill("#packet-count", "2");
  await page.selectOption("#packet-mode", "lucky");
  await page.fill("#packet-amount", "10");
  await page.fill("#packet-greeting", "Happy new year");
  await page.click("#packet-submit");
  await page.waitForURL(/\/red-packets\/[0-9a-f]+$/);
  const link = (await page.textContent("#packet-link")).trim();
  assert.match(link, /^http:\/\/[^/]+\/red-packets\/[0-9a-f]+$/);
  await page.goto(base + "/wallet");
  assert.match(await page.textContent("#balance"), /¥76\.66/);

  const p4 = await context.newPage();
  await loginAs(p4, "13800000002", DEMO_PASSWORD);
  await p4.goto(link);
  assert.match(await p4.textContent("#packet-greeting"), /Happy new year/);
  await p4.click("#claim");
  await p4.waitForSelector("#my-share");
  const share = Number((await p4.textContent("#my-share")).replace(/[^0-9.]/g, ""));
  assert.ok(share >= 0.01 && share <= 9.99, `share ${share}`);
  assert.match(await p4.textContent("#packet-claims"), /Wang Fang/);
  await p4.screenshot({ path: `${shots}/red-packet.png`, fullPage: true });
  await p4.close();
  await loginAs(page, login, "correct horse battery");
});

await step("the platform administrator adds an organisation and its staff on the admin page", async () => {
  const p5 = await context.newPage();
  await loginAs(p5, "admin@demo.yizhan.local", DEMO_PASSWORD);
  await p5.goto(base + "/profile");
  await p5.click("#admin-link");
  await p5.waitForURL(base + "/admin");
  assert.match(await p5.textContent("#admin-cities"), /Hangzhou/);
  await p5.selectOption("#org-kind", "merchant");
  await p5.fill("#org-name", "Browser Noodle Bar");
  await p5.click("#org-submit");
  await p5.waitForSelector(".flash.ok");
  assert.match(await p5.textContent("#admin-cities"), /Browser Noodle Bar/);
  const org = await p5.$eval("#staff-org", (sel) => [...sel.options].find((o) => o.text === "Browser Noodle Bar").value);
  await p5.selectOption("#staff-org", org);
  await p5.fill("#staff-login", login);
  await p5.selectOption("#staff-role", "admin");
  await p5.click("#staff-submit");
  await p5.waitForSelector(".flash.ok");
  await p5.screenshot({ path: `${shots}/admin.png`, fullPage: true });
  await p5.close();
  const me = await api("POST", "/api/v1/auth/login", null, { login, password: "correct horse battery" });
  const profile = await api("GET", "/api/v1/me", me.body.token);
  assert.ok(profile.body.memberships.some((m) => m.org_name === "Browser Noodle Bar" && m.role === "admin"), JSON.stringify(profile.body));
  await loginAs(page, login, "correct horse battery");
});

// A valid GB 11643 number: weights, sum mod 11 into "10X98765432".
function idNumber(first17) {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...first17].reduce((acc, d, i) => acc + Number(d) * w[i], 0);
  return first17 + "10X98765432"[sum % 11];
}
const myNumber = idNumber(`33010619900307${String(Date.now()).slice(-3)}`);
const myPlate = `浙B${String(Date.now()).slice(-5)}`;

await step("verify my real name through the sandbox verifier, which says so, and bind a plate with its registration", async () => {
  await page.goto(base + "/profile");
  assert.match(await page.textContent("#rn-sandbox"), /Sandbox verifier: no authority was asked/);
  await page.fill("#rn-name", "不匹配");
  await page.fill("#rn-id", myNumber);
  await page.click("#rn-submit");
  await page.waitForSelector(".flash.error");
  assert.match(await page.textContent("#level"), /Not verified/);
  await page.fill("#rn-name", "Browser Tester");
  await page.fill("#rn-id", myNumber);
  await page.click("#rn-submit");
  await page.waitForSelector(".flash.ok");
  assert.match(await page.textContent("#level"), /Real name verified/);
  await page.fill("#vehicle-plate", myPlate);
  await page.fill("#vehicle-certificate", "330100000000");
  await page.click("#vehicle-submit");
  await page.waitForSelector(".flash.error");
  assert.ok(await page.isVisible("#vehicles-empty"));
  await page.fill("#vehicle-plate", myPlate);
  await page.fill("#vehicle-certificate", "330100000007");
  await page.click("#vehicle-submit");
  await page.waitForSelector(".flash.ok");
  assert.match(await page.textContent("#my-vehicles"), new RegExp(myPlate));
  await page.screenshot({ path: `${shots}/profile-verified.png`, fullPage: true });
});

await step("traffic-police staff verify me in person at the counter page, and my access log says so", async () => {
  const p6 = await context.newPage();
  await loginAs(p6, "police@demo.yizhan.local", DEMO_PASSWORD);
  await p6.goto(base + "/profile");
  await p6.click("#counter-link");
  await p6.waitForURL(base + "/counter");
  await p6.fill("#counter-login", login);
  await p6.fill("#counter-name", "Browser Tester");
  await p6.fill("#counter-id", myNumber);
  await p6.click("#counter-verify-submit");
  await p6.waitForSelector(".flash.ok");
  await p6.screenshot({ path: `${shots}/counter.png`, fullPage: true });
  await p6.close();
  await loginAs(page, login, "correct horse battery");
  await page.goto(base + "/profile");
  assert.match(await page.textContent("#level"), /in person/);
  await page.goto(base + "/access-log");
  assert.match(await page.textContent("#access-entries"), /Verification in person at a counter/);
});

await step("a large pay code charge waits on the customer's screen until they confirm it", async () => {
  const me = await api("POST", "/api/v1/auth/login", null, { login, password: "correct horse battery" });
  const top = await fetch(base + "/api/v1/wallet/topup", { method: "POST", headers: { "content-type": "application/json",
    authorization: `Bearer ${me.body.token}`, "idempotency-key": `browser-big-${login}` }, body: JSON.stringify({ amount: 60000 }) });
  assert.equal(top.status, 201);
  const cashier = await api("POST", "/api/v1/auth/login", null, { login: "teahouse@demo.yizhan.local", password: DEMO_PASSWORD });
  const staff = await api("GET", "/api/v1/me", cashier.body.token);
  const org = staff.body.memberships[0].org_id;
  await page.goto(base + "/wallet/paycode");
  const code = (await page.textContent("#paycode-digits")).trim();
  const charge = () => fetch(base + "/api/v1/merchant/charge", { method: "POST", headers: { "content-type": "application/json",
    authorization: `Bearer ${cashier.body.token}`, "idempotency-key": `browser-till-${login}` },
    body: JSON.stringify({ org_id: org, code, amount: 60000 }) });
  const first = await charge();
  assert.equal(first.status, 202);
  // The page's script sees the charge and shows the question.
  await page.waitForURL(/\/wallet\/paycode\/[0-9a-f]{32}$/, { timeout: 10000 });
  assert.ok(!page.url().includes(code), "the digits are not in the address");
  assert.match(await page.textContent("#paycode-question"), /Pay ¥600\.00 to West Lake Tea House/);
  await page.screenshot({ path: `${shots}/paycode-confirm.png`, fullPage: true });
  await page.click("#paycode-confirm");
  await page.waitForSelector("#paycode-paid");
  const done = await charge();
  assert.equal(done.status, 201);
});

await step("switch to Chinese", async () => {
  await page.goto(base + "/home");
  await page.click("#lang-switch");
  await page.waitForURL(base + "/home");
  assert.match(await page.textContent("#greeting"), /你好/);
  await page.screenshot({ path: `${shots}/home-zh.png`, fullPage: true });
});

// Each file in flows/ is one more flow (a room's own screens), run in name
// order after the steps above: `export default async function (t)` where t
// holds { base, shots, page, context, browser, step, api, loginAs, assert,
// DEMO_PASSWORD, login, data, outbox, codeFor }.
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";
const flowsDir = join(dirname(fileURLToPath(import.meta.url)), "flows");
const t = { base, shots, page, context, browser, step, api, loginAs, assert, DEMO_PASSWORD, login,
            data: process.env.YIZHAN_DATA_DIR, outbox, codeFor, setupUrl: process.env.YIZHAN_SETUP_URL };
// FLOWS=40 (or FLOWS=30,40): only the flows whose file name starts with one of these.
const only = (process.env.FLOWS || "").split(",").map((x) => x.trim()).filter(Boolean);
for (const f of readdirSync(flowsDir).filter((f) => f.endsWith(".mjs")).sort()) {
  if (only.length && !only.some((x) => f.startsWith(x))) continue;
  const flow = await import(pathToFileURL(join(flowsDir, f)).href);
  await flow.default(t);
}

await browser.close();
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
