// The labeler's page: sign in (token or invite link), get the next comparison, order the
// responses by drag and drop or by keyboard, tie, score and flag them, submit, skip or undo.
import { api, byId, currentUser, el, setupSignIn, showError, showUser, signIn, type Me } from "./common.js";

interface Assignment {
  id: string;
  batchId: string;
  key: string;
  prompt: string;
  responses: { index: number; text: string }[];
}

const FLAGS = [
  { name: "failsInstruction", key: "f", label: "Fails to follow the instruction" },
  { name: "madeUpFacts", key: "m", label: "Made-up facts" },
  { name: "harmful", key: "h", label: "Harmful or inappropriate" },
] as const;

let current: Assignment | undefined;
let done = 0;
let dragged: HTMLLIElement | undefined;

const list = () => byId<HTMLOListElement>("responses");
const cards = () => [...list().querySelectorAll<HTMLLIElement>("li.card")];

/** Rank numbers shown on the cards: tied responses share the lowest rank of their group. */
function renumber(): void {
  let rank = 0;
  cards().forEach((c, pos) => {
    const tie = c.querySelector<HTMLInputElement>("input.tie-box") as HTMLInputElement;
    const tied = pos > 0 && tie.checked;
    if (pos === 0) tie.checked = false;
    tie.disabled = pos === 0;
    (tie.parentElement as HTMLElement).hidden = pos === 0;
    if (!tied) rank = pos + 1;
    c.classList.toggle("tied", tied);
    const badge = c.querySelector(".rank") as HTMLElement;
    badge.textContent = String(rank);
    c.setAttribute("aria-label", `Response ranked ${rank}${tied ? ", tied with the one above" : ""}`);
  });
}

function move(card: HTMLLIElement, delta: -1 | 1): void {
  if (delta < 0 && card.previousElementSibling) list().insertBefore(card, card.previousElementSibling);
  else if (delta > 0 && card.nextElementSibling) list().insertBefore(card.nextElementSibling, card);
  renumber();
  card.focus();
}

function makeCard(r: { index: number; text: string }): HTMLLIElement {
  const li = el("li", "card");
  li.tabIndex = 0;
  li.draggable = true;
  li.dataset.index = String(r.index);
  const head = el("div", "head");
  head.append(el("span", "rank", "?"), el("span", "handle", "⠿"));
  const tieLabel = el("label", "tie");
  const tie = el("input", "tie-box");
  tie.type = "checkbox";
  tie.addEventListener("change", renumber);
  tieLabel.append(tie, document.createTextNode(" tie with above"));
  const up = el("button", "up", "▲");
  up.type = "button";
  up.setAttribute("aria-label", "Move up");
  up.addEventListener("click", () => move(li, -1));
  const down = el("button", "down", "▼");
  down.type = "button";
  down.setAttribute("aria-label", "Move down");
  down.addEventListener("click", () => move(li, 1));
  head.append(tieLabel, el("span", "spacer"), up, down);
  // Model text: textContent only.
  const text = el("pre", "text response-text", r.text);
  const meta = el("div", "meta");
  const scoreLabel = el("label", "score-label", "Score ");
  const score = el("select", "score");
  score.setAttribute("aria-label", "Score 1 to 7");
  score.append(el("option", undefined, "–"));
  (score.firstChild as HTMLOptionElement).value = "";
  for (let s = 1; s <= 7; s++) {
    const o = el("option", undefined, String(s));
    o.value = String(s);
    score.append(o);
  }
  scoreLabel.append(score);
  meta.append(scoreLabel);
  for (const f of FLAGS) {
    const l = el("label", "flag-label");
    const box = el("input", "flag");
    box.type = "checkbox";
    box.dataset.flag = f.name;
    box.addEventListener("change", () => l.classList.toggle("flagged", box.checked));
    l.append(box, document.createTextNode(" " + f.label));
    meta.append(l);
  }
  li.append(head, text, meta);

  li.addEventListener("keydown", (ev) => {
    if (ev.target !== li) return; // typing in a control keeps its own keys
    const k = ev.key;
    if ((k === "ArrowUp" || k === "ArrowDown") && ev.altKey) {
      move(li, k === "ArrowUp" ? -1 : 1);
    } else if (k === "ArrowUp" || k === "ArrowDown") {
      const next = (k === "ArrowUp" ? li.previousElementSibling : li.nextElementSibling) as HTMLElement | null;
      next?.focus();
    } else if (k === "t" || k === "T") {
      if (li.previousElementSibling) {
        tie.checked = !tie.checked;
        renumber();
      }
    } else if (/^[0-7]$/.test(k)) {
      score.value = k === "0" ? "" : k;
    } else {
      const f = FLAGS.find((x) => x.key === k.toLowerCase());
      if (!f || ev.ctrlKey || ev.metaKey) return;
      const box = li.querySelector<HTMLInputElement>(`input.flag[data-flag="${f.name}"]`) as HTMLInputElement;
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change"));
    }
    ev.preventDefault();
  });

  li.addEventListener("dragstart", (ev) => {
    dragged = li;
    li.classList.add("dragging");
    ev.dataTransfer?.setData("text/plain", li.dataset.index ?? "");
    if (ev.dataTransfer) ev.dataTransfer.effectAllowed = "move";
  });
  li.addEventListener("dragend", () => {
    li.classList.remove("dragging");
    dragged = undefined;
    renumber();
  });
  li.addEventListener("dragover", (ev) => {
    if (!dragged || dragged === li) return;
    ev.preventDefault();
    const box = li.getBoundingClientRect();
    const before = ev.clientY < box.top + box.height / 2;
    list().insertBefore(dragged, before ? li : li.nextElementSibling);
  });
  li.addEventListener("drop", (ev) => {
    ev.preventDefault();
    renumber();
  });
  return li;
}

function show(a: Assignment | null): void {
  current = a ?? undefined;
  byId("comparison").hidden = !a;
  byId("empty").hidden = Boolean(a);
  byId("status").textContent = `${done} ranked this session` + (a ? ` · comparison ${a.key} of batch ${a.batchId}` : "");
  if (!a) return;
  byId("prompt").textContent = a.prompt;
  list().replaceChildren(...a.responses.map(makeCard));
  renumber();
  (cards()[0] as HTMLElement | undefined)?.focus();
}

async function next(): Promise<void> {
  const r = await api<{ assignment: Assignment | null }>("/api/next");
  show(r.assignment);
}

/** The ordering with ties: groups of response indices, best first. */
function groups(): number[][] {
  const out: number[][] = [];
  for (const c of cards()) {
    const idx = Number(c.dataset.index);
    const tied = (c.querySelector("input.tie-box") as HTMLInputElement).checked;
    if (tied && out.length) out[out.length - 1].push(idx);
    else out.push([idx]);
  }
  return out;
}

async function submit(): Promise<void> {
  if (!current) return;
  const k = current.responses.length;
  const scores: (number | null)[] = new Array(k).fill(null);
  const flags = Array.from({ length: k }, () => ({ failsInstruction: false, madeUpFacts: false, harmful: false }));
  for (const c of cards()) {
    const i = Number(c.dataset.index);
    const s = (c.querySelector("select.score") as HTMLSelectElement).value;
    scores[i] = s ? Number(s) : null;
    for (const box of c.querySelectorAll<HTMLInputElement>("input.flag")) flags[i][box.dataset.flag as "harmful"] = box.checked;
  }
  await api("/api/submit", { assignment: current.id, groups: groups(), scores, flags });
  done++;
  showError("");
  await next();
}

async function skip(): Promise<void> {
  if (!current) return;
  await api("/api/skip", { assignment: current.id });
  showError("");
  await next();
}

async function undo(): Promise<void> {
  const r = await api<{ assignment: Assignment }>("/api/undo", {});
  done = Math.max(0, done - 1);
  showError("");
  show(r.assignment);
}

function report(p: Promise<unknown>): void {
  p.catch((e: Error) => showError(e.message));
}

async function start(me: Me): Promise<void> {
  if (me.admin) {
    showError("This is the admin token: open /admin for the admin page, or sign in with a labeler's token here.");
    byId("signin").hidden = false;
    return;
  }
  showUser(me);
  byId("work").hidden = false;
  await next();
}

async function main(): Promise<void> {
  setupSignIn((me) => report(start(me)));
  byId("submit").addEventListener("click", () => report(submit()));
  byId("skip").addEventListener("click", () => report(skip()));
  byId("undo").addEventListener("click", () => report(undo()));
  byId("undo-empty").addEventListener("click", () => report(undo()));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && current) {
      ev.preventDefault();
      report(submit());
    }
  });
  // An invite link carries the token in the fragment (never sent to the server or in a Referer).
  const invite = /^#invite=([A-Za-z0-9_-]{8,512})$/.exec(location.hash);
  if (invite) {
    history.replaceState(null, "", location.pathname);
    try {
      return await start(await signIn(invite[1]));
    } catch (e) {
      showError(`The invite link did not work: ${(e as Error).message}`);
    }
  }
  const me = await currentUser();
  if (me) return start(me);
  byId("signin").hidden = false;
}

report(main());
