// A confirmed payment with the payment PIN: a person sets a PIN in the
// wallet's settings, pays a person's code (the name masked on the preview
// and on the confirmation), a wrong PIN moves nothing, the right one pays
// once and lands on the transfer's page (a reload posts nothing). Then the
// first start: a second, fresh server printed a setup link; the operator
// opens it in Chinese, creates the first administrator and city, logs in as
// that administrator; the link then refuses.
export default async function (t) {
  const { base, shots, browser, step, api, loginAs, assert, DEMO_PASSWORD, login, setupUrl } = t;
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const password = "correct horse battery";
  const PIN = "274951";

  await step("a payment to a scanned code is confirmed with the payment PIN; a wrong PIN moves nothing", async () => {
    const ctx = await browser.newContext({ ...phone, locale: "en-US" });
    const p = await ctx.newPage();
    await loginAs(p, login, password);
    await p.goto(base + "/wallet/settings");
    await p.fill("#pin-password", password);
    await p.fill("#pin-new", PIN);
    await p.fill("#pin-again", PIN);
    await p.click("#pin-submit");
    await p.waitForURL(base + "/wallet/settings?done=saved");
    assert.match(await p.textContent(".flash.ok"), /Payment PIN saved/);

    const wang = await api("POST", "/api/v1/auth/login", null, { login: "13800000002", password: DEMO_PASSWORD });
    const qr = await api("GET", "/api/v1/qr/me", wang.body.token);
    const before = (await api("GET", "/api/v1/wallet", wang.body.token)).body.balance;
    await p.goto(base + "/wallet/pay");
    await p.fill("#payload", qr.body.payload);
    await p.click("#preview-submit");
    await p.waitForSelector("#payee-name");
    assert.match(await p.textContent("#payee-name"), /^\*+\S$/u);
    await p.fill("#pay-amount", "0.50");
    await p.click("#pay-next");
    await p.waitForSelector("#confirm-pin");
    assert.match(await p.textContent("#check-payee"), /^\*+\S$/u);
    assert.match(await p.textContent("#check-amount"), /¥0\.50/);
    assert.match(await p.textContent("#check-fee"), /¥0\.00/);
    await p.screenshot({ path: `${shots}/pay-confirm-pin.png`, fullPage: true });
    await p.fill("#confirm-pin", "111112");
    await p.click("#confirm-submit");
    await p.waitForSelector(".flash.error");
    assert.match(await p.textContent(".flash.error"), /PIN/);
    assert.equal((await api("GET", "/api/v1/wallet", wang.body.token)).body.balance, before, "a wrong PIN moved nothing");

    // The form again, with the right PIN.
    await p.click("#pay-next");
    await p.waitForSelector("#confirm-pin");
    await p.fill("#confirm-pin", PIN);
    await p.click("#confirm-submit");
    await p.waitForURL(/\/wallet\/history\/[^/?]+\?done=1$/);
    assert.match(await p.textContent(".flash.ok"), /Paid ¥0\.50/);
    await p.reload();
    assert.ok(await p.isVisible("#receipt"));
    assert.equal((await api("GET", "/api/v1/wallet", wang.body.token)).body.balance, before + 50, "paid once");
    await p.screenshot({ path: `${shots}/pay-done.png`, fullPage: true });

    // The history row opens the same page.
    const href = new URL(p.url()).pathname;
    await p.goto(base + "/wallet/history?type=qr");
    await p.click(`#history a[href="${href}"]`);
    await p.waitForURL(base + href);

    // The PIN is removed again, so later flows pay without one.
    await p.goto(base + "/wallet/settings");
    await p.fill("#pin-remove-password", password);
    await p.click("#pin-remove");
    await p.waitForURL(base + "/wallet/settings?done=removed");
    await ctx.close();
  });

  await step("the first start's setup link creates the first administrator and city, once", async () => {
    assert.ok(setupUrl, "run.sh passes the link a fresh server printed");
    const origin = new URL(setupUrl).origin;
    const ctx = await browser.newContext({ ...phone, locale: "zh-CN" });
    const p = await ctx.newPage();
    await p.goto(setupUrl);
    assert.match(await p.textContent("h1"), /设置驿站/);
    await p.fill("#setup-login", "ops@first.example");
    await p.fill("#setup-password", "first start pass 1");
    await p.fill("#setup-name", "运维 Ops");
    await p.fill("#setup-city", "宁波 Ningbo");
    await p.screenshot({ path: `${shots}/setup-zh.png`, fullPage: true });
    await p.click("#setup-submit");
    await p.waitForURL(origin + "/setup/done");
    assert.ok(await p.isVisible("#setup-done"));
    await p.click("#setup-login-link");
    await p.fill("#login", "ops@first.example");
    await p.fill("#password", "first start pass 1");
    await p.click("#submit");
    await p.waitForURL(origin + "/home");
    await p.goto(origin + "/admin");
    assert.match(await p.textContent("#admin-cities"), /宁波 Ningbo/);
    // The link was used: it opens nothing now.
    const again = await p.goto(setupUrl);
    assert.equal(again.status(), 409);
    await ctx.close();
  });
}
