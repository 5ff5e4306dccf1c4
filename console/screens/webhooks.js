// Outbound webhooks (the outbound-webhooks specification): the form (name, notification
// URL, HTTP method, optional headers, enabled), the API's validation messages beside their
// fields, the enable toggle and auto-disable reason, secret rotation (shown once), a test
// send, and the delivery log with redelivery.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import {
  html, Field, ErrorBanner, Notice, Pager, CopyButton, Badge, LeadId, usePaged, useAction, useResource,
  fieldError, when, go,
} from '../lib/ui.js';

const PAGE = 20;
const FORM_FIELDS = ['name', 'url', 'method', 'headers', 'enabled', 'events'];

export function WebhookList() {
  const paged = usePaged((cursor) => api('GET', '/api/v1/webhooks', { query: { limit: PAGE, cursor } }), []);
  return html`
    <div class="spread"><h1 tabindex="-1">Webhooks</h1><a class="button" href="#/webhooks/new">New webhook</a></div>
    <p class="muted">Leadpush sends a signed <code>save_lead</code> notification to each enabled webhook whenever a lead is saved or updated.</p>
    <section class="panel" aria-labelledby="webhook-list">
      <div class="spread"><h2 id="webhook-list">Your webhooks</h2><button class="secondary small" onClick=${paged.first}>Refresh</button></div>
      <${ErrorBanner} error=${paged.error} />
      ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No webhooks yet. <a href="#/webhooks/new">Create one</a>.</p>`}
      ${paged.items.length > 0 && html`<div class="table-wrap"><table>
        <caption class="sr-only">Webhooks</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Notification URL</th><th scope="col">Method</th><th scope="col">Status</th></tr></thead>
        <tbody>${paged.items.map((w) => html`<tr>
          <td><a href=${`#/webhooks/${w.id}`}>${w.name}</a></td><td><code>${w.url}</code></td><td>${w.method}</td>
          <td><${Badge} value=${w.enabled ? 'enabled' : 'disabled'} />${w.disabled_reason && html`<div class="hint">${w.disabled_reason}</div>`}</td></tr>`)}
        </tbody></table></div>`}
      <${Pager} paged=${paged} label="Webhook" />
    </section>`;
}

export function WebhookNew() {
  const [created, setCreated] = useState(null);
  if (created) {
    return html`<h1 tabindex="-1">Webhook created</h1>
      <${SecretOnce} secret=${created.secret} />
      <p><a class="button" href=${`#/webhooks/${created.id}`}>Go to the webhook</a></p>`;
  }
  return html`<p><a href="#/webhooks">← All webhooks</a></p>
    <h1 tabindex="-1">New webhook</h1>
    <section class="panel"><${WebhookForm} onSaved=${setCreated} /></section>`;
}

function SecretOnce({ secret }) {
  return html`<div class="alert ok" role="status" data-testid="secret-once">
    <p><strong>Signing secret — copy it now; it will not be shown again.</strong>
      Use it to check the <code>webhook-signature</code> header of each notification.</p>
    <p class="secret mono" data-testid="secret">${secret}</p>
    <${CopyButton} text=${secret} label="Copy secret" />
  </div>`;
}

/** The outbound-webhooks specification's form. Editing: headers are shown masked by the
 * API, so rows added here replace them all and no rows keep them. */
function WebhookForm({ initial, onSaved, onCancel }) {
  const editing = !!initial;
  const [form, setForm] = useState(() => ({
    name: initial ? initial.name : '',
    url: initial ? initial.url : '',
    method: initial ? initial.method : 'POST',
    enabled: initial ? initial.enabled : true,
    headers: [],
  }));
  const action = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const setHeader = (i, k) => (e) => {
    const headers = form.headers.map((row, j) => (j === i ? { ...row, [k]: e.target.value } : row));
    setForm({ ...form, headers });
  };
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = { name: form.name, url: form.url, method: form.method, enabled: form.enabled, events: ['save_lead'] };
      const rows = form.headers.filter((r) => r.name !== '' || r.value !== '');
      if (!editing || rows.length > 0) body.headers = Object.fromEntries(rows.map((r) => [r.name, r.value]));
      const saved = editing
        ? await api('PATCH', `/api/v1/webhooks/${encodeURIComponent(initial.id)}`, { body })
        : await api('POST', '/api/v1/webhooks', { body });
      onSaved(saved.data);
    });
  };
  const err = action.error;
  const headersErr = fieldError(err, 'headers');
  return html`<form onSubmit=${submit} novalidate aria-label=${editing ? 'Edit webhook' : 'New webhook'}>
    <${Field} id="webhook-name" label="Name" hint="A unique name, e.g. Lead Tracking Webhook." error=${fieldError(err, 'name')}>
      ${(p) => html`<input ...${p} type="text" value=${form.name} onInput=${set('name')} />`}
    </${Field}>
    <${Field} id="webhook-url" label="Notification URL" hint="Where Leadpush sends notifications, e.g. https://your-service.com/webhooks/leads." error=${fieldError(err, 'url')}>
      ${(p) => html`<input ...${p} type="text" inputmode="url" value=${form.url} onInput=${set('url')} />`}
    </${Field}>
    <${Field} id="webhook-method" label="HTTP method" error=${fieldError(err, 'method')}>
      ${(p) => html`<select ...${p} value=${form.method} onChange=${set('method')}>
        <option value="POST">POST</option><option value="PUT">PUT</option><option value="PATCH">PATCH</option></select>`}
    </${Field}>
    <fieldset aria-describedby=${headersErr ? 'webhook-headers-error' : 'webhook-headers-hint'}>
      <legend>Headers (optional)</legend>
      <div class="hint" id="webhook-headers-hint">${editing
        ? `Current: ${Object.keys(initial.headers || {}).join(', ') || 'none'} (values masked). Rows added here replace them all; leave none to keep them.`
        : 'Key/value pairs sent with every notification, e.g. Authorization.'}</div>
      ${form.headers.map((row, i) => html`<div class="headers-row">
        <label class="sr-only" for=${`header-name-${i}`}>Header ${i + 1} name</label>
        <input id=${`header-name-${i}`} type="text" placeholder="Header name" value=${row.name} onInput=${setHeader(i, 'name')}
          aria-invalid=${headersErr && headersErr.field === `headers.${row.name}` ? 'true' : undefined} />
        <label class="sr-only" for=${`header-value-${i}`}>Header ${i + 1} value</label>
        <input id=${`header-value-${i}`} type="text" placeholder="Value" value=${row.value} onInput=${setHeader(i, 'value')} />
        <button type="button" class="danger small" aria-label=${`Remove header ${i + 1}`}
          onClick=${() => setForm({ ...form, headers: form.headers.filter((_, j) => j !== i) })}>Remove</button>
      </div>`)}
      <button type="button" class="secondary small" onClick=${() => setForm({ ...form, headers: [...form.headers, { name: '', value: '' }] })}>Add header</button>
      ${headersErr && html`<div class="field-error" id="webhook-headers-error" role="alert" data-field=${headersErr.field}>${headersErr.message}</div>`}
    </fieldset>
    <fieldset>
      <legend>Webhook status</legend>
      <label><input type="checkbox" checked=${form.enabled} onChange=${set('enabled')} /> Enabled</label>
      ${fieldError(err, 'enabled') && html`<div class="field-error" role="alert">${err.message}</div>`}
    </fieldset>
    <fieldset>
      <legend>Events</legend>
      <label><input type="checkbox" checked disabled /> save_lead — a lead is saved or updated</label>
      ${fieldError(err, 'events') && html`<div class="field-error" role="alert">${err.message}</div>`}
    </fieldset>
    <${ErrorBanner} error=${err} fields=${FORM_FIELDS} />
    <div class="row">
      <button type="submit" disabled=${action.busy}>${editing ? 'Save changes' : 'Save'}</button>
      ${onCancel && html`<button type="button" class="secondary" onClick=${onCancel}>Cancel</button>`}
    </div>
  </form>`;
}

export function WebhookDetail({ id }) {
  const hook = useResource(() => api('GET', `/api/v1/webhooks/${encodeURIComponent(id)}`).then((b) => b.data), [id]);
  const [editing, setEditing] = useState(false);
  const [secret, setSecret] = useState(null);
  const [test, setTest] = useState(null);
  const action = useAction();
  const w = hook.data;
  const path = `/api/v1/webhooks/${encodeURIComponent(id)}`;
  const toggle = () => action.run(async () => hook.set((await api('PATCH', path, { body: { enabled: !w.enabled } })).data));
  const rotate = () => action.run(async () => {
    if (!window.confirm('Issue a new signing secret? The current one keeps signing for 24 hours.')) return;
    setSecret((await api('POST', `${path}/rotate-secret`)).data.secret);
    hook.reload();
  });
  const sendTest = () => action.run(async () => { setTest((await api('POST', `${path}/test`)).data); });
  const remove = () => action.run(async () => {
    if (!window.confirm(`Delete the webhook "${w.name}"? Notifications stop at once.`)) return;
    await api('DELETE', path);
    go('/webhooks');
  });
  return html`<p><a href="#/webhooks">← All webhooks</a></p>
    <h1 tabindex="-1">${w ? w.name : 'Webhook'}</h1>
    <${ErrorBanner} error=${hook.error} />
    ${secret && html`<${SecretOnce} secret=${secret} />`}
    ${w && w.disabled_reason && html`<div class="alert warn" role="status" data-testid="disabled-reason">
      <strong>This webhook is off.</strong> ${w.disabled_reason}
      <div>Once the receiver works again, turn it back on with the toggle below.</div></div>`}
    ${w && !editing && html`<section class="panel" aria-labelledby="webhook-settings">
      <div class="spread"><h2 id="webhook-settings">Settings</h2>
        <div class="row">
          <button type="button" role="switch" class="switch" aria-checked=${w.enabled ? 'true' : 'false'} onClick=${toggle} disabled=${action.busy}>
            ${w.enabled ? 'Enabled' : 'Disabled'}<span class="sr-only"> — press to ${w.enabled ? 'disable' : 'enable'}</span></button>
          <button class="secondary" onClick=${() => setEditing(true)}>Edit</button>
          <button class="secondary" onClick=${sendTest} disabled=${action.busy}>Send test</button>
          <button class="secondary" onClick=${rotate} disabled=${action.busy}>Rotate secret</button>
          <button class="danger" onClick=${remove} disabled=${action.busy}>Delete</button>
        </div></div>
      <${ErrorBanner} error=${action.error} />
      <dl class="props">
        <dt>Notification URL</dt><dd><code>${w.url}</code></dd>
        <dt>HTTP method</dt><dd>${w.method}</dd>
        <dt>Headers</dt><dd>${Object.entries(w.headers || {}).map(([k, v]) => html`<div><code>${k}: ${v}</code></div>`)}${Object.keys(w.headers || {}).length === 0 && 'none'}</dd>
        <dt>Events</dt><dd>${(w.events || []).join(', ')}</dd>
        <dt>Signing secret</dt><dd><code>${w.secret_hint}</code></dd>
        <dt>Failures in a row</dt><dd>${w.failure_streak}${w.failing_since ? ` (failing since ${when(w.failing_since)})` : ''}</dd>
        <dt>Created</dt><dd>${when(w.created_at)}</dd>
      </dl>
      ${test && html`<${TestResult} result=${test} />`}
    </section>`}
    ${w && editing && html`<section class="panel"><h2>Edit webhook</h2>
      <${WebhookForm} initial=${w} onSaved=${(saved) => { hook.set(saved); setEditing(false); }} onCancel=${() => setEditing(false)} /></section>`}
    ${w && html`<${Deliveries} id=${id} />`}`;
}

function TestResult({ result }) {
  return html`<div class=${`alert ${result.delivered ? 'ok' : 'error'}`} role="status" data-testid="test-result">
    <strong>${result.delivered ? 'Test delivered' : 'Test not delivered'}</strong>${' — '}${result.status_code ? `HTTP ${result.status_code}` : 'no HTTP answer'} in ${result.duration_ms} ms.
    ${result.error && html`<div>${result.error}</div>`}
    ${result.response && html`<div class="excerpt mono">${result.response}</div>`}
  </div>`;
}

function Deliveries({ id }) {
  const paged = usePaged((cursor) => api('GET', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries`, { query: { limit: PAGE, cursor } }), [id]);
  const action = useAction();
  const [done, setDone] = useState(null);
  const redeliver = (d) => action.run(async () => {
    await api('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(d.id)}/retry`);
    setDone(`Redelivery of ${d.id} queued.`);
    paged.reload();
  });
  return html`<section class="panel" aria-labelledby="delivery-log" data-testid="delivery-log">
    <div class="spread"><h2 id="delivery-log">Delivery log</h2><button class="secondary small" onClick=${paged.first}>Refresh</button></div>
    ${done && html`<${Notice} kind="ok">${done}</${Notice}>`}
    <${ErrorBanner} error=${action.error || paged.error} />
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No deliveries yet. They appear when a lead is saved or updated.</p>`}
    ${paged.items.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">Deliveries, newest first</caption>
      <thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Lead</th><th scope="col">Status</th>
        <th scope="col" class="num">Attempts</th><th scope="col">Last answer</th><th scope="col">Response excerpt</th>
        <th scope="col">Next attempt</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${paged.items.map((d) => {
        const last = (d.attempts || [])[d.attempts.length - 1];
        const settled = d.status === 'delivered' || d.status === 'failed';
        return html`<tr data-delivery-id=${d.id}>
          <td>${when(d.created_at)}</td><td>${d.event}</td><td>${d.lead_id ? html`<${LeadId} id=${d.lead_id} />` : '—'}</td>
          <td><${Badge} value=${d.status} /></td><td class="num">${d.attempt_count}</td>
          <td>${d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error ? 'no answer' : '—')}</td>
          <td class="excerpt">${last ? (last.response || last.error || '') : ''}</td>
          <td>${when(d.next_attempt_at)}</td>
          <td>${settled && html`<button class="secondary small" onClick=${() => redeliver(d)} disabled=${action.busy}
            aria-label=${`Redeliver ${d.id}`}>Redeliver</button>`}</td></tr>`;
      })}</tbody></table></div>`}
    <${Pager} paged=${paged} label="Delivery" />
  </section>`;
}
