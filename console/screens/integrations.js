// HeyReach and Instantly: each provider's key (shown masked once stored) and target.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, Field, ErrorBanner, Notice, useAction, useResource, fieldError, when } from '../lib/ui.js';

const PROVIDERS = [
  { id: 'heyreach', name: 'HeyReach', target: 'list_id', targetLabel: 'Lead list ID',
    hint: 'The integer id of an existing HeyReach lead list; pushed leads are added to it.' },
  { id: 'instantly', name: 'Instantly', target: 'campaign_id', targetLabel: 'Instantly campaign ID',
    hint: 'The UUID of the Instantly campaign pushed leads are added to. Use an Instantly API v2 key.' },
];

export function Integrations() {
  const list = useResource(() => api('GET', '/api/v1/integrations').then((b) => b.data || []), []);
  return html`<h1 tabindex="-1">Integrations</h1>
    <p class="muted">Keys are stored for pushing leads and never shown again: only their last four characters.</p>
    <${ErrorBanner} error=${list.error} />
    <div class="grid2">${PROVIDERS.map((p) => html`<${Provider} provider=${p} key=${p.id}
      current=${(list.data || []).find((i) => i.provider === p.id)} onChange=${list.reload} />`)}</div>`;
}

function Provider({ provider, current, onChange }) {
  const [apiKey, setApiKey] = useState('');
  const [target, setTarget] = useState('');
  const [saved, setSaved] = useState(null);
  const action = useAction();
  const save = (e) => {
    e.preventDefault();
    action.run(async () => {
      const body = { api_key: apiKey };
      if (target.trim() !== '') {
        body[provider.target] = provider.target === 'list_id' && /^-?\d+$/.test(target.trim()) ? Number(target.trim()) : target.trim();
      }
      await api('PUT', `/api/v1/integrations/${provider.id}`, { body });
      setApiKey('');
      setTarget('');
      setSaved(`${provider.name} saved.`);
      onChange();
    });
  };
  const remove = () => action.run(async () => {
    if (!window.confirm(`Remove the ${provider.name} integration? Its key is deleted.`)) return;
    await api('DELETE', `/api/v1/integrations/${provider.id}`);
    setSaved(`${provider.name} removed.`);
    onChange();
  });
  const err = action.error;
  return html`<section class="panel" aria-labelledby=${`int-${provider.id}`} data-testid=${`integration-${provider.id}`}>
    <h2 id=${`int-${provider.id}`}>${provider.name}</h2>
    ${current ? html`<dl class="props">
        <dt>API key</dt><dd><code data-testid="masked-key">${current.api_key_masked}</code></dd>
        <dt>${provider.targetLabel}</dt><dd><code>${current[provider.target]}</code></dd>
        <dt>Updated</dt><dd>${when(current.updated_at)}</dd></dl>
        <p><button class="danger small" onClick=${remove} disabled=${action.busy}>Remove</button></p>`
      : html`<p>Not configured.</p>`}
    ${saved && html`<${Notice} kind="ok">${saved}</${Notice}>`}
    <form onSubmit=${save} novalidate>
      <h3>${current ? 'Replace' : 'Configure'}</h3>
      <${Field} id=${`${provider.id}-key`} label="API key" error=${fieldError(err, 'api_key')}>
        ${(p) => html`<input ...${p} type="password" autocomplete="off" value=${apiKey} onInput=${(e) => setApiKey(e.target.value)} />`}
      </${Field}>
      <${Field} id=${`${provider.id}-target`} label=${provider.targetLabel} hint=${provider.hint} error=${fieldError(err, provider.target)}>
        ${(p) => html`<input ...${p} type="text" value=${target} onInput=${(e) => setTarget(e.target.value)} />`}
      </${Field}>
      <${ErrorBanner} error=${err} fields=${['api_key', provider.target]} />
      <button type="submit" disabled=${action.busy}>Save ${provider.name}</button>
    </form>
  </section>`;
}
