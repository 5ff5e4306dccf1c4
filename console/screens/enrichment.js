// Enrichment: one form per lookup the API offers (email verifier, phone validator, finders),
// built from the operation's documented query parameters, with the result. A lookup still
// running answers 202 with an id; the screen then follows GET /api/v1/enrichments/{id}.
import { useState, useEffect, useRef, useMemo } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, Field, ErrorBanner, Notice, Badge, useAction, useResource, fieldError } from '../lib/ui.js';
import { loadApiDocument, queryTools } from '../lib/capabilities.js';

// Parameters the console sets itself (or never sends): the key goes in a header.
const SKIP = ['api_key', 'webhook_url', 'max_duration'];
const FOLLOW_EVERY_MS = 1500;
const FOLLOW_TIMES = 40;

const label = (name) => name.replaceAll('_', ' ').replace(/^./, (c) => c.toUpperCase());
const slug = (path) => path.replace('/api/v1/', '').replaceAll('/', '-');
// The API document's text is Markdown; the console shows it plain.
const plain = (text) => (text || '').replaceAll('`', '');
// An operation's summary: its first sentence is the title, the rest a hint.
const title = (summary) => plain(summary).split(/\.\s/)[0].split(/:\s/)[0].replace(/\.$/, '');
const rest = (summary) => plain(summary).slice(title(summary).length).replace(/^[.:]\s*/, '').trim();

/**
 * Follows something the server is still working on: `start(step, onError)` calls
 * `await step(current)` every FOLLOW_EVERY_MS, at most FOLLOW_TIMES times, until it returns
 * true. `cancel()`, a newer `start` after it, or leaving the screen stops the chain; `current()`
 * tells a step whose answer arrived after that to drop it. An error stops it too, and goes to
 * `onError` if the chain is still current.
 */
function useFollow() {
  const generation = useRef(0);
  useEffect(() => () => { generation.current += 1; }, []);
  return useMemo(() => ({
    cancel() { generation.current += 1; },
    start(step, onError) {
      const mine = generation.current;
      const current = () => mine === generation.current;
      const tick = async (left) => {
        if (!current()) return;
        let done;
        try {
          done = await step(current);
        } catch (e) {
          if (current()) onError(e);
          return;
        }
        if (!done && left > 0) setTimeout(() => tick(left - 1), FOLLOW_EVERY_MS);
      };
      setTimeout(() => tick(FOLLOW_TIMES), FOLLOW_EVERY_MS);
    },
  }), []);
}

export function Enrichment() {
  const [tools, setTools] = useState(null);
  useEffect(() => { loadApiDocument().then((doc) => setTools(queryTools(doc, 'enrichment', { skip: SKIP }))); }, []);
  return html`<h1 tabindex="-1">Enrichment</h1>
    <p class="muted">Verify and find contact details. Each form calls the public API, as your own code would.</p>
    ${tools && tools.length > 0 && html`<${Usage} />`}
    ${tools === null && html`<p role="status">Loading…</p>`}
    ${tools && tools.length === 0 && html`<p>This server offers no enrichment lookups.</p>`}
    <div class="grid2">${(tools || []).map((t) => html`<${Tool} tool=${t} key=${t.path} />`)}</div>
    ${tools && tools.some((t) => t.path === '/api/v1/email-verifier') && html`<${BulkVerify} />`}`;
}

const number = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');

/** This month's quotas and the rate limits (GET /api/v1/account). */
function Usage() {
  const account = useResource(() => api('GET', '/api/v1/account').then((b) => b.data), []);
  const a = account.data;
  const limit = (work) => `${number(a.limits[work].per_second)}/s, ${number(a.limits[work].per_minute)}/min`;
  return html`<section class="panel" aria-labelledby="usage" data-testid="usage">
    <div class="spread"><h2 id="usage">This month</h2>
      <button class="secondary small" onClick=${() => account.reload()} disabled=${account.loading}>Refresh</button></div>
    <${ErrorBanner} error=${account.error} />
    ${a && html`<dl class="props">
      <dt>Verifications</dt><dd data-testid="usage-verifications">${number(a.requests.verifications.used)} of ${number(a.requests.verifications.available)} <span class="muted">(${limit('verification')})</span></dd>
      <dt>Searches</dt><dd data-testid="usage-searches">${number(a.requests.searches.used)} of ${number(a.requests.searches.available)} <span class="muted">(${limit('search')})</span></dd>
      <dt>Resets</dt><dd>${a.reset_date}</dd>
    </dl>
    <p class="muted">Over a limit the API answers 429 with Retry-After; ask your CSM to change the limits.</p>`}
  </section>`;
}

const BULK_RESULTS = 100;

/** Bulk verification: a job of many addresses, followed until it completes. */
function BulkVerify() {
  const [text, setText] = useState('');
  const [job, setJob] = useState(null);
  const action = useAction();
  const follow = useFollow();
  const submit = (e) => {
    e.preventDefault();
    follow.cancel();
    setJob(null);
    action.run(async () => {
      const emails = text.split(/[\n,;]+/).map((t) => t.trim()).filter((t) => t !== '');
      const body = await api('POST', '/api/v1/email-verifier/bulk', { body: { emails } });
      setJob({ ...body.data, progress: null, results: [] });
      follow.start(async (current) => {
        const polled = await api('GET', `/api/v1/email-verifier/bulk/${encodeURIComponent(body.data.id)}`, { query: { limit: BULK_RESULTS } });
        if (!current()) return true;
        setJob(polled.data);
        return polled.data.status === 'completed';
      }, action.setError);
    });
  };
  const err = action.error;
  return html`<section class="panel" aria-labelledby="bulk-verify-title" data-testid="tool-bulk-verify">
    <h2 id="bulk-verify-title">Verify many addresses</h2>
    <p class="hint"><code>POST /api/v1/email-verifier/bulk</code> — a job of up to 10,000 addresses; the first ${BULK_RESULTS} results show here.</p>
    <form onSubmit=${submit} novalidate>
      <${Field} id="bulk-verify-emails" label="Addresses" hint="One per line (or separated by commas)." error=${fieldError(err, 'emails')}>
        ${(a) => html`<textarea ...${a} rows="4" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>`}</${Field}>
      <${ErrorBanner} error=${err} fields=${['emails']} />
      <button type="submit" disabled=${action.busy}>${action.busy ? 'Working…' : 'Start job'}</button>
    </form>
    ${job && html`<div data-testid="bulk-job"><h3>Job <code>${job.id}</code> <${Badge} value=${job.status} /></h3>
      ${job.progress && html`<p>${job.progress.processed} of ${job.total} checked: ${job.progress.valid} valid, ${job.progress.invalid} invalid,
        ${job.progress.accept_all} accept-all, ${job.progress.unknown} unknown.</p>`}
      ${job.results.length > 0 && html`<div class="table-wrap"><table>
        <caption class="sr-only">Bulk verification results</caption>
        <thead><tr><th scope="col">Address</th><th scope="col">Status</th><th scope="col" class="num">Score</th></tr></thead>
        <tbody>${job.results.map((r) => html`<tr><td>${r.verification.email}</td><td><${Badge} value=${r.verification.status} /></td>
          <td class="num">${r.verification.score}</td></tr>`)}</tbody></table></div>`}
    </div>`}
  </section>`;
}

function Tool({ tool }) {
  const id = slug(tool.path);
  const [values, setValues] = useState({});
  const [answer, setAnswer] = useState(null);
  const [pending, setPending] = useState(null);
  const action = useAction();
  const follow = useFollow();

  const submit = (e) => {
    e.preventDefault();
    follow.cancel();
    setAnswer(null);
    setPending(null);
    action.run(async () => {
      const query = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.trim()]).filter(([, v]) => v !== ''));
      const body = await api('GET', tool.path, { query });
      if (body.data && body.data.status === 'pending' && body.data.id) {
        setPending(body.data.id);
        follow.start(async (current) => {
          const polled = await api('GET', `/api/v1/enrichments/${encodeURIComponent(body.data.id)}`);
          if (!current()) return true;
          if (polled.data.status === 'pending') return false;
          setPending(null);
          setAnswer({ data: polled.data.result, status: polled.data.status });
          return true;
        }, (e) => { setPending(null); action.setError(e); });
      } else {
        setAnswer({ data: body.data });
      }
    });
  };
  const err = action.error;
  const names = tool.params.map((p) => p.name);
  return html`<section class="panel" aria-labelledby=${`${id}-title`} data-testid=${`tool-${id}`}>
    <h2 id=${`${id}-title`}>${title(tool.summary)}</h2>
    <p class="hint"><code>GET ${tool.path}</code>${rest(tool.summary) ? ` — ${rest(tool.summary)}` : ''}</p>
    <form onSubmit=${submit} novalidate>
      ${tool.params.map((p) => html`<${Field} id=${`${id}-${p.name}`} label=${label(p.name)}
          hint=${plain(p.description)} error=${fieldError(err, p.name)}>
        ${(a) => html`<input ...${a} type="text" value=${values[p.name] || ''}
          onInput=${(e) => setValues({ ...values, [p.name]: e.target.value })} />`}
      </${Field}>`)}
      <${ErrorBanner} error=${err} fields=${names} />
      <button type="submit" disabled=${action.busy || !!pending}>${action.busy ? 'Working…' : 'Run'}</button>
    </form>
    ${pending && html`<${Notice} kind="info">Still working on it (${pending}); the result appears here when it is ready.</${Notice}>`}
    ${answer && html`<div data-testid="result"><h3>Result ${answer.status ? html`<${Badge} value=${answer.status} />` : ''}</h3>
      <${Result} data=${answer.data} /></div>`}
  </section>`;
}

function Result({ data }) {
  if (data === null || data === undefined) return html`<p>No result.</p>`;
  if (typeof data !== 'object' || Array.isArray(data)) return html`<pre>${JSON.stringify(data, null, 2)}</pre>`;
  return html`<dl class="props">${Object.entries(data).map(([k, v]) => html`<dt>${label(k)}</dt><dd>${show(v)}</dd>`)}</dl>`;
}

function show(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') {
    if (Array.isArray(v) && v.length === 0) return 'none';
    return html`<code class="excerpt">${JSON.stringify(v)}</code>`;
  }
  return String(v);
}
