import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSession } from "@rlhf/labeling-client";
import { startTestApp } from "../testing/app";

test("web API: clear 4xx answers for bad input, sign-in and CSRF rules, admin-only calls, security headers", async () => {
  const t = await startTestApp("sqlite");
  const url = t.app.http.url;
  const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(new URL(path, url), { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
  const json = async (r: Response) => ({ status: r.status, ...((await r.json()) as object) });
  try {
    await t.app.store.submitBatch({ batchId: "h", overlapFraction: 0, source: "", comparisons: [{ key: "k", prompt: "p", responses: ["a", "b", "c"] }] });
    const admin = await WebSession.signIn(url, t.adminToken);
    const { token } = await admin.createLabeler("ann");
    const ann = await WebSession.signIn(url, token);

    // Headers on every answer, API and pages.
    for (const path of ["", "admin", "api/session", "static/app.js"]) {
      const r = await fetch(new URL(path, url));
      assert.match(r.headers.get("content-security-policy") ?? "", /^default-src 'none'; script-src 'self'/, path);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(r.headers.get("referrer-policy"), "no-referrer", path);
    }
    const login = await post("api/login", JSON.stringify({ token }));
    assert.match(login.headers.get("set-cookie") ?? "", /^lbl_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);

    // Sign-in: JSON only, same origin only, unknown tokens refused, then throttled.
    assert.deepEqual(await json(await fetch(new URL("api/login", url), { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: `token=${token}` })), { status: 415, error: "send JSON (Content-Type: application/json)" });
    assert.deepEqual(await json(await post("api/login", JSON.stringify({ token }), { Origin: "http://evil.example" })), { status: 403, error: "cross-origin sign-in refused" });
    assert.deepEqual(await json(await post("api/login", JSON.stringify({ token }), { "Sec-Fetch-Site": "cross-site" })), { status: 403, error: "cross-site request refused" });
    assert.deepEqual(await json(await post("api/login", "{oops")), { status: 400, error: "the body is not valid JSON" });
    assert.equal((await post("api/login", JSON.stringify({ token: "x" }))).status, 400);
    assert.equal((await post("api/login", "x".repeat(300 * 1024))).status, 413);

    // A labeler: its own assignment only; bad rankings are 400 naming the field; admin calls 403.
    const a = await ann.next();
    assert.ok(a);
    const bad = async (body: object) => {
      const r = await ann.raw("api/submit", body);
      return json(r);
    };
    assert.deepEqual(await bad({ assignment: a.id, groups: [[0, 1, 2]] }), { status: 400, error: "groups: all responses are tied: nothing to learn from (skip the comparison instead)" });
    assert.deepEqual(await bad({ assignment: a.id, groups: [[0], [1], [7]] }), { status: 400, error: "groups[2]: 7 is not a response index 0..2" });
    assert.deepEqual(await bad({ assignment: a.id, groups: [[0], [1], [2]], scores: [1, 2, 9] }), { status: 400, error: "scores[2]: must be an integer 1..7 or null, got 9" });
    assert.deepEqual(await bad({ assignment: a.id, groups: [[0], [1], [2]], flags: [{}, { harmful: "yes" }, {}] }), { status: 400, error: "flags[1].harmful: must be true or false" });
    assert.deepEqual(await bad({ assignment: "not-mine", groups: [[0], [1], [2]] }), { status: 404, error: "assignment: no such assignment of yours" });
    assert.equal((await ann.raw("api/admin/stats")).status, 403);
    assert.equal((await ann.raw("api/admin/export")).status, 403);
    assert.equal((await ann.raw("api/admin/labelers", { name: "mallory" })).status, 403);
    // The admin has no assignments.
    assert.deepEqual(await json(await admin.raw("api/next")), { status: 403, error: "this needs a labeler's token" });
    // Without a session: 401; with a session but the wrong CSRF token: 403.
    assert.deepEqual(await json(await fetch(new URL("api/next", url))), { status: 401, error: "sign in first" });
    const cookie = /lbl_session=[^;]+/.exec(login.headers.get("set-cookie") ?? "")?.[0] as string;
    assert.deepEqual(await json(await post("api/skip", JSON.stringify({ assignment: a.id }), { Cookie: cookie, "X-CSRF-Token": "wrong" })), { status: 403, error: "missing or wrong CSRF token (reload the page)" });
    assert.deepEqual(await json(await admin.raw("api/admin/labelers", { name: "bad/name" })), { status: 400, error: "name: must be 1..64 characters of letters, digits, space and ._@-" });
    assert.deepEqual(await json(await admin.raw("api/admin/labelers", { name: "ann" })), { status: 409, error: 'name: a labeler named "ann" exists' });
    assert.equal((await fetch(new URL("api/nothing", url))).status, 404);

    // A disabled labeler is signed out at once and cannot sign in again.
    const zed = await admin.createLabeler("zed");
    const zedSession = await WebSession.signIn(url, zed.token);
    assert.deepEqual(await json(await admin.raw("api/admin/labelers/disable", { name: "zed" })), { status: 200, ok: true });
    assert.equal((await zedSession.raw("api/next")).status, 401);
    assert.equal((await post("api/login", JSON.stringify({ token: zed.token }))).status, 401);
    assert.deepEqual(await json(await admin.raw("api/admin/labelers/disable", { name: "zed" })), { status: 404, error: 'name: no active labeler named "zed"' });

    // Sign-out ends the session.
    await ann.call("api/logout", {});
    assert.equal((await ann.raw("api/next")).status, 401);
    // Twenty failed sign-ins from one address: 429.
    for (let i = 0; i < 20; i++) await post("api/login", JSON.stringify({ token: `wrong-token-${i}` }));
    assert.equal((await post("api/login", JSON.stringify({ token }))).status, 429);
  } finally {
    await t.stop();
  }
});
