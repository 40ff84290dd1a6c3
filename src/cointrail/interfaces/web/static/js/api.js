// The API client: the key lives in sessionStorage (this tab only); every call sends it.
const KEY = "cointrail.apiKey";
const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.kind = body && body.error ? body.error : "HTTPError";
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
  },
};

async function call(method, path, { params, body } = {}) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Authorization: `Bearer ${session.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, doc);
  return doc;
}

export const api = {
  me: () => call("GET", "/me"),
  search: (q) => call("GET", "/search", { params: { q } }),
  address: (a) => call("GET", `/addresses/${encodeURIComponent(a)}`),
  tx: (t) => call("GET", `/txs/${encodeURIComponent(t)}`),
  block: (b) => call("GET", `/blocks/${encodeURIComponent(b)}`),
  cluster: (id) => call("GET", `/clusters/${encodeURIComponent(id)}`, { params: { limit: 50 } }),
  addressNeighbours: (a, cursor) =>
    call("GET", `/addresses/${encodeURIComponent(a)}/neighbours`, { params: { limit: 20, cursor } }),
  txNeighbours: (t, cursor) =>
    call("GET", `/txs/${encodeURIComponent(t)}/neighbours`, { params: { limit: 50, cursor } }),
  trace: (direction, params) => call("GET", `/trace/${direction}`, { params }),
  path: (params) => call("GET", "/path", { params }),
  screen: (addresses, asOf) => call("POST", "/screen", { body: { addresses, as_of: asOf || null } }),
};

// Amounts are integers in satoshi; shown in coins with 8 decimals, never through floats.
export function coins(sat) {
  if (sat === null || sat === undefined) return "–";
  const negative = sat < 0;
  const digits = String(Math.abs(sat)).padStart(9, "0");
  const whole = digits.slice(0, -8);
  const frac = digits.slice(-8).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${frac ? "." + frac : ""}`;
}

export function short(text) {
  if (!text) return "?";
  return text.length > 16 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text;
}

// Build DOM without innerHTML: text is always text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
