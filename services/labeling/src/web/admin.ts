// The admin page: per-labeler throughput, time per comparison and agreement (people and
// simulated labelers side by side), batches, new labelers with invite links, the export.
import { api, byId, currentUser, el, setupSignIn, showError, showUser, type Me } from "./common.js";

interface Agreement {
  agree: number;
  pairs: number;
  rate: number | null;
}
interface Stats {
  labelers: { name: string; simulated: boolean; disabled: boolean; rankings: number; skipped: number; last24h: number; medianMs: number | null; meanMs: number | null; agreement: Agreement }[];
  agreement: { humans: Agreement; simulated: Agreement; mixed: Agreement };
  batches: { batchId: string; source: string; comparisons: number; ranked: number; complete: number; rankings: number; overlapping: number }[];
}

const pct = (a: Agreement) => (a.rate === null ? "–" : `${(100 * a.rate).toFixed(1)}%`);
const secs = (ms: number | null) => (ms === null ? "–" : (ms / 1000).toFixed(1));

function row(cells: (string | number)[], numericFrom = 1): HTMLTableRowElement {
  const tr = el("tr");
  cells.forEach((c, i) => tr.append(el("td", i >= numericFrom && typeof c === "number" ? "num" : undefined, String(c))));
  return tr;
}

async function refresh(): Promise<void> {
  const s = await api<Stats>("/api/admin/stats");
  const a = s.agreement;
  byId("agreement").querySelector("tbody")?.replaceChildren(
    row(["people with people", pct(a.humans), a.humans.pairs]),
    row(["simulated labelers with each other", pct(a.simulated), a.simulated.pairs]),
    row(["people with simulated labelers", pct(a.mixed), a.mixed.pairs]),
  );
  byId("labelers").querySelector("tbody")?.replaceChildren(
    ...s.labelers.map((l) => {
      const tr = row([l.name, (l.simulated ? "simulated" : "person") + (l.disabled ? " (disabled)" : ""), l.rankings, l.last24h, l.skipped, secs(l.medianMs), secs(l.meanMs), l.agreement.pairs ? `${pct(l.agreement)} (${l.agreement.pairs} pairs)` : "–"]);
      const cell = el("td");
      if (!l.disabled) {
        const b = el("button", "disable", "Disable");
        b.type = "button";
        b.setAttribute("aria-label", `Disable ${l.name}`);
        b.addEventListener("click", () => {
          if (!confirm(`Disable ${l.name}? Their token and sessions stop working; their rankings stay.`)) return;
          api("/api/admin/labelers/disable", { name: l.name })
            .then(refresh)
            .catch((e: Error) => showError(e.message));
        });
        cell.append(b);
      }
      tr.append(cell);
      return tr;
    }),
  );
  byId("batches").querySelector("tbody")?.replaceChildren(...s.batches.map((b) => row([b.batchId, b.source, b.comparisons, b.ranked, b.complete, b.rankings, b.overlapping], 2)));
}

async function start(me: Me): Promise<void> {
  if (!me.admin) {
    showError("This page needs the admin token (you are signed in as a labeler).");
    byId("signin").hidden = false;
    return;
  }
  showUser(me);
  byId("dashboard").hidden = false;
  await refresh();
}

async function main(): Promise<void> {
  setupSignIn((me) => void start(me).catch((e: Error) => showError(e.message)));
  byId<HTMLFormElement>("new-labeler").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = byId<HTMLInputElement>("labeler-name");
    const simulated = byId<HTMLInputElement>("labeler-simulated");
    api<{ inviteUrl: string }>("/api/admin/labelers", { name: name.value.trim(), simulated: simulated.checked })
      .then(async (r) => {
        byId("invite-url").textContent = r.inviteUrl;
        byId("invite").hidden = false;
        name.value = "";
        showError("");
        await refresh();
      })
      .catch((e: Error) => showError(e.message));
  });
  const invite = /^#token=([A-Za-z0-9_-]{8,512})$/.exec(location.hash);
  if (invite) {
    history.replaceState(null, "", location.pathname);
    byId<HTMLInputElement>("token").value = invite[1];
    byId<HTMLFormElement>("signin-form").requestSubmit();
    return;
  }
  const me = await currentUser();
  if (me) return start(me);
  byId("signin").hidden = false;
}

main().catch((e: Error) => showError(e.message));
setInterval(() => {
  if (!byId("dashboard").hidden) refresh().catch(() => undefined);
}, 10_000);
