// Insights: outcome rates per position, company, signal type, source or campaign, drawn
// as a bar chart (reply, positive and meeting rate) above the table of counts, and a
// group's weekly reply rate with its interval (is it moving?).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html, ErrorBanner, Pager, usePaged, useResource, when } from '../lib/ui.js';

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
    <${Pager} paged=${paged} label="Insights" />
    <${Trends} groupBy=${groupBy} />`;
}

/** The grouping's weekly reply rates (from `/api/v1/insights/trends`), one group at a time. */
function Trends({ groupBy }) {
  const trends = useResource(() => api('GET', '/api/v1/insights/trends', { query: { group_by: groupBy } }).then((r) => r.data), [groupBy]);
  const [picked, setPicked] = useState(null);
  const groups = trends.data?.groups ?? [];
  const group = groups.find((g) => (g.key ?? '') === picked) ?? groups[0];
  return html`<section class="panel" aria-labelledby="trend-title">
    <h2 id="trend-title">Weekly reply rate</h2>
    <${ErrorBanner} error=${trends.error} />
    ${trends.data && !trends.data.updated_at && html`<p>Trends appear once outcome events have been learned from (shortly after the first reply, bounce or meeting).</p>`}
    ${trends.data?.updated_at && groups.length === 0 && html`<p>No lead was pushed in the last 12 weeks.</p>`}
    ${group && html`<div class="field"><label for="trend-group">Group</label>
        <select id="trend-group" value=${group.key ?? ''} onChange=${(e) => setPicked(e.target.value)}>
          ${groups.map((g) => html`<option value=${g.key ?? ''}>${g.key ?? '(none)'} (${g.exposed} pushed)</option>`)}</select></div>
      <${TrendChart} group=${group} />
      <p class="hint">Leads count in the week they were pushed; a recent week's rate rises as answers come in. Updated ${when(trends.data.updated_at)}.</p>`}
  </section>`;
}

/** Reply rate per week as a line, its Wilson 95% interval as a band; weeks without leads are gaps. */
function TrendChart({ group }) {
  const [left, plotW, plotH, top] = [44, 520, 160, 8];
  const n = group.weeks.length;
  const x = (i) => left + (n > 1 ? (i / (n - 1)) * plotW : plotW / 2);
  const y = (r) => top + (1 - r) * plotH;
  const known = group.weeks.map((w, i) => [w, i]).filter(([w]) => w.reply_rate !== null);
  const band = known.length > 1 ? [...known.map(([w, i]) => `${x(i)},${y(w.reply_rate_interval.high)}`), ...known.slice().reverse().map(([w, i]) => `${x(i)},${y(w.reply_rate_interval.low)}`)].join(' ') : '';
  const summary = known.map(([w]) => `week of ${w.week}: ${pct(w.reply_rate)} of ${w.exposed}`).join('; ');
  return html`<svg class="chart" role="img" aria-label=${`Weekly reply rate of ${group.key ?? '(none)'}. ${summary || 'No pushed leads in these weeks.'}`}
      width="100%" viewBox=${`0 0 ${left + plotW + 20} ${top + plotH + 24}`} data-testid="trend-chart">
    ${[0, 0.5, 1].map((t) => html`<g><line x1=${left} x2=${left + plotW} y1=${y(t)} y2=${y(t)} stroke="#cbd5e1" />
      <text x=${left - 6} y=${y(t)} text-anchor="end" dominant-baseline="middle">${t * 100}%</text></g>`)}
    ${band && html`<polygon class="band" points=${band} />`}
    ${known.length > 1 && html`<polyline class="line" fill="none" points=${known.map(([w, i]) => `${x(i)},${y(w.reply_rate)}`).join(' ')} />`}
    ${known.map(([w, i]) => html`<circle class="point" cx=${x(i)} cy=${y(w.reply_rate)} r="3.5"><title>${`week of ${w.week}: ${pct(w.reply_rate)} (${w.replied} of ${w.exposed})`}</title></circle>`)}
    ${group.weeks.map((w, i) => (i % 3 === 0 || i === n - 1) && html`<text x=${x(i)} y=${top + plotH + 18} text-anchor="middle">${w.week.slice(5)}</text>`)}
  </svg>`;
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
