#!/usr/bin/env node
// Screenshots of a running `rlhf label serve` for docs/labeling.md (Debian's chromium through
// playwright-core; nothing is downloaded):
//   node services/labeling/scripts/screenshots.mjs <web UI url> <admin token file> <out dir>
// Signs in as the admin, creates a labeler "screenshots", and writes labeling-rank.png (the
// labeler's page, laptop width, one response moved, tied and flagged), labeling-phone.png (the
// same page at a phone's width) and labeling-admin.png (the admin page).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, tokenFile, outDir] = process.argv.slice(2);
if (!url || !tokenFile || !outDir) {
  console.error("usage: screenshots.mjs <web UI url> <admin token file> <out dir>");
  process.exit(2);
}
const adminToken = readFileSync(tokenFile, "utf8").split("\n")[0].trim();
const profile = mkdtempSync(join(tmpdir(), "labeling-shots-"));
const args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars"];
const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", headless: true, args, viewport: { width: 1100, height: 1000 } });
try {
  const page = await ctx.newPage();
  // The admin creates a labeler (the API the admin page uses).
  await page.goto(new URL("admin", url).toString());
  await page.fill("#token", adminToken);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#dashboard").waitFor();
  await page.fill("#labeler-name", `screenshots-${Date.now() % 100000}`);
  await page.click("#new-labeler button[type=submit]");
  const invite = (await page.locator("#invite-url").textContent()) ?? "";
  await page.reload();
  await page.locator("#labelers tbody tr").first().waitFor();
  await page.screenshot({ path: join(outDir, "labeling-admin.png") });

  // The labeler signs in by the invite link (its session replaces the admin's cookie).
  const lp = await ctx.newPage();
  await ctx.clearCookies();
  await lp.goto(invite);
  await lp.locator("li.card").first().waitFor();
  // Show a ranking in progress: the last response moved up by keyboard, a tie, a flag, a score.
  await lp.locator("li.card").last().focus();
  await lp.keyboard.press("Alt+ArrowUp");
  await lp.locator("li.card").nth(1).locator("input.tie-box").check();
  await lp.locator("li.card").last().locator('input.flag[data-flag="madeUpFacts"]').check();
  await lp.locator("li.card").first().locator("select.score").selectOption("6");
  await lp.locator("li.card").first().focus();
  await lp.screenshot({ path: join(outDir, "labeling-rank.png") });
  await lp.setViewportSize({ width: 390, height: 844 });
  await lp.screenshot({ path: join(outDir, "labeling-phone.png") });
  console.log(`wrote ${["labeling-rank.png", "labeling-phone.png", "labeling-admin.png"].map((f) => join(outDir, f)).join(", ")}`);
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
