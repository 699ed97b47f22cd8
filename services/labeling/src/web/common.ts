// Shared by the labeler and admin pages: the JSON API with the session's CSRF token, and DOM helpers.
// Every text that comes from the server is set with textContent: model text is never HTML.

let csrf = "";

/** The signed-in user, as /api/session and /api/login answer. */
export interface Me {
  name: string;
  admin: boolean;
  csrf: string;
}

/** Calls the JSON API; throws an Error with the server's message. */
export async function api<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = body === undefined ? { method: "GET", credentials: "same-origin" } : {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) {
    const err = new Error(data.error ?? `HTTP ${res.status}`) as Error & { status?: number };
    err.status = res.status;
    throw err;
  }
  return data as T;
}

/** The current session, or undefined when signed out. */
export async function currentUser(): Promise<Me | undefined> {
  try {
    const me = await api<Me>("/api/session");
    csrf = me.csrf;
    return me;
  } catch {
    return undefined;
  }
}

/** Signs in with a token. */
export async function signIn(token: string): Promise<Me> {
  const me = await api<Me>("/api/login", { token });
  csrf = me.csrf;
  return me;
}

export async function signOut(): Promise<void> {
  await api("/api/logout", {});
  csrf = "";
}

/** document.getElementById, typed, throwing when missing. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

/** Creates an element with a class and text content (never innerHTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Shows an error message (or clears it). */
export function showError(msg: string): void {
  byId("error").textContent = msg;
}

/** Wires the sign-in form and the sign-out button; `onSignedIn` runs with the user. */
export function setupSignIn(onSignedIn: (me: Me) => void): void {
  byId<HTMLFormElement>("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>("token");
    signIn(input.value.trim()).then(
      (me) => {
        input.value = "";
        showError("");
        onSignedIn(me);
      },
      (e: Error) => showError(e.message),
    );
  });
  byId("logout").addEventListener("click", () => {
    signOut().then(
      () => location.reload(),
      (e: Error) => showError(e.message),
    );
  });
}

/** Shows who is signed in and the sign-out button. */
export function showUser(me: Me): void {
  byId("who").textContent = me.admin ? "admin" : me.name;
  byId("logout").hidden = false;
  byId("signin").hidden = true;
}
