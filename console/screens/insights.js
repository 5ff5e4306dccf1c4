// Insights: outcome rates per position, company, signal type, source or campaign, drawn
// as a bar chart (reply, positive and meeting rate) above the table of counts.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, ErrorBanner, Pager, usePaged } from '../lib/ui.js';

const GROUPS = [['position', 'Title (position)'], ['company', 'Company'], ['signal_type', 'Signal type'], ['source', 'Source'], ['campaign', 'Campaign']];
const RATES = [['reply_rate', 'Reply rate'], ['positive_rate', 'Positive rate'], ['meeting_rate', 'Meeting rate']];
const pct = (r) => (r === null || r === undefined ? 'n/a' : `${(r * 100).toFixed(1)}%`);

export function Insights() {
  const [groupBy, setGroupBy] = useState('position');
  const paged = usePaged((cursor) => api('GET', '/api/v1/insights', { query: { group_by: groupBy, limit: 20, cursor } }), [groupBy]);
  return html`<h1 tabindex="-1">Insights</h1>
    <div class="field"><label for="group-by">Group outcomes by</label>
      <select id="group-by" value=${groupBy} onChange=${(e) => setGroupBy(e.target.value)}>
        ${GROUPS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select></div>
    <${ErrorBanner} error=${paged.error} />
    ${!paged.loading && !paged.error && paged.items.length === 0 && html`<p>No outcomes yet: insights appear as leads are pushed and events arrive.</p>`}
    ${paged.items.length > 0 && html`<section class="panel" aria-labelledby="insights-chart">
      <h2 id="insights-chart">Rates per ${GROUPS.find((g) => g[0] === groupBy)[1].toLowerCase()}</h2>
      <${Chart} groups=${paged.items} />
    </section>
    <section class="panel" aria-labelledby="insights-table">
      <h2 id="insights-table">Counts</h2>
      <div class="table-wrap"><table>
        <caption class="sr-only">Outcome counts and rates per group</caption>
        <thead><tr><th scope="col">Group</th>${['Pushed', 'Opened', 'Clicked', 'Replied', 'Positive', 'Negative', 'Meetings'].map((h) => html`<th scope="col" class="num">${h}</th>`)}
          ${RATES.map(([, l]) => html`<th scope="col" class="num">${l}</th>`)}</tr></thead>
        <tbody>${paged.items.map((g) => html`<tr><th scope="row">${g.key ?? '(none)'}</th>
          ${['pushed', 'opened', 'clicked', 'replied', 'positive', 'negative', 'meetings'].map((k) => html`<td class="num">${g[k]}</td>`)}
          ${RATES.map(([k]) => html`<td class="num">${pct(g[k])}</td>`)}</tr>`)}</tbody></table></div>
    </section>`}
    <${Pager} paged=${paged} label="Insights" />`;
}

/** Horizontal grouped bars, 0-100 %; the table below carries the same numbers as text. */
function Chart({ groups }) {
  const labelW = 170;
  const barH = 12;
  const rowH = barH * RATES.length + 14;
  const plotW = 460;
  const height = groups.length * rowH + 28;
  const summary = groups.map((g) => `${g.key ?? '(none)'}: ${RATES.map(([k, l]) => `${l} ${pct(g[k])}`).join(', ')}`).join('; ');
  return html`<div class="legend" aria-hidden="true">${RATES.map(([, l], i) => html`<span class=${`s${i}`}>${l}</span>`)}</div>
    <svg class="chart" role="img" aria-label=${`Outcome rates. ${summary}`} width="100%" viewBox=${`0 0 ${labelW + plotW + 70} ${height}`} data-testid="insights-chart">
      ${[0, 0.25, 0.5, 0.75, 1].map((t) => html`<g>
        <line x1=${labelW + t * plotW} x2=${labelW + t * plotW} y1="0" y2=${height - 20} stroke="#cbd5e1" />
        <text x=${labelW + t * plotW} y=${height - 6} text-anchor="middle">${t * 100}%</text></g>`)}
      ${groups.map((g, i) => html`<g transform=${`translate(0 ${i * rowH + 4})`}>
        <text x=${labelW - 8} y=${rowH / 2} text-anchor="end" dominant-baseline="middle">${truncate(g.key ?? '(none)', 24)}</text>
        ${RATES.map(([k], j) => html`<rect class=${`bar${j}`} x=${labelW} y=${j * barH} height=${barH - 2}
            width=${Math.max(0, Math.min(1, g[k] || 0)) * plotW}><title>${`${g.key ?? '(none)'} ${RATES[j][1]}: ${pct(g[k])}`}</title></rect>
          <text x=${labelW + Math.max(0, Math.min(1, g[k] || 0)) * plotW + 4} y=${j * barH + barH / 2} dominant-baseline="middle">${pct(g[k])}</text>`)}
      </g>`)}
    </svg>`;
}

function truncate(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }
