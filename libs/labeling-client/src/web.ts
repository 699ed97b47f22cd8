/**
 * The labeling service's web API from Node, as a browser uses it (a session cookie and its CSRF
 * token): simulated labelers rank through it exactly as people do (`rlhf label simulate`), and
 * the admin calls create labelers and export rankings (`rlhf label export --url`).
 */

/** One comparison as the service shows it to a labeler (responses in the labeler's order). */
export interface WebAssignment {
  id: string;
  batchId: string;
  key: string;
  prompt: string;
  responses: { index: number; text: string }[];
}

/** A signed-in web session. */
export class WebSession {
  private constructor(
    readonly baseUrl: string,
    private readonly cookie: string,
    private readonly csrf: string,
    readonly name: string,
    readonly admin: boolean,
    private readonly timeoutMs: number,
  ) {}

  /** Signs in with a labeler's token or the admin token. */
  static async signIn(baseUrl: string, token: string, timeoutMs = 30_000): Promise<WebSession> {
    const base = baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
    const res = await fetch(new URL("api/login", base), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json().catch(() => ({}))) as { error?: string; csrf?: string; name?: string; admin?: boolean };
    if (!res.ok) throw new Error(`sign-in at ${base}: ${res.status} ${body.error ?? ""}`.trim());
    const cookie = /lbl_session=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
    if (!cookie || !body.csrf) throw new Error(`sign-in at ${base}: no session in the answer`);
    return new WebSession(base, cookie, body.csrf, body.name ?? "", body.admin === true, timeoutMs);
  }

  /** A JSON call; throws with the server's message. */
  async call<T>(path: string, body?: unknown): Promise<T> {
    const res = await this.raw(path, body);
    const data = (await res.json().catch(() => ({}))) as { error?: string };
    if (!res.ok) throw Object.assign(new Error(`${path}: ${res.status} ${data.error ?? ""}`.trim()), { status: res.status });
    return data as T;
  }

  /** The raw response of a call (GET without a body, POST with one). */
  raw(path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Cookie: `lbl_session=${this.cookie}` };
    if (body !== undefined) Object.assign(headers, { "Content-Type": "application/json", "X-CSRF-Token": this.csrf });
    return fetch(new URL(path, this.baseUrl), {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  // labeler calls

  /** The next comparison, or null when there is none for this labeler. */
  async next(): Promise<WebAssignment | null> {
    return (await this.call<{ assignment: WebAssignment | null }>("api/next")).assignment;
  }

  /** Submits a ranking: `ranking[i]` for response index i (0 = best, ties share a rank), scores 1..7 or null. */
  async submit(assignment: string, ranking: readonly number[], extra: { scores?: (number | null)[]; flags?: object[] } = {}): Promise<void> {
    await this.call("api/submit", { assignment, groups: rankingToGroups(ranking), ...extra });
  }

  async skip(assignment: string): Promise<void> {
    await this.call("api/skip", { assignment });
  }

  async undo(): Promise<WebAssignment> {
    return (await this.call<{ assignment: WebAssignment }>("api/undo", {})).assignment;
  }

  // admin calls

  /** Creates a labeler; its token and invite link are shown only now. */
  createLabeler(name: string, simulated = false): Promise<{ name: string; token: string; inviteUrl: string }> {
    return this.call("api/admin/labelers", { name, simulated });
  }

  /** The admin page's figures. */
  stats<T = unknown>(): Promise<T> {
    return this.call<T>("api/admin/stats");
  }

  /** The rankings JSONL (of one batch when given). */
  async exportJsonl(o: { batch?: string; meta?: boolean } = {}): Promise<string> {
    const q = new URLSearchParams();
    if (o.batch) q.set("batch", o.batch);
    if (o.meta) q.set("meta", "1");
    const res = await this.raw(`api/admin/export${q.size ? "?" + q.toString() : ""}`);
    if (!res.ok) throw new Error(`export: ${res.status} ${await res.text()}`);
    return res.text();
  }
}

/** A ranking (rank per response index) as groups of indices, best group first: what the UI submits. */
export function rankingToGroups(ranking: readonly number[]): number[][] {
  const byRank = new Map<number, number[]>();
  ranking.forEach((r, i) => byRank.set(r, [...(byRank.get(r) ?? []), i]));
  return [...byRank.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
}
