// The Leadpush console: a single-page app over the public JSON API. Hash routes
// (`#/campaigns/cmp_...`) keep every screen on `/`, so the server serves one page.
import { render } from 'preact';
import { useState, useEffect, useRef } from 'preact/hooks';
import { api, session } from './lib/api.js';
import { html, Field, ErrorBanner, useAction, go } from './lib/ui.js';
import { CampaignList, CampaignDetail, LeadDetail } from './screens/campaigns.js';
import { WebhookList, WebhookNew, WebhookDetail } from './screens/webhooks.js';
import { Integrations } from './screens/integrations.js';
import { Push } from './screens/push.js';
import { Insights } from './screens/insights.js';
import { Enrichment } from './screens/enrichment.js';
import { ApiRequests } from './screens/api-requests.js';
import { loadApiDocument, queryTools, hasPath } from './lib/capabilities.js';

const NAV = [
  ['campaigns', 'Campaigns'],
  ['webhooks', 'Webhooks'],
  ['integrations', 'Integrations'],
  ['push', 'Push'],
  ['insights', 'Insights'],
];

/** Screens shown only when this server's API document has their routes. */
const OPTIONAL_NAV = [
  ['api-requests', 'API Requests', (doc) => hasPath(doc, '/api/v1/api-requests')],
  ['enrichment', 'Enrichment', (doc) => queryTools(doc, 'enrichment').length > 0],
];

function parseRoute() {
  const path = decodeURIComponent(window.location.hash.replace(/^#\/?/, ''));
  const [section = 'campaigns', ...rest] = path.split('/').filter(Boolean);
  return { section, rest };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

function Screen({ route }) {
  const [a, b] = route.rest;
  switch (route.section) {
    case 'campaigns':
      return a ? html`<${CampaignDetail} id=${a} />` : html`<${CampaignList} />`;
    case 'leads':
      return html`<${LeadDetail} id=${a} />`;
    case 'webhooks':
      if (a === 'new') return html`<${WebhookNew} />`;
      return a ? html`<${WebhookDetail} id=${a} key=${a} />` : html`<${WebhookList} />`;
    case 'integrations':
      return html`<${Integrations} />`;
    case 'push':
      return html`<${Push} pushId=${a === 'result' ? b : null} />`;
    case 'insights':
      return html`<${Insights} />`;
    case 'enrichment':
      return html`<${Enrichment} />`;
    case 'api-requests':
      return html`<${ApiRequests} />`;
    default:
      return html`<h1 tabindex="-1">Page not found</h1><p>There is no console page at this address. <a href="#/campaigns">Go to campaigns</a>.</p>`;
  }
}

function SignIn({ reason, onSignedIn }) {
  const [key, setKey] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const trimmed = key.trim();
      if (!trimmed) {
        action.setError({ field: 'api_key', message: 'api_key: enter your workspace API key (it starts with lp_key_).' });
        return;
      }
      const body = await api('GET', '/api/v1/workspace', { key: trimmed });
      session.signIn(trimmed);
      onSignedIn(body.data);
    });
  };
  const error = action.error;
  const keyError = error && (error.field === 'api_key' || error.status === 401)
    ? { field: 'api_key', message: error.status === 401 ? `${error.message} Check the key and try again.` : error.message }
    : null;
  return html`<main id="main" class="signin">
    <h1 tabindex="-1">Sign in to Leadpush</h1>
    ${reason && html`<div class="alert warn" role="status">${reason}</div>`}
    <form onSubmit=${submit} novalidate>
      <${Field} id="api-key" label="Workspace API key" error=${keyError}
        hint="Kept only in this browser tab's session storage, and sent only to this Leadpush server.">
        ${(p) => html`<input ...${p} type="password" autocomplete="off" spellcheck="false" value=${key}
          onInput=${(e) => setKey(e.target.value)} />`}
      </${Field}>
      ${!keyError && html`<${ErrorBanner} error=${error} />`}
      <button type="submit" disabled=${action.busy}>${action.busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
    <p class="muted">No key? Your CSM creates one with <code>leadpush admin workspace create</code>.
      The API reference is at <a href="/docs">/docs</a>.</p>
  </main>`;
}

function App() {
  const route = useRoute();
  const [workspace, setWorkspace] = useState(null);
  const [checking, setChecking] = useState(!!session.key());
  const [reason, setReason] = useState(null);
  const [nav, setNav] = useState(NAV);
  const mainRef = useRef(null);

  useEffect(() => {
    loadApiDocument().then((doc) => setNav([...NAV, ...OPTIONAL_NAV.filter(([, , has]) => has(doc)).map(([id, label]) => [id, label])]));
  }, []);

  useEffect(() => {
    session.onUnauthorized(() => {
      session.signOut();
      setWorkspace(null);
      setReason('Your API key was not accepted (it may have been revoked). Please sign in again.');
    });
    if (session.key()) {
      api('GET', '/api/v1/workspace')
        .then((b) => setWorkspace(b.data))
        .catch(() => {})
        .finally(() => setChecking(false));
    }
  }, []);

  // Move focus to the new screen's heading, so keyboard and screen-reader users follow along.
  useEffect(() => {
    const heading = mainRef.current && mainRef.current.querySelector('h1');
    if (heading) heading.focus();
  }, [route.section, route.rest.join('/')]);

  if (checking) return html`<main id="main"><p role="status">Loading…</p></main>`;
  if (!workspace) {
    return html`<${SignIn} reason=${reason} onSignedIn=${(w) => { setReason(null); setWorkspace(w); }} />`;
  }
  const signOut = () => {
    session.signOut();
    setWorkspace(null);
    setReason('You have signed out. The key was removed from this tab.');
    go('/campaigns');
  };
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); mainRef.current.querySelector('h1')?.focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/campaigns">Leadpush</a>
      <nav aria-label="Main">
        <ul>
          ${nav.map(([id, label]) => html`<li><a href=${`#/${id}`}
            aria-current=${route.section === id || (id === 'campaigns' && route.section === 'leads') ? 'page' : undefined}>${label}</a></li>`)}
          <li><a href="/docs">API reference</a></li>
        </ul>
      </nav>
      <div class="who">
        <span>Workspace: <strong>${workspace.name}</strong></span>
        <button type="button" class="small" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main" ref=${mainRef}><${Screen} route=${route} /></main>`;
}

render(html`<${App} />`, document.getElementById('app'));
