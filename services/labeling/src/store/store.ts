/**
 * The labeling store: batches of comparisons, labelers, their assignments and rankings, web
 * sessions. Every write that matters is one transaction (a ranking and its assignment's state
 * together), so a service killed at any point keeps every ranking it acknowledged.
 */
import { EventEmitter } from "node:events";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { DomainError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import { openDb, type Db, type DbTarget, type Queryable } from "./db";
import { migrate } from "./migrations";
import type { LabeledRanking } from "@rlhf/labeling-client";
import {
  type BatchInput,
  type ResponseFlags,
  type RankedBy,
  type Agreement,
  agreementOf,
  batchDigest,
  checkFlags,
  checkScores,
  groupsToRanking,
  isOverlapping,
  shownOrder,
} from "../domain/comparisons";

/** Where a batch stands (the proto's BatchProgress). */
export interface BatchProgress {
  batchId: string;
  comparisons: number;
  ranked: number;
  complete: number;
  rankings: number;
  overlapping: number;
  done: boolean;
  createdAtMs: number;
  source: string;
}

/** A labeler (the token is only known at creation). */
export interface Labeler {
  id: string;
  name: string;
  simulated: boolean;
  createdAtMs: number;
}

/** A comparison as shown to one labeler: responses in the labeler's order, each with its index in the batch. */
export interface AssignmentView {
  id: string;
  batchId: string;
  key: string;
  prompt: string;
  responses: { index: number; text: string }[];
}

/** A submitted ranking with its comparison. */
export interface StoredRanking extends LabeledRanking {
  seq: number;
}

/** A web session. */
export interface Session {
  labeler?: Labeler;
  admin: boolean;
  csrf: string;
  expiresAtMs: number;
}

/** Per-labeler figures of the admin page. */
export interface LabelerStats extends Labeler {
  /** Disabled by the admin: its token no longer signs in. */
  disabled: boolean;
  rankings: number;
  skipped: number;
  last24h: number;
  /** Median time from showing a comparison to submitting it; null before the first ranking. */
  medianMs: number | null;
  meanMs: number | null;
  agreement: Agreement;
}

/** What the admin page shows. */
export interface AdminStats {
  labelers: LabelerStats[];
  agreement: { humans: Agreement; simulated: Agreement; mixed: Agreement };
  batches: BatchProgress[];
}

/** Options of {@link LabelingStore}. */
export interface StoreOptions {
  /** An open assignment nobody submitted for this long frees its slot for another labeler. Default 30 min. */
  assignmentTimeoutMs?: number;
  /** How long after submitting a labeler may undo it. Default 10 min. */
  undoWindowMs?: number;
  /** Web sessions last this long. Default 12 h. */
  sessionTtlMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

interface ComparisonRow {
  batch_id: string;
  idx: number;
  item_key: string;
  prompt: string;
  responses: string;
  needed: number;
}

export class LabelingStore {
  /** Emits "change" (batch id) after a ranking, a skip, an undo or a new batch. */
  readonly events = new EventEmitter();
  private readonly assignmentTimeoutMs: number;
  private readonly undoWindowMs: number;
  private readonly sessionTtlMs: number;
  private readonly now: () => number;

  private constructor(
    readonly db: Db,
    readonly schemaVersion: number,
    opts: StoreOptions,
  ) {
    this.assignmentTimeoutMs = opts.assignmentTimeoutMs ?? 30 * 60_000;
    this.undoWindowMs = opts.undoWindowMs ?? 10 * 60_000;
    this.sessionTtlMs = opts.sessionTtlMs ?? 12 * 3600_000;
    this.now = opts.now ?? Date.now;
    this.events.setMaxListeners(0);
  }

  /** Opens the database and applies pending migrations. */
  static async open(target: DbTarget, opts: StoreOptions = {}): Promise<LabelingStore> {
    const db = await openDb(target);
    try {
      return new LabelingStore(db, await migrate(db), opts);
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  get kind(): Db["kind"] {
    return this.db.kind;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** True when no batch was ever submitted. */
  async isEmpty(): Promise<boolean> {
    return !(await this.db.get("SELECT id FROM batches LIMIT 1"));
  }

  // ---- batches -------------------------------------------------------------------------------

  /**
   * Stores a batch (already checked by checkBatch). The same id with the same comparisons
   * returns the batch as it stands; with other comparisons it is ALREADY_EXISTS.
   */
  async submitBatch(b: BatchInput): Promise<{ progress: BatchProgress; created: boolean }> {
    const digest = batchDigest(b.comparisons);
    const created = await this.db.tx(async (q) => {
      if (this.db.kind === "postgres") await q.run("SELECT pg_advisory_xact_lock(72150002)");
      const existing = await q.get<{ digest: string }>("SELECT digest FROM batches WHERE id = ?", [b.batchId]);
      if (existing) {
        if (existing.digest !== digest) throw new DomainError("ALREADY_EXISTS", `batch "${b.batchId}" exists with other comparisons (a resubmission must carry the same ones)`, "batch_id");
        return false;
      }
      const seq = Number((await q.get<{ s: number | null }>("SELECT max(seq) AS s FROM batches"))?.s ?? 0) + 1;
      await q.run("INSERT INTO batches (id, seq, digest, source, overlap_fraction, comparisons, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)", [
        b.batchId,
        seq,
        digest,
        b.source,
        b.overlapFraction,
        b.comparisons.length,
        this.now(),
      ]);
      for (let i = 0; i < b.comparisons.length; i++) {
        const c = b.comparisons[i];
        await q.run("INSERT INTO comparisons (batch_id, idx, item_key, prompt, responses, needed) VALUES (?, ?, ?, ?, ?, ?)", [
          b.batchId,
          i,
          c.key,
          c.prompt,
          JSON.stringify(c.responses),
          isOverlapping(i, b.overlapFraction) ? 2 : 1,
        ]);
      }
      return true;
    });
    if (created) this.events.emit("change", b.batchId);
    return { progress: await this.progress(b.batchId), created };
  }

  /** Progress of one batch; NOT_FOUND when unknown. */
  async progress(batchId: string, q: Queryable = this.db): Promise<BatchProgress> {
    const b = await q.get<{ id: string; source: string; created_at_ms: number }>("SELECT id, source, created_at_ms FROM batches WHERE id = ?", [batchId]);
    if (!b) throw new NotFoundError("batch_id", `no batch "${batchId}"`);
    const s = await q.get<{ comparisons: number; overlapping: number; ranked: number; complete: number; rankings: number }>(
      `SELECT count(*) AS comparisons,
              sum(CASE WHEN needed = 2 THEN 1 ELSE 0 END) AS overlapping,
              sum(CASE WHEN n >= 1 THEN 1 ELSE 0 END) AS ranked,
              sum(CASE WHEN n >= needed THEN 1 ELSE 0 END) AS complete,
              sum(n) AS rankings
         FROM (SELECT c.needed AS needed, (SELECT count(*) FROM rankings r WHERE r.batch_id = c.batch_id AND r.idx = c.idx) AS n
                 FROM comparisons c WHERE c.batch_id = ?) t`,
      [batchId],
    );
    const n = (v: unknown) => Number(v ?? 0);
    return {
      batchId: b.id,
      comparisons: n(s?.comparisons),
      ranked: n(s?.ranked),
      complete: n(s?.complete),
      rankings: n(s?.rankings),
      overlapping: n(s?.overlapping),
      done: n(s?.complete) === n(s?.comparisons),
      createdAtMs: Number(b.created_at_ms),
      source: b.source,
    };
  }

  /** Batches, newest first. */
  async listBatches(limit = 100): Promise<BatchProgress[]> {
    const rows = await this.db.all<{ id: string }>("SELECT id FROM batches ORDER BY seq DESC LIMIT ?", [limit]);
    const out: BatchProgress[] = [];
    for (const r of rows) out.push(await this.progress(r.id));
    return out;
  }

  /** Rankings after `afterSeq` in submission order (of one batch when given), at most `limit`. */
  async listRankings(opts: { batchId?: string; afterSeq?: number; limit?: number } = {}): Promise<StoredRanking[]> {
    const params: unknown[] = [opts.afterSeq ?? 0];
    let where = "r.seq > ?";
    if (opts.batchId) {
      where += " AND r.batch_id = ?";
      params.push(opts.batchId);
    }
    params.push(opts.limit ?? 1000);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT r.seq, r.batch_id, c.item_key, c.prompt, c.responses, r.ranking, r.scores, r.flags, l.name, l.simulated, r.submitted_at_ms, r.duration_ms
         FROM rankings r JOIN comparisons c ON c.batch_id = r.batch_id AND c.idx = r.idx JOIN labelers l ON l.id = r.labeler_id
        WHERE ${where} ORDER BY r.seq LIMIT ?`,
      params,
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      batchId: String(r.batch_id),
      key: String(r.item_key),
      prompt: String(r.prompt),
      responses: JSON.parse(String(r.responses)) as string[],
      ranking: JSON.parse(String(r.ranking)) as number[],
      scores: JSON.parse(String(r.scores)) as (number | null)[],
      flags: JSON.parse(String(r.flags)) as ResponseFlags[],
      labeler: String(r.name),
      simulated: Number(r.simulated) === 1,
      submittedAtMs: Number(r.submitted_at_ms),
      durationMs: Number(r.duration_ms),
    }));
  }

  /** Every ranking (or one batch's), in submission order. */
  async allRankings(batchId?: string): Promise<StoredRanking[]> {
    const out: StoredRanking[] = [];
    for (;;) {
      const page = await this.listRankings({ batchId, afterSeq: out.length ? out[out.length - 1].seq : 0, limit: 1000 });
      out.push(...page);
      if (page.length < 1000) return out;
    }
  }

  // ---- labelers ------------------------------------------------------------------------------

  /** Creates a labeler; returns its token (shown once; only its hash is stored). */
  async createLabeler(name: string, simulated = false): Promise<{ labeler: Labeler; token: string }> {
    if (!/^[A-Za-z0-9 ._@-]{1,64}$/.test(name)) throw new InvalidArgumentError("name", "must be 1..64 characters of letters, digits, space and ._@-");
    const token = "lbl_" + randomBytes(24).toString("base64url");
    const labeler: Labeler = { id: randomUUID(), name, simulated, createdAtMs: this.now() };
    try {
      await this.db.run("INSERT INTO labelers (id, name, token_hash, simulated, created_at_ms) VALUES (?, ?, ?, ?, ?)", [labeler.id, name, sha256(token), simulated ? 1 : 0, labeler.createdAtMs]);
    } catch (e) {
      if (/unique|duplicate/i.test((e as Error).message)) throw new DomainError("ALREADY_EXISTS", `a labeler named "${name}" exists`, "name");
      throw e;
    }
    return { labeler, token };
  }

  /** The labeler a token belongs to (none for a disabled labeler). */
  async labelerByToken(token: string): Promise<Labeler | undefined> {
    const r = await this.db.get<Record<string, unknown>>("SELECT id, name, simulated, created_at_ms FROM labelers WHERE token_hash = ? AND disabled_at_ms IS NULL", [sha256(token)]);
    return r && { id: String(r.id), name: String(r.name), simulated: Number(r.simulated) === 1, createdAtMs: Number(r.created_at_ms) };
  }

  /**
   * Disables a labeler (a leaked token, someone who left): its token and sessions stop working at
   * once and its open comparisons go to others; its rankings stay. NOT_FOUND for an unknown name.
   */
  async disableLabeler(name: string): Promise<void> {
    await this.db.tx(async (q) => {
      const l = await q.get<{ id: string }>("SELECT id FROM labelers WHERE name = ? AND disabled_at_ms IS NULL", [name]);
      if (!l) throw new NotFoundError("name", `no active labeler named "${name}"`);
      await q.run("UPDATE labelers SET disabled_at_ms = ? WHERE id = ?", [this.now(), l.id]);
      await q.run("DELETE FROM sessions WHERE labeler_id = ?", [l.id]);
      await q.run("DELETE FROM assignments WHERE labeler_id = ? AND state = 'open'", [l.id]);
    });
  }

  // ---- assignments ---------------------------------------------------------------------------

  private view(a: { id: string }, c: ComparisonRow, labelerId: string): AssignmentView {
    const responses = JSON.parse(c.responses) as string[];
    const order = shownOrder(`${labelerId}\n${c.batch_id}\n${c.idx}`, responses.length);
    return { id: a.id, batchId: c.batch_id, key: c.item_key, prompt: c.prompt, responses: order.map((i) => ({ index: i, text: responses[i] })) };
  }

  /**
   * The labeler's next comparison: the one it has open, or else the first (oldest batch first)
   * that still needs a labeler and that this labeler has not ranked or skipped. Undefined when
   * there is none.
   */
  async nextAssignment(labelerId: string): Promise<AssignmentView | undefined> {
    return this.db.tx(async (q) => {
      // One assigner at a time across replicas sharing a PostgreSQL database: a slot goes to one labeler.
      if (this.db.kind === "postgres") await q.run("SELECT pg_advisory_xact_lock(72150003)");
      const open = await q.get<{ id: string; batch_id: string; idx: number }>(
        "SELECT id, batch_id, idx FROM assignments WHERE labeler_id = ? AND state = 'open' ORDER BY shown_at_ms, id LIMIT 1",
        [labelerId],
      );
      if (open) {
        const c = await q.get<ComparisonRow>("SELECT * FROM comparisons WHERE batch_id = ? AND idx = ?", [open.batch_id, open.idx]);
        return this.view(open, c as ComparisonRow, labelerId);
      }
      const now = this.now();
      const c = await q.get<ComparisonRow>(
        `SELECT c.* FROM comparisons c JOIN batches b ON b.id = c.batch_id
          WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.batch_id = c.batch_id AND a.idx = c.idx AND a.labeler_id = ?)
            AND (SELECT count(*) FROM assignments a WHERE a.batch_id = c.batch_id AND a.idx = c.idx
                  AND (a.state = 'done' OR (a.state = 'open' AND a.updated_at_ms > ?))) < c.needed
          ORDER BY b.seq, c.idx LIMIT 1`,
        [labelerId, now - this.assignmentTimeoutMs],
      );
      if (!c) return undefined;
      const id = randomUUID();
      await q.run("INSERT INTO assignments (id, batch_id, idx, labeler_id, state, shown_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, 'open', ?, ?)", [id, c.batch_id, c.idx, labelerId, now, now]);
      return this.view({ id }, c, labelerId);
    });
  }

  private async openAssignment(q: Queryable, labelerId: string, assignmentId: unknown): Promise<{ id: string; batch_id: string; idx: number; shown_at_ms: number; responses: string }> {
    if (typeof assignmentId !== "string" || assignmentId.length > 64) throw new InvalidArgumentError("assignment", "must be an assignment id");
    // Another labeler's assignment is "not found" too: labelers see only their own.
    const a = await q.get<{ id: string; batch_id: string; idx: number; state: string; shown_at_ms: number; responses: string }>(
      "SELECT a.id, a.batch_id, a.idx, a.state, a.shown_at_ms, c.responses FROM assignments a JOIN comparisons c ON c.batch_id = a.batch_id AND c.idx = a.idx WHERE a.id = ? AND a.labeler_id = ?",
      [assignmentId, labelerId],
    );
    if (!a) throw new NotFoundError("assignment", "no such assignment of yours");
    if (a.state !== "open") throw new FailedPreconditionError(`this comparison is already ${a.state === "done" ? "submitted" : "skipped"}`);
    return { ...a, shown_at_ms: Number(a.shown_at_ms), idx: Number(a.idx) };
  }

  /**
   * Records a labeler's ranking of its open assignment: `groups` is the order with ties (response
   * indices, best group first); scores 1..7 or null; flags per response. One transaction.
   */
  async submitRanking(labelerId: string, input: { assignment: unknown; groups: unknown; scores?: unknown; flags?: unknown }): Promise<{ batchId: string }> {
    const out = await this.db.tx(async (q) => {
      const a = await this.openAssignment(q, labelerId, input.assignment);
      const k = (JSON.parse(a.responses) as string[]).length;
      const ranking = groupsToRanking(input.groups, k);
      const scores = checkScores(input.scores, k);
      const flags = checkFlags(input.flags, k);
      const now = this.now();
      await q.run(
        "INSERT INTO rankings (assignment_id, batch_id, idx, labeler_id, ranking, scores, flags, submitted_at_ms, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [a.id, a.batch_id, a.idx, labelerId, JSON.stringify(ranking), JSON.stringify(scores), JSON.stringify(flags), now, Math.max(0, now - a.shown_at_ms)],
      );
      await q.run("UPDATE assignments SET state = 'done', updated_at_ms = ? WHERE id = ?", [now, a.id]);
      return { batchId: a.batch_id };
    });
    this.events.emit("change", out.batchId);
    return out;
  }

  /** Skips the labeler's open assignment: it will not see it again; another labeler may take it. */
  async skip(labelerId: string, assignmentId: unknown): Promise<void> {
    const batchId = await this.db.tx(async (q) => {
      const a = await this.openAssignment(q, labelerId, assignmentId);
      await q.run("UPDATE assignments SET state = 'skipped', updated_at_ms = ? WHERE id = ?", [this.now(), a.id]);
      return a.batch_id;
    });
    this.events.emit("change", batchId);
  }

  /**
   * Takes back the labeler's last ranking (or skip) within the undo window: the comparison is
   * open again, shown next. FAILED_PRECONDITION when there is nothing to undo.
   */
  async undo(labelerId: string): Promise<AssignmentView> {
    const out = await this.db.tx(async (q) => {
      const last = await q.get<{ id: string; state: string; updated_at_ms: number; batch_id: string; idx: number }>(
        "SELECT id, state, updated_at_ms, batch_id, idx FROM assignments WHERE labeler_id = ? AND state IN ('done', 'skipped') ORDER BY updated_at_ms DESC, id DESC LIMIT 1",
        [labelerId],
      );
      const now = this.now();
      if (!last || now - Number(last.updated_at_ms) > this.undoWindowMs) throw new FailedPreconditionError(`nothing to undo (only your last ranking or skip, within ${Math.round(this.undoWindowMs / 60_000)} minutes)`);
      // An open assignment the labeler holds meanwhile is set aside so the undone one is shown next.
      await q.run("DELETE FROM assignments WHERE labeler_id = ? AND state = 'open'", [labelerId]);
      await q.run("DELETE FROM rankings WHERE assignment_id = ?", [last.id]);
      await q.run("UPDATE assignments SET state = 'open', shown_at_ms = ?, updated_at_ms = ? WHERE id = ?", [now, now, last.id]);
      const c = await q.get<ComparisonRow>("SELECT * FROM comparisons WHERE batch_id = ? AND idx = ?", [last.batch_id, last.idx]);
      return this.view(last, c as ComparisonRow, labelerId);
    });
    this.events.emit("change", out.batchId);
    return out;
  }

  // ---- sessions ------------------------------------------------------------------------------

  /** A new web session; returns its cookie value (only its hash is stored). */
  async createSession(who: { labelerId?: string; admin: boolean }): Promise<{ cookie: string; csrf: string }> {
    const cookie = randomBytes(32).toString("base64url");
    const csrf = randomBytes(24).toString("base64url");
    const now = this.now();
    await this.db.run("DELETE FROM sessions WHERE expires_at_ms < ?", [now]);
    await this.db.run("INSERT INTO sessions (id_hash, labeler_id, admin, csrf, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)", [
      sha256(cookie),
      who.labelerId ?? null,
      who.admin ? 1 : 0,
      csrf,
      now,
      now + this.sessionTtlMs,
    ]);
    return { cookie, csrf };
  }

  /** The session of a cookie value, when valid and not expired. */
  async session(cookie: string): Promise<Session | undefined> {
    const r = await this.db.get<Record<string, unknown>>(
      "SELECT s.admin, s.csrf, s.expires_at_ms, l.id, l.name, l.simulated, l.created_at_ms FROM sessions s LEFT JOIN labelers l ON l.id = s.labeler_id WHERE s.id_hash = ?",
      [sha256(cookie)],
    );
    if (!r || Number(r.expires_at_ms) < this.now()) return undefined;
    const labeler = r.id ? { id: String(r.id), name: String(r.name), simulated: Number(r.simulated) === 1, createdAtMs: Number(r.created_at_ms) } : undefined;
    return { labeler, admin: Number(r.admin) === 1, csrf: String(r.csrf), expiresAtMs: Number(r.expires_at_ms) };
  }

  async deleteSession(cookie: string): Promise<void> {
    await this.db.run("DELETE FROM sessions WHERE id_hash = ?", [sha256(cookie)]);
  }

  // ---- admin ---------------------------------------------------------------------------------

  /** Per-labeler throughput, time per comparison and agreement; batches' progress. */
  async stats(): Promise<AdminStats> {
    const labelers = (await this.db.all<Record<string, unknown>>("SELECT id, name, simulated, created_at_ms, disabled_at_ms FROM labelers ORDER BY created_at_ms, name")).map((r) => ({
      id: String(r.id),
      name: String(r.name),
      simulated: Number(r.simulated) === 1,
      createdAtMs: Number(r.created_at_ms),
      disabled: r.disabled_at_ms !== null && r.disabled_at_ms !== undefined,
    }));
    const rows = await this.db.all<{ labeler_id: string; batch_id: string; idx: number; ranking: string; submitted_at_ms: number; duration_ms: number }>(
      "SELECT labeler_id, batch_id, idx, ranking, submitted_at_ms, duration_ms FROM rankings ORDER BY seq",
    );
    const skipped = await this.db.all<{ labeler_id: string; n: number }>("SELECT labeler_id, count(*) AS n FROM assignments WHERE state = 'skipped' GROUP BY labeler_id");
    const byId = new Map(labelers.map((l) => [l.id, l]));
    const ranked: RankedBy[] = rows.map((r) => ({
      item: `${r.batch_id}\n${r.idx}`,
      labeler: r.labeler_id,
      simulated: byId.get(r.labeler_id)?.simulated ?? false,
      ranking: JSON.parse(r.ranking) as number[],
    }));
    const agreement = agreementOf(ranked);
    const now = this.now();
    const out: LabelerStats[] = labelers.map((l) => {
      const mine = rows.filter((r) => r.labeler_id === l.id);
      const d = mine.map((r) => Number(r.duration_ms)).sort((a, b) => a - b);
      const mid = d.length ? (d.length % 2 ? d[(d.length - 1) / 2] : (d[d.length / 2 - 1] + d[d.length / 2]) / 2) : null;
      return {
        ...l,
        rankings: mine.length,
        skipped: Number(skipped.find((s) => s.labeler_id === l.id)?.n ?? 0),
        last24h: mine.filter((r) => Number(r.submitted_at_ms) > now - 24 * 3600_000).length,
        medianMs: mid,
        meanMs: d.length ? d.reduce((a, b) => a + b, 0) / d.length : null,
        agreement: agreement.perLabeler.get(l.id) ?? { agree: 0, pairs: 0, rate: null },
      };
    });
    return { labelers: out, agreement: { humans: agreement.humans, simulated: agreement.simulated, mixed: agreement.mixed }, batches: await this.listBatches(100) };
  }
}
