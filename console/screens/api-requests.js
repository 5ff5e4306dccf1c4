// API Requests (the API Requests specification): the workspace limits, the endpoint table
// with a Test button that shows the rendered request and the response, and a form for new
// endpoints.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import {
  html, Field, ErrorBanner, Notice, Pager, Badge, usePaged, useAction, useResource, fieldError,
} from '../lib/ui.js';

const PAGE = 20;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export function ApiRequests() {
  const [listKey, setListKey] = useState(0);
  return html`<h1 tabindex="-1">API Requests</h1>
    <p class="muted">Reusable HTTP requests that campaign workflows run (Fetch API Data) to pull JSON before later steps.
      URL, headers, query and body are templates over <code>workspace</code>, <code>contact</code>, <code>campaign</code>, <code>workflow</code> and <code>node</code>.</p>
    <${Limits} />
    <${Endpoints} key=${listKey} />
    <${NewEndpoint} onCreated=${() => setListKey((k) => k + 1)} />`;
}

function Limits() {
  const settings = useResource(() => api('GET', '/api/v1/workspace/settings').then((b) => b.data), []);
  const [edit, setEdit] = useState(null);
  const action = useAction();
  const s = settings.data;
  const save = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = {};
      for (const k of ['api_request_max_timeout_ms', 'api_request_max_response_bytes']) {
        const text = String(edit[k]).trim();
        body[k] = /^\d+$/.test(text) ? Number(text) : text;
      }
      settings.set((await api('PATCH', '/api/v1/workspace/settings', { body })).data);
      setEdit(null);
    });
  };
  const err = action.error;
  return html`<section class="panel" aria-labelledby="limits" data-testid="workspace-limits">
    <div class="spread"><h2 id="limits">Workspace limits</h2>
      ${s && !edit && html`<button class="secondary small" onClick=${() => setEdit({ ...s })}>Change limits</button>`}</div>
    <${ErrorBanner} error=${settings.error} />
    ${s && !edit && html`<dl class="props">
      <dt>Longest timeout</dt><dd data-testid="limit-timeout">${s.api_request_max_timeout_ms} ms <span class="muted">(at most ${s.ceilings.api_request_max_timeout_ms} ms)</span></dd>
      <dt>Largest response</dt><dd data-testid="limit-response">${s.api_request_max_response_bytes} bytes <span class="muted">(at most ${s.ceilings.api_request_max_response_bytes} bytes)</span></dd>
    </dl>`}
    ${s && edit && html`<form onSubmit=${save} novalidate>
      <${Field} id="limit-timeout-ms" label="Longest timeout (ms)" hint=${`100 to ${s.ceilings.api_request_max_timeout_ms}.`} error=${fieldError(err, 'api_request_max_timeout_ms')}>
        ${(p) => html`<input ...${p} type="text" inputmode="numeric" value=${edit.api_request_max_timeout_ms}
          onInput=${(e) => setEdit({ ...edit, api_request_max_timeout_ms: e.target.value })} />`}
      </${Field}>
      <${Field} id="limit-response-bytes" label="Largest response (bytes)" hint=${`1024 to ${s.ceilings.api_request_max_response_bytes}.`} error=${fieldError(err, 'api_request_max_response_bytes')}>
        ${(p) => html`<input ...${p} type="text" inputmode="numeric" value=${edit.api_request_max_response_bytes}
          onInput=${(e) => setEdit({ ...edit, api_request_max_response_bytes: e.target.value })} />`}
      </${Field}>
      <${ErrorBanner} error=${err} fields=${['api_request_max_timeout_ms', 'api_request_max_response_bytes']} />
      <div class="row"><button type="submit" disabled=${action.busy}>Save limits</button>
        <button type="button" class="secondary" onClick=${() => { setEdit(null); action.setError(null); }}>Cancel</button></div>
    </form>`}
  </section>`;
}

function Endpoints() {
  const paged = usePaged((cursor) => api('GET', '/api/v1/api-requests', { query: { limit: PAGE, cursor } }), []);
  const [testing, setTesting] = useState(null);
  const action = useAction();
  const remove = (r) => action.run(async () => {
    if (!window.confirm(`Delete the API request "${r.name}"?`)) return;
    await api('DELETE', `/api/v1/api-requests/${encodeURIComponent(r.id)}`);
    paged.reload();
  });
  return html`<section class="panel" aria-labelledby="endpoints" data-testid="endpoints">
    <div class="spread"><h2 id="endpoints">Endpoints</h2><button class="secondary small" onClick=${paged.first}>Refresh</button></div>
    <${ErrorBanner} error=${paged.error || action.error} />
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No API requests yet. Create one below.</p>`}
    ${paged.items.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">API request endpoints</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Method</th><th scope="col">URL template</th>
        <th scope="col" class="num">Timeout</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${paged.items.map((r) => html`<tr data-api-request-id=${r.id}>
        <td>${r.name}<div class="hint"><code>${r.id}</code></div></td><td>${r.method}</td><td class="excerpt"><code>${r.url}</code></td>
        <td class="num">${r.timeout_ms} ms</td><td><${Badge} value=${r.enabled ? 'enabled' : 'disabled'} /></td>
        <td><div class="row"><button class="small" onClick=${() => setTesting(r)} aria-label=${`Test ${r.name}`}>Test</button>
          <button class="danger small" onClick=${() => remove(r)} aria-label=${`Delete ${r.name}`}>Delete</button></div></td></tr>`)}
      </tbody></table></div>`}
    <${Pager} paged=${paged} label="API request" />
    ${testing && html`<${TestPanel} request=${testing} key=${testing.id} onClose=${() => setTesting(null)} />`}
  </section>`;
}

function TestPanel({ request, onClose }) {
  const [leadId, setLeadId] = useState('');
  const [result, setResult] = useState(null);
  const action = useAction();
  const run = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = leadId.trim() ? { lead_id: leadId.trim() } : {};
      setResult((await api('POST', `/api/v1/api-requests/${encodeURIComponent(request.id)}/test`, { body })).data);
    });
  };
  const err = action.error;
  return html`<div class="panel" role="region" aria-labelledby="test-title" data-testid="test-panel">
    <div class="spread"><h3 id="test-title">Test “${request.name}”</h3><button class="secondary small" onClick=${onClose}>Close</button></div>
    <form onSubmit=${run} novalidate class="row">
      <${Field} id="test-lead-id" label="Lead id for the template variables (optional)" error=${fieldError(err, 'lead_id')}>
        ${(p) => html`<input ...${p} type="text" value=${leadId} onInput=${(e) => setLeadId(e.target.value)} />`}
      </${Field}>
      <button type="submit" disabled=${action.busy}>${action.busy ? 'Sending…' : 'Send test request'}</button>
    </form>
    <${ErrorBanner} error=${err} fields=${['lead_id']} />
    ${result && html`<${TestResult} result=${result} />`}
  </div>`;
}

export function TestResult({ result }) {
  const r = result.request;
  return html`<div data-testid="api-test-result">
    <${Notice} kind=${result.ok ? 'ok' : 'error'}>${result.ok ? 'JSON received' : 'The request did not return JSON'}
      ${' — '}${result.status ? `HTTP ${result.status}` : 'no HTTP answer'} in ${result.duration_ms} ms.
      ${result.error && html`<div><strong>${result.error.code}</strong>: ${result.error.message}${result.error.field ? ` (${result.error.field})` : ''}</div>`}
    </${Notice}>
    <div class="grid2">
      <div><h4>Rendered request</h4>
        ${r ? html`<pre data-testid="rendered-request">${`${r.method} ${r.url}\n${Object.entries(r.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n')}${r.body ? `\n\n${r.body}` : ''}`}</pre>`
          : html`<p>Not rendered (see the error).</p>`}</div>
      <div><h4>Response</h4>
        ${result.response !== null && result.response !== undefined
          ? html`<pre data-testid="test-response">${JSON.stringify(result.response, null, 2)}</pre>` : html`<p>No JSON body.</p>`}</div>
    </div>
  </div>`;
}

function Pairs({ id, legend, rows, setRows, error }) {
  return html`<fieldset aria-describedby=${error ? `${id}-error` : undefined}>
    <legend>${legend}</legend>
    ${rows.map((row, i) => html`<div class="headers-row">
      <label class="sr-only" for=${`${id}-name-${i}`}>${legend} ${i + 1} name</label>
      <input id=${`${id}-name-${i}`} type="text" placeholder="Name" value=${row.name}
        onInput=${(e) => setRows(rows.map((r, j) => (j === i ? { ...r, name: e.target.value } : r)))} />
      <label class="sr-only" for=${`${id}-value-${i}`}>${legend} ${i + 1} value</label>
      <input id=${`${id}-value-${i}`} type="text" placeholder="Value template" value=${row.value}
        onInput=${(e) => setRows(rows.map((r, j) => (j === i ? { ...r, value: e.target.value } : r)))} />
      <button type="button" class="danger small" onClick=${() => setRows(rows.filter((_, j) => j !== i))}
        aria-label=${`Remove ${legend.toLowerCase()} ${i + 1}`}>Remove</button></div>`)}
    <button type="button" class="secondary small" onClick=${() => setRows([...rows, { name: '', value: '' }])}>Add ${legend.toLowerCase().replace(/s$/, '')}</button>
    ${error && html`<div class="field-error" id=${`${id}-error`} role="alert">${error.message}</div>`}
  </fieldset>`;
}

function NewEndpoint({ onCreated }) {
  const blank = { name: '', method: 'GET', url: '', body: '', timeout_ms: '', enabled: true };
  const [form, setForm] = useState(blank);
  const [headers, setHeaders] = useState([]);
  const [query, setQuery] = useState([]);
  const [created, setCreated] = useState(null);
  const action = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const pairs = (rows) => Object.fromEntries(rows.filter((r) => r.name || r.value).map((r) => [r.name, r.value]));
      const body = { name: form.name, method: form.method, url: form.url, headers: pairs(headers), query: pairs(query), enabled: form.enabled };
      if (form.body.trim()) body.body = form.body;
      const t = form.timeout_ms.trim();
      if (t) body.timeout_ms = /^\d+$/.test(t) ? Number(t) : t;
      const saved = await api('POST', '/api/v1/api-requests', { body });
      setCreated(saved.data.name);
      setForm(blank);
      setHeaders([]);
      setQuery([]);
      onCreated();
    });
  };
  const err = action.error;
  return html`<section class="panel" aria-labelledby="new-endpoint">
    <h2 id="new-endpoint">New API request</h2>
    ${created && html`<${Notice} kind="ok">“${created}” saved.</${Notice}>`}
    <form onSubmit=${submit} novalidate>
      <${Field} id="apr-name" label="Name" error=${fieldError(err, 'name')}>
        ${(p) => html`<input ...${p} type="text" value=${form.name} onInput=${set('name')} />`}
      </${Field}>
      <${Field} id="apr-method" label="Method" error=${fieldError(err, 'method')}>
        ${(p) => html`<select ...${p} value=${form.method} onChange=${set('method')}>${METHODS.map((m) => html`<option value=${m}>${m}</option>`)}</select>`}
      </${Field}>
      <${Field} id="apr-url" label="URL template" hint="e.g. https://api.example.com/customers/{{ contact.email }}" error=${fieldError(err, 'url')}>
        ${(p) => html`<input ...${p} type="text" inputmode="url" value=${form.url} onInput=${set('url')} />`}
      </${Field}>
      <${Pairs} id="apr-headers" legend="Headers" rows=${headers} setRows=${setHeaders} error=${fieldError(err, 'headers')} />
      <${Pairs} id="apr-query" legend="Query parameters" rows=${query} setRows=${setQuery} error=${fieldError(err, 'query')} />
      <${Field} id="apr-body" label="Body template (optional)" hint="Usually JSON; Content-Type: application/json is added when no Content-Type header is set." error=${fieldError(err, 'body')}>
        ${(p) => html`<textarea ...${p} rows="4" value=${form.body} onInput=${set('body')}></textarea>`}
      </${Field}>
      <${Field} id="apr-timeout" label="Timeout in ms (optional)" hint="Up to the workspace limit above; the limit when empty." error=${fieldError(err, 'timeout_ms')}>
        ${(p) => html`<input ...${p} type="text" inputmode="numeric" value=${form.timeout_ms} onInput=${set('timeout_ms')} />`}
      </${Field}>
      <fieldset><legend>Status</legend>
        <label><input type="checkbox" checked=${form.enabled} onChange=${set('enabled')} /> Enabled</label></fieldset>
      <${ErrorBanner} error=${err} fields=${['name', 'method', 'url', 'headers', 'query', 'body', 'timeout_ms']} />
      <button type="submit" disabled=${action.busy}>Save API request</button>
    </form>
  </section>`;
}
