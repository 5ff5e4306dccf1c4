// Push selected leads to a webhook URL, HeyReach or Instantly, then each lead's outcome
// from the push record (retries keep running in the background; Refresh follows them).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import {
  html, Field, ErrorBanner, Notice, Pager, Badge, LeadId, usePaged, useAction, useResource, fieldError, when, go,
} from '../lib/ui.js';

// The selection handed over from a campaign's lead preview.
let handover = null;
export function choosePushLeads(campaignId, leadIds) { handover = { campaignId, leadIds }; }

export function Push({ pushId }) {
  if (pushId) return html`<${PushResult} id=${pushId} />`;
  return html`<${PushForm} />`;
}

function PushForm() {
  const [initial] = useState(() => { const h = handover; handover = null; return h; });
  const [campaignId, setCampaignId] = useState(initial ? initial.campaignId : '');
  const [selected, setSelected] = useState(() => new Set(initial ? initial.leadIds : []));
  const [destination, setDestination] = useState('webhook_url');
  const [webhookUrl, setWebhookUrl] = useState('');
  const campaigns = usePaged((cursor) => api('GET', '/api/v1/campaigns', { query: { limit: 100, cursor } }), []);
  const leads = usePaged((cursor) => api('GET', '/api/v1/leads', { query: { limit: 20, cursor, campaign_id: campaignId || undefined } }), [campaignId]);
  const action = useAction();
  const toggle = (id) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id); else next.add(id);
    setSelected(next);
  };
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = { lead_ids: [...selected], destination };
      if (destination === 'webhook_url') body.webhook_url = webhookUrl;
      const res = await api('POST', '/api/v1/leads/push', { body });
      go(`/push/result/${res.data.push_id}`);
    });
  };
  const err = action.error;
  return html`<h1 tabindex="-1">Push leads</h1>
    <section class="panel" aria-labelledby="push-leads">
      <h2 id="push-leads">1. Choose leads</h2>
      <${Field} id="push-campaign" label="Campaign">
        ${(p) => html`<select ...${p} value=${campaignId} onChange=${(e) => setCampaignId(e.target.value)}>
          <option value="">All campaigns</option>
          ${campaigns.items.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>`}
      </${Field}>
      ${campaigns.hasNext && html`<button class="secondary small" onClick=${campaigns.nextPage}>More campaigns</button>`}
      <${ErrorBanner} error=${leads.error || campaigns.error} />
      ${fieldError(err, 'lead_ids') && html`<div class="field-error" role="alert">${err.message}</div>`}
      ${!leads.loading && leads.items.length === 0 && !leads.error && html`<p>No leads here yet.</p>`}
      ${leads.items.length > 0 && html`<div class="table-wrap"><table>
        <caption class="sr-only">Leads to choose from</caption>
        <thead><tr><th scope="col"><span class="sr-only">Select</span></th><th scope="col">Lead</th><th scope="col">Name</th>
          <th scope="col">Email</th><th scope="col">LinkedIn</th><th scope="col">Status</th></tr></thead>
        <tbody>${leads.items.map((l) => html`<tr>
          <td><input type="checkbox" aria-label=${`Select lead ${l.id}`} checked=${selected.has(l.id)} onChange=${() => toggle(l.id)} /></td>
          <td><${LeadId} id=${l.id} /></td><td>${l.name || '—'}</td><td>${l.email || '—'}</td><td>${l.linkedin || '—'}</td>
          <td><${Badge} value=${l.status} /></td></tr>`)}</tbody></table></div>`}
      <${Pager} paged=${leads} label="Lead" />
      <p role="status">${selected.size} lead${selected.size === 1 ? '' : 's'} selected.</p>
    </section>
    <section class="panel" aria-labelledby="push-destination">
      <h2 id="push-destination">2. Destination</h2>
      <form onSubmit=${submit} novalidate>
        <fieldset>
          <legend>Push to</legend>
          ${[['webhook_url', 'A webhook URL'], ['heyreach', 'HeyReach'], ['instantly', 'Instantly']].map(([v, label]) => html`
            <label><input type="radio" name="destination" value=${v} checked=${destination === v} onChange=${() => setDestination(v)} /> ${label}</label>`)}
          ${fieldError(err, 'destination') && html`<div class="field-error" role="alert">${err.message}</div>`}
        </fieldset>
        ${destination === 'webhook_url' && html`<${Field} id="push-webhook-url" label="Webhook URL" error=${fieldError(err, 'webhook_url')}
          hint="Receives one JSON POST with every stored field of the leads.">
          ${(p) => html`<input ...${p} type="text" inputmode="url" value=${webhookUrl} onInput=${(e) => setWebhookUrl(e.target.value)} />`}
        </${Field}>`}
        ${destination !== 'webhook_url' && html`<p class="hint">Uses the <a href="#/integrations">${destination === 'heyreach' ? 'HeyReach' : 'Instantly'} integration</a>.</p>`}
        <${ErrorBanner} error=${err} fields=${['lead_ids', 'destination', 'webhook_url']} />
        <button type="submit" disabled=${action.busy}>${action.busy ? 'Pushing…' : `Push ${selected.size} lead${selected.size === 1 ? '' : 's'}`}</button>
      </form>
    </section>`;
}

function PushResult({ id }) {
  const push = useResource(() => api('GET', `/api/v1/pushes/${encodeURIComponent(id)}`).then((b) => b.data), [id]);
  const p = push.data;
  return html`<p><a href="#/push">← Push more leads</a></p>
    <h1 tabindex="-1">Push result</h1>
    <${ErrorBanner} error=${push.error} />
    ${p && html`<section class="panel" aria-labelledby="push-summary" data-testid="push-summary">
      <div class="spread"><h2 id="push-summary">Summary</h2><button class="secondary small" onClick=${push.reload}>Refresh</button></div>
      ${p.status === 'retrying' && html`<${Notice} kind="warn">Some leads are waiting for a retry${p.next_attempt_at ? ` at ${when(p.next_attempt_at)}` : ''}. Refresh to follow them.</${Notice}>`}
      <dl class="props">
        <dt>Status</dt><dd><${Badge} value=${p.status} /></dd>
        <dt>Destination</dt><dd>${p.destination}</dd>
        <dt>Pushed</dt><dd>${p.lead_count}</dd>
        <dt>Pending / failed / missing / skipped</dt><dd>${p.pending_count} / ${p.failed_count} / ${p.missing_count} / ${p.skipped_count}</dd>
        <dt>Attempts</dt><dd>${p.attempts} of ${p.max_attempts}</dd>
        <dt>Destination's answer</dt><dd>${p.provider_status_code ? `HTTP ${p.provider_status_code}` : 'no HTTP answer'}
          ${p.provider_response && html`<div class="excerpt mono">${p.provider_response}</div>`}</dd>
      </dl>
    </section>
    <section class="panel" aria-labelledby="push-outcomes" data-testid="push-outcomes">
      <h2 id="push-outcomes">Each lead</h2>
      <div class="table-wrap"><table>
        <caption class="sr-only">Outcome of each lead</caption>
        <thead><tr><th scope="col">Lead</th><th scope="col">Outcome</th><th scope="col">Reason</th><th scope="col" class="num">Attempt</th></tr></thead>
        <tbody>${(p.leads || []).map((l) => html`<tr data-lead-id=${l.lead_id}>
          <td><${LeadId} id=${l.lead_id} /></td><td><${Badge} value=${l.outcome} /></td>
          <td class="excerpt">${l.reason || '—'}${l.provider_lead_id ? html`<div class="muted">provider id ${l.provider_lead_id}</div>` : ''}</td>
          <td class="num">${l.attempt ?? '—'}</td></tr>`)}</tbody></table></div>
    </section>`}`;
}
