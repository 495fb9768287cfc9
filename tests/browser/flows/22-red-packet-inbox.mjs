// A red packet to one person, as the receiver meets it: the notice in the
// inbox opens the packet, the packet is opened, and it is listed among the
// received ones. On a phone, in Chinese for the receiver.
export default async function (t) {
  const { base, shots, browser, step, loginAs, assert, DEMO_PASSWORD } = t;
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

  await step("a red packet to one person is opened from the notice in their inbox", async () => {
    const senderCtx = await browser.newContext({ ...phone, locale: "en-US" });
    const sender = await senderCtx.newPage();
    await loginAs(sender, "13800000001", DEMO_PASSWORD);
    await sender.goto(base + "/red-packets");
    await sender.fill("#packet-to", "13800000002");
    await sender.fill("#packet-count", "1");
    await sender.fill("#packet-amount", "6.66");
    await sender.fill("#packet-greeting", "For the inbox test");
    await sender.click("#packet-submit");
    await sender.waitForURL(/\/red-packets\/[0-9a-f]+$/);
    const packetPath = new URL(sender.url()).pathname;
    await senderCtx.close();

    const receiverCtx = await browser.newContext({ ...phone, locale: "zh-CN" });
    const receiver = await receiverCtx.newPage();
    await loginAs(receiver, "13800000002", DEMO_PASSWORD);
    await receiver.goto(base + "/inbox");
    const notice = receiver.locator(`#inbox a[href="${packetPath}"]`).first();
    assert.ok(await notice.isVisible(), `the inbox links ${packetPath}`);
    await receiver.screenshot({ path: `${shots}/inbox-red-packet.png`, fullPage: true });
    await notice.click();
    await receiver.waitForURL(base + packetPath);
    assert.match(await receiver.textContent("#packet-greeting"), /For the inbox test/);
    await receiver.click("#claim");
    await receiver.waitForSelector("#my-share");
    assert.match(await receiver.textContent("#my-share"), /6\.66/);
    await receiver.goto(base + "/red-packets");
    assert.ok(await receiver.isVisible(`#packets-received a[href="${packetPath}"]`), "listed as received");
    await receiverCtx.close();
  });
}
