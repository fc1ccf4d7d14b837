// The console API over fetch: the session cookie goes by itself, the CSRF token (readable
// ivr_csrf cookie) goes in X-CSRF-Token on every state-changing request.
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || String(status));
    this.status = status;
    this.code = error.code || "http_" + status;
    this.field = error.field || null;
    this.details = error.details || [];
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)ivr_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.append(k, v);
  }
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

export async function api(method, path, { body, query, raw, contentType } = {}) {
  const headers = {};
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers["Content-Type"] = contentType || "text/csv";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(withQuery(path, query), {
    method, headers, body: payload, credentials: "same-origin",
  });
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, (data && data.error) || {});
    if (resp.status === 401 && !path.startsWith("/api/auth/login")) onUnauthenticated(err);
    throw err;
  }
  return data;
}
