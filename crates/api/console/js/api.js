// The one way the pages talk to the server: the public REST API under /api/v1, with the
// browser's session cookie. Validation and permissions are the API's; this only carries them.

/** A failed API call: the HTTP status, the error's code and detail, and a 422's fields. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    const fields = Array.isArray(detail) ? detail.filter((field) => field && Array.isArray(field.loc)) : [];
    const message = typeof detail === 'string' ? detail : fields.length ? 'Some fields are not valid.' : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && body.code;
    this.fields = fields;
  }
}

let bearer = null;
/**
 * Sends this token as `Authorization: Bearer` on every call, for a page whose session cookie
 * the browser will not keep (a portal framed by another site). It lives in memory only.
 */
export function useBearer(token) {
  bearer = token;
}

let unauthorizedHandler = null;
/** Called once with the error when any call answers 401 (the session ended). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** `api('GET', '/app', {query: {limit: 50}})`; resolves to the JSON body, or null for 204. */
export async function api(method, path, { body, query, quiet401 = false } = {}) {
  const url = new URL(`/api/v1${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null && item !== '') url.searchParams.append(name, String(item));
    }
  }
  const headers = { accept: 'application/json', 'x-webhookd-csrf': '1' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !quiet401 && unauthorizedHandler) unauthorizedHandler(error);
    throw error;
  }
  return data;
}

/** Path segment, encoded. */
export const seg = (value) => encodeURIComponent(String(value));

let documentPaths = null;
/**
 * Which routes this server has, from its OpenAPI document, so that pages offer an action
 * only when the API can do it (servers of other versions may lack a route).
 */
export async function features() {
  if (!documentPaths) {
    documentPaths = fetch('/api/v1/openapi.json', { credentials: 'same-origin' })
      .then((response) => (response.ok ? response.json() : { paths: {} }))
      .then((document) => new Set(Object.keys(document.paths || {}).map((path) => path.replace(/\{[^}]*\}/g, '{}'))))
      .catch(() => new Set());
  }
  const paths = await documentPaths;
  return {
    has(path) {
      return paths.has(path.replace(/\{[^}]*\}/g, '{}'));
    },
  };
}

/** Every capability of an app token; operators and local mode have them all. */
export const ALL_CAPABILITIES = ['ViewBase', 'ViewEndpointSecret', 'ManageEndpointSecret', 'CreateAttempts', 'ManageEndpoint'];
