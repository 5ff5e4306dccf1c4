import { useState, useEffect } from 'preact/hooks';

// What this server's API offers, read from its own OpenAPI document, so screens for
// capabilities a deployment does not have (e.g. a build without enrichment) stay hidden.
let loaded = null;

export function loadApiDocument() {
  if (!loaded) {
    loaded = fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .catch(() => ({ paths: {} }));
  }
  return loaded;
}

export const hasPath = (doc, path) => !!(doc && doc.paths && doc.paths[path]);

/** The GET operations tagged `tag` that take query parameters: [{path, summary, params}]. */
export function queryTools(doc, tag, { skip = [] } = {}) {
  const out = [];
  for (const [path, item] of Object.entries((doc && doc.paths) || {})) {
    const op = item.get;
    if (!op || !(op.tags || []).includes(tag) || !path.startsWith('/api/v1/') || path.includes('{')) continue;
    const params = (op.parameters || []).filter((p) => p.in === 'query' && !skip.includes(p.name));
    if (params.length) out.push({ path, summary: op.summary || op.description || path, description: op.description || '', params });
  }
  return out;
}

/** The API document once loaded (null before), for screens with optional parts. */
export function useApiDocument() {
  const [doc, setDoc] = useState(null);
  useEffect(() => { loadApiDocument().then(setDoc); }, []);
  return doc;
}
