// The console's only way to the server: the public JSON API, with the API key from this
// tab's session storage. It is never put in a URL, a log or local storage.

const KEY = 'leadpush.apiKey';
let onUnauthorized = () => {};

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
  /** Called when the API answers 401 (key revoked or wrong). */
  onUnauthorized: (fn) => { onUnauthorized = fn; },
};

/** An error answer of the API: `{"error": {"code", "message", "field"?}}`, in plain words. */
export class ApiError extends Error {
  constructor(status, body, requestId) {
    const error = (body && body.error) || {};
    super(error.message || plainStatus(status));
    this.status = status;
    this.code = error.code || (status ? `http_${status}` : 'network_error');
    this.field = error.field || null;
    this.body = body;
    this.requestId = requestId || null;
  }
}

function plainStatus(status) {
  if (!status) return 'Leadpush could not be reached. Check your connection and try again.';
  if (status >= 500) return 'Leadpush had a problem answering. Please try again in a moment.';
  return `The request was refused (HTTP ${status}).`;
}

/** `api('GET', '/api/v1/campaigns', {query: {limit: 20}})` -> the parsed body, or throws ApiError. */
export async function api(method, path, { body, query, key } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  const headers = { Accept: 'application/json' };
  const apiKey = key || session.key();
  if (apiKey) headers['X-Satellyte-API-Key'] = apiKey;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, null, null);
  }
  const requestId = response.headers.get('x-request-id');
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    const err = new ApiError(response.status, json, requestId);
    if (response.status === 401 && !key) onUnauthorized(err);
    throw err;
  }
  return json || {};
}
