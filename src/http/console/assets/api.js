// Calls to the service: the superadmin API and the console's own routes, with the
// session cookie (sent by the browser, HttpOnly) and, for anything that changes
// state, the session's CSRF token. The CSRF token lives in this module only: never
// in storage, never in a URL.

let csrfToken = null;
let onSignedOut = () => {};

export function setCsrf(token) {
  csrfToken = token || null;
}

/** Called with the error whenever the service says the session is gone (401). */
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

/** An answer other than 2xx, with the service's {detail, code}. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.detail = detail || "";
  }
}

/**
 * fetch() for JSON: `api("/api/…", {method, body})` → the parsed answer, or throws
 * ApiError. `quiet401`: a 401 is the caller's business (the sign-in form).
 */
export async function api(path, { method = "GET", body, signal, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && csrfToken) {
    headers["X-CSRF-Token"] = csrfToken;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
      signal,
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "");
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.code, data && data.detail);
    if (resp.status === 401 && !quiet401) onSignedOut(err);
    throw err;
  }
  return data;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;
