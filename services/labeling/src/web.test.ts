import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { WebSession } from "@rlhf/labeling-client";
import { checkDataFile } from "@rlhf/data";
import { startTestApp } from "./testing/app";
import { launchBrowser } from "./testing/browser";

const SCRIPT = "<script>window.__pwned = 1</script><b>bold?</b>";

/** Texts of the response cards, top to bottom. */
const order = (page: Page) => page.locator("li.card pre.response-text").allTextContents();
const card = (page: Page, text: string) => page.locator("li.card", { has: page.locator("pre.response-text", { hasText: text }) });

test("a labeler ranks in a real browser by mouse and by keyboard; the export holds exactly those rankings; model text stays text", async () => {
  const t = await startTestApp("sqlite");
  const browser = await launchBrowser();
  const dir = mkdtempSync(join(tmpdir(), "labeling-web-"));
  try {
    await t.app.store.submitBatch({
      batchId: "web",
      overlapFraction: 0,
      source: "browser test",
      comparisons: [
        { key: "mouse", prompt: "List the animals: a cat, a dog.", responses: ["alpha", "beta", `gamma ${SCRIPT}`] },
        { key: "keys", prompt: "Count to four.", responses: ["one", "two", "three", "four"] },
      ],
    });
    const admin = await WebSession.signIn(t.app.http.url, t.adminToken);
    const { token } = await admin.createLabeler("ann");
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const res = await page.goto(t.app.http.url);
    assert.match(res?.headers()["content-security-policy"] ?? "", /script-src 'self'/);

    // Sign in with the token.
    await page.fill("#token", token);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#prompt", { hasText: "List the animals" }).waitFor();
    assert.equal(await page.textContent("#who"), "ann");

    // The response with markup is shown as text: no <b> element, no script ran.
    assert.equal(await card(page, "gamma").locator("pre.response-text").textContent(), `gamma ${SCRIPT}`);
    assert.equal(await page.locator("li.card b").count(), 0);
    assert.equal(await page.evaluate("window.__pwned"), undefined);

    // By mouse: gamma to the top by drag and drop, then alpha above beta, beta tied with alpha,
    // beta flagged harmful, gamma scored 6.
    // The shown order is shuffled per labeler: first a drag that always changes it (top card below the last).
    const before = await order(page);
    const last = page.locator("li.card").last();
    const box = await last.boundingBox();
    await page.locator("li.card").first().locator(".handle").dragTo(last, { targetPosition: { x: 40, y: (box?.height ?? 40) - 4 } });
    assert.deepEqual(await order(page), [...before.slice(1), before[0]]);
    const wanted = [`gamma ${SCRIPT}`, "alpha", "beta"];
    for (let p = 0; p < wanted.length; p++) {
      if ((await order(page))[p] === wanted[p]) continue;
      await card(page, wanted[p].split(" ")[0]).locator(".handle").dragTo(page.locator("li.card").nth(p), { targetPosition: { x: 40, y: 4 } });
    }
    assert.deepEqual(await order(page), wanted);
    await card(page, "beta").locator("input.tie-box").click();
    await card(page, "beta").locator('input.flag[data-flag="harmful"]').click();
    await card(page, "gamma").locator("select.score").selectOption("6");
    assert.deepEqual(await page.locator("li.card .rank").allTextContents(), ["1", "2", "2"]);
    await page.click("#submit");

    // By keyboard only: four, three, two = one (tied); "three" flagged made-up facts (M); "four" scored 7.
    await page.locator("#prompt", { hasText: "Count to four." }).waitFor();
    const target = ["four", "three", "two", "one"];
    // The first card has the focus; Arrow keys move the focus, Alt+Arrow moves the card. First a
    // move that always changes the shuffled order: the top card one down.
    const shown = await order(page);
    await page.keyboard.press("Alt+ArrowDown");
    assert.deepEqual(await order(page), [shown[1], shown[0], ...shown.slice(2)]);
    let focus = 1;
    for (let p = 0; p < target.length; p++) {
      const q = (await order(page)).indexOf(target[p]);
      for (; focus < q; focus++) await page.keyboard.press("ArrowDown");
      for (; focus > q; focus--) await page.keyboard.press("ArrowUp");
      for (; focus > p; focus--) await page.keyboard.press("Alt+ArrowUp");
    }
    assert.deepEqual(await order(page), target);
    // Focus is on "one" (the last card placed): tie it with "two".
    await page.keyboard.press("t");
    await page.keyboard.press("ArrowUp");
    await page.keyboard.press("ArrowUp");
    await page.keyboard.press("m");
    await page.keyboard.press("ArrowUp");
    await page.keyboard.press("7");
    assert.deepEqual(await page.locator("li.card .rank").allTextContents(), ["1", "2", "3", "3"]);
    await page.keyboard.press("Control+Enter");
    await page.locator("#empty").waitFor({ state: "visible" });

    // The export holds exactly these two rankings, in the original response order.
    const jsonl = await admin.exportJsonl();
    assert.deepEqual(
      jsonl.trim().split("\n").map((l) => JSON.parse(l)),
      [
        { prompt: "List the animals: a cat, a dog.", responses: ["alpha", "beta", `gamma ${SCRIPT}`], ranking: [1, 1, 0] },
        { prompt: "Count to four.", responses: ["one", "two", "three", "four"], ranking: [2, 2, 1, 0] },
      ],
    );
    const meta = (await admin.exportJsonl({ meta: true })).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(meta[0].scores, [null, null, 6]);
    assert.deepEqual(meta[0].flags[1], { failsInstruction: false, madeUpFacts: false, harmful: true });
    assert.deepEqual(meta[1].scores, [null, null, null, 7]);
    assert.deepEqual(meta[1].flags[2], { failsInstruction: false, madeUpFacts: true, harmful: false });
    const file = join(dir, "rankings.jsonl");
    writeFileSync(file, jsonl);
    const check = checkDataFile(file);
    assert.deepEqual([check.kind, check.records, check.errors.length, check.warnings.length], ["rankings", 2, 0, 0]);

    // Undo brings the last comparison back.
    await page.click("#undo-empty");
    await page.locator("#prompt", { hasText: "Count to four." }).waitFor();
    assert.equal((await admin.exportJsonl()).trim().split("\n").length, 1);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the browser: an invite link signs in; the admin page needs the admin token; a phone-width page does not overflow", async () => {
  const t = await startTestApp("sqlite");
  const browser = await launchBrowser({ width: 375, height: 740 });
  try {
    await t.app.store.submitBatch({ batchId: "phone", overlapFraction: 0, source: "", comparisons: [{ key: "p", prompt: "A long prompt ".repeat(30), responses: ["x".repeat(300), "a reply with a very-long-unbroken-word-".repeat(8)] }] });
    const admin = await WebSession.signIn(t.app.http.url, t.adminToken);
    const { inviteUrl } = await admin.createLabeler("bob");
    const page = await browser.context.newPage();
    await page.goto(inviteUrl);
    await page.locator("li.card").first().waitFor();
    assert.equal(await page.textContent("#who"), "bob");
    // The token left the address bar.
    assert.equal(new URL(page.url()).hash, "");
    const width = (await page.evaluate("document.documentElement.scrollWidth")) as number;
    assert.ok(width <= 375, `page is ${width}px wide at 375`);

    // A labeler's session is refused by the admin API and page.
    const r = await page.evaluate(async () => (await fetch("/api/admin/stats")).status);
    assert.equal(r, 403);
    await page.goto(new URL("admin", t.app.http.url).toString());
    await page.locator("#error", { hasText: "needs the admin token" }).waitFor();
    // The admin signs in there and sees the labeler.
    await page.fill("#token", t.adminToken);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#labelers td", { hasText: "bob" }).waitFor();
    // A POST without the CSRF token is refused even with the session cookie.
    const noCsrf = await page.evaluate(async () => (await fetch("/api/admin/labelers", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"name":"mallory"}' })).status);
    assert.equal(noCsrf, 403);
  } finally {
    await browser.close();
    await t.stop();
  }
});
