// api.js: the one way the console talks to the API, and where the session is kept.
//
// The token lives in sessionStorage: it survives a reload of the tab but not the tab's closing,
// and other tabs do not share it, so a forgotten tab or a shared machine keeps no lasting session.
// (Any script running in the page could read either storage; the CSP and text-only rendering
// are what keep such scripts out.)

const KEY = "crm.session";

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || "request failed (" + status + ")");
    this.status = status;
    this.code = e.code || "http_" + status;
    this.fields = e.fields || null;
    this.body = body; // the whole answer: a CSV import's 422 carries its report beside "error"
  }
}

let onUnauthorized = () => {};

/** fn(message) runs when the API says the session is no longer valid (401). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function saveSession(token, user) {
  sessionStorage.setItem(KEY, JSON.stringify({ token, user }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
  usersCache = null;
}

function headers(accept, opts) {
  const s = session();
  const out = { Accept: accept };
  if (s && s.token) out.Authorization = "Bearer " + s.token;
  if (opts.version !== undefined) out["If-Match"] = '"' + opts.version + '"';
  return out;
}

async function send(path, init) {
  try {
    return await fetch("/api" + path, { ...init, cache: "no-store" });
  } catch {
    throw new ApiError(0, { error: { code: "network", message: "The server cannot be reached. Check your connection and try again." } });
  }
}

/** The ApiError for a refused answer; a 401 also ends the session. */
function refused(res, data, opts) {
  // A 401 on sign-in itself is a wrong password, not an ended session.
  if (res.status === 401 && !opts.public) {
    clearSession();
    onUnauthorized("Your session has ended (expired or revoked). Please sign in again.");
  }
  return new ApiError(res.status, data);
}

/** Sends a request with headers h; resolves to the parsed JSON answer (null for 204), rejects
 * with an ApiError. */
async function call(method, path, h, body, opts) {
  const res = await send(path, { method, headers: h, body });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.ok) return data;
  throw refused(res, data, opts);
}

/** Sends a request with a JSON body (or none); resolves and rejects as call(). */
export function api(method, path, body, opts = {}) {
  const h = headers("application/json", opts);
  if (body !== undefined) h["Content-Type"] = "application/json";
  return call(method, path, h, body === undefined ? undefined : JSON.stringify(body), opts);
}

/** POSTs a file (a Blob, such as a File from an <input type=file>) as the body, as is, with
 * type as its Content-Type; the browser reads it from disk as it sends it. Resolves and
 * rejects as api(). */
export function upload(path, file, type) {
  const h = headers("application/json", {});
  h["Content-Type"] = type;
  return call("POST", path, h, file, {});
}

/**
 * GETs path (a file the API sends as an attachment) and hands it to the browser as a download
 * named as the API names it. The API takes the token in the Authorization header only, which a
 * plain link cannot send, so the file is fetched and saved from a Blob: the browser holds the
 * whole file in memory. Resolves to its size in bytes; rejects with an ApiError.
 */
export async function download(path, accept, fallbackName) {
  const res = await send(path, { method: "GET", headers: headers(accept + ", application/json", {}) });
  if (!res.ok) throw refused(res, await res.json().catch(() => null), {});
  const blob = await res.blob();
  const named = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = named ? named[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  // Some browsers start reading the Blob after click() returns: it is freed a little later.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob.size;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

let usersCache = null;

/** Every user (ADMIN and MANAGER may list them), for owner menus: fetched page by page, kept a
 * minute so moving between screens does not fetch them again. */
export function allUsers() {
  if (usersCache && usersCache.at > Date.now() - 60000) return usersCache.list;
  const list = (async () => {
    const out = [];
    for (let offset = 0; offset < 5000; offset += 100) {
      const r = await api("GET", "/users" + query({ limit: 100, offset }));
      out.push(...r.data);
      if (offset + 100 >= r.page.total) break;
    }
    return out;
  })();
  usersCache = { at: Date.now(), list };
  list.catch(() => (usersCache = null));
  return list;
}
