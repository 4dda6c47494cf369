// Every call to the API goes through here: the bearer token, JSON, idempotency keys, and errors as ApiError.
// URLs are relative to the page (/app/ → ../api/…), so the app also works behind a proxy's path prefix.

const TOKEN_KEY = "threadstore.token";
const API_ROOT = new URL("../api/", document.baseURI);

export class ApiError extends Error {
  constructor({ status = 0, reason = null, requestId = null, length = null, network = false }) {
    super(network ? "network error" : `HTTP ${status}`);
    this.status = status;
    this.reason = reason;
    this.requestId = requestId;
    this.length = length;
    this.network = network;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  readAfter = null;
}

export function apiUrl(path, query = {}) {
  const url = new URL(path, API_ROOT);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

// Read-your-writes through a replica (docs/api.md "Read replicas"): the latest position a write answered is sent
// back with every read of threads and messages, so a page spread over instances still sees its own writes.
let readAfter = null;

function position(value) {
  const [high, low] = value.split("/");
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

function rememberReadAfter(value) {
  if (!value || !/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(value)) return;
  if (readAfter === null || position(value) > position(readAfter)) readAfter = value;
}

const unauthorizedListeners = [];

// Called on any 401 after sign-in: the token expired or was revoked.
export function onUnauthorized(listener) {
  unauthorizedListeners.push(listener);
}

// A key for one create, append or fork: a retry of the same request sends the same key.
export function newIdempotencyKey() {
  return crypto.randomUUID();
}

// options: query, json, idempotencyKey, ifMatch (a thread version), token.
export async function request(method, path, options = {}) {
  const headers = { Accept: "application/json" };
  const token = options.token ?? getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  if (options.ifMatch !== undefined) headers["If-Match"] = `"${options.ifMatch}"`;
  if (method === "GET" && readAfter && path.startsWith("threads")) headers["X-Read-After"] = readAfter;
  let response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError({ network: true });
  }
  if (method !== "GET") rememberReadAfter(response.headers.get("X-Read-After"));
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError({
      status: response.status,
      reason: body?.reason ?? null,
      requestId: body?.request_id ?? response.headers.get("X-Request-ID"),
      length: body?.length ?? null,
    });
    if (response.status === 401 && !options.token) {
      for (const listener of unauthorizedListeners) listener(error);
    }
    throw error;
  }
  return body;
}

export const get = (path, query, options = {}) => request("GET", path, { ...options, query });
export const post = (path, json, options = {}) => request("POST", path, { ...options, json });
export const patch = (path, json, options = {}) => request("PATCH", path, { ...options, json });
export const put = (path, json, options = {}) => request("PUT", path, { ...options, json });
export const del = (path, query, options = {}) => request("DELETE", path, { ...options, query });
