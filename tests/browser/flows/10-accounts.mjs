// Accounts people can trust: log out and recover the password with a code
// from the sandbox outbox, end another session on the devices page, and turn
// on a second factor as a staff member (the TOTP computed here, RFC 6238 with
// node:crypto), log in with a recovery code, then turn it off again so the
// demo's staff login stays as it was.
import { createHmac } from "node:crypto";

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s.replace(/[\s=]/g, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/// RFC 6238: HMAC-SHA-1 over the 30-second step, dynamic truncation, 6 digits.
function totp(secret, nowMs = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 30000)));
  const h = createHmac("sha1", secret).update(counter).digest();
  const o = h[19] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1000000).padStart(6, "0");
}

export default async function (t) {
  const { base, page, step, api, loginAs, assert, DEMO_PASSWORD, login, codeFor, browser, shots } = t;
  const password = "correct horse battery";

  await step("log out, then recover the password with a code sent to the phone", async () => {
    await page.goto(base + "/home");
    await page.click("#logout");
    await page.waitForURL(base + "/");
    await page.goto(base + "/login");
    await page.click("#forgot-link");
    await page.waitForURL(base + "/forgot-password");
    await page.fill("#forgot-login", login);
    await page.click("#forgot-submit");
    await page.waitForSelector("#reset-code");
    // The same password again, so the flows after this one can still log in.
    await page.fill("#reset-code", codeFor(login));
    await page.fill("#reset-password", password);
    await page.click("#reset-submit");
    await page.waitForSelector("#login");
    await loginAs(page, login, password);
    await page.screenshot({ path: `${shots}/after-reset.png`, fullPage: true });
  });

  await step("end another session on the devices page", async () => {
    const other = await api("POST", "/api/v1/auth/login", null, { login, password });
    assert.equal(other.status, 200);
    assert.equal((await api("GET", "/api/v1/me", other.body.token)).status, 200);
    await page.goto(base + "/account/devices");
    assert.ok((await page.$$("#sessions li")).length >= 2, "this session and the other one are listed");
    // Sign out the other sessions one by one from the page, until the API's one has ended.
    for (let i = 0; i < 10 && (await api("GET", "/api/v1/me", other.body.token)).status === 200; i++) {
      let button = null;
      for (const row of await page.$$("#sessions li")) {
        if (!(await row.$("#session-current"))) { button = await row.$("button"); break; }
      }
      assert.ok(button, "another session is listed");
      await button.click();
      await page.waitForSelector("#sessions");
    }
    assert.equal((await api("GET", "/api/v1/me", other.body.token)).status, 401);
    assert.equal((await api("GET", "/api/v1/me", (await api("POST", "/api/v1/auth/login", null, { login, password })).body.token)).status, 200);
  });

  await step("a staff member turns on the second factor, logs in with a recovery code, turns it off", async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" });
    const p = await ctx.newPage();
    const staff = "clinic@demo.yizhan.local";
    await loginAs(p, staff, DEMO_PASSWORD);
    await p.goto(base + "/account/totp");
    await p.click("#totp-start");
    await p.waitForSelector("#totp-secret");
    const secret = base32(await p.textContent("#totp-secret"));
    assert.match(await p.textContent("#totp-uri"), /^otpauth:\/\/totp\/yizhan:/);
    await p.fill("#totp-code", totp(secret));
    await p.click("#totp-confirm");
    await p.waitForSelector("#recovery-codes");
    const recovery = await p.$$eval("#recovery-codes code", (cs) => cs.map((c) => c.textContent));
    assert.equal(recovery.length, 10);
    assert.ok(await p.isVisible("#totp-on"));
    await p.screenshot({ path: `${shots}/totp-on.png`, fullPage: true });

    await p.click("#logout");
    await p.waitForURL(base + "/");
    const without = await api("POST", "/api/v1/auth/login", null, { login: staff, password: DEMO_PASSWORD });
    assert.equal(without.status, 401);
    assert.equal(without.body.code, "totp_required");
    await p.goto(base + "/login");
    await p.fill("#login", staff);
    await p.fill("#password", DEMO_PASSWORD);
    await p.fill("#totp", recovery[0]);
    await p.click("#submit");
    await p.waitForURL(base + "/home");

    await p.goto(base + "/account/totp");
    await p.fill("#totp-off-password", DEMO_PASSWORD);
    await p.fill("#totp-off-code", recovery[1]);
    await p.click("#totp-off");
    await p.waitForSelector("#totp-start");
    const back = await api("POST", "/api/v1/auth/login", null, { login: staff, password: DEMO_PASSWORD });
    assert.equal(back.status, 200);
    await ctx.close();
  });
}
