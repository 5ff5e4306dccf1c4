// Small shared pieces: html (htm bound to Preact), form fields with their API error,
// error banners, paging over `next_cursor`, copy buttons, dates and badges.
import { h } from 'preact';
import { useState, useEffect, useCallback, useRef } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

/** Client-side navigation (hash routes keep every screen on `/`). */
export const go = (path) => { window.location.hash = `#${path}`; };

/** The error of the field `name` (or of one of its children, `headers.x-y`). */
export function fieldError(error, name) {
  if (!error || !error.field) return null;
  return error.field === name || error.field.startsWith(`${name}.`) || error.field.startsWith(`${name}[`) ? error : null;
}

/** A labelled input with its hint and the API's message for it, wired for screen readers. */
export function Field({ id, label, error, hint, children }) {
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [hint ? hintId : null, error ? errId : null].filter(Boolean).join(' ') || undefined;
  const control = children({ id, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': described });
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${control}
    ${hint && html`<div class="hint" id=${hintId}>${hint}</div>`}
    ${error && html`<div class="field-error" id=${errId} role="alert" data-field=${error.field}>${error.message}</div>`}
  </div>`;
}

/** An API error that no single field owns, in plain words (with the request id for support). */
export function ErrorBanner({ error, fields = [] }) {
  if (!error) return null;
  if (error.field && fields.some((f) => fieldError(error, f))) {
    return html`<div class="alert error" role="alert">Please correct the field marked above.</div>`;
  }
  return html`<div class="alert error" role="alert">
    <div>${error.message}</div>
    <div class="meta">${error.code}${error.requestId ? html` · request ${error.requestId}` : ''}</div>
  </div>`;
}

export function Notice({ kind = 'info', children }) {
  return html`<div class=${`alert ${kind}`} role=${kind === 'error' ? 'alert' : 'status'}>${children}</div>`;
}

/** Loads pages of a `{"data": [...], "next_cursor"}` list; keeps the cursors to go back. */
export function usePaged(load, deps) {
  const [state, setState] = useState({ items: [], next: null, cursors: [null], index: 0, loading: true, error: null });
  const seq = useRef(0);
  const fetchPage = useCallback(async (cursors, index) => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const body = await load(cursors[index]);
      if (mine !== seq.current) return;
      setState({ items: body.data || [], next: body.next_cursor || null, cursors, index, loading: false, error: null });
    } catch (error) {
      if (mine !== seq.current) return;
      setState((s) => ({ ...s, items: [], next: null, loading: false, error }));
    }
  }, deps);
  useEffect(() => { fetchPage([null], 0); }, [fetchPage]);
  return {
    ...state,
    page: state.index + 1,
    hasPrev: state.index > 0,
    hasNext: !!state.next,
    nextPage: () => fetchPage([...state.cursors.slice(0, state.index + 1), state.next], state.index + 1),
    prevPage: () => fetchPage(state.cursors, Math.max(0, state.index - 1)),
    reload: () => fetchPage(state.cursors, state.index),
    first: () => fetchPage([null], 0),
  };
}

export function Pager({ paged, label }) {
  if (!paged.hasPrev && !paged.hasNext) return null;
  return html`<nav class="pager" aria-label=${`${label} pages`}>
    <button class="secondary small" onClick=${paged.prevPage} disabled=${!paged.hasPrev || paged.loading}>Previous page</button>
    <span>Page ${paged.page}</span>
    <button class="secondary small" onClick=${paged.nextPage} disabled=${!paged.hasNext || paged.loading}>Next page</button>
  </nav>`;
}

export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('Copied');
    } catch {
      setDone('Select the text and press Ctrl+C to copy');
    }
  };
  return html`<span class="row"><button type="button" class="secondary small" onClick=${copy}>${label}</button>
    <span role="status" class="muted">${done}</span></span>`;
}

export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

const GOOD = ['active', 'delivered', 'dispatched', 'pushed', 'replied', 'meeting_booked', 'positive', 'enabled', 'succeeded'];
const BAD = ['failed', 'dispatch_failed', 'negative', 'disabled', 'skipped', 'missing'];
const WARN = ['paused', 'pending', 'retrying', 'partially_dispatched', 'draft'];
export function Badge({ value }) {
  const v = String(value ?? '—');
  const kind = GOOD.includes(v) ? 'good' : BAD.includes(v) ? 'bad' : WARN.includes(v) ? 'warn' : 'neutral';
  return html`<span class=${`badge ${kind}`}>${v.replaceAll('_', ' ')}</span>`;
}

/** Runs an async action, exposing busy and error state for a form or button. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/** Loads one resource; `reload()` fetches it again. */
export function useResource(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState({ data: null, error, loading: false });
    }
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload, set: (data) => setState({ data, error: null, loading: false }) };
}

/** `req_01J..._0001` -> the ingest request id and the lead's number in it. */
export function splitLeadId(id) {
  const m = /^(req_[A-Za-z0-9]+)_(\d+)$/.exec(id || '');
  return m ? { request: m[1], n: m[2] } : { request: null, n: id };
}

export function LeadId({ id }) {
  const { request, n } = splitLeadId(id);
  if (!request) return html`<code>${id}</code>`;
  return html`<code title=${id}><span class="req">${request}</span>_${n}</code>`;
}
