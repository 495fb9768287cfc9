// The wallet's staff screens on a phone: the tea house's cashier finds their
// tools from the home screen, charges a customer's pay code at the till (the
// customer's page shows the payment), sees it arrive on the receiving page
// and another one arrive live; a resident reads the shop's QR code from a
// photo with the bundled decoder; traffic police issue a fine from their bills
// page and see it paid once the resident pays it. In both languages.
export default async function (t) {
  const { base, shots, browser, step, api, loginAs, assert, DEMO_PASSWORD } = t;
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const cashierCtx = await browser.newContext({ ...phone, locale: "en-US" });
  const customerCtx = await browser.newContext({ ...phone, locale: "en-US" });
  const till = await cashierCtx.newPage();
  const customer = await customerCtx.newPage();
  const staff = await api("POST", "/api/v1/auth/login", null, { login: "teahouse@demo.yizhan.local", password: DEMO_PASSWORD });
  const org = (await api("GET", "/api/v1/me", staff.body.token)).body.memberships[0].org_id;

  await step("a cashier finds the till from the home screen and charges a customer's pay code", async () => {
    await loginAs(till, "teahouse@demo.yizhan.local", DEMO_PASSWORD);
    await till.click("#home-work");
    await till.waitForURL(base + "/wallet/staff");
    await till.screenshot({ path: `${shots}/staff.png`, fullPage: true });
    await till.click(`a[href="/wallet/orgs/${org}/cashier"]`);
    await till.waitForURL(base + `/wallet/orgs/${org}/cashier`);
    // Without a camera decoder the scan button stays hidden (the hidden attribute wins over the button style).
    const scanShown = await till.isVisible("#cashier-scan");
    const canScan = await till.evaluate(() => "BarcodeDetector" in window || !!window.jsQR);
    assert.equal(scanShown, canScan);

    await loginAs(customer, "13800000001", DEMO_PASSWORD);
    await customer.goto(base + "/wallet/paycode");
    const code = (await customer.textContent("#paycode-digits")).replace(/\D/g, "");
    assert.equal(code.length, 18, code);
    await till.fill("#cashier-amount", "12.50");
    await till.fill("#cashier-code", code);
    await till.screenshot({ path: `${shots}/cashier.png`, fullPage: true });
    await till.click("#cashier-charge");
    await till.waitForURL(new RegExp(`/wallet/orgs/${org}/cashier/web-[0-9a-f]+$`));
    assert.ok(await till.isVisible("#till-paid"));
    assert.match(await till.textContent("#till-result"), /¥12\.50/);
    await till.screenshot({ path: `${shots}/cashier-paid.png`, fullPage: true });
    // A reload shows the same answer and charges nothing more (post/redirect/get).
    await till.reload();
    assert.ok(await till.isVisible("#till-paid"));
    // The customer's page moves on to the payment by itself.
    await customer.waitForSelector("#paycode-paid", { timeout: 10000 });
    assert.match(await customer.textContent("#paycode-paid"), /12\.50/);
  });

  await step("the shop's receiving page shows the code and payments arriving while it is open", async () => {
    await till.goto(base + `/wallet/orgs/${org}/receive`);
    assert.ok(await till.isVisible("#shop-qr svg"));
    assert.match(await till.textContent("#received"), /12\.50/);
    const before = await till.$$eval("#received li", (l) => l.length);
    await customer.goto(base + "/wallet/paycode");
    const code = (await customer.textContent("#paycode-digits")).replace(/\D/g, "");
    const r = await fetch(base + "/api/v1/merchant/charge", { method: "POST", headers: { "content-type": "application/json",
      authorization: `Bearer ${staff.body.token}`, "idempotency-key": `flow20-${Date.now()}` },
      body: JSON.stringify({ org_id: org, code, amount: 3300 }) });
    assert.equal(r.status, 201);
    await till.waitForFunction((n) => document.querySelectorAll("#received li").length > n, before, { timeout: 10000 });
    assert.match(await till.textContent("#received li:first-child"), /33\.00/);
    await till.fill("#receive-amount", "8.80");
    await till.click("#receive-set-amount");
    assert.match(await till.textContent("#receive-fixed"), /8\.80/);
    await till.screenshot({ path: `${shots}/receive.png`, fullPage: true });
  });

  await step("a resident picks a photo of the shop's QR code; the bundled decoder reads it", async () => {
    const png = await fetch(base + `/api/v1/orgs/${org}/qr?format=png`, { headers: { authorization: `Bearer ${staff.body.token}` } });
    assert.equal(png.status, 200);
    const file = `${shots}/shop-qr-input.png`;
    const { writeFileSync } = await import("node:fs");
    writeFileSync(file, Buffer.from(await png.arrayBuffer()));
    await customer.goto(base + "/wallet/pay");
    // Chromium on Linux has no BarcodeDetector: the photo button shows once jsQR has loaded.
    await customer.waitForSelector("#scan-photo", { state: "visible", timeout: 10000 });
    await customer.setInputFiles("#scan-photo input", file);
    await customer.waitForSelector("#preview", { timeout: 10000 });
    assert.match(await customer.textContent("#payee-name"), /West Lake Tea House/);
  });

  await step("traffic police issue a fine by identity number; the resident pays it; the page says paid", async () => {
    const policeCtx = await browser.newContext({ ...phone, locale: "zh-CN" });
    const police = await policeCtx.newPage();
    const p = await api("POST", "/api/v1/auth/login", null, { login: "police@demo.yizhan.local", password: DEMO_PASSWORD });
    const dept = (await api("GET", "/api/v1/me", p.body.token)).body.memberships[0].org_id;
    await loginAs(police, "police@demo.yizhan.local", DEMO_PASSWORD);
    await police.goto(base + "/wallet/staff");
    await police.click(`a[href="/wallet/orgs/${dept}/bills"]`);
    await police.selectOption("#issue-by", "id_number");
    await police.fill("#issue-to", "11010519491231002X");
    await police.selectOption("#issue-kind", "fine");
    await police.fill("#issue-amount", "150");
    const due = new Date(Date.now() + 10 * 86400000).toISOString().slice(0, 10);
    await police.fill("#issue-due", due);
    await police.fill("#issue-description", "违停 Parking on Nanshan Road");
    await police.click("#issue-submit");
    await police.waitForURL(/\/bills\?issued=[0-9a-f]+$/);
    const bill = new URL(police.url()).searchParams.get("issued");
    assert.equal(await police.getAttribute(`#issued-${bill}`, "data-standing"), "open");
    await police.screenshot({ path: `${shots}/org-bills-zh.png`, fullPage: true });

    await customer.goto(base + "/bills");
    await customer.click(`#bill-${bill} .pay-bill`);
    await customer.waitForSelector("#confirm-form");
    await customer.click("#confirm-submit");
    await customer.waitForSelector("#receipt");
    await police.reload();
    assert.equal(await police.getAttribute(`#issued-${bill}`, "data-standing"), "paid");
    await policeCtx.close();
  });

  await step("setting the city asks first; saying no changes nothing", async () => {
    await customer.goto(base + "/profile");
    let asked = "";
    customer.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
    await customer.click('form[action="/profile/city"] button[type=submit]');
    await customer.waitForTimeout(300);
    assert.match(asked, /Make this your city\?/);
    assert.equal(new URL(customer.url()).pathname, "/profile");
  });

  await step("the staff screens in Chinese", async () => {
    await till.goto(base + "/wallet/staff");
    await till.click("#lang-switch");
    await till.waitForURL(base + "/wallet/staff");
    assert.match(await till.textContent("h1"), /我的工作/);
    await till.screenshot({ path: `${shots}/staff-zh.png`, fullPage: true });
    await till.goto(base + `/wallet/orgs/${org}/receive`);
    assert.match(await till.textContent("#receive-count"), /今日\d+笔收款/);
    await till.screenshot({ path: `${shots}/receive-zh.png`, fullPage: true });
  });

  await cashierCtx.close();
  await customerCtx.close();
}
