// The one way the pages talk to the /v1 API: absolute URLs, the bearer token
// (asked for once per tab, sent as a header, never put in a URL), a bound on
// requests in flight, and a bounded retry when the server says it is busy.

const page = document.body.dataset;
const TOKEN_KEY = "segserve.token";
const MAX_IN_FLIGHT = 4; // the server's default number of work slots
const MAX_RETRIES = 5;

export const base = page.base || "";

export class ApiError extends Error {
  constructor(status, detail, url) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.url = url;
  }
}

export function tokenRequired() {
  return page.token === "required";
}

/** The absolute URL of an API path with its query parameters (empty ones left out). */
export function apiUrl(path, params = {}) {
  const url = new URL(base + path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  return url.toString();
}

/** The split's path below /v1/splits (split names are escaped once, here). */
export function splitPath(split, ...rest) {
  return ["/v1/splits", encodeURIComponent(split), ...rest].join("/");
}

// -- the token ---------------------------------------------------------------

let prompt = null; // one prompt shared by every request that needs the token

function storedToken() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

function askToken(message) {
  if (prompt === null) {
    prompt = new Promise((resolve) => {
      const dialog = document.getElementById("token-dialog");
      const input = document.getElementById("token-input");
      document.getElementById("token-message").textContent = message;
      input.value = "";
      dialog.addEventListener(
        "close",
        () => {
          window.sessionStorage.setItem(TOKEN_KEY, input.value.trim());
          prompt = null;
          resolve();
        },
        { once: true },
      );
      dialog.showModal();
      input.focus();
    });
  }
  return prompt;
}

// -- requests in flight ------------------------------------------------------

let inFlight = 0;
const waiting = [];

async function acquire() {
  if (inFlight < MAX_IN_FLIGHT) {
    inFlight += 1;
    return;
  }
  await new Promise((resolve) => waiting.push(resolve)); // handed over by release()
}

function release() {
  const next = waiting.shift();
  if (next) next();
  else inFlight -= 1;
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || response.statusText;
  } catch {
    return response.statusText;
  }
}

function retryDelay(response, attempt) {
  const seconds = Number(response.headers.get("Retry-After"));
  return 1000 * (Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 5) : 0.2 * 2 ** attempt);
}

/** GET ``url`` with the token; the response when it is 2xx, else an ApiError. */
export async function request(url) {
  for (let attempt = 0; ; attempt += 1) {
    if (tokenRequired() && !storedToken()) await askToken("");
    const token = storedToken();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    await acquire();
    let response;
    try {
      response = await fetch(url, { headers });
    } finally {
      release();
    }
    if (response.status === 401) {
      const detail = await problemDetail(response);
      if (storedToken() === token) {
        window.sessionStorage.removeItem(TOKEN_KEY);
        await askToken(token ? `The server refused that token: ${detail}` : detail);
      }
      continue; // with the new token (another request may have asked for it already)
    }
    if ((response.status === 503 || response.status === 429) && attempt < MAX_RETRIES) {
      await new Promise((resolve) => setTimeout(resolve, retryDelay(response, attempt)));
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await problemDetail(response), url);
    return response;
  }
}

export async function getJson(path, params = {}) {
  return (await request(apiUrl(path, params))).json();
}

/** A blob: URL of the picture at ``url`` (fetched with the token), and the response. */
export async function getPicture(url) {
  const response = await request(url);
  return { src: URL.createObjectURL(await response.blob()), response };
}

/** A curl command line for ``url``; the token comes from the environment, never from here. */
export function curlLine(url, output) {
  const auth = tokenRequired() ? `-H "Authorization: Bearer $SEGSERVE_API_TOKEN" ` : "";
  const out = output ? `-o ${output} ` : "";
  return `curl -fsS ${auth}${out}'${url}'`;
}
