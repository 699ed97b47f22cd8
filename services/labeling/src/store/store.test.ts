import { test } from "node:test";
import assert from "node:assert/strict";
import { LabelingStore } from "./store";
import { MIGRATIONS, SCHEMA_VERSION, migrate } from "./migrations";
import { openDb } from "./db";
import { DATABASE_KINDS, freshDatabase, sampleBatch } from "../testing/databases";

for (const kind of DATABASE_KINDS) {
  test(`${kind}: migrations apply once, batches are idempotent by id, progress counts rankings`, async () => {
    const db = await freshDatabase(kind);
    try {
      let store = await LabelingStore.open(db.target);
      assert.equal(store.schemaVersion, SCHEMA_VERSION);
      assert.equal(await store.isEmpty(), true);
      const b = sampleBatch("b1", 4, 3, 0.5);
      const first = await store.submitBatch(b);
      assert.equal(first.created, true);
      assert.deepEqual({ ...first.progress, createdAtMs: 0 }, { batchId: "b1", comparisons: 4, ranked: 0, complete: 0, rankings: 0, overlapping: 2, done: false, createdAtMs: 0, source: "test" });
      assert.equal((await store.submitBatch(b)).created, false);
      const other = sampleBatch("b1", 4);
      other.comparisons[0].prompt = "another prompt";
      await assert.rejects(store.submitBatch(other), /ALREADY_EXISTS|exists with other comparisons/);
      await store.close();
      // Reopening applies nothing twice and keeps the batch.
      store = await LabelingStore.open(db.target);
      assert.equal((await store.progress("b1")).comparisons, 4);

      const { labeler: ann } = await store.createLabeler("ann");
      const { labeler: bob } = await store.createLabeler("bob");
      await assert.rejects(store.createLabeler("ann"), /exists/);
      // Items 1 and 3 (overlap 0.5: floor((i+1)/2) > floor(i/2)) need two labelers.
      const seen: string[] = [];
      for (;;) {
        const a = await store.nextAssignment(ann.id);
        if (!a) break;
        // The same open assignment comes back until it is submitted.
        assert.equal((await store.nextAssignment(ann.id))?.id, a.id);
        assert.deepEqual(a.responses.map((r) => r.index).sort(), [0, 1, 2]);
        seen.push(a.key);
        await store.submitRanking(ann.id, { assignment: a.id, groups: [[0], [1, 2]], scores: [7, 3, null], flags: [{}, { madeUpFacts: true }, { harmful: true }] });
      }
      assert.deepEqual(seen, ["item-0", "item-1", "item-2", "item-3"]);
      let p = await store.progress("b1");
      assert.deepEqual([p.ranked, p.complete, p.rankings, p.done], [4, 2, 4, false]);
      // Bob gets only the two overlapping comparisons.
      const bobSeen: string[] = [];
      for (let a = await store.nextAssignment(bob.id); a; a = await store.nextAssignment(bob.id)) {
        bobSeen.push(a.key);
        await store.submitRanking(bob.id, { assignment: a.id, groups: [[1], [0], [2]] });
      }
      assert.deepEqual(bobSeen, ["item-1", "item-3"]);
      p = await store.progress("b1");
      assert.deepEqual([p.ranked, p.complete, p.rankings, p.done], [4, 4, 6, true]);

      const rankings = await store.allRankings("b1");
      assert.equal(rankings.length, 6);
      assert.deepEqual(rankings[0].ranking, [0, 1, 1]);
      assert.deepEqual(rankings[0].scores, [7, 3, null]);
      assert.deepEqual(rankings[0].flags[1], { failsInstruction: false, madeUpFacts: true, harmful: false });
      assert.equal(rankings[5].labeler, "bob");
      assert.deepEqual(rankings[5].ranking, [1, 0, 2]);

      // Agreement on the two shared comparisons: ann [0,1,1] vs bob [1,0,2]: pairs (0,1) differ,
      // (0,2) agree, (1,2) ann ties / bob prefers 1: differ -> 1 of 3 per comparison.
      const stats = await store.stats();
      assert.deepEqual(stats.agreement.humans, { agree: 2, pairs: 6, rate: 2 / 6 });
      const annStats = stats.labelers.find((l) => l.name === "ann");
      assert.equal(annStats?.rankings, 4);
      assert.equal(annStats?.agreement.pairs, 6);
      await store.close();
    } finally {
      await db.cleanup();
    }
  });

  test(`${kind}: labelers see only their own assignments; skip, undo and bad rankings`, async () => {
    const db = await freshDatabase(kind);
    const store = await LabelingStore.open(db.target);
    try {
      await store.submitBatch(sampleBatch("b2", 2, 4));
      const { labeler: ann } = await store.createLabeler("ann");
      const { labeler: eve } = await store.createLabeler("eve");
      const a = await store.nextAssignment(ann.id);
      assert.ok(a);
      await assert.rejects(store.submitRanking(eve.id, { assignment: a.id, groups: [[0], [1], [2], [3]] }), /no such assignment of yours/);
      await assert.rejects(store.skip(eve.id, a.id), /no such assignment of yours/);
      await assert.rejects(store.submitRanking(ann.id, { assignment: a.id, groups: [[0, 1, 2, 3]] }), /all responses are tied/);
      await assert.rejects(store.submitRanking(ann.id, { assignment: a.id, groups: [[0], [1], [2]] }), /response 3 is not placed/);
      await assert.rejects(store.submitRanking(ann.id, { assignment: a.id, groups: [[0], [1], [2], [3]], scores: [1, 2, 3, 8] }), /scores\[3\]: must be an integer 1\.\.7/);
      await store.skip(ann.id, a.id);
      const b = await store.nextAssignment(ann.id);
      assert.equal(b?.key, "item-1");
      // The skipped comparison goes to eve.
      assert.equal((await store.nextAssignment(eve.id))?.key, "item-0");
      await store.submitRanking(ann.id, { assignment: b?.id, groups: [[3], [2], [1], [0]] });
      await assert.rejects(store.submitRanking(ann.id, { assignment: b?.id, groups: [[3], [2], [1], [0]] }), /already submitted/);
      assert.equal((await store.progress("b2")).rankings, 1);
      const undone = await store.undo(ann.id);
      assert.equal(undone.id, b?.id);
      assert.equal((await store.progress("b2")).rankings, 0);
      assert.equal((await store.nextAssignment(ann.id))?.id, b?.id);
      await store.submitRanking(ann.id, { assignment: b?.id, groups: [[0], [1], [2], [3]] });
      assert.deepEqual((await store.allRankings())[0].ranking, [0, 1, 2, 3]);
      assert.equal(await store.labelerByToken("lbl_wrong"), undefined);
    } finally {
      await store.close();
      await db.cleanup();
    }
  });

  test(`${kind}: web sessions are stored hashed and expire`, async () => {
    const db = await freshDatabase(kind);
    let now = 1_000_000;
    const store = await LabelingStore.open(db.target, { sessionTtlMs: 1000, now: () => now });
    try {
      const { labeler, token } = await store.createLabeler("ann");
      assert.equal((await store.labelerByToken(token))?.id, labeler.id);
      const s = await store.createSession({ labelerId: labeler.id, admin: false });
      assert.equal((await store.session(s.cookie))?.labeler?.name, "ann");
      assert.equal((await store.session(s.cookie))?.csrf, s.csrf);
      now += 2000;
      assert.equal(await store.session(s.cookie), undefined);
    } finally {
      await store.close();
      await db.cleanup();
    }
  });
}

for (const kind of DATABASE_KINDS) {
  test(`${kind}: migration 2 applies to a version-1 database and keeps its rows; a disabled labeler's token and sessions stop working`, async () => {
    const db = await freshDatabase(kind);
    try {
      const raw = await openDb(db.target);
      assert.equal(await migrate(raw, MIGRATIONS.slice(0, 1)), 1);
      await raw.run("INSERT INTO labelers (id, name, token_hash, simulated, created_at_ms) VALUES ('id-1', 'old', 'hash', 0, 1)");
      await raw.close();
      const store = await LabelingStore.open(db.target);
      try {
        assert.equal(store.schemaVersion, 2);
        assert.deepEqual((await store.stats()).labelers.map((l) => [l.name, l.disabled]), [["old", false]]);
        await store.submitBatch(sampleBatch("d", 2));
        const { labeler, token } = await store.createLabeler("ann");
        const s = await store.createSession({ labelerId: labeler.id, admin: false });
        assert.ok(await store.nextAssignment(labeler.id));
        await store.disableLabeler("ann");
        assert.equal(await store.labelerByToken(token), undefined);
        assert.equal(await store.session(s.cookie), undefined);
        // Its open comparison went back to the pool.
        const { labeler: bob } = await store.createLabeler("bob");
        assert.equal((await store.nextAssignment(bob.id))?.key, "item-0");
        await assert.rejects(store.disableLabeler("ann"), /no active labeler named "ann"/);
        assert.equal((await store.stats()).labelers.find((l) => l.name === "ann")?.disabled, true);
      } finally {
        await store.close();
      }
    } finally {
      await db.cleanup();
    }
  });
}
