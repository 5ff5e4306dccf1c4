// Campaigns (the webhook-campaign setup guide): list, create (Standard, lead source),
// activate and pause; the webhook setup panel (the CSM message until a token exists, then
// the masked token, the ingest URL and a cURL); the lead preview with the ingest request id
// as each lead's prefix and its learned score; each lead's feedback, score reasons and
// event log.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { useApiDocument, hasPath } from '../lib/capabilities.js';
import { WorkflowEditor, WorkflowRuns } from './workflow.js';
import {
  html, Field, ErrorBanner, Notice, Pager, CopyButton, Badge, LeadId, usePaged, useAction, useResource,
  fieldError, when, go, splitLeadId,
} from '../lib/ui.js';
import { choosePushLeads } from './push.js';

const PAGE = 20;

export function CampaignList() {
  const paged = usePaged((cursor) => api('GET', '/api/v1/campaigns', { query: { limit: PAGE, cursor } }), []);
  return html`
    <h1 tabindex="-1">Campaigns</h1>
    <${NewCampaign} />
    <section class="panel" aria-labelledby="campaigns-list">
      <div class="spread"><h2 id="campaigns-list">Your campaigns</h2>
        <button class="secondary small" onClick=${paged.first}>Refresh</button></div>
      <${ErrorBanner} error=${paged.error} />
      ${paged.loading && html`<p role="status">Loading campaigns…</p>`}
      ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No campaigns yet. Create one above.</p>`}
      ${paged.items.length > 0 && html`<div class="table-wrap"><table>
        <caption class="sr-only">Campaigns, newest first</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Lead source</th>
          <th scope="col">Status</th><th scope="col" class="num">Leads</th><th scope="col">Created</th></tr></thead>
        <tbody>${paged.items.map((c) => html`<tr>
          <td><a href=${`#/campaigns/${c.id}`}>${c.name}</a></td>
          <td>${c.type}</td><td>${c.lead_source}</td><td><${Badge} value=${c.status} /></td>
          <td class="num">${c.lead_count}</td><td>${when(c.created_at)}</td></tr>`)}
        </tbody></table></div>`}
      <${Pager} paged=${paged} label="Campaign" />
    </section>`;
}

function NewCampaign() {
  const [form, setForm] = useState({ name: '', type: 'standard', lead_source: 'webhook', description: '' });
  const action = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = { name: form.name, type: form.type, lead_source: form.lead_source };
      if (form.description.trim()) body.description = form.description;
      const created = await api('POST', '/api/v1/campaigns', { body });
      go(`/campaigns/${created.data.id}`);
    });
  };
  const err = action.error;
  return html`<section class="panel" aria-labelledby="new-campaign">
    <h2 id="new-campaign">New campaign</h2>
    <form onSubmit=${submit} novalidate>
      <${Field} id="campaign-name" label="Campaign name" error=${fieldError(err, 'name')}>
        ${(p) => html`<input ...${p} type="text" value=${form.name} onInput=${set('name')} />`}
      </${Field}>
      <${Field} id="campaign-type" label="Campaign type" error=${fieldError(err, 'type')}>
        ${(p) => html`<select ...${p} value=${form.type} onChange=${set('type')}><option value="standard">Standard</option></select>`}
      </${Field}>
      <fieldset aria-describedby=${fieldError(err, 'lead_source') ? 'lead-source-error' : undefined}>
        <legend>Lead source</legend>
        <label><input type="radio" name="lead_source" value="webhook" checked=${form.lead_source === 'webhook'}
          onChange=${set('lead_source')} /> Webhook</label>
        <label><input type="radio" name="lead_source" value="manual" checked=${form.lead_source === 'manual'}
          onChange=${set('lead_source')} /> Manual</label>
        ${fieldError(err, 'lead_source') && html`<div class="field-error" id="lead-source-error" role="alert">${err.message}</div>`}
      </fieldset>
      <${Field} id="campaign-description" label="Description (optional)" error=${fieldError(err, 'description')}>
        ${(p) => html`<input ...${p} type="text" value=${form.description} onInput=${set('description')} />`}
      </${Field}>
      <${ErrorBanner} error=${err} fields=${['name', 'type', 'lead_source', 'description']} />
      <button type="submit" disabled=${action.busy}>Save</button>
    </form>
  </section>`;
}

export function CampaignDetail({ id }) {
  const campaign = useResource(() => api('GET', `/api/v1/campaigns/${encodeURIComponent(id)}`).then((b) => b.data), [id]);
  const action = useAction();
  const doc = useApiDocument();
  const [previewKey, setPreviewKey] = useState(0);
  const transition = (verb) => action.run(async () => {
    const body = await api('POST', `/api/v1/campaigns/${encodeURIComponent(id)}/${verb}`);
    campaign.set({ ...campaign.data, ...body.data });
    setPreviewKey((k) => k + 1);
  });
  const c = campaign.data;
  return html`
    <p><a href="#/campaigns">← All campaigns</a></p>
    <h1 tabindex="-1">${c ? c.name : 'Campaign'}</h1>
    <${ErrorBanner} error=${campaign.error} />
    ${c && html`<section class="panel" aria-labelledby="campaign-settings">
      <div class="spread"><h2 id="campaign-settings">Campaign settings</h2>
        <div class="row">
          ${c.status !== 'active' && html`<button onClick=${() => transition('activate')} disabled=${action.busy}>Activate</button>`}
          ${c.status === 'active' && html`<button class="secondary" onClick=${() => transition('pause')} disabled=${action.busy}>Pause</button>`}
          <button class="secondary" onClick=${campaign.reload}>Refresh</button>
        </div></div>
      <${ErrorBanner} error=${action.error} />
      <dl class="props">
        <dt>Status</dt><dd><${Badge} value=${c.status} /></dd>
        <dt>Campaign ID</dt><dd class="row"><code>${c.id}</code><${CopyButton} text=${c.id} label="Copy ID" /></dd>
        <dt>Type</dt><dd>${c.type}</dd>
        <dt>Lead source</dt><dd>${c.lead_source}</dd>
        <dt>Leads received</dt><dd>${c.lead_count}</dd>
        ${c.description && html`<dt>Description</dt><dd>${c.description}</dd>`}
        <dt>Created</dt><dd>${when(c.created_at)}</dd>
        <dt>Activated</dt><dd>${when(c.activated_at)}</dd>
      </dl>
    </section>`}
    ${c && c.lead_source === 'webhook' && html`<${WebhookSetup} id=${id} />`}
    ${c && hasPath(doc, '/api/v1/campaigns/{id}/workflow') && html`<${WorkflowEditor} campaignId=${id} />`}
    ${c && html`<${LeadPreview} id=${id} key=${previewKey} />`}`;
}

/** The webhook-campaign setup guide, steps 1-2: the CSM message until the organisation has
 * a token; then the token (masked: it is shown in full only once, to the CSM), the ingest
 * URL and a cURL. */
function WebhookSetup({ id }) {
  const setup = useResource(() => api('GET', `/api/v1/campaigns/${encodeURIComponent(id)}/webhook-setup`).then((b) => b.data), [id]);
  const s = setup.data;
  const missing = setup.error && setup.error.code === 'webhook_token_missing';
  return html`<section class="panel" aria-labelledby="webhook-setup" data-testid="webhook-setup">
    <div class="spread"><h2 id="webhook-setup">Webhook setup</h2>
      <button class="secondary small" onClick=${setup.reload}>Refresh</button></div>
    ${setup.loading && html`<p role="status">Loading webhook setup…</p>`}
    ${missing && html`<div class="alert warn" role="status" data-testid="csm-message"><strong>⚠ ${setup.error.message}</strong>
      <div>Once your CSM has created the token, refresh this page to see it and an example request.</div></div>`}
    ${setup.error && !missing && html`<${ErrorBanner} error=${setup.error} />`}
    ${s && html`<dl class="props">
        <dt>Webhook token</dt><dd><code data-testid="masked-token">${s.token.masked}</code>
          <div class="hint">Shown masked: the full token is shown only once, when your CSM creates it.</div></dd>
        <dt>Ingest URL</dt><dd class="row"><code data-testid="ingest-url">${s.ingest_url}</code><${CopyButton} text=${s.ingest_url} label="Copy URL" /></dd>
        <dt>Method</dt><dd>${s.method}</dd>
        <dt>Auth header</dt><dd><code>${s.auth_header}</code></dd>
      </dl>
      <h3>Example request</h3>
      <p class="hint">Set <code>LEADPUSH_WEBHOOK_TOKEN</code> to your token first. Each lead needs a <code>campaign_id</code>;
        a new <code>idempotency_key</code> per batch (a key reused within a week is refused as a duplicate).</p>
      <pre data-testid="example-curl">${s.example_curl}</pre>
      <${CopyButton} text=${s.example_curl} label="Copy cURL" />`}
  </section>`;
}

function LeadPreview({ id }) {
  const paged = usePaged((cursor) => api('GET', `/api/v1/campaigns/${encodeURIComponent(id)}/leads`, { query: { limit: PAGE, cursor } }), [id]);
  const [selected, setSelected] = useState(() => new Set());
  const toggle = (leadId) => {
    const next = new Set(selected);
    if (next.has(leadId)) next.delete(leadId); else next.add(leadId);
    setSelected(next);
  };
  const notActive = paged.error && paged.error.code === 'campaign_not_active';
  // Servers with campaign workflows attach each lead's latest run (and its message).
  const withRuns = paged.items.some((l) => 'workflow_run' in l);
  const allOnPage = paged.items.length > 0 && paged.items.every((l) => selected.has(l.id));
  const toggleAll = () => {
    const next = new Set(selected);
    for (const l of paged.items) { if (allOnPage) next.delete(l.id); else next.add(l.id); }
    setSelected(next);
  };
  return html`<section class="panel" aria-labelledby="lead-preview" data-testid="lead-preview">
    <div class="spread"><h2 id="lead-preview">Lead preview</h2>
      <div class="row">
        <button class="secondary small" onClick=${paged.reload}>Refresh</button>
        <button class="small" disabled=${selected.size === 0}
          onClick=${() => { choosePushLeads(id, [...selected]); go('/push'); }}>Push selected (${selected.size})</button>
      </div></div>
    ${notActive && html`<${Notice} kind="info">${paged.error.message}</${Notice}>`}
    ${paged.error && !notActive && html`<${ErrorBanner} error=${paged.error} />`}
    ${paged.loading && html`<p role="status">Loading leads…</p>`}
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No leads yet. Send some with the example request above, then refresh.</p>`}
    ${paged.items.length > 0 && html`<p class="hint">Each lead id starts with the id of the request that delivered it
      (<span class="req">highlighted</span>), then its position in that request.</p>
      <div class="table-wrap"><table>
      <caption class="sr-only">Leads of this campaign, newest first, page ${paged.page}</caption>
      <thead><tr><th scope="col"><input type="checkbox" aria-label="Select every lead on this page" checked=${allOnPage} onChange=${toggleAll} /></th>
        <th scope="col">Lead (request id prefix)</th><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Company</th>
        <th scope="col">Status</th><th scope="col">Feedback</th><th scope="col">Predicted score</th>${withRuns && html`<th scope="col">Generated message</th>`}<th scope="col">Received</th></tr></thead>
      <tbody>${paged.items.map((l) => html`<tr data-lead-id=${l.id}>
        <td><input type="checkbox" aria-label=${`Select lead ${l.id}`} checked=${selected.has(l.id)} onChange=${() => toggle(l.id)} /></td>
        <td><a href=${`#/leads/${l.id}`}><${LeadId} id=${l.id} /></a></td>
        <td>${l.name || [l.first_name, l.last_name].filter(Boolean).join(' ') || '—'}</td>
        <td>${l.email || '—'}</td><td>${l.company || '—'}</td>
        <td><${Badge} value=${l.status} /></td><td>${l.feedback ? html`<${Badge} value=${l.feedback} />` : '—'}</td>
        <td data-testid="preview-score" title=${scoreTitle(l)}>${scoreText(l)}</td>
        ${withRuns && html`<td class="excerpt" data-testid="preview-message">${l.workflow_run
          ? html`<${Badge} value=${l.workflow_run.status} /> ${l.workflow_run.message || ''}` : '—'}</td>`}
        <td>${when(l.created_at)}</td></tr>`)}
      </tbody></table></div>`}
    <${Pager} paged=${paged} label="Lead" />
  </section>`;
}

// The learned score as a percentage; `—` until the workspace has outcomes to learn from.
function scoreText(l) {
  return typeof l.predicted_score === 'number' ? `${(l.predicted_score * 100).toFixed(1)}%` : '—';
}

// What moved the score most (or why there is none), for a tooltip.
function scoreTitle(l) {
  const reasons = l.score_reasons || [];
  return reasons.length > 0 ? reasons[0].message : 'Not scored yet: scores are learned once pushed leads have outcomes.';
}

function ScoreReasons({ lead }) {
  const reasons = lead.score_reasons || [];
  return html`<section class="panel" aria-labelledby="lead-score" data-testid="lead-score"><h2 id="lead-score">Predicted score</h2>
    <p><strong>${scoreText(lead)}</strong> <span class="hint">chance of a positive reply or meeting once pushed, learned from this
      workspace's outcomes${lead.scored_at ? html`; computed ${when(lead.scored_at)}` : ''}</span></p>
    ${reasons.length === 0 ? html`<p class="hint">${scoreTitle(lead)}</p>` : html`<ul>${reasons.map((r) => html`<li>${r.message}</li>`)}</ul>`}
  </section>`;
}

const FIELDS = ['email', 'first_name', 'last_name', 'company', 'position', 'website', 'phone', 'linkedin', 'twitter', 'score', 'signal_type', 'notes'];

export function LeadDetail({ id }) {
  const doc = useApiDocument();
  const lead = useResource(() => api('GET', `/api/v1/leads/${encodeURIComponent(id)}`).then((b) => b.data), [id]);
  const l = lead.data;
  const { request } = splitLeadId(id);
  return html`
    ${l && html`<p><a href=${`#/campaigns/${l.campaign_id}`}>← Campaign</a></p>`}
    <h1 tabindex="-1">Lead ${l && (l.name || l.email) ? `· ${l.name || l.email}` : ''}</h1>
    <${ErrorBanner} error=${lead.error} />
    ${l && html`<div class="grid2">
      <section class="panel" aria-labelledby="lead-fields"><h2 id="lead-fields">Lead</h2>
        <dl class="props">
          <dt>Lead id</dt><dd><${LeadId} id=${l.id} /></dd>
          ${request && html`<dt>Ingest request</dt><dd><code>${l.request_id || request}</code></dd>`}
          <dt>Status</dt><dd><${Badge} value=${l.status} /></dd>
          ${FIELDS.filter((f) => l[f] !== null && l[f] !== undefined).map((f) => html`<dt>${f.replaceAll('_', ' ')}</dt><dd>${String(l[f])}</dd>`)}
          ${Object.keys(l.custom_fields || {}).length > 0 && html`<dt>custom fields</dt><dd><code>${JSON.stringify(l.custom_fields)}</code></dd>`}
          <dt>Received</dt><dd>${when(l.created_at)}</dd>
          <dt>Pushed</dt><dd>${when(l.pushed_at)}</dd>
        </dl>
      </section>
      <section class="panel" aria-labelledby="lead-feedback" data-testid="lead-feedback"><h2 id="lead-feedback">Feedback</h2>
        <dl class="props">
          <dt>Feedback</dt><dd>${l.feedback ? html`<${Badge} value=${l.feedback} />` : 'none yet'}</dd>
          <dt>Reason</dt><dd>${l.feedback_reason || '—'}</dd>
          <dt>Replied</dt><dd>${when(l.replied_at)}</dd>
          <dt>Reply</dt><dd class="excerpt">${l.reply_content || '—'}</dd>
          <dt>Meeting booked</dt><dd>${when(l.meeting_booked_at)}</dd>
          <dt>Meeting URL</dt><dd>${l.meeting_url || '—'}</dd>
        </dl>
      </section>
    </div>
    <${ScoreReasons} lead=${l} />
    ${hasPath(doc, '/api/v1/leads/{id}/workflow-runs') && html`<${WorkflowRuns} leadId=${id} />`}
    <${EventLog} id=${id} />`}`;
}

function EventLog({ id }) {
  const paged = usePaged((cursor) => api('GET', `/api/v1/leads/${encodeURIComponent(id)}/events`, { query: { limit: PAGE, cursor } }), [id]);
  return html`<section class="panel" aria-labelledby="event-log" data-testid="event-log">
    <div class="spread"><h2 id="event-log">Event log</h2><button class="secondary small" onClick=${paged.first}>Refresh</button></div>
    <${ErrorBanner} error=${paged.error} />
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No outcome events for this lead yet.</p>`}
    ${paged.items.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">Outcome events, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Source</th>
        <th scope="col">What it did</th><th scope="col">Lead status after</th></tr></thead>
      <tbody>${paged.items.map((e) => html`<tr>
        <td>${when(e.occurred_at)}</td><td><${Badge} value=${e.event_type} /></td><td>${e.source}</td>
        <td class="excerpt">${e.note}${e.content ? html`<div class="muted">“${e.content}”</div>` : ''}</td>
        <td>${e.lead_status ? html`<${Badge} value=${e.lead_status} />` : '—'}</td></tr>`)}
      </tbody></table></div>`}
    <${Pager} paged=${paged} label="Event" />
  </section>`;
}
