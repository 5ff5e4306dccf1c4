// Enrichment: one form per lookup the API offers (email verifier, phone validator, finders),
// built from the operation's documented query parameters, with the result. A lookup still
// running answers 202 with an id; the screen then follows GET /api/v1/enrichments/{id}.
import { useState, useEffect, useRef } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, Field, ErrorBanner, Notice, Badge, useAction, fieldError } from '../lib/ui.js';
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

export function Enrichment() {
  const [tools, setTools] = useState(null);
  useEffect(() => { loadApiDocument().then((doc) => setTools(queryTools(doc, 'enrichment', { skip: SKIP }))); }, []);
  return html`<h1 tabindex="-1">Enrichment</h1>
    <p class="muted">Verify and find contact details. Each form calls the public API, as your own code would.</p>
    ${tools === null && html`<p role="status">Loading…</p>`}
    ${tools && tools.length === 0 && html`<p>This server offers no enrichment lookups.</p>`}
    <div class="grid2">${(tools || []).map((t) => html`<${Tool} tool=${t} key=${t.path} />`)}</div>
    ${tools && tools.some((t) => t.path === '/api/v1/email-verifier') && html`<${BulkVerify} />`}`;
}

const BULK_RESULTS = 100;

/** Bulk verification: a job of many addresses, followed until it completes. */
function BulkVerify() {
  const [text, setText] = useState('');
  const [job, setJob] = useState(null);
  const action = useAction();
  const follow = useRef(0);
  useEffect(() => () => { follow.current += 1; }, []);
  const poll = async (id, mine, left) => {
    if (mine !== follow.current) return;
    try {
      const body = await api('GET', `/api/v1/email-verifier/bulk/${encodeURIComponent(id)}`, { query: { limit: BULK_RESULTS } });
      if (mine !== follow.current) return;
      setJob(body.data);
      if (body.data.status === 'completed') return;
    } catch (e) {
      if (mine === follow.current) action.setError(e);
      return;
    }
    if (left > 0) setTimeout(() => poll(id, mine, left - 1), FOLLOW_EVERY_MS);
  };
  const submit = (e) => {
    e.preventDefault();
    follow.current += 1;
    setJob(null);
    action.run(async () => {
      const emails = text.split(/[\n,;]+/).map((t) => t.trim()).filter((t) => t !== '');
      const body = await api('POST', '/api/v1/email-verifier/bulk', { body: { emails } });
      setJob({ ...body.data, progress: null, results: [] });
      const mine = follow.current;
      setTimeout(() => poll(body.data.id, mine, FOLLOW_TIMES), FOLLOW_EVERY_MS);
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
  const follow = useRef(0);
  useEffect(() => () => { follow.current += 1; }, []);

  const check = async (pendingId, mine, left) => {
    if (mine !== follow.current) return;
    try {
      const body = await api('GET', `/api/v1/enrichments/${encodeURIComponent(pendingId)}`);
      if (mine !== follow.current) return;
      if (body.data.status !== 'pending') {
        setPending(null);
        setAnswer({ data: body.data.result, status: body.data.status });
        return;
      }
    } catch (e) {
      if (mine === follow.current) { setPending(null); action.setError(e); }
      return;
    }
    if (left > 0) setTimeout(() => check(pendingId, mine, left - 1), FOLLOW_EVERY_MS);
  };

  const submit = (e) => {
    e.preventDefault();
    follow.current += 1;
    setAnswer(null);
    setPending(null);
    action.run(async () => {
      const query = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.trim()]).filter(([, v]) => v !== ''));
      const body = await api('GET', tool.path, { query });
      if (body.data && body.data.status === 'pending' && body.data.id) {
        setPending(body.data.id);
        const mine = follow.current;
        setTimeout(() => check(body.data.id, mine, FOLLOW_TIMES), FOLLOW_EVERY_MS);
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
