// A campaign's workflow (the API Requests specification): an ordered list of steps, saved
// as a new version; and a lead's workflow runs, the latest with its rendered message and
// per-step outcome.
import { useState, useEffect } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, Field, ErrorBanner, Notice, Pager, Badge, usePaged, useAction, when } from '../lib/ui.js';

const TYPES = [
  ['fetch_api_data', 'Fetch API Data'],
  ['condition', 'Condition'],
  ['set_fields', 'Set lead fields'],
  ['render_message', 'Generate message'],
  ['verify_email', 'Verify email'],
  ['find_email', 'Find email'],
  ['push', 'Push lead'],
];
// find_email's optional input templates (empty: the lead's own value).
const FINDER_INPUTS = [
  ['first_name', 'First name', 'Empty: the lead\'s first name.'],
  ['last_name', 'Last name', 'Empty: the lead\'s last name.'],
  ['domain', 'Domain', 'Empty: the lead\'s website or company email domain.'],
  ['company', 'Company', 'Empty: the lead\'s company (resolved to a domain when there is none).'],
];
const typeName = (t) => (TYPES.find(([v]) => v === t) || [t, t])[1];

function blankNode(type, n) {
  const id = `${type}_${n}`;
  switch (type) {
    case 'fetch_api_data': return { id, type, api_request_id: '', output_key: '', on_error: 'fail' };
    case 'condition': return { id, type, if: '', else: '' };
    case 'set_fields': return { id, type, fields: [{ name: '', value: '' }] };
    case 'render_message': return { id, type, template: '', output_key: 'message' };
    case 'verify_email': return { id, type, output_key: 'email_check', on_error: 'fail' };
    case 'find_email': return { id, type, output_key: 'found_email', on_error: 'fail', first_name: '', last_name: '', domain: '', company: '' };
    default: return { id, type: 'push', destination: 'webhook_url', webhook_url: '' };
  }
}

/** Editor rows -> the API's node objects (optional parts left out when empty). */
function toApi(node) {
  const out = { ...node };
  if (node.type === 'set_fields') out.fields = Object.fromEntries(node.fields.filter((f) => f.name || f.value).map((f) => [f.name, f.value]));
  if (node.type === 'condition' && !node.else) delete out.else;
  if (node.type === 'push' && node.destination !== 'webhook_url') delete out.webhook_url;
  if (node.type === 'find_email') FINDER_INPUTS.forEach(([f]) => { if (!node[f]) delete out[f]; });
  return out;
}

function fromApi(node) {
  if (node.type === 'set_fields') return { ...node, fields: Object.entries(node.fields || {}).map(([name, value]) => ({ name, value })) };
  if (node.type === 'condition') return { ...node, else: node.else || '' };
  if (node.type === 'push') return { ...node, webhook_url: node.webhook_url || '' };
  if (node.type === 'find_email') return { ...node, ...Object.fromEntries(FINDER_INPUTS.map(([f]) => [f, node[f] || ''])) };
  return { ...node };
}

/** The step an API error names (`nodes[2].output_key` -> 2), if any. */
const stepOf = (error) => {
  const m = error && error.field && /^nodes\[(\d+)\]/.exec(error.field);
  return m ? Number(m[1]) : null;
};

export function WorkflowEditor({ campaignId }) {
  const [nodes, setNodes] = useState(null);
  const [version, setVersion] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [addType, setAddType] = useState('fetch_api_data');
  const [saved, setSaved] = useState(null);
  const [endpoints, setEndpoints] = useState([]);
  const action = useAction();
  useEffect(() => {
    api('GET', `/api/v1/campaigns/${encodeURIComponent(campaignId)}/workflow`)
      .then((b) => { setNodes(b.data.nodes.map(fromApi)); setVersion(b.data.workflow_version); })
      .catch((e) => { if (e.code === 'workflow_not_found') setNodes([]); else setLoadError(e); });
    api('GET', '/api/v1/api-requests', { query: { limit: 100 } }).then((b) => setEndpoints(b.data || [])).catch(() => {});
  }, [campaignId]);
  const update = (i, patch) => setNodes(nodes.map((n, j) => (j === i ? { ...n, ...patch } : n)));
  const move = (i, d) => {
    const next = [...nodes];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    setNodes(next);
  };
  const save = (e) => {
    e.preventDefault();
    setSaved(null);
    action.run(async () => {
      const body = await api('PUT', `/api/v1/campaigns/${encodeURIComponent(campaignId)}/workflow`, { body: { nodes: nodes.map(toApi) } });
      setVersion(body.data.workflow_version);
      setNodes(body.data.nodes.map(fromApi));
      setSaved(`Saved as version ${body.data.workflow_version}. New leads run it; use “Run again” on a lead to rerun.`);
    });
  };
  const err = action.error;
  const errStep = stepOf(err);
  return html`<section class="panel" aria-labelledby="workflow" data-testid="workflow-editor">
    <div class="spread"><h2 id="workflow">Workflow</h2>${version && html`<span class="muted">version ${version}</span>`}</div>
    <p class="hint">Steps run in order for every lead of the campaign. Templates read <code>contact</code>, <code>campaign</code> and earlier outputs as <code>${'workflow.<output key>'}</code>.</p>
    <${ErrorBanner} error=${loadError} />
    ${nodes && html`<form onSubmit=${save} novalidate>
      ${nodes.length === 0 && html`<p>No steps yet. Add one below.</p>`}
      <ol class="steps">${nodes.map((n, i) => html`<li data-step=${i}>
        <fieldset>
          <legend>Step ${i + 1}: ${typeName(n.type)}</legend>
          <${Step} node=${n} i=${i} update=${(p) => update(i, p)} endpoints=${endpoints} />
          ${errStep === i && html`<div class="field-error" role="alert" id=${`step-${i}-error`}>${err.message}</div>`}
          <div class="row">
            <button type="button" class="secondary small" disabled=${i === 0} onClick=${() => move(i, -1)} aria-label=${`Move step ${i + 1} up`}>Move up</button>
            <button type="button" class="secondary small" disabled=${i === nodes.length - 1} onClick=${() => move(i, 1)} aria-label=${`Move step ${i + 1} down`}>Move down</button>
            <button type="button" class="danger small" onClick=${() => setNodes(nodes.filter((_, j) => j !== i))} aria-label=${`Remove step ${i + 1}`}>Remove</button>
          </div>
        </fieldset></li>`)}</ol>
      <div class="row">
        <label for="add-step-type" class="sr-only">Type of step to add</label>
        <select id="add-step-type" value=${addType} onChange=${(e) => setAddType(e.target.value)} class="narrow">
          ${TYPES.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select>
        <button type="button" class="secondary" onClick=${() => setNodes([...nodes, blankNode(addType, nodes.length + 1)])}>Add step</button>
      </div>
      ${errStep === null && html`<${ErrorBanner} error=${err} />`}
      ${saved && html`<${Notice} kind="ok">${saved}</${Notice}>`}
      <p><button type="submit" disabled=${action.busy}>Save workflow</button></p>
    </form>`}
  </section>`;
}

function Step({ node, i, update, endpoints }) {
  const id = (f) => `step-${i}-${f}`;
  const text = (f, label, hint) => html`<${Field} id=${id(f)} label=${label} hint=${hint}>
    ${(p) => html`<input ...${p} type="text" value=${node[f]} onInput=${(e) => update({ [f]: e.target.value })} />`}</${Field}>`;
  const onError = html`<${Field} id=${id('on_error')} label="When it fails">
    ${(p) => html`<select ...${p} value=${node.on_error} onChange=${(e) => update({ on_error: e.target.value })}>
      <option value="fail">Fail the run</option><option value="continue">Continue without it</option>
      <option value="skip_lead">Stop for this lead</option></select>`}</${Field}>`;
  switch (node.type) {
    case 'fetch_api_data':
      return html`${text('id', 'Step id')}
        <${Field} id=${id('api_request_id')} label="API request">
          ${(p) => html`<select ...${p} value=${node.api_request_id} onChange=${(e) => update({ api_request_id: e.target.value })}>
            <option value="">Choose an API request</option>
            ${endpoints.map((r) => html`<option value=${r.id}>${r.name}</option>`)}</select>`}</${Field}>
        ${text('output_key', 'Output key', 'Later steps read the answer as workflow.<output key>, e.g. customer_profile.')}
        ${onError}`;
    case 'verify_email':
      return html`${text('id', 'Step id')}
        ${text('output_key', 'Output key', 'Later steps read the verdict as workflow.<output key>.status.')}${onError}`;
    case 'find_email':
      return html`${text('id', 'Step id')}
        ${text('output_key', 'Output key', 'Later steps read the address as workflow.<output key>.email (null when none was found).')}
        ${FINDER_INPUTS.map(([f, label, hint]) => text(f, `${label} template (optional)`, hint))}${onError}`;
    case 'condition':
      return html`${text('id', 'Step id')}${text('if', 'Condition', 'e.g. workflow.customer_profile.plan == "pro"')}
        ${text('else', 'Otherwise go to step id (optional)', 'Empty: the run stops when the condition is false.')}`;
    case 'set_fields':
      return html`${text('id', 'Step id')}
        ${node.fields.map((f, k) => html`<div class="headers-row">
          <label class="sr-only" for=${id(`field-${k}`)}>Field ${k + 1} name</label>
          <input id=${id(`field-${k}`)} type="text" placeholder="company or custom_fields.name" value=${f.name}
            onInput=${(e) => update({ fields: node.fields.map((x, j) => (j === k ? { ...x, name: e.target.value } : x)) })} />
          <label class="sr-only" for=${id(`value-${k}`)}>Field ${k + 1} template</label>
          <input id=${id(`value-${k}`)} type="text" placeholder="Template" value=${f.value}
            onInput=${(e) => update({ fields: node.fields.map((x, j) => (j === k ? { ...x, value: e.target.value } : x)) })} /></div>`)}
        <button type="button" class="secondary small" onClick=${() => update({ fields: [...node.fields, { name: '', value: '' }] })}>Add field</button>`;
    case 'render_message':
      return html`${text('id', 'Step id')}
        <${Field} id=${id('template')} label="Message template" hint="e.g. Hi {{ contact.first_name }}, …">
          ${(p) => html`<textarea ...${p} rows="3" value=${node.template} onInput=${(e) => update({ template: e.target.value })}></textarea>`}</${Field}>
        ${text('output_key', 'Output key')}`;
    default:
      return html`${text('id', 'Step id')}
        <${Field} id=${id('destination')} label="Destination">
          ${(p) => html`<select ...${p} value=${node.destination} onChange=${(e) => update({ destination: e.target.value })}>
            <option value="webhook_url">A webhook URL</option><option value="heyreach">HeyReach</option><option value="instantly">Instantly</option></select>`}</${Field}>
        ${node.destination === 'webhook_url' && text('webhook_url', 'Webhook URL')}`;
  }
}

/** A lead's workflow runs, newest first; the latest shown in full, with "Run again". */
export function WorkflowRuns({ leadId }) {
  const paged = usePaged((cursor) => api('GET', `/api/v1/leads/${encodeURIComponent(leadId)}/workflow-runs`, { query: { limit: 5, cursor } }), [leadId]);
  const action = useAction();
  const [queued, setQueued] = useState(null);
  const rerun = () => action.run(async () => {
    const body = await api('POST', `/api/v1/leads/${encodeURIComponent(leadId)}/workflow-runs`);
    setQueued(`Run ${body.data.id} queued.`);
    paged.first();
  });
  const latest = paged.page === 1 ? paged.items[0] : null;
  return html`<section class="panel" aria-labelledby="workflow-runs" data-testid="workflow-runs">
    <div class="spread"><h2 id="workflow-runs">Workflow runs</h2>
      <div class="row"><button class="secondary small" onClick=${paged.first}>Refresh</button>
        <button class="small" onClick=${rerun} disabled=${action.busy}>Run again</button></div></div>
    ${queued && html`<${Notice} kind="ok">${queued}</${Notice}>`}
    <${ErrorBanner} error=${action.error || paged.error} />
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>The campaign's workflow has not run for this lead.</p>`}
    ${latest && html`<div data-testid="latest-run"><h3>Latest run <${Badge} value=${latest.status} /></h3>
      <dl class="props">
        <dt>Run</dt><dd><code>${latest.id}</code> · version ${latest.workflow_version} · ${latest.trigger}</dd>
        <dt>Updated</dt><dd>${when(latest.updated_at)}</dd>
        <dt>Message</dt><dd class="excerpt" data-testid="run-message">${latest.message || '—'}</dd>
        ${latest.error && html`<dt>Error</dt><dd>${latest.error.code}: ${latest.error.message}</dd>`}
      </dl>
      <div class="table-wrap"><table>
        <caption class="sr-only">Steps of the latest run</caption>
        <thead><tr><th scope="col">Step</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th>
          <th scope="col" class="num">Duration</th><th scope="col">Detail</th></tr></thead>
        <tbody>${latest.nodes.map((n) => html`<tr><td><code>${n.id}</code></td><td>${typeName(n.type)}</td>
          <td><${Badge} value=${n.status} /></td><td class="num">${n.attempts}</td><td class="num">${n.duration_ms} ms</td>
          <td class="excerpt">${n.error ? `${n.error.code}: ${n.error.message}` : n.result !== null && n.result !== undefined ? `condition ${n.result ? 'true' : 'false'}` : n.push_id ? html`push <code>${n.push_id}</code>` : n.cached ? 'from cache' : ''}</td></tr>`)}
        </tbody></table></div>
      ${Object.keys(latest.outputs || {}).length > 0 && html`<h3>Outputs</h3><pre>${JSON.stringify(latest.outputs, null, 2)}</pre>`}
    </div>`}
    ${paged.items.length > (latest ? 1 : 0) && html`<h3>${latest ? 'Earlier runs' : 'Runs'}</h3><div class="table-wrap"><table>
      <caption class="sr-only">Workflow runs</caption>
      <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Version</th><th scope="col">Trigger</th><th scope="col">Updated</th></tr></thead>
      <tbody>${paged.items.slice(latest ? 1 : 0).map((r) => html`<tr><td><code>${r.id}</code></td><td><${Badge} value=${r.status} /></td>
        <td>${r.workflow_version}</td><td>${r.trigger}</td><td>${when(r.updated_at)}</td></tr>`)}</tbody></table></div>`}
    <${Pager} paged=${paged} label="Workflow run" />
  </section>`;
}
