// The credit score on a phone, in Chinese and in English: a resident who has
// not opted in turns it on and sees the score, its band, the gauge and the
// history chart (SVG drawn on the server), the five factor groups with their
// points against the maximum and the records behind them, the reasons in
// plain words and what would raise the score; turns an optional source on
// and off; a resident with a late bill contests it and the water company's
// clerk corrects it on the staff page (the resident sees every step and is
// told); a hospital checks perks and the checks are in the person's access
// log; a pay-later statement is repaid; and opting out deletes the score and
// names the perks that ended. Every page is checked for page errors, console
// errors (a style or script the CSP refused), untranslated keys, English on
// a Chinese page and a layout wider than the phone.
export default async function (t) {
  const { base, shots, browser, step, api, loginAs, assert, DEMO_PASSWORD } = t;
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const errors = [];
  async function open(locale) {
    const ctx = await browser.newContext({ ...phone, locale });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => errors.push(`${locale} page error: ${e.message}`));
    p.on("console", (m) => { if (m.type() === "error") errors.push(`${locale} console: ${m.text()} (${p.url()})`); });
    return p;
  }
  // Words allowed in Latin letters on a Chinese page: the demo organisations' own names and the model's version.
  const latinOk = new Set(["Hangzhou", "Water", "First", "People", "Hospital", "Clerk", "Gao", "Chen", "Intermediate", "Court"]);
  async function checkPage(p, lang) {
    assert.deepEqual(errors.splice(0), [], "no page or console error");
    // What people wrote (a contest's reason) and an organisation's own reference are theirs, not the product's.
    const text = await p.$eval("main", (m) => {
      const c = m.cloneNode(true);
      c.querySelectorAll(".user-text, .ref").forEach((e) => e.remove());
      document.body.appendChild(c);
      const out = c.innerText;
      c.remove();
      return out;
    });
    assert.doesNotMatch(text, /\b(credit|access|error|paylater)\.[a-z_.]+/, `an untranslated key on ${p.url()}`);
    if (lang === "zh") {
      const latin = (text.match(/[A-Za-z]{3,}/g) || []).filter((w) => !latinOk.has(w));
      assert.deepEqual(latin, [], `English on the Chinese page ${p.url()}`);
      assert.doesNotMatch(text, /[\u4e00-\u9fff] ?[(:]|[:)] ?[\u4e00-\u9fff]/u, `Latin punctuation beside Chinese on ${p.url()}`);
    }
    const wide = await p.evaluate(() => {
      const w = window.innerWidth;
      const out = [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > w + 0.5);
      return { scroll: document.documentElement.scrollWidth, w, out: out.slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`) };
    });
    assert.ok(wide.scroll <= wide.w && wide.out.length === 0, `wider than the phone on ${p.url()}: ${JSON.stringify(wide)}`);
  }
  async function score(p) {
    return Number((await p.textContent("#credit-value")).trim());
  }
  const token = async (login) => (await api("POST", "/api/v1/auth/login", null, { login, password: DEMO_PASSWORD })).body;

  // zh: Zhang Wei (verified, not opted in by the demo).
  const zh = await open("zh-CN");
  await step("credit (zh): a resident who has not opted in sees nothing computed, then turns the score on", async () => {
    await loginAs(zh, "13800000003", DEMO_PASSWORD);
    await zh.click("#services a[data-service=credit]");
    await zh.waitForURL(base + "/credit");
    assert.match(await zh.textContent("#credit-intro"), /信用评分在你开启前不会计算/);
    assert.ok(!(await zh.isVisible("#credit-gauge")), "no score before opt-in");
    await checkPage(zh, "zh");
    await zh.click("#credit-opt-in");
    await zh.waitForSelector("#credit-gauge");
    // The gauge and the history chart are pictures drawn on the server.
    assert.equal(await zh.$eval("#credit-gauge", (e) => e.tagName.toLowerCase()), "svg");
    assert.equal(await zh.$eval("#credit-history", (e) => e.tagName.toLowerCase()), "svg");
    const box = await zh.$eval("#credit-gauge", (s) => { const r = s.getBoundingClientRect(); return [r.width, r.height]; });
    assert.ok(box[0] > 150 && box[1] > 80, `gauge size ${box}`);
    assert.ok((await zh.$$("#credit-history circle")).length >= 1, "the first score is a dot on the chart");
    const s = await score(zh);
    assert.ok(s >= 600 && s <= 700, `first score ${s}`);
    assert.match(await zh.textContent("#credit-band"), /^(良好|优秀)$/);
    assert.equal((await zh.textContent("#credit-gauge text")).trim(), String(s));
    await checkPage(zh, "zh");
    await zh.screenshot({ path: `${shots}/credit-zh.png` });
    await zh.screenshot({ path: `${shots}/credit-zh-full.png`, fullPage: true });
  });

  await step("credit (zh): five factor groups with points, maximum and weight; reasons and what would raise it", async () => {
    const groups = await zh.$$eval("#credit-factors > li", (li) => li.map((g) => ({
      id: g.id, name: g.querySelector("strong").textContent, points: g.querySelector(".group-points").textContent,
      chars: [...g.querySelectorAll(".chars li")].map((c) => c.textContent), link: g.querySelector("a.group-records")?.getAttribute("href") })));
    assert.deepEqual(groups.map((g) => g.name), ["信用历史", "履约能力", "行为偏好", "身份特质", "人脉关系"]);
    const weights = groups.map((g) => Number(g.points.match(/占评分(\d+)%/)[1]));
    assert.deepEqual(weights, [35, 25, 20, 15, 5]);
    for (const g of groups) {
      const [, pts, max] = g.points.match(/^(\d+)分，满分(\d+)分/);
      assert.ok(Number(pts) <= Number(max), g.points);
      assert.ok(g.chars.length >= 1 && g.chars.every((c) => /：当前\d+，得\d+分（满分\d+分）$/.test(c)), g.chars.join(" | "));
    }
    assert.match(groups[3].chars.join(), /实名认证等级：当前1/);
    assert.equal(groups[0].link, "/credit/records?group=history");
    assert.equal(groups[4].link, undefined, "connections: no record is behind it");
    const reasons = await zh.$$eval("#credit-reasons li", (li) => li.map((x) => x.textContent));
    assert.ok(reasons.length >= 1 && reasons.length <= 4, reasons.join(" | "));
    assert.ok(reasons.some((r) => /近24个月只有0笔账单按时缴纳/.test(r)), reasons.join(" | "));
    const plans = await zh.textContent("#credit-improve");
    assert.match(plans, /(达到|获得).+（\d+分）/);
    assert.match(plans, /（加\d+分）/);
    // An empty list of records behind a group, and the way back.
    await zh.click("#group-history a.group-records");
    await zh.waitForURL(base + "/credit/records?group=history");
    assert.match(await zh.textContent("#credit-records-group"), /信用历史的相关记录/);
    assert.match(await zh.textContent("#credit-records-empty"), /你的记录中没有计入此因素的/);
    await checkPage(zh, "zh");
    await zh.goto(base + "/credit");
  });

  await step("credit (zh): an optional source is used only while its consent is given", async () => {
    assert.match(await zh.textContent("#credit-consent-address-state"), /已核验住址（可选，需你同意）：未使用/);
    await zh.click("#credit-consent-address");
    await zh.waitForURL(/\/credit(#credit-consents)?$/);
    assert.match(await zh.textContent("#credit-consent-address-state"), /：已使用/);
    assert.match(await zh.textContent("#credit-consent-address"), /撤回同意/);
    assert.match(await zh.textContent("#credit-consent-education-state"), /：未使用/);
    await zh.click("#credit-consent-address");
    await zh.waitForSelector("#credit-consent-address-state");
    assert.match(await zh.textContent("#credit-consent-address-state"), /：未使用/);
    assert.match(await zh.textContent("#credit-consent-address"), /同意使用/);
    await zh.click("#credit-consent-education");
    await zh.waitForSelector("#credit-consent-education-state");
    assert.match(await zh.textContent("#credit-consent-education-state"), /：已使用/);
    await zh.click("#credit-consent-education");
    await zh.waitForSelector("#credit-consent-education-state");
    assert.match(await zh.textContent("#credit-consent-education-state"), /：未使用/);
    const me = await token("13800000003");
    const c = await api("GET", "/api/v1/credit/consents", me.token);
    assert.deepEqual(c.body, { address: false, education: false });
    await checkPage(zh, "zh");
  });

  await step("credit (zh): the perks page lists each perk, its score and which I have, and leads to the access log", async () => {
    assert.match(await zh.textContent("#credit-perks-link"), /你已享有8项权益中的\d项/);
    await zh.click("#credit-perks-link");
    await zh.waitForURL(base + "/credit/perks");
    const perks = await zh.$$eval("#credit-perks > li", (li) => li.map((x) => x.textContent.replace(/\s+/g, " ")));
    assert.equal(perks.length, 8);
    assert.match(perks[0], /免押金借书证.*需要550分.*已享有/);
    assert.match(perks[7], /产品试用.*需要750分.*尚未享有/);
    assert.match(await zh.textContent("#credit-perks-about"), /只得知是或否/);
    await checkPage(zh, "zh");
    await zh.screenshot({ path: `${shots}/credit-perks-zh.png`, fullPage: true });
    await zh.click("#credit-perk-checks");
    await zh.waitForURL(base + "/access-log");
  });

  // A contest: Zhou Min's bill paid 45 days late, reviewed by the water company's clerk.
  const fair = await open("zh-CN");
  const clerk = await open("zh-CN");
  let contested = null;
  await step("credit (zh): a resident sees the records behind a factor and contests a late bill; it stops counting", async () => {
    await loginAs(fair, "credit-fair@demo.yizhan.local", DEMO_PASSWORD);
    await fair.goto(base + "/credit");
    const before = await score(fair);
    assert.match(await fair.textContent("#credit-band"), /中等/);
    assert.match(await fair.textContent("#credit-reasons"), /近12个月中只有1个月有记录/);
    assert.match(await fair.textContent("#group-history"), /近12个月逾期超过30天的付款：当前1/);
    assert.match(await fair.textContent("#group-history a.group-records"), /相关记录：3条/);
    await checkPage(fair, "zh");
    await fair.click("#group-history a.group-records");
    await fair.waitForURL(base + "/credit/records?group=history");
    const rows = fair.locator("#credit-records > li");
    assert.equal(await rows.count(), 3);
    const late = fair.locator("#credit-records > li", { hasText: "逾期45天缴纳" });
    assert.match(await late.textContent(), /来自Hangzhou Water 杭州水务[\s\S]*计入评分/);
    contested = (await late.getAttribute("id")).replace(/^record-/, "");
    await checkPage(fair, "zh");
    // The form opens from the record (a phone shows one at a time).
    assert.ok(!(await late.locator("input[name=reason]").isVisible()));
    await late.locator("summary").click();
    await late.locator("input[name=reason]").fill("已在到期前于窗口缴纳，有收据");
    await late.locator("button.contest").click();
    await fair.waitForURL(new RegExp(`/credit/records#record-${contested}$`));
    const row = fair.locator(`#record-${contested}`);
    assert.match(await row.locator(".record-status").textContent(), /申诉中：不计入/);
    assert.match(await row.locator(".steps").textContent(), /提出申诉：由Hangzhou Water 杭州水务审核，审核期间不计入评分/);
    assert.equal(await row.locator("button.contest").count(), 0, "a contested record cannot be contested again");
    await checkPage(fair, "zh");
    await fair.screenshot({ path: `${shots}/credit-records-zh.png`, fullPage: true });
    await fair.goto(base + "/credit");
    const during = await score(fair);
    assert.ok(during > before, `frozen while reviewed: ${before} -> ${during}`);
    assert.match(await fair.textContent("#group-history"), /近12个月逾期超过30天的付款：当前0/);
  });

  await step("credit (zh): the water company's clerk finds the contest on the staff page and corrects the record", async () => {
    await loginAs(clerk, "water@demo.yizhan.local", DEMO_PASSWORD);
    await clerk.click("#services a[data-service=credit]");
    await clerk.waitForURL(base + "/credit");
    await clerk.click("#credit-staff-link");
    await clerk.waitForURL(base + "/credit/staff");
    const item = clerk.locator(`#contest-${contested}`);
    const text = await item.textContent();
    assert.match(text, /杭州水务[\s\S]*账单[\s\S]*逾期45天缴纳/);
    assert.match(text, /已在到期前于窗口缴纳，有收据/);
    // The demo's own contested record (the "good" resident's) waits here too.
    assert.ok((await clerk.$$("#credit-contests > li")).length >= 2);
    await checkPage(clerk, "zh");
    await clerk.screenshot({ path: `${shots}/credit-staff-zh.png`, fullPage: true });
    await item.locator("button[value=on_time]").click();
    await clerk.waitForURL(base + "/credit/staff?decided=corrected");
    assert.match(await clerk.textContent(".flash.ok"), /已作出结论：已更正。已通知本人。/);
    assert.equal(await clerk.locator(`#contest-${contested}`).count(), 0);
    await checkPage(clerk, "zh");
  });

  await step("credit (zh): the resident sees every step, the corrected record counting again, and is told", async () => {
    await fair.goto(base + "/credit/records");
    const row = fair.locator(`#record-${contested}`);
    assert.match(await row.textContent(), /账单 · 按时缴纳/);
    assert.match(await row.locator(".record-status").textContent(), /计入评分/);
    const steps = await row.locator(".steps li").allTextContents();
    assert.equal(steps.length, 2, steps.join(" | "));
    assert.match(steps[1], /由Clerk Gao 高办事员作出结论：已更正。/);
    await checkPage(fair, "zh");
    await fair.goto(base + "/inbox");
    const notice = fair.locator("main li", { hasText: "你的申诉已有结论" }).first();
    assert.match(await notice.textContent(), /结论：已更正。你现在的评分是\d+。/);
    // The notice's link opens the records page at that record.
    await notice.locator("a").click();
    await fair.waitForURL(new RegExp(`/credit/records#record-${contested}$`));
    // The clerk's read of the contested record is in the resident's access log.
    await fair.goto(base + "/access-log");
    const log = await fair.textContent("#access-entries");
    assert.match(log, /Clerk Gao 高办事员[\s\S]*被申诉的信用记录[\s\S]*审核你的申诉/);
    await fair.goto(base + "/credit");
    assert.doesNotMatch(await fair.textContent("#credit-reasons"), /逾期超过30天/);
  });

  // en: perks checked by a hospital, in the person's access log.
  const en = await open("en-US");
  await step("credit (en): a hospital checks two perks; the person's access log shows who asked, for what, and the answer", async () => {
    const staff = await token("clinic@demo.yizhan.local");
    const org = (await api("GET", "/api/v1/me", staff.token)).body.memberships[0].org_id;
    const sun = await token("credit-excellent@demo.yizhan.local");
    const ask = (perk) => api("POST", `/api/v1/orgs/${org}/credit/perk-checks`, staff.token, { user_id: sun.user_id, perk });
    const yes = await ask("wheelchair");
    assert.equal(yes.status, 200, JSON.stringify(yes.body));
    assert.deepEqual(yes.body, { granted: true }, "yes or no, never the score");
    const no = await ask("product_trials");
    assert.deepEqual(no.body, { granted: false });
    await loginAs(en, "credit-excellent@demo.yizhan.local", DEMO_PASSWORD);
    await en.goto(base + "/credit/perks");
    const perks = await en.$$eval("#credit-perks > li", (li) => li.map((x) => x.textContent.replace(/\s+/g, " ")));
    assert.match(perks.find((p) => /Wheelchair/.test(p)), /Needs 600.*You have it/);
    assert.match(perks.find((p) => /Product trials/.test(p)), /Needs 750.*Not yet/);
    await checkPage(en, "en");
    await en.click("#credit-perk-checks");
    await en.waitForURL(base + "/access-log");
    const entries = await en.$$eval("#access-entries > li", (li) => li.map((x) => x.textContent.replace(/\s+/g, " ")));
    assert.ok(entries.some((e) => /Dr\. Chen.*Hospital.*Credit perk check: wheelchair without deposit.*Answered: yes/.test(e)), entries.join("\n"));
    assert.ok(entries.some((e) => /Dr\. Chen.*Credit perk check: product trials.*Answered: no/.test(e)), entries.join("\n"));
    // The same in Chinese.
    const zhSun = await open("zh-CN");
    await loginAs(zhSun, "credit-excellent@demo.yizhan.local", DEMO_PASSWORD);
    await zhSun.goto(base + "/access-log");
    assert.match(await zhSun.textContent("#access-entries"), /信用权益查询：免押金轮椅[\s\S]*答复：是/);
    await zhSun.goto(base + "/credit");
    assert.match(await zhSun.textContent("#credit-band"), /极好/);
    await checkPage(zhSun, "zh");
    await zhSun.context().close();
  });

  await step("credit (en): the pay-later section shows the line and its statement, which is repaid from the card", async () => {
    await loginAs(en, "credit-paylater@demo.yizhan.local", DEMO_PASSWORD);
    await en.goto(base + "/credit");
    assert.match(await en.textContent("#credit-pay-later-summary"), /Limit ¥5,000\.00 \(your band allows ¥5,000\.00\), owed ¥128\.00, available ¥4,872\.00\./);
    const statements = en.locator("#credit-statements > li");
    assert.equal(await statements.count(), 1);
    assert.match(await statements.first().textContent(), /¥128\.00, due \d{4}-\d{2}-\d{2}/);
    assert.ok(await en.isVisible("#credit-pay-later-off"));
    await checkPage(en, "en");
    await statements.first().locator("button.repay").click();
    await en.waitForSelector("#credit-pay-later-summary");
    assert.match(await en.textContent("#credit-pay-later-summary"), /owed ¥0\.00, available ¥5,000\.00/);
    assert.match(await en.textContent("#credit-statements"), /¥128\.00, repaid \(0 days late\)/);
    assert.equal(await en.locator("#credit-statements button.repay").count(), 0);
    // Switched off and on again.
    await en.click("#credit-pay-later-off");
    await en.waitForSelector("#credit-pay-later-on");
    await en.click("#credit-pay-later-on");
    await en.waitForSelector("#credit-pay-later-off");
    await checkPage(en, "en");
    const zhLin = await open("zh-CN");
    await loginAs(zhLin, "credit-paylater@demo.yizhan.local", DEMO_PASSWORD);
    await zhLin.goto(base + "/credit");
    assert.match(await zhLin.textContent("#credit-pay-later-summary"), /额度¥5,000\.00（你的等级可用¥5,000\.00），待还¥0\.00/);
    assert.match(await zhLin.textContent("#credit-statements"), /¥128\.00，已还款/);
    await checkPage(zhLin, "zh");
    await zhLin.context().close();
  });

  await step("credit (en): a new resident opts in, reads the score in English, then opts out and is told which perks ended", async () => {
    const wang = await open("en-US");
    await loginAs(wang, "13800000002", DEMO_PASSWORD);
    await wang.goto(base + "/credit");
    assert.match(await wang.textContent("#credit-intro"), /Your credit score is off until you turn it on/);
    await wang.click("#credit-opt-in");
    await wang.waitForSelector("#credit-gauge");
    assert.equal(await score(wang), 600);
    assert.equal((await wang.textContent("#credit-band")).trim(), "Good");
    const points = await wang.$$eval("#credit-factors .group-points", (d) => d.map((x) => x.textContent));
    assert.match(points[0], /^\d+ of 210 points \(35% of the score\)$/);
    assert.equal(points.length, 5);
    assert.match(await wang.textContent("#credit-reasons"), /Real-name verification at level 0 of 2/);
    assert.match(await wang.textContent("#credit-improve"), /To reach Very good \(650\)[\s\S]*\(\+\d+ points\)/);
    assert.match(await wang.textContent("#credit-perks-link"), /You have 2 of 8 perks/);
    await checkPage(wang, "en");
    await wang.screenshot({ path: `${shots}/credit-en.png` });
    // First what would be deleted and which perks would end; "keep it" changes nothing.
    await wang.click("#credit-opt-out");
    await wang.waitForURL(/\/credit\/opt-out\??$/);
    assert.deepEqual(await wang.$$eval("#credit-opt-out-perks li", (li) => li.map((x) => x.textContent)),
      ["Library card without deposit", "Wheelchair at a hospital without deposit"]);
    await checkPage(wang, "en");
    await wang.click("#credit-opt-out-cancel");
    await wang.waitForURL(base + "/credit");
    assert.equal(await score(wang), 600);
    await wang.click("#credit-opt-out");
    await wang.waitForURL(/\/credit\/opt-out\??$/);
    await wang.click("#credit-opt-out-confirm");
    await wang.waitForURL(/\/credit\?ended=/);
    assert.match(await wang.textContent("#credit-ended"), /Your credit score and all its data were deleted/);
    const ended = await wang.$$eval("#credit-ended li", (li) => li.map((x) => x.textContent));
    assert.deepEqual(ended, ["Library card without deposit", "Wheelchair at a hospital without deposit"]);
    assert.ok(await wang.isVisible("#credit-opt-in"), "off again: the intro and the button");
    assert.ok(!(await wang.isVisible("#credit-gauge")));
    await checkPage(wang, "en");
    const me = await token("13800000002");
    const gone = await api("GET", "/api/v1/credit/score", me.token);
    assert.equal(gone.status, 409);
    assert.equal(gone.body.code, "credit_not_opted_in");
    await wang.goto(base + "/inbox");
    assert.match(await wang.textContent("main"), /Credit score turned off[\s\S]*2 perks ended/);
    await wang.goto(base + "/credit/perks");
    assert.match(await wang.textContent("#credit-perks-off"), /not turned on/);
    assert.equal(await wang.locator("#credit-perks .perk-has").count(), 0);
    await wang.context().close();
  });

  await step("credit (zh): opting out deletes the score and names the perks that ended, in Chinese", async () => {
    await zh.goto(base + "/credit");
    await zh.click("#credit-opt-out");
    await zh.waitForURL(/\/credit\/opt-out\??$/);
    assert.match(await zh.textContent("#credit-opt-out-what"), /你的评分、历史、记录和申诉将被删除[\s\S]*以下权益将随之终止/);
    assert.ok((await zh.$$eval("#credit-opt-out-perks li", (li) => li.map((x) => x.textContent))).includes("免押金借书证"));
    await checkPage(zh, "zh");
    await zh.screenshot({ path: `${shots}/credit-opt-out-zh.png` });
    await zh.click("#credit-opt-out-confirm");
    await zh.waitForURL(/\/credit\?ended=/);
    assert.match(await zh.textContent("#credit-ended"), /你的信用评分及全部数据已删除。/);
    const ended = await zh.$$eval("#credit-ended li", (li) => li.map((x) => x.textContent));
    assert.ok(ended.includes("免押金借书证") && ended.includes("医院免押金借用轮椅"), ended.join(","));
    assert.ok(await zh.isVisible("#credit-opt-in"));
    await checkPage(zh, "zh");
    await zh.goto(base + "/inbox");
    assert.match(await zh.textContent("main"), /信用评分已关闭[\s\S]*项权益已终止/);
    const me = await token("13800000003");
    assert.equal((await api("GET", "/api/v1/credit/records", me.token)).status, 409);
  });

  for (const p of [zh, fair, clerk, en]) await p.context().close();
}
