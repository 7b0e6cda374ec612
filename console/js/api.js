// The API client: base URL from config.json (written by the deployment, or by local mode), the key from the
// session, errors in the API's {"error": {code, message, details}} shape.

import { apiKey } from "./session.js";

let baseUrl = null;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  const config = await response.json();
  const url = new URL(config.api_base_url);
  if (!["https:", "http:"].includes(url.protocol)) throw new Error("config.json names no http(s) API");
  baseUrl = url.href.endsWith("/") ? url.href : `${url.href}/`;
  return baseUrl;
}

export function apiBase() {
  return baseUrl;
}

function url(path, query) {
  const target = new URL(path.replace(/^\//, ""), baseUrl);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target;
}

/** One API call; `key` overrides the session's (signing in checks a key before keeping it). */
export async function call(method, path, { query, body, headers, key } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const auth = key ?? apiKey();
  if (auth) sent.Authorization = `Bearer ${auth}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "network_error", `The API at ${baseUrl} could not be reached.`);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `The API answered ${response.status}.`,
      error.details,
    );
  }
  return payload;
}

export const api = {
  jobs: (query) => call("GET", "jobs", { query }),
  job: (id) => call("GET", `jobs/${encodeURIComponent(id)}`),
  cancel: (id) => call("POST", `jobs/${encodeURIComponent(id)}/cancel`),
  submit: (body, idempotencyKey) => call("POST", "jobs", { body, headers: { "Idempotency-Key": idempotencyKey } }),
  providers: () => call("GET", "providers"),
  usage: () => call("GET", "usage"),
};
