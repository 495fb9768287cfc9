// The credit score: a demo resident sees the gauge, the history chart and the
// reasons (in English and in Chinese), contests a record on the records page
// and sees it frozen with its step, then opts out (the data deleted, the perks
// that ended named) and opts in again from nothing.
export default async function (t) {
  const { base, browser, step, loginAs, assert, DEMO_PASSWORD, shots } = t;
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const who = "credit-fair@demo.yizhan.local";

  await step("credit: the gauge, the history and the reasons, in English", async () => {
    const p = await (await browser.newContext({ ...phone, locale: "en-US" })).newPage();
    await loginAs(p, who, DEMO_PASSWORD);
    await p.goto(base + "/credit");
    await p.waitForSelector("#credit-score svg");
    const score = Number((await p.textContent("#credit-value")).trim());
    assert.ok(score >= 350 && score <= 950, `a score in range: ${score}`);
    assert.ok((await p.$$("#credit-reasons li")).length >= 1, "at least one reason");
    assert.ok((await p.$$("#credit-reasons li")).length <= 4, "at most four reasons");
    assert.match(await p.textContent("#credit-reasons"), /late/);
    assert.ok(await p.isVisible("#credit-consents"), "the optional sources section");
    await p.screenshot({ path: `${shots}/credit-en.png`, fullPage: true });
    await p.context().close();
  });

  await step("credit: the same page in Chinese", async () => {
    const p = await (await browser.newContext({ ...phone, locale: "zh-CN" })).newPage();
    await loginAs(p, who, DEMO_PASSWORD);
    await p.goto(base + "/credit");
    await p.waitForSelector("#credit-score svg");
    assert.match(await p.textContent("h1"), /信用/);
    assert.match(await p.textContent("#credit-reasons"), /逾期/);
    await p.screenshot({ path: `${shots}/credit-zh.png`, fullPage: true });
    await p.context().close();
  });

  await step("credit: contest a record, then opt out and in again", async () => {
    const p = await (await browser.newContext({ ...phone, locale: "en-US" })).newPage();
    await loginAs(p, who, DEMO_PASSWORD);
    await p.goto(base + "/credit");
    const before = Number((await p.textContent("#credit-value")).trim());
    await p.click("#credit-records-link");
    await p.waitForURL(base + "/credit/records");
    const record = p.locator("#credit-records li", { has: p.locator("button.contest") }).first();
    const id = await record.getAttribute("id");
    await record.locator("input[name=reason]").fill("I paid at the counter on time");
    await record.locator("button.contest").click();
    await p.waitForURL(/\/credit\/records/);
    const after = await p.textContent(`#${id}`);
    assert.match(after, /Contested on/);
    assert.match(after, /Water/);
    await p.goto(base + "/credit");
    const now = Number((await p.textContent("#credit-value")).trim());
    assert.ok(now >= before, `a frozen record never lowers the score (${before} -> ${now})`);

    await p.click("#credit-opt-out");
    await p.waitForSelector("#credit-opt-in");
    assert.ok(await p.isVisible("#credit-intro"), "the score is gone");
    await p.click("#credit-opt-in");
    await p.waitForSelector("#credit-score svg");
    assert.equal((await p.textContent("#credit-value")).trim(), "600");
    await p.goto(base + "/credit/records");
    assert.ok(await p.isVisible("#credit-records-empty"), "no record left after opting out");
    await p.context().close();
  });
}
