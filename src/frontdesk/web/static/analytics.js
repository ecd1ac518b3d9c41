/*
 * Frontdesk analytics dashboard — the browser side of /console/analytics (plain ES2020; charts
 * with plotly.js, served by the service itself from the plotly package).
 *
 * Admins and reviewers pick a date range (two date inputs, or 7 / 28 / 90 day presets; default
 * the last 28 days) and a grain (day / week), and see: KPI cards against their targets, alerts,
 * trend charts, breakdowns by channel / intent / flow / agent / handoff reason, customer
 * insights (topics, top questions, pain points, low CSAT) and knowledge gaps to accept into the
 * knowledge base or dismiss, and A/B experiments (each variant against the control on four
 * KPIs, with 95% intervals and verdicts). Every table has a CSV export (the same GET with
 * format=csv). Admins can roll the newest events up now ("Refresh numbers"), start an
 * experiment (its variants written in YAML or JSON) and stop one, naming a winner and
 * optionally promoting it through the release gate.
 *
 * Signed in through the console's cookie session (GET /api/console/me); a visitor without one
 * goes to /console/login and comes back here. POSTs carry the session's X-CSRF-Token. Server
 * text goes into the page with textContent only, and never into chart text (plotly reads a few
 * HTML-like tags in its labels).
 */
(() => {
  'use strict';

  const API = '/api/analytics';
  const CONSOLE_API = '/api/console';
  const PRESETS = [7, 28, 90];
  const DEFAULT_DAYS = 28;
  const BY = ['channel', 'intent', 'flow', 'agent', 'handoff_reason'];
  const CURRENCY = document.documentElement.dataset.currency || 'USD';
  const COLORS = { brand: '#0f766e', amber: '#d97706', indigo: '#4f46e5', rose: '#e11d48', sky: '#0284c7' };
  const CSAT_COLORS = ['#dc2626', '#f97316', '#eab308', '#84cc16', '#16a34a'];

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const list = (a) => (Array.isArray(a) ? a : []);
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

  const S = {
    user: null, csrf: null, start: null, end: null, grain: 'day', by: 'channel',
    req: 0, byReq: 0, insReq: 0, kpis: null, series: null, insights: null,
  };

  /** Build an element. props: className, text, dataset, attrs, on: {event: handler}. */
  function h(tag, props = {}, ...children) {
    const n = document.createElement(tag);
    if (props.className) n.className = props.className;
    if (props.text != null) n.textContent = String(props.text);
    for (const [k, v] of Object.entries(props.dataset || {})) n.dataset[k] = v == null ? '' : String(v);
    for (const [k, v] of Object.entries(props.attrs || {})) n.setAttribute(k, String(v));
    for (const [k, fn] of Object.entries(props.on || {})) n.addEventListener(k, fn);
    for (const c of children) if (c != null) n.append(c);
    return n;
  }

  // ---- Formatting ----
  const nf = (digits) => new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  const fixed = (v, digits) => new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
  const money = new Intl.NumberFormat(undefined, { style: 'currency', currency: CURRENCY });
  const moneyShort = new Intl.NumberFormat(undefined, { style: 'currency', currency: CURRENCY, maximumFractionDigits: 0 });
  const currencySymbol = (() => {
    try { return money.formatToParts(0).find((p) => p.type === 'currency').value; } catch { return '$'; }
  })();

  /** Each formatter gives {n, u}: the number and its unit, shown smaller. */
  const F = {
    count: (v) => ({ n: nf(0).format(v), u: '' }),
    seconds(v) {
      if (v < 1) return { n: nf(0).format(Math.round(v * 1000)), u: 'ms' }; // the bot's replies
      if (v < 10) return { n: fixed(v, 1), u: 's' };
      if (v < 60) return { n: nf(0).format(Math.round(v)), u: 's' };
      if (v < 3600) return { n: fixed(v / 60, 1), u: 'min' };
      return { n: fixed(v / 3600, 1), u: 'h' };
    },
    minutes: (v) => F.seconds(v * 60),
    percent: (v) => ({ n: nf(1).format(v * 100), u: '%' }),
    score: (v) => ({ n: fixed(v, 2), u: '/ 5' }),
    sentiment: (v) => ({ n: (v > 0 ? '+' : v < 0 ? '−' : '') + fixed(Math.abs(v), 2), u: '' }),
    money: (v) => ({ n: money.format(v), u: '' }),
    cost: (v) => ({ n: nf(4).format(v), u: '' }), // model cost: fractions of a cent matter
  };
  /** A value as one string ("62.5%", "1.8 s"), or a dash when there is none. */
  function text(kind, v) {
    if (num(v) == null) return '—';
    const { n, u } = F[kind](v);
    return u ? (u === '%' ? n + u : n + ' ' + u) : n;
  }
  const human = (code) => (code == null || code === '' ? '(none)' : String(code).replace(/[_-]+/g, ' '));

  // ---- Dates (local calendar days, YYYY-MM-DD) ----
  const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const parseDay = (s) => { const [y, m, d] = s.split('-').map(Number); return new Date(y, m - 1, d); };
  const addDays = (s, n) => { const d = parseDay(s); d.setDate(d.getDate() + n); return iso(d); };
  const today = () => iso(new Date());
  const spanDays = (a, b) => Math.round((parseDay(b) - parseDay(a)) / 86400000) + 1;
  const validDay = (s) => DAY_RE.test(s || '') && !isNaN(parseDay(s)) && iso(parseDay(s)) === s;
  const dayText = (s, opts = { month: 'short', day: 'numeric', year: 'numeric' }) =>
    (validDay(s) ? parseDay(s).toLocaleDateString(undefined, opts) : String(s || ''));
  const stamp = (isoTime) => {
    const d = new Date(isoTime || NaN);
    return isNaN(d) ? '' : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  };

  // ---- API ----
  /** fetch wrapper (static/api.js): resolves to {ok, status, data, error}; never throws. A 401 goes to sign-in. */
  const api = FrontdeskApi.client({
    prefix: '',
    csrf: () => S.csrf,
    onUnauthorized: (path) => { if (S.user) toLogin(); },
  });

  function toLogin() {
    location.replace('/console/login?next=' + enc(location.pathname + location.search));
  }

  // ---- Notice ----
  const noticeBar = $('notice-bar'), noticeText = $('notice'), noticeClose = $('notice-close');
  function notice(message, kind = 'error') {
    noticeText.textContent = message;
    noticeBar.dataset.kind = kind;
    noticeClose.hidden = false;
  }
  function clearNotice() {
    noticeText.textContent = '';
    delete noticeBar.dataset.kind;
    noticeClose.hidden = true;
  }
  const fail = (r) => { if (r.status !== 401) notice(r.error.message); };
  noticeClose.addEventListener('click', clearNotice);

  // ---- Range and grain ----
  const startInput = $('range-start'), endInput = $('range-end');
  const presetButtons = Array.from(document.querySelectorAll('[data-days]'));
  const grainButtons = Array.from(document.querySelectorAll('[data-grain]'));

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const end = validDay(q.get('end')) ? q.get('end') : today();
    const start = validDay(q.get('start')) && q.get('start') <= end ? q.get('start') : addDays(end, -(DEFAULT_DAYS - 1));
    S.start = start; S.end = end;
    S.grain = q.get('grain') === 'week' ? 'week' : 'day';
    S.by = BY.includes(q.get('by')) ? q.get('by') : 'channel';
  }

  function writeUrl() {
    const q = new URLSearchParams({ start: S.start, end: S.end });
    if (S.grain !== 'day') q.set('grain', S.grain);
    if (S.by !== 'channel') q.set('by', S.by);
    history.replaceState(null, '', location.pathname + '?' + q.toString());
  }

  function syncControls() {
    startInput.value = S.start;
    endInput.value = S.end;
    startInput.max = S.end;
    endInput.min = S.start;
    startInput.removeAttribute('aria-invalid');
    endInput.removeAttribute('aria-invalid');
    const days = S.end === today() ? spanDays(S.start, S.end) : 0;
    for (const b of presetButtons) b.setAttribute('aria-pressed', String(Number(b.dataset.days) === days));
    for (const b of grainButtons) b.setAttribute('aria-pressed', String(b.dataset.grain === S.grain));
    $('kpi-range').textContent = `${dayText(S.start)} – ${dayText(S.end)}`;
  }

  function applyRange(start, end) {
    if (!validDay(start) || !validDay(end) || start > end) {
      (validDay(start) ? endInput : startInput).setAttribute('aria-invalid', 'true');
      notice(start > end ? 'The start date must not be after the end date.' : 'Pick a start and an end date.', 'warn');
      return;
    }
    if (noticeBar.dataset.kind === 'warn') clearNotice();
    S.start = start; S.end = end;
    syncControls();
    loadRange();
  }

  $('range-form').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(changeTimer);
    applyRange(startInput.value, endInput.value);
  });
  // A date picked (or typed in full) applies after a short pause; half-typed years are ignored.
  let changeTimer = null;
  const onDateChange = () => {
    clearTimeout(changeTimer);
    const a = startInput.value, b = endInput.value;
    if (!validDay(a) || !validDay(b) || a < '2000' || b < '2000' || (a === S.start && b === S.end)) return;
    changeTimer = setTimeout(() => applyRange(a, b), 500);
  };
  startInput.addEventListener('change', onDateChange);
  endInput.addEventListener('change', onDateChange);
  for (const b of presetButtons) {
    b.addEventListener('click', () => { const end = today(); applyRange(addDays(end, -(Number(b.dataset.days) - 1)), end); });
  }
  for (const b of grainButtons) {
    b.addEventListener('click', () => {
      if (S.grain === b.dataset.grain) return;
      S.grain = b.dataset.grain;
      syncControls();
      writeUrl();
      loadSeries();
    });
  }

  const rangeQuery = () => `start=${enc(S.start)}&end=${enc(S.end)}`;

  function setExports() {
    const r = rangeQuery();
    $('export-kpis').href = `${API}/kpis?${r}&format=csv`;
    $('export-alerts').href = `${API}/alerts?${r}&format=csv`;
    $('export-timeseries').href = `${API}/timeseries?${r}&grain=${S.grain}&format=csv`;
    $('export-breakdown').href = `${API}/breakdown?${r}&by=${enc(S.by)}&format=csv`;
    for (const a of document.querySelectorAll('[data-export="timeseries"]')) a.href = $('export-timeseries').href;
    for (const a of document.querySelectorAll('[data-export="kpis"]')) a.href = $('export-kpis').href;
  }

  // ---- Loading ----
  async function loadRange() {
    writeUrl();
    setExports();
    const req = ++S.req;
    $('an-main').setAttribute('aria-busy', 'true');
    const [k, t] = await Promise.all([
      api('GET', `${API}/kpis?${rangeQuery()}`),
      api('GET', `${API}/timeseries?${rangeQuery()}&grain=${S.grain}`),
    ]);
    if (req !== S.req) return;
    $('an-main').setAttribute('aria-busy', 'false');
    if (k.ok && k.data) { S.kpis = k.data; renderKpis(k.data); renderAlerts(list(k.data.alerts)); renderAsOf(k.data.rolled_up_to); } else fail(k);
    if (t.ok && t.data) { S.series = t.data; renderCharts(); } else fail(t);
    loadBreakdown();
    loadInsights();
  }

  async function loadSeries() {
    setExports();
    const req = ++S.req;
    const t = await api('GET', `${API}/timeseries?${rangeQuery()}&grain=${S.grain}`);
    if (req !== S.req) return;
    if (t.ok && t.data) { S.series = t.data; renderCharts(); } else fail(t);
  }

  // ---- "Data up to" and the rollup ----
  function renderAsOf(at) {
    const el = $('rolled-up');
    const when = stamp(at);
    el.replaceChildren(...(when
      ? ['Data up to ', h('strong', { text: when })]
      : ['No data rolled up yet.']));
    el.dataset.rolledUpTo = at || '';
  }

  $('rollup').addEventListener('click', async () => {
    const btn = $('rollup');
    btn.disabled = true;
    btn.textContent = 'Refreshing…';
    const r = await api('POST', `${API}/rollup`, {});
    btn.disabled = false;
    btn.textContent = 'Refresh numbers';
    if (!r.ok) { fail(r); return; }
    const d = r.data || {};
    const raised = num(d.alerts_raised) ? `, ${d.alerts_raised} new alert${d.alerts_raised === 1 ? '' : 's'}` : '';
    notice(`Numbers refreshed: ${nf(0).format(d.events || 0)} new events from ${nf(0).format(d.conversations || 0)} conversations${raised}.`, 'ok');
    loadRange();
    loadExperiments();
  });

  // ---- Alerts ----
  const KPI_KIND = {
    first_response_seconds: 'seconds', average_response_seconds: 'seconds', resolution_minutes: 'minutes',
    bot_resolution_rate: 'percent', handoff_rate: 'percent', csat_average: 'score',
    sentiment_average: 'sentiment', conversion_rate: 'percent',
  };
  const kindOf = (kpi) => KPI_KIND[kpi] || (/rate|share/.test(kpi) ? 'percent' : 'count');

  function renderAlerts(alerts) {
    $('alerts').hidden = !alerts.length;
    $('alert-list').replaceChildren(...alerts.map((a) => {
      const kind = kindOf(a.kpi);
      const what = `${a.label || human(a.kpi)}: ${text(kind, a.value)} against a target of ${text(kind, a.target)}`;
      const when = `${dayText(a.window_start)} – ${dayText(a.window_end)}` + (a.raised_at ? ` · raised ${stamp(a.raised_at)}` : '');
      return h('li', { dataset: { testid: 'alert', kpi: a.kpi } }, h('strong', { text: what }), h('span', { className: 'muted', text: when }));
    }));
  }

  // ---- KPI cards ----
  const VOLUME = [
    ['conversations', 'Conversations', 'count'],
    ['customer_messages', 'Customer messages', 'count'],
    ['resolved', 'Resolved', 'count'],
    ['bot_resolved', 'Resolved by the bot', 'count'],
    ['handoffs', 'Handoffs', 'count'],
    ['csat_count', 'Ratings', 'count'],
    ['negative_share', 'Negative messages', 'percent'],
    ['conversions', 'Conversions', 'count'],
    ['revenue', 'Revenue', 'money'],
    ['leads', 'Leads', 'count'],
  ];
  // Shown when a model backend wrote replies in the range (docs/models.md).
  const MODEL_USAGE = [
    ['model_calls', 'Model calls', 'count'],
    ['model_tokens', 'Model tokens', 'count'],
    ['model_cost', 'Model cost', 'cost'],
    ['model_fallbacks', 'Model fallbacks', 'count'],
  ];
  const STATUS_TEXT = { met: 'On target', missed: 'Off target', no_data: 'No data' };
  /** A KPI's label without the unit the value already shows: "First response (median, s)" -> "First response (median)". */
  const cardLabel = (label) => String(label || '').replace(/,\s*(s|min)\)$/, ')').replace(/\s*\((s|min)\)$/, '');

  function valueNode(kind, v, testid) {
    const box = h('div', { className: 'an-kpi-value', dataset: { testid } });
    if (num(v) == null) { box.textContent = '—'; return box; }
    const { n, u } = F[kind](v);
    box.append(n);
    if (u) box.append(h('span', { className: 'an-unit', text: u }));
    return box;
  }

  function renderKpis(k) {
    const cards = list(k.targets).map((t) => {
      const kind = kindOf(t.kpi);
      const status = ['met', 'missed', 'no_data'].includes(t.status) ? t.status : 'no_data';
      const below = t.direction === 'below';
      const arrow = h('span', { className: 'an-arrow', text: below ? '▼' : '▲', attrs: { 'aria-hidden': 'true' } });
      const target = `Target ${below ? '≤' : '≥'} ${text(kind, t.target)}`;
      return h('article', {
        className: 'an-kpi ' + status,
        dataset: { testid: 'kpi-card', kpi: t.kpi, status, value: num(t.value) == null ? '' : t.value, target: t.target },
        attrs: { 'aria-label': `${t.label}: ${text(kind, t.value)}, ${target.toLowerCase()}, ${STATUS_TEXT[status].toLowerCase()}` },
      },
      h('div', { className: 'an-kpi-top' },
        h('span', { className: 'an-kpi-label', text: cardLabel(t.label) || human(t.kpi) }),
        h('span', { className: 'an-pill', text: STATUS_TEXT[status] })),
      valueNode(kind, t.value, 'kpi-value'),
      h('div', { className: 'an-kpi-target' }, arrow,
        h('span', { text: target }),
        h('span', { className: 'sr', text: below ? ' (lower is better)' : ' (higher is better)' })));
    });
    $('kpi-grid').replaceChildren(...cards);
    if (!cards.length) $('kpi-grid').append(h('p', { className: 'muted', text: 'No KPI targets are set (kpi_targets in guidelines.yaml).' }));
    const volume = num(k.model_calls) ? [...VOLUME, ...MODEL_USAGE] : VOLUME;
    $('volume-grid').replaceChildren(...volume.map(([key, label, kind]) => h('div', {
      className: 'an-vol', dataset: { testid: 'vol-' + key, value: num(k[key]) == null ? '' : k[key] },
    }, h('div', { className: 'an-vol-label', text: label }), h('div', { className: 'an-vol-value', text: text(kind, k[key]) }))));
  }

  // ---- Charts ----
  const haveCharts = () => typeof window.Plotly === 'object' && window.Plotly && typeof window.Plotly.react === 'function';
  const fontFamily = () => getComputedStyle(document.body).fontFamily || 'system-ui, sans-serif';

  /** The x range of the date charts: the whole selected range, half a period beyond each end. */
  function xRange() {
    const rows = list(S.series && S.series.rows);
    if (!rows.length || !validDay(rows[0].period)) return undefined;
    const half = (S.series.grain === 'week' ? 3.5 : 0.5) * 86400000;
    const at = (d) => `${iso(d)} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    const last = rows[rows.length - 1].period;
    return [at(new Date(parseDay(rows[0].period).getTime() - half)), at(new Date(parseDay(last).getTime() + half))];
  }

  function baseLayout(extra = {}) {
    const week = S.series && S.series.grain === 'week';
    const layout = {
      margin: { l: 48, r: 16, t: 30, b: 34 },
      paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
      font: { family: fontFamily(), size: 12, color: '#475569' },
      hovermode: 'x unified', dragmode: false, showlegend: true,
      legend: { orientation: 'h', x: 0, xanchor: 'left', y: 1.02, yanchor: 'bottom', font: { size: 12 } },
      hoverlabel: { bgcolor: '#fff', bordercolor: '#cbd5e1', font: { color: '#1f2937', family: fontFamily() } },
      xaxis: {
        type: 'date', range: xRange(), fixedrange: true, showgrid: false, linecolor: '#e2e8f0', ticks: 'outside', tickcolor: '#e2e8f0',
        tickformat: '%b %d', hoverformat: week ? 'Week of %b %d, %Y' : '%a %b %d, %Y', automargin: true,
        // Weeks start on Monday: tick on the periods themselves, not on plotly's Sundays.
        ...(week && S.series.rows.length ? { tick0: S.series.rows[0].period, dtick: 7 * 86400000 * Math.ceil(S.series.rows.length / 10) } : {}),
      },
      yaxis: { fixedrange: true, gridcolor: '#eef2f6', zerolinecolor: '#cbd5e1', rangemode: 'tozero', automargin: true },
    };
    for (const [k, v] of Object.entries(extra)) layout[k] = (v && typeof v === 'object' && !Array.isArray(v) && layout[k]) ? { ...layout[k], ...v } : v;
    return layout;
  }
  const CONFIG = { displayModeBar: false, responsive: true, displaylogo: false, scrollZoom: false, doubleClick: false };

  function targetOf(kpi) {
    const t = S.kpis && list(S.kpis.targets).find((x) => x.kpi === kpi);
    return t && num(t.target) != null ? t.target : null;
  }

  /** A dotted horizontal line at a target, labelled at the right. */
  function targetLine(value, color, label, yref = 'y') {
    if (value == null) return { shapes: [], annotations: [] };
    return {
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, yref, y0: value, y1: value, line: { color, width: 1.5, dash: 'dot' } }],
      annotations: [{ xref: 'paper', x: 1, xanchor: 'right', yref, y: value, yanchor: 'bottom', text: label, showarrow: false, font: { size: 11, color }, bgcolor: 'rgba(255,255,255,.85)', borderpad: 1 }],
    };
  }
  const merge = (...parts) => ({ shapes: parts.flatMap((p) => p.shapes), annotations: parts.flatMap((p) => p.annotations) });

  function describe(id, summary) {
    const el = $(id);
    let d = $(id + '-desc');
    if (!d) { d = h('p', { className: 'sr', attrs: { id: id + '-desc' } }); el.after(d); el.setAttribute('aria-describedby', d.id); }
    d.textContent = summary;
  }

  function plot(id, traces, layout, summary) {
    const el = $(id);
    const empty = el.querySelector(':scope > .an-chart-empty');
    if (empty) empty.remove();
    el.dataset.state = 'chart';
    describe(id, summary);
    return window.Plotly.react(el, traces, layout, CONFIG).catch((err) => {
      showEmpty(id, 'This chart could not be drawn.');
      console.warn('chart', id, err);
    });
  }

  function showEmpty(id, message) {
    const el = $(id);
    if (haveCharts() && el.classList.contains('js-plotly-plot')) window.Plotly.purge(el);
    el.replaceChildren(h('div', { className: 'an-chart-empty', text: message }));
    el.dataset.state = 'empty';
    describe(id, message);
  }

  function renderCharts() {
    const rows = list(S.series && S.series.rows);
    const week = S.series && S.series.grain === 'week';
    const per = week ? 'per week' : 'per day';
    const ids = ['chart-conversations', 'chart-rates', 'chart-csat', 'chart-csat-dist', 'chart-sentiment', 'chart-sales'];
    if (!haveCharts()) { ids.forEach((id) => showEmpty(id, 'Charts are unavailable (the chart library did not load).')); return; }
    const x = rows.map((r) => r.period);
    const col = (key) => rows.map((r) => num(r[key]));
    const total = col('conversations').reduce((a, b) => a + (b || 0), 0);
    const range = `${dayText(S.start)} to ${dayText(S.end)}`;

    if (!total) {
      ids.forEach((id) => showEmpty(id, 'No conversations in this range.'));
    } else {
      const conv = col('conversations');
      const peak = Math.max(...conv.map((v) => v || 0));
      plot('chart-conversations', [{
        type: 'bar', x, y: conv, name: 'Conversations', marker: { color: COLORS.brand },
        hovertemplate: '%{y} conversations<extra></extra>',
      }], baseLayout({ showlegend: false, margin: { t: 10 }, bargap: 0.25 }),
      `Conversations ${per}, ${range}: ${total} in all, at most ${peak} in one ${week ? 'week' : 'day'}.`);

      const botT = targetOf('bot_resolution_rate'), handT = targetOf('handoff_rate');
      plot('chart-rates', [
        { type: 'scatter', mode: 'lines+markers', x, y: col('bot_resolution_rate'), name: 'Bot resolution',
          line: { color: COLORS.brand, width: 2.5 }, marker: { size: 6 }, hovertemplate: '%{y:.1%}' },
        { type: 'scatter', mode: 'lines+markers', x, y: col('handoff_rate'), name: 'Handoff',
          line: { color: COLORS.amber, width: 2.5 }, marker: { size: 6 }, hovertemplate: '%{y:.1%}' },
      ], baseLayout({
        yaxis: { tickformat: '.0%', range: [0, 1.05], rangemode: 'normal' },
        ...merge(targetLine(botT, COLORS.brand, botT == null ? '' : `target ${text('percent', botT)}`),
          targetLine(handT, COLORS.amber, handT == null ? '' : `target ${text('percent', handT)}`)),
      }), `Bot resolution rate and handoff rate ${per}, ${range}. Overall: bot resolution ${text('percent', S.kpis && S.kpis.bot_resolution_rate)}, handoffs ${text('percent', S.kpis && S.kpis.handoff_rate)}.`);

      const sent = col('sentiment_average');
      const sentT = targetOf('sentiment_average');
      if (sent.every((v) => v == null)) showEmpty('chart-sentiment', 'No sentiment measured in this range.');
      else {
        plot('chart-sentiment', [{
          type: 'scatter', mode: 'lines+markers', x, y: sent, name: 'Average sentiment', fill: 'tozeroy',
          fillcolor: 'rgba(79,70,229,.08)', line: { color: COLORS.indigo, width: 2.5 }, marker: { size: 6 },
          hovertemplate: '%{y:+.2f}<extra>sentiment</extra>',
        }], baseLayout({
          showlegend: false, margin: { t: 10 },
          yaxis: { range: [-1, 1], rangemode: 'normal', tickvals: [-1, -0.5, 0, 0.5, 1], zeroline: true, zerolinewidth: 1.5 },
          ...merge(targetLine(sentT, COLORS.indigo, sentT == null ? '' : `target ${text('sentiment', sentT)}`)),
        }), `Average customer sentiment (from −1 to +1) ${per}, ${range}; overall ${text('sentiment', S.kpis && S.kpis.sentiment_average)}.`);
      }

      const conversions = col('conversions'), revenue = col('revenue');
      if (!conversions.some((v) => v) && !revenue.some((v) => v)) showEmpty('chart-sales', 'No conversions in this range.');
      else {
        // Revenue as a running total over the range (per period it is spiky); the hover shows both.
        let sum = 0;
        const cumulative = revenue.map((v) => (sum += v || 0));
        plot('chart-sales', [
          { type: 'bar', x, y: conversions, name: 'Conversions', marker: { color: COLORS.sky }, hovertemplate: '%{y}' },
          { type: 'scatter', mode: 'lines', x, y: cumulative, customdata: revenue.map((v) => v || 0), name: 'Revenue (running total)',
            yaxis: 'y2', line: { color: COLORS.brand, width: 2.5, shape: 'hv' },
            hovertemplate: `${currencySymbol}%{customdata:,.2f} (total ${currencySymbol}%{y:,.2f})` },
        ], baseLayout({
          bargap: 0.3,
          yaxis: { title: { text: 'Conversions', font: { size: 11 } }, rangemode: 'tozero', tickformat: ',d' },
          yaxis2: { overlaying: 'y', side: 'right', rangemode: 'tozero', fixedrange: true, showgrid: false, tickmode: 'auto',
            tickprefix: currencySymbol, tickformat: ',.0f', title: { text: 'Revenue', font: { size: 11 } }, automargin: true },
          margin: { r: 56 },
        }), `Conversions and revenue ${per}, ${range}: ${text('count', S.kpis && S.kpis.conversions)} conversions, ${text('money', S.kpis && S.kpis.revenue)} revenue.`);
      }
    }

    // CSAT: over time (needs ratings in the series), and the distribution from the KPIs.
    const ratings = col('csat_count').reduce((a, b) => a + (b || 0), 0);
    const csatT = targetOf('csat_average');
    if (!ratings) showEmpty('chart-csat', 'No ratings in this range.');
    else {
      plot('chart-csat', [{
        type: 'scatter', mode: 'lines+markers', x, y: col('csat_average'), customdata: col('csat_count'),
        name: 'Average rating', line: { color: COLORS.amber, width: 2.5 }, marker: { size: 7 }, connectgaps: true,
        hovertemplate: '%{y:.2f} / 5 (%{customdata} ratings)<extra></extra>',
      }], baseLayout({
        showlegend: false, margin: { t: 10 },
        yaxis: { range: [0.8, 5.2], rangemode: 'normal', dtick: 1 },
        ...merge(targetLine(csatT, COLORS.amber, csatT == null ? '' : `target ${fixed(csatT, 1)}`)),
      }), `Average CSAT ${per}, ${range}; overall ${text('score', S.kpis && S.kpis.csat_average)} from ${ratings} ratings.`);
    }
    const dist = (S.kpis && S.kpis.csat_distribution) || {};
    const counts = [1, 2, 3, 4, 5].map((s) => Number(dist[String(s)]) || 0);
    if (!counts.some(Boolean)) showEmpty('chart-csat-dist', 'No ratings in this range.');
    else {
      const labels = ['1 star', '2 stars', '3 stars', '4 stars', '5 stars'];
      const layout = baseLayout({ showlegend: false, hovermode: 'closest', margin: { t: 16 }, yaxis: { rangemode: 'tozero', tickformat: ',d' } });
      layout.xaxis = { type: 'category', fixedrange: true, showgrid: false, linecolor: '#e2e8f0', automargin: true }; // not a date axis
      plot('chart-csat-dist', [{
        type: 'bar', x: labels, y: counts, marker: { color: CSAT_COLORS }, text: counts.map(String),
        textposition: 'outside', cliponaxis: false, hovertemplate: '%{x}: %{y}<extra></extra>',
      }], layout, `Ratings ${range}: ` + labels.map((l, i) => `${l} ${counts[i]}`).join(', ') + '.');
    }
  }

  // ---- Breakdown ----
  const tabs = Array.from(document.querySelectorAll('.an-tab'));
  tabs.forEach((t) => { t.id = 'by-tab-' + t.dataset.by; });
  tabs.forEach((t) => t.addEventListener('click', () => selectBy(t.dataset.by)));
  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  document.querySelector('.an-tabs').addEventListener('keydown', (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || !['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
    e.preventDefault();
    const j = e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : -1) + tabs.length) % tabs.length;
    tabs[j].focus();
    selectBy(tabs[j].dataset.by);
  });

  function selectBy(by) {
    if (!BY.includes(by)) return;
    S.by = by;
    writeUrl();
    setExports();
    loadBreakdown();
  }

  const BY_LABEL = { channel: 'Channel', intent: 'Intent', flow: 'Flow', agent: 'Agent', handoff_reason: 'Reason' };

  async function loadBreakdown() {
    const by = S.by;
    for (const t of tabs) {
      const on = t.dataset.by === by;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
    }
    $('breakdown-panel').setAttribute('aria-labelledby', 'by-tab-' + by);
    const req = ++S.byReq;
    const r = await api('GET', `${API}/breakdown?${rangeQuery()}&by=${enc(by)}`);
    if (req !== S.byReq) return;
    if (!r.ok) { fail(r); return; }
    renderBreakdown(by, list(r.data && r.data.rows));
  }

  const th = (label, numeric) => h('th', { text: label, className: numeric ? 'num' : '', attrs: { scope: 'col' } });
  const td = (value, numeric, extra = {}) => h('td', { text: value, className: numeric ? 'num' : '', ...extra });
  const emptyRow = (message, span) => h('tr', { className: 'muted-row' }, h('td', { text: message, attrs: { colspan: span } }));

  function shareCell(share) {
    const bar = h('span', { className: 'an-share-bar' }, h('span'));
    bar.firstChild.style.width = Math.round(Math.max(0, Math.min(1, share || 0)) * 100) + '%';
    return h('td', { className: 'num' }, h('span', { className: 'an-share' }, bar, h('span', { text: text('percent', share) })));
  }

  function renderBreakdown(by, rows) {
    const head = $('breakdown-head'), body = $('breakdown-body');
    if (by === 'handoff_reason') {
      const total = rows.reduce((a, r) => a + (Number(r.handoffs) || 0), 0);
      head.replaceChildren(h('tr', {}, th('Reason'), th('Handoffs', true), th('Share', true)));
      body.replaceChildren(...rows.map((r) => h('tr', { dataset: { testid: 'breakdown-row', value: r.value } },
        td(human(r.value), false, { attrs: { title: r.value || '' } }), td(text('count', r.handoffs), true),
        shareCell(total ? (Number(r.handoffs) || 0) / total : 0))));
      if (!rows.length) body.append(emptyRow('No handoffs in this range.', 3));
      return;
    }
    head.replaceChildren(h('tr', {}, th(BY_LABEL[by]), th('Conversations', true), th('Bot resolution', true),
      th('Handoff rate', true), th('CSAT', true), th('Conversion', true), th('First response', true)));
    body.replaceChildren(...rows.map((r) => {
      const name = by === 'agent' ? (r.name || r.value || '(unassigned)') : human(r.value);
      const csat = num(r.csat_average) == null ? '—' : `${fixed(r.csat_average, 2)} (${nf(0).format(r.csat_count || 0)})`;
      return h('tr', { dataset: { testid: 'breakdown-row', value: r.value } },
        td(name, false, { attrs: { title: r.value || '' } }), td(text('count', r.conversations), true),
        td(text('percent', r.bot_resolution_rate), true), td(text('percent', r.handoff_rate), true),
        td(csat, true), td(text('percent', r.conversion_rate), true), td(text('seconds', r.first_response_seconds_p50), true));
    }));
    if (!rows.length) body.append(emptyRow('No conversations in this range.', 7));
  }

  // ---- Insights ----
  const insightsBtn = $('insights-refresh');

  async function loadInsights() {
    const req = ++S.insReq;
    let r = await api('GET', `${API}/insights?${rangeQuery()}`);
    if (r.status === 404) r = await api('GET', `${API}/insights`); // the latest, of another range
    if (req !== S.insReq) return;
    if (r.ok && r.data) { renderInsights(r.data); return; }
    S.insights = null;
    $('insights-grid').hidden = true;
    const box = $('insights-empty');
    box.hidden = false;
    $('insights-note').textContent = '';
    if (r.status === 404) {
      box.textContent = 'Insights have not been computed yet. “Refresh insights” computes them for the selected range (it takes a little while).';
    } else {
      box.textContent = 'Insights could not be loaded: ' + (r.error ? r.error.message : 'unknown error');
    }
  }

  insightsBtn.addEventListener('click', async () => {
    insightsBtn.disabled = true;
    insightsBtn.textContent = 'Computing…';
    ++S.insReq;
    const r = await api('POST', `${API}/insights/refresh`, { start: S.start, end: S.end });
    insightsBtn.disabled = false;
    insightsBtn.textContent = 'Refresh insights';
    if (!r.ok) { fail(r); return; }
    if (r.data) renderInsights(r.data);
    notice('Insights computed for ' + `${dayText(S.start)} – ${dayText(S.end)}.`, 'ok');
    loadGaps();
  });

  function renderInsights(d) {
    S.insights = d;
    $('insights-empty').hidden = true;
    $('insights-grid').hidden = false;
    const other = d.start !== S.start || d.end !== S.end;
    const span = `${dayText(d.start)} – ${dayText(d.end)}`;
    $('insights-note').textContent = (d.computed_at ? `computed ${stamp(d.computed_at)} · ` : '') + span +
      (other ? ' (not the selected range)' : '');
    const q = `start=${enc(d.start || '')}&end=${enc(d.end || '')}`;
    for (const a of document.querySelectorAll('[data-table]')) a.href = `${API}/insights?${q}&format=csv&table=${a.dataset.table}`;

    const sentimentCell = (v) => td(text('sentiment', v), true, { className: 'num ' + (v == null ? '' : v < -0.1 ? 'an-bad' : v > 0.1 ? 'an-good' : '') });
    const labelCell = (label, sub) => h('td', { className: 'wrap' }, h('strong', { text: label || '—' }), sub ? h('span', { className: 'an-cell-sub', text: sub }) : null);

    const topics = list(d.topics);
    $('topics-body').replaceChildren(...topics.map((t) => h('tr', { dataset: { testid: 'topic-row' } },
      labelCell(t.label, t.question), shareCell(num(t.share)),
      sentimentCell(num(t.average_sentiment != null ? t.average_sentiment : t.sentiment)),
      td(text('percent', t.handoff_rate), true))));
    if (!topics.length) $('topics-body').append(emptyRow('Not enough questions to find topics.', 4));

    const top = list(d.top_questions);
    $('questions-body').replaceChildren(...top.map((t) => h('tr', { dataset: { testid: 'question-row' } },
      h('td', { className: 'wrap', text: t.question || '—' }), td(text('count', t.count), true),
      td(text('percent', t.low_confidence_share), true))));
    if (!top.length) $('questions-body').append(emptyRow('No questions in this range.', 3));

    const pain = list(d.pain_points);
    $('pain-body').replaceChildren(...pain.map((p) => h('tr', { dataset: { testid: 'pain-row' } },
      labelCell(p.label, p.question), td(text('percent', p.pain), true),
      td(text('percent', p.negative_share), true), td(text('percent', p.handoff_rate), true))));
    if (!pain.length) $('pain-body').append(emptyRow('No pain points: no topic with negative sentiment or handoffs.', 4));

    const low = d.low_csat || {};
    const lowRow = (name, sub, r) => h('tr', {}, labelCell(name, sub), td(text('count', r.ratings), true),
      td(num(r.average) == null ? '—' : fixed(r.average, 2), true), td(text('percent', r.low_share), true));
    const arts = list(low.articles), flows = list(low.flows);
    $('low-articles-body').replaceChildren(...arts.map((a) => lowRow(a.title || a.article, a.title && a.title !== a.article ? a.article : '', a)));
    if (!arts.length) $('low-articles-body').append(emptyRow('No rated conversations cited an article.', 4));
    $('low-flows-body').replaceChildren(...flows.map((f) => lowRow(human(f.flow), '', f)));
    if (!flows.length) $('low-flows-body').append(emptyRow('No rated conversations went through a flow.', 4));
  }

  // ---- Knowledge gaps ----
  let gapSeq = 0;

  async function loadGaps() {
    const r = await api('GET', `${API}/gaps?status=open`);
    if (!r.ok) {
      $('gap-list').replaceChildren();
      $('gaps-empty').hidden = false;
      $('gaps-empty').textContent = r.status === 404 ? 'Knowledge gaps are not available.' : 'Knowledge gaps could not be loaded: ' + r.error.message;
      return;
    }
    const gaps = list(r.data && r.data.gaps);
    $('gap-list').replaceChildren(...gaps.map(gapItem));
    gapsChanged();
  }

  function gapsChanged() {
    const n = $('gap-list').children.length;
    $('gaps-empty').hidden = n > 0;
    $('gaps-empty').textContent = 'No open knowledge gaps.';
    $('gaps-count').textContent = n ? `${n} open` : '';
  }

  function gapItem(g) {
    const id = ++gapSeq;
    const examples = list(g.examples).filter((x) => x && x !== g.question);
    const seen = [g.count != null ? `asked ${nf(0).format(g.count)} time${g.count === 1 ? '' : 's'}` : '',
      g.last_seen ? 'last ' + stamp(g.last_seen) : ''].filter(Boolean).join(' · ');
    const acceptBtn = h('button', { className: 'btn primary', text: 'Accept…', attrs: { type: 'button', 'aria-expanded': 'false' }, dataset: { testid: 'gap-accept' } });
    const dismissBtn = h('button', { className: 'btn', text: 'Dismiss', attrs: { type: 'button' }, dataset: { testid: 'gap-dismiss' } });

    const qInput = h('input', { attrs: { type: 'text', id: `gap-q-${id}`, maxlength: 500 }, dataset: { testid: 'gap-question' } });
    qInput.value = g.question || '';
    const aInput = h('textarea', { attrs: { id: `gap-a-${id}`, rows: 4, maxlength: 4000 }, dataset: { testid: 'gap-answer' } });
    aInput.value = g.suggested_answer || '';
    const saveTest = h('input', { attrs: { type: 'checkbox', id: `gap-t-${id}` }, dataset: { testid: 'gap-save-test' } });
    const save = h('button', { className: 'btn primary', text: 'Add to knowledge base', attrs: { type: 'submit' }, dataset: { testid: 'gap-save' } });
    const cancel = h('button', { className: 'btn', text: 'Cancel', attrs: { type: 'button' } });
    const form = h('form', { className: 'an-gap-form', attrs: { novalidate: '' } },
      h('label', { text: 'Question', attrs: { for: qInput.id } }), qInput,
      h('label', { text: 'Answer', attrs: { for: aInput.id } }), aInput,
      h('label', { className: 'an-check', attrs: { for: saveTest.id } }, saveTest, 'Also save as a regression test'),
      h('div', { className: 'an-gap-form-actions' }, cancel, save));
    form.hidden = true;

    const item = h('li', { className: 'an-gap', dataset: { testid: 'gap', gapId: g.id } },
      h('div', { className: 'an-gap-head' },
        h('div', {}, h('div', { className: 'an-gap-q', text: g.question || '—' }), h('div', { className: 'an-gap-meta', text: seen })),
        h('div', { className: 'an-gap-actions' }, acceptBtn, dismissBtn)),
      examples.length ? h('details', {}, h('summary', { text: `${examples.length} similar question${examples.length === 1 ? '' : 's'}` }),
        h('ul', {}, ...examples.slice(0, 10).map((x) => h('li', { text: x })))) : null,
      g.suggested_answer ? h('div', { className: 'an-gap-answer', text: g.suggested_answer }) : null,
      form);

    const toggle = (open) => {
      form.hidden = !open;
      acceptBtn.setAttribute('aria-expanded', String(open));
      if (open) aInput.focus();
    };
    acceptBtn.addEventListener('click', () => toggle(form.hidden));
    cancel.addEventListener('click', () => { toggle(false); acceptBtn.focus(); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const answer = aInput.value.trim(), question = qInput.value.trim();
      if (!answer) { notice('Write the answer first.', 'warn'); aInput.focus(); return; }
      save.disabled = true;
      const r = await api('POST', `${API}/gaps/${enc(g.id)}/accept`, { question: question || null, answer, save_test: saveTest.checked });
      save.disabled = false;
      if (!r.ok) { fail(r); return; }
      const gap = (r.data && r.data.gap) || {};
      item.remove();
      gapsChanged();
      notice(`Added to the knowledge base: “${gap.question || question}”.` + (gap.test_file ? ' A regression test was saved too.' : ''), 'ok');
    });

    let armed = null;
    dismissBtn.addEventListener('click', async () => {
      if (!armed) { // a second click within 4 s confirms
        dismissBtn.textContent = 'Confirm dismiss';
        dismissBtn.classList.add('warn');
        armed = setTimeout(() => { armed = null; dismissBtn.textContent = 'Dismiss'; dismissBtn.classList.remove('warn'); }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      dismissBtn.disabled = true;
      const r = await api('POST', `${API}/gaps/${enc(g.id)}/dismiss`, {});
      dismissBtn.disabled = false;
      dismissBtn.textContent = 'Dismiss';
      dismissBtn.classList.remove('warn');
      if (!r.ok) { fail(r); return; }
      item.remove();
      gapsChanged();
      notice('Gap dismissed.', 'ok');
    });
    return item;
  }

  // ---- A/B experiments ----
  // Not tied to the date range: each experiment is compared over the days it ran.
  const EXP_METRICS = [
    { key: 'bot_resolution_rate', label: 'Bot resolution rate', kind: 'rate', higher: true },
    { key: 'handoff_rate', label: 'Handoff rate', kind: 'rate', higher: false },
    { key: 'conversion_rate', label: 'Conversion rate', kind: 'rate', higher: true },
    { key: 'csat_average', label: 'CSAT', kind: 'score', higher: true },
  ];
  const VERDICTS = {
    better: { text: 'Better', cls: 'better', color: '#16a34a' },
    worse: { text: 'Worse', cls: 'worse', color: '#dc2626' },
    'not yet known': { text: 'Not yet known', cls: 'unknown', color: COLORS.indigo },
  };
  const CONTROL_COLOR = '#64748b';
  const EXP_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
  const EXP_EXAMPLE = [
    '# The control runs the live setup; "warm" changes one text of the guidelines.',
    'control: control',
    'variants:',
    '  control: {}',
    '  warm:',
    '    guidelines:',
    '      texts:',
    '        fallback: "Sorry, I didn\'t catch that. Could you say it another way?"',
    'weights:',
    '  control: 50',
    '  warm: 50',
    '',
  ].join('\n');
  const isAdmin = () => S.user && S.user.role === 'admin';
  const MINUS = '\u2212';
  const signed = (v, digits) => (v > 0 ? '+' : v < 0 ? MINUS : '±') + fixed(Math.abs(v), digits);
  /** Digits for a percentage: one under 10 (so "4.7%" is not "5%"), else none. */
  const pctDigits = (v) => (Math.abs(v * 100) < 9.95 && v !== 0 ? 1 : 0);
  const pctNum = (v, digits) => fixed(v * 100, digits);

  /** "42% (35–49%)" or "4.21 (3.90–4.52)": a value with its 95% interval. */
  function cellText(kind, side) {
    const v = num(side && side.value), lo = num(side && side.low), hi = num(side && side.high);
    if (v == null) return '—';
    if (kind === 'rate') {
      const d = pctDigits(v); // the interval with the value's precision: "42% (35–49%)", "4.7% (1.8–11.0%)"
      return pctNum(v, d) + '%' + (lo != null && hi != null ? ` (${pctNum(lo, d)}–${pctNum(hi, d)}%)` : '');
    }
    return fixed(v, 2) + (lo != null && hi != null ? ` (${fixed(lo, 2)}–${fixed(hi, 2)})` : '');
  }
  /** "+7 pts (−4 to +18)" for rates (percentage points), "+0.30 (−0.12 to +0.72)" for CSAT. */
  function diffText(kind, m) {
    const d = num(m && m.difference), lo = num(m && m.low), hi = num(m && m.high);
    if (d == null) return '—';
    if (kind === 'rate') {
      const digits = pctDigits(d);
      const pts = (x) => signed(x * 100, digits);
      return `${pts(d)} pts` + (lo != null && hi != null ? ` (${pts(lo)} to ${pts(hi)})` : '');
    }
    return signed(d, 2) + (lo != null && hi != null ? ` (${signed(lo, 2)} to ${signed(hi, 2)})` : '');
  }
  function verdictBadge(verdict) {
    const v = VERDICTS[verdict] || VERDICTS['not yet known'];
    return h('span', { className: 'an-verdict ' + v.cls, text: v.text, dataset: { testid: 'exp-verdict', verdict: verdict || 'not yet known' } });
  }
  /** Each variant's share of the conversations: "control 50% · warm 50%". */
  function splitText(e) {
    const w = e.weights || {};
    const names = list(e.variants);
    const total = names.reduce((a, n) => a + (Number(w[n]) || 0), 0);
    return names.map((n) => `${n} ${total ? nf(0).format(Math.round((Number(w[n]) || 0) / total * 100)) : '—'}%`).join(' · ');
  }

  const expList = $('exp-list');
  const expOpen = new Map(); // name -> open, as the user left it
  let expPoll = null;
  let expSeq = 0;

  async function loadExperiments() {
    clearTimeout(expPoll);
    const r = await api('GET', `${API}/experiments`);
    if (!r.ok) {
      expList.replaceChildren();
      $('exp-empty').hidden = false;
      $('exp-empty').textContent = r.status === 404 ? 'Experiments are not available.' : 'Experiments could not be loaded: ' + r.error.message;
      return;
    }
    const found = list(r.data && r.data.experiments);
    const running = found.filter((e) => e.status === 'running').length;
    $('exp-count').textContent = found.length ? `${found.length} in all${running ? ', 1 running' : ''}` : '';
    $('exp-empty').hidden = found.length > 0;
    $('exp-empty').textContent = 'No experiments yet.' + (isAdmin() ? ' “Start an experiment” tries a change on part of the conversations and compares it with the live setup.' : '');
    expList.replaceChildren(...found.map((e, n) => experimentItem(e, expOpen.has(e.name) ? expOpen.get(e.name) : n === 0 || e.status === 'running')));
    // A promotion runs the release gate in the background: look again until it is done.
    if (found.some((e) => e.promotion && e.promotion.status === 'running')) expPoll = setTimeout(loadExperiments, 4000);
  }

  function experimentItem(e, open) {
    const id = 'exp-' + ++expSeq;
    const running = e.status === 'running';
    const when = running
      ? `Running since ${stamp(e.started_at)}`
      : `Ran ${stamp(e.started_at)} – ${stamp(e.stopped_at)}`;
    const summary = h('summary', { className: 'an-exp-summary' },
      h('span', { className: 'an-exp-title' },
        h('h3', { text: e.name, attrs: { id: id + '-title' } }),
        h('span', { className: 'an-status ' + (running ? 'running' : 'stopped'), text: running ? 'Running' : 'Stopped', dataset: { testid: 'exp-status' } }),
        e.winner ? h('span', { className: 'an-status winner', text: 'Winner: ' + e.winner, dataset: { testid: 'exp-winner' } }) : null),
      h('span', { className: 'an-exp-meta' }, h('span', { text: when }), h('span', { text: 'Split: ' + splitText(e) })));
    const body = h('div', { className: 'an-exp-body' });
    const item = h('details', { className: 'an-exp', dataset: { testid: 'experiment', name: e.name, status: e.status } }, summary, body);
    let drawn = false;
    const draw = () => { if (!drawn && item.open) { drawn = true; renderExperimentBody(body, e, id); } };
    item.addEventListener('toggle', () => { expOpen.set(e.name, item.open); draw(); });
    item.open = open;
    if (open) requestAnimationFrame(draw); // once in the page: plotly measures its box
    return item;
  }

  function renderExperimentBody(body, e, id) {
    const cmp = e.comparison || {};
    const sides = cmp.variants || {};
    const comparisons = list(cmp.comparisons);
    const names = list(e.variants);
    const byVariant = new Map(comparisons.map((c) => [c.variant, c]));

    if (e.description) body.append(h('p', { className: 'an-exp-desc', text: e.description }));
    const counted = (n) => Number((sides[n] && sides[n].conversations) || 0);
    body.append(h('div', { className: 'an-exp-counts' },
      h('span', { className: 'muted', text: `Compared over ${dayText(cmp.start)} – ${dayText(cmp.end)}:` }),
      ...names.map((n) => h('span', { className: 'an-exp-count', dataset: { testid: 'exp-conversations', variant: n, count: counted(n) } },
        h('strong', { text: n }), ` ${text('count', counted(n))} conversation${counted(n) === 1 ? '' : 's'}` + (n === e.control && n !== 'control' ? ' (control)' : '')))));
    if (comparisons.length) {
      body.append(h('ul', { className: 'an-exp-verdicts', attrs: { 'aria-label': 'Summary' } },
        ...comparisons.map((c) => h('li', { dataset: { testid: 'exp-summary', variant: c.variant } }, c.summary || ''))));
    }
    if (e.promotion) body.append(promotionBox(e.promotion, e.winner));

    const grid = h('div', { className: 'an-exp-metrics' });
    body.append(grid);
    EXP_METRICS.forEach((m) => grid.append(metricCard(e, m, sides, byVariant, `${id}-${m.key}`)));
    if (isAdmin() && e.status === 'running') body.append(stopForm(e, id));
  }

  function metricCard(e, m, sides, byVariant, chartId) {
    const names = list(e.variants);
    const rates = m.kind === 'rate';
    const head = h('tr', {}, th('Variant'), th('Value (95% interval)', true), th(`Difference vs ${e.control}`, true), th('Verdict'));
    const rows = names.map((n) => {
      const side = (sides[n] || {})[m.key] || {};
      const cmpd = byVariant.get(n);
      const metric = cmpd && list(cmpd.metrics).find((x) => x.metric === m.key);
      const isControl = n === e.control;
      const count = num(side.n) == null ? 0 : side.n;
      const counted = rates ? `${text('count', count)} conversation${count === 1 ? '' : 's'}` : `${text('count', count)} rating${count === 1 ? '' : 's'}`;
      return h('tr', { dataset: { testid: 'exp-row', variant: n, metric: m.key } },
        h('td', {}, h('strong', { text: n }), h('span', { className: 'an-cell-sub', text: counted, dataset: { testid: 'exp-n' } })),
        td(cellText(m.kind, side), true, { dataset: { testid: 'exp-value' } }),
        td(isControl ? '—' : diffText(m.kind, metric), true, { dataset: { testid: 'exp-difference' } }),
        h('td', {}, isControl ? h('span', { className: 'muted', text: 'baseline' }) : verdictBadge(metric ? metric.verdict : null)));
    });
    const titleId = chartId + '-title';
    const chart = h('div', { className: 'an-chart an-exp-chart', attrs: { id: chartId, role: 'img', 'aria-labelledby': titleId } });
    const card = h('article', { className: 'an-exp-metric', dataset: { metric: m.key } },
      h('div', { className: 'an-card-head' },
        h('h4', { text: m.label, attrs: { id: titleId } }),
        h('span', { className: 'an-sub', text: m.higher ? 'higher is better' : 'lower is better' })),
      chart,
      h('div', { className: 'an-table-wrap' }, h('table', { className: 'table an-table an-exp-table', dataset: { testid: 'exp-table', metric: m.key } },
        h('caption', { className: 'sr', text: `${m.label} of each variant of ${e.name}` }),
        h('thead', {}, head), h('tbody', {}, ...rows))));
    requestAnimationFrame(() => metricChart(chartId, e, m, sides, byVariant));
    return card;
  }

  /** A small forest plot: each variant's value with its 95% interval, the control's value dotted. */
  function metricChart(chartId, e, m, sides, byVariant) {
    const el = $(chartId);
    if (!el) return;
    // Variant names are checked by the server (a-z, 0-9, - and _), so safe as chart text; anything else is left out.
    const names = list(e.variants).filter((n) => EXP_NAME.test(n));
    el.style.height = `${56 + 30 * names.length}px`;
    const points = names.map((n) => ({ n, side: (sides[n] || {})[m.key] || {} })).filter((p) => num(p.side.value) != null);
    const described = names.map((n) => `${n}: ${cellText(m.kind, (sides[n] || {})[m.key])}`).join('; ');
    if (!haveCharts()) { showEmpty(chartId, 'The chart library did not load.'); return; }
    if (!points.length) { showEmpty(chartId, m.kind === 'rate' ? 'No conversations yet.' : 'Not enough ratings yet.'); return; }
    const rate = m.kind === 'rate';
    const colorOf = (n) => {
      if (n === e.control) return CONTROL_COLOR;
      const c = byVariant.get(n);
      const x = c && list(c.metrics).find((q) => q.metric === m.key);
      return (VERDICTS[x && x.verdict] || VERDICTS['not yet known']).color;
    };
    const v = points.map((p) => p.side.value);
    const hi = points.map((p) => (num(p.side.high) == null ? p.side.value : p.side.high));
    const lo = points.map((p) => (num(p.side.low) == null ? p.side.value : p.side.low));
    const top = Math.max(...hi);
    const control = (sides[e.control] || {})[m.key];
    const layout = {
      margin: { l: 8, r: 14, t: 6, b: 26 }, height: 56 + 30 * names.length,
      paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
      font: { family: fontFamily(), size: 12, color: '#475569' }, showlegend: false, dragmode: false, hovermode: 'closest',
      hoverlabel: { bgcolor: '#fff', bordercolor: '#cbd5e1', font: { color: '#1f2937', family: fontFamily() } },
      xaxis: rate
        ? { range: [0, Math.min(1, Math.max(0.1, top * 1.15))], tickformat: top < 0.1 ? '.1%' : '.0%', fixedrange: true, gridcolor: '#eef2f6', zeroline: false, automargin: true }
        : { range: [1, 5.05], dtick: 1, fixedrange: true, gridcolor: '#eef2f6', zeroline: false, automargin: true },
      yaxis: { type: 'category', categoryarray: names, autorange: 'reversed', fixedrange: true, showgrid: false, automargin: true, ticks: '' },
      shapes: control && num(control.value) != null ? [{ type: 'line', yref: 'paper', y0: 0, y1: 1, x0: control.value, x1: control.value, line: { color: CONTROL_COLOR, width: 1, dash: 'dot' } }] : [],
    };
    plot(chartId, [{
      type: 'scatter', mode: 'markers', cliponaxis: false, x: v, y: points.map((p) => p.n),
      customdata: points.map((p) => cellText(m.kind, p.side)),
      marker: { size: 10, color: points.map((p) => colorOf(p.n)), symbol: points.map((p) => (p.n === e.control ? 'diamond' : 'circle')) },
      error_x: { type: 'data', symmetric: false, array: hi.map((x, k) => x - v[k]), arrayminus: v.map((x, k) => x - lo[k]), thickness: 2, width: 5, color: '#94a3b8' },
      hovertemplate: '%{y}: %{customdata}<extra></extra>',
    }], layout, `${m.label} of each variant with its 95% interval: ${described}.`);
  }

  function promotionBox(p, winner) {
    if (p.status === 'running') {
      return h('div', { className: 'an-promo running', dataset: { testid: 'exp-promotion', state: 'running' }, attrs: { role: 'status' } },
        h('strong', { text: `Promoting ${winner || 'the winner'}: ` }), 'the release gate is running its tests and metrics…');
    }
    if (p.accepted) {
      const installed = list(p.installed);
      return h('div', { className: 'an-promo accepted', dataset: { testid: 'exp-promotion', state: 'accepted' } },
        h('strong', { text: `Promoted ${winner || 'the winner'}: ` }),
        installed.length ? 'installed ' + installed.join(', ') + '.' : 'the release gate accepted it; nothing needed installing.',
        p.at ? h('span', { className: 'an-cell-sub', text: stamp(p.at) }) : null);
    }
    const reasons = list(p.reasons);
    return h('div', { className: 'an-promo refused', dataset: { testid: 'exp-promotion', state: 'refused' } },
      h('strong', { text: `The release gate refused ${winner || 'the winner'}` + (reasons.length ? ':' : '.') }),
      reasons.length ? h('ul', {}, ...reasons.map((x) => h('li', { text: x }))) : null,
      p.report ? h('p', { className: 'an-promo-report' }, 'Report: ', h('code', { text: p.report })) : null,
      p.at ? h('span', { className: 'an-cell-sub', text: stamp(p.at) }) : null);
  }

  function stopForm(e, id) {
    const winner = h('select', { attrs: { id: id + '-winner' }, dataset: { testid: 'exp-stop-winner' } },
      h('option', { text: 'No winner', attrs: { value: '' } }),
      ...list(e.variants).map((n) => h('option', { text: n === e.control && n !== 'control' ? `${n} (control)` : n, attrs: { value: n } })));
    const promote = h('input', { attrs: { type: 'checkbox', id: id + '-promote', 'aria-describedby': id + '-promote-hint' }, dataset: { testid: 'exp-stop-promote' } });
    const stop = h('button', { className: 'btn warn', text: 'Stop experiment…', attrs: { type: 'submit' }, dataset: { testid: 'exp-stop' } });
    const confirmText = h('p', { attrs: { id: id + '-confirm-text' } });
    const cancel = h('button', { className: 'btn', text: 'Cancel', attrs: { type: 'button' }, dataset: { testid: 'exp-stop-cancel' } });
    const yes = h('button', { className: 'btn warn', text: 'Yes, stop it', attrs: { type: 'button' }, dataset: { testid: 'exp-stop-confirm' } });
    const confirm = h('div', { className: 'an-confirm', attrs: { role: 'group', 'aria-labelledby': id + '-confirm-text' } },
      confirmText, h('div', { className: 'an-form-actions' }, cancel, yes));
    confirm.hidden = true;
    const hint = h('span', { className: 'an-hint', attrs: { id: id + '-promote-hint' } });
    const form = h('form', { className: 'an-exp-stop', attrs: { novalidate: '', 'aria-labelledby': id + '-stop-title' }, dataset: { testid: 'exp-stop-form' } },
      h('h4', { text: 'Stop the experiment', attrs: { id: id + '-stop-title' } }),
      h('div', { className: 'an-exp-stop-row' },
        h('div', { className: 'an-field' }, h('label', { text: 'Winner', attrs: { for: winner.id } }), winner),
        h('div', { className: 'an-stop-promote' },
          h('label', { className: 'an-check', attrs: { for: promote.id } }, promote, 'Promote the winner through the release gate'),
          hint),
        stop),
      confirm);

    const sync = () => {
      promote.disabled = !winner.value;
      if (!winner.value) promote.checked = false;
      hint.textContent = !winner.value ? 'Choose a winner to promote it.'
        : winner.value === e.control ? 'The control is the live setup: nothing to install.'
          : 'Installed only if the test suite passes and no tracked metric gets worse.';
    };
    const setArmed = (on) => {
      confirm.hidden = !on;
      stop.hidden = on;
      winner.disabled = on;
      if (on) promote.disabled = true; else sync();
    };
    winner.addEventListener('change', sync);
    sync();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const w = winner.value;
      confirmText.textContent = `Stop “${e.name}”? Every conversation goes back to the live setup. ` +
        (w ? `Winner: ${w}.` : 'No winner is named.') +
        (w && promote.checked ? ` ${w} then goes through the release gate (this takes a while); it is installed only if it passes.` : '');
      setArmed(true);
      yes.focus();
    });
    cancel.addEventListener('click', () => { setArmed(false); stop.focus(); });
    confirm.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); setArmed(false); stop.focus(); } });
    yes.addEventListener('click', async () => {
      yes.disabled = cancel.disabled = true;
      yes.textContent = 'Stopping…';
      const chosen = winner.value || null, doPromote = Boolean(chosen && promote.checked);
      const r = await api('POST', `${API}/experiments/${enc(e.name)}/stop`, { winner: chosen, promote: doPromote });
      yes.disabled = cancel.disabled = false;
      yes.textContent = 'Yes, stop it';
      if (!r.ok) { setArmed(false); fail(r); stop.focus(); return; }
      notice(`Stopped “${e.name}”` + (chosen ? ` with ${chosen} as the winner.` : '.') +
        (doPromote ? ' The release gate is checking the winner; its outcome shows with the experiment.' : ''), 'ok');
      expOpen.set(e.name, true);
      await loadExperiments();
      const again = expList.querySelector(`[data-testid="experiment"][data-name="${CSS.escape(e.name)}"] summary`);
      if (again) again.focus();
    });
    return form;
  }

  // Starting one (admins).
  const expForm = $('exp-form'), expNew = $('exp-new');
  const expName = $('exp-name'), expDesc = $('exp-description'), expDef = $('exp-definition'), expErr = $('exp-form-error');
  function expFormError(message, field) {
    expErr.textContent = message || '';
    expErr.hidden = !message;
    for (const f of [expName, expDef]) f.removeAttribute('aria-invalid');
    if (field) { field.setAttribute('aria-invalid', 'true'); field.focus(); }
  }
  function toggleExpForm(open) {
    expForm.hidden = !open;
    expNew.setAttribute('aria-expanded', String(open));
    if (open) {
      if (!expDef.value.trim()) expDef.value = EXP_EXAMPLE;
      expFormError('');
      expName.focus();
    }
  }
  expNew.addEventListener('click', () => toggleExpForm(expForm.hidden));
  $('exp-cancel').addEventListener('click', () => { toggleExpForm(false); expNew.focus(); });
  expForm.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { toggleExpForm(false); expNew.focus(); } });
  expForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = expName.value.trim();
    let parsed;
    const source = expDef.value;
    try {
      try { parsed = JSON.parse(source); } catch { parsed = parseYaml(source); }
    } catch (err) {
      expFormError('The variants could not be read: ' + err.message + '.', expDef);
      return;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      expFormError('Write the variants as a mapping (variants:, and control: and weights: if needed).', expDef);
      return;
    }
    const definition = Object.prototype.hasOwnProperty.call(parsed, 'variants') ? { ...parsed } : { variants: parsed };
    if (name) definition.name = name;
    if (expDesc.value.trim()) definition.description = expDesc.value.trim();
    if (!definition.name || !EXP_NAME.test(String(definition.name))) {
      expFormError('Name the experiment: lower-case letters, digits, - and _ (up to 64, starting with a letter or digit).', expName);
      return;
    }
    expFormError('');
    const btn = $('exp-start');
    btn.disabled = true;
    btn.textContent = 'Starting…';
    const r = await api('POST', `${API}/experiments`, definition);
    btn.disabled = false;
    btn.textContent = 'Start experiment';
    if (!r.ok) {
      if (r.status === 401) return;
      const field = r.status === 409 && /named/.test(r.error.message) ? expName : r.status === 422 ? expDef : null;
      expFormError(r.error.message, field);
      if (!field) expErr.focus();
      return;
    }
    const started = r.data || {};
    expName.value = '';
    expDesc.value = '';
    expDef.value = '';
    toggleExpForm(false);
    notice(`Experiment “${started.name || definition.name}” started: new conversations are split between ${list(started.variants).join(', ') || 'its variants'}.`, 'ok');
    expOpen.set(started.name || definition.name, true);
    await loadExperiments();
    expNew.focus();
  });

  /**
   * A small YAML reader for the experiment form: block mappings and sequences, plain and quoted
   * scalars, literal (|) and folded (>) block scalars, one-line flow collections ({}, [a, b]),
   * comments. Enough for experiment definitions; anything else (anchors, tags, multi-line flow
   * or plain scalars) is refused with its line number. Throws Error(message).
   */
  function parseYaml(source) {
    const raw = String(source).replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    const fail = (n, why) => { throw new Error(`line ${n + 1}: ${why}`); };
    const indentOf = (s) => s.length - s.trimStart().length;
    /** The line without its comment (a # at the start or after a space, outside quotes). */
    function stripComment(s) {
      let q = null;
      for (let k = 0; k < s.length; k++) {
        const c = s[k];
        if (q) {
          if (q === '"' && c === '\\') k++;
          else if (c === q) q = null;
        } else if (c === '"' || c === "'") {
          if (k === 0 || /[\s:[{,-]/.test(s[k - 1])) q = c;
        } else if (c === '#' && (k === 0 || /\s/.test(s[k - 1]))) return s.slice(0, k).trimEnd();
      }
      return s.trimEnd();
    }
    /** Skip blank and comment lines; the next meaningful line or null. */
    function peek() {
      while (i < raw.length) {
        const text = stripComment(raw[i]);
        if (text.trim() === '' || (i === 0 && text.trim() === '---')) { i++; continue; }
        if (/^\s*\t/.test(raw[i])) fail(i, 'indent with spaces, not tabs');
        return { n: i, indent: indentOf(text), text: text.trim() };
      }
      return null;
    }
    const isItem = (t) => t === '-' || t.startsWith('- ');
    /** Where a "key: value" pair splits (the colon), or -1. */
    function colonAt(t) {
      let k = 0;
      if (t[0] === '"' || t[0] === "'") {
        const q = t[0];
        for (k = 1; k < t.length; k++) {
          if (q === '"' && t[k] === '\\') { k++; continue; }
          if (t[k] === q) { if (q === "'" && t[k + 1] === "'") { k++; continue; } break; }
        }
        if (k >= t.length) return -1;
        k++;
        while (t[k] === ' ') k++;
        return t[k] === ':' && (k + 1 === t.length || t[k + 1] === ' ') ? k : -1;
      }
      if ('[{'.includes(t[0])) return -1;
      for (k = 0; k < t.length; k++) {
        if (t[k] === ':' && (k + 1 === t.length || t[k + 1] === ' ')) return k;
      }
      return -1;
    }
    function keyOf(t, n) {
      const k = t.trim();
      if (k[0] === '"' || k[0] === "'") return scalar(k, n);
      if (!k) fail(n, 'a key is missing');
      return k;
    }
    function quoted(t, n) {
      if (t[0] === '"') {
        try { return JSON.parse(t.replace(/\\\//g, '/')); } catch { fail(n, 'this double-quoted text is not closed or has an unknown escape'); }
      }
      if (t.length < 2 || t[t.length - 1] !== "'") fail(n, 'this single-quoted text is not closed');
      const inner = t.slice(1, -1);
      if (/'(?!')/.test(inner.replace(/''/g, ''))) fail(n, 'a single quote inside single quotes is written twice (\'\')');
      return inner.replace(/''/g, "'");
    }
    function scalar(t, n) {
      t = t.trim();
      if (t[0] === '"' || t[0] === "'") return quoted(t, n);
      if (/^[&*!]/.test(t)) fail(n, 'anchors, aliases and tags are not supported here');
      if (t === '' || t === '~' || /^(null|Null|NULL)$/.test(t)) return null;
      if (/^(true|True|TRUE)$/.test(t)) return true;
      if (/^(false|False|FALSE)$/.test(t)) return false;
      if (/^[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t.replace(/_/g, ''));
      return t;
    }
    /** A one-line flow collection: {a: 1, b: [x, y]} */
    function flow(t, n) {
      let k = 0;
      const ws = () => { while (t[k] === ' ') k++; };
      function item(stops) {
        ws();
        if (t[k] === '{' || t[k] === '[') return collection();
        if (t[k] === '"' || t[k] === "'") {
          const q = t[k];
          let e = k + 1;
          for (; e < t.length; e++) {
            if (q === '"' && t[e] === '\\') { e++; continue; }
            if (t[e] === q) { if (q === "'" && t[e + 1] === "'") { e++; continue; } break; }
          }
          if (e >= t.length) fail(n, 'quoted text is not closed');
          const v = quoted(t.slice(k, e + 1), n);
          k = e + 1;
          return v;
        }
        let e = k;
        while (e < t.length && !stops.includes(t[e]) && !(t[e] === ':' && (t[e + 1] === ' ' || stops.includes(t[e + 1])))) e++;
        const v = scalar(t.slice(k, e), n);
        k = e;
        return v;
      }
      function collection() {
        const open = t[k++];
        const close = open === '{' ? '}' : ']';
        const out = open === '{' ? {} : [];
        ws();
        if (t[k] === close) { k++; return out; }
        for (;;) {
          if (open === '{') {
            const key = item(',}');
            ws();
            let value = null;
            if (t[k] === ':') { k++; value = item(',}'); }
            if (key == null || typeof key === 'object') fail(n, 'a key in {…} is missing');
            out[String(key)] = value;
          } else out.push(item(',]'));
          ws();
          if (t[k] === ',') { k++; ws(); if (t[k] === close) { k++; return out; } continue; }
          if (t[k] === close) { k++; return out; }
          fail(n, `expected “,” or “${close}”` + (k >= t.length ? ' (write {…} and […] on one line)' : ''));
        }
      }
      const v = collection();
      ws();
      if (k < t.length) fail(n, 'unexpected text after the closing bracket');
      return v;
    }
    function inline(t, n) {
      return t[0] === '{' || t[0] === '[' ? flow(t, n) : scalar(t, n);
    }
    /** A | or > block scalar; i is on the line after its header. */
    function blockScalar(header, parent, n) {
      const m = /^([|>])([-+]?)$/.exec(header);
      if (!m) fail(n, 'write a block text as | or > (with - or + after it, if needed)');
      const lines = [];
      let indent = null;
      while (i < raw.length) {
        const line = raw[i];
        if (line.trim() === '') { lines.push(''); i++; continue; }
        const d = indentOf(line);
        if (d <= parent) break;
        if (indent === null) indent = d;
        if (d < indent) fail(i, 'this line is less indented than the text above it');
        lines.push(line.slice(indent));
        i++;
      }
      while (lines.length && lines[lines.length - 1] === '') lines.pop(); // trailing blanks
      let body;
      if (m[1] === '|') body = lines.join('\n');
      else {
        body = '';
        lines.forEach((l, k) => {
          if (k === 0) body = l;
          else if (l === '') body += '\n';
          else body += (lines[k - 1] === '' || /^\s/.test(l) ? '' : ' ') + l;
        });
      }
      if (m[2] === '-') return body;
      return body + '\n';
    }
    function value(rest, parentIndent, n) {
      if (rest === '') {
        const next = peek();
        if (next && next.indent > parentIndent) return block(next.indent);
        if (next && next.indent === parentIndent && isItem(next.text)) return sequence(parentIndent);
        return null;
      }
      if (rest[0] === '|' || rest[0] === '>') { i = n + 1; return blockScalar(rest, parentIndent, n); }
      i = n + 1;
      return inline(rest, n);
    }
    function mapping(indent, first) {
      const out = {};
      let line = first || peek();
      while (line && line.indent === indent && !isItem(line.text)) {
        const at = colonAt(line.text);
        if (at < 0) fail(line.n, '“key: value” expected' + (line.text.startsWith('{') || line.text.startsWith('[') ? '' : ' (is a colon or a space after it missing?)'));
        const key = String(keyOf(line.text.slice(0, at), line.n));
        if (Object.prototype.hasOwnProperty.call(out, key)) fail(line.n, `“${key}” is given twice`);
        const rest = line.text.slice(at + 1).trim();
        i = line.n + 1;
        out[key] = value(rest, indent, line.n);
        line = peek();
        first = null;
      }
      if (line && line.indent > indent) fail(line.n, 'unexpected indentation');
      return out;
    }
    function sequence(indent) {
      const out = [];
      let line = peek();
      while (line && line.indent === indent && isItem(line.text)) {
        const rest = line.text.slice(1).trim();
        const inner = indent + (line.text.length - line.text.slice(1).trimStart().length);
        if (rest === '') { i = line.n + 1; out.push(value('', indent, line.n)); }
        else if (colonAt(rest) >= 0) out.push(mapping(inner, { n: line.n, indent: inner, text: rest }));
        else { i = line.n + 1; out.push(value(rest, indent, line.n)); }
        line = peek();
      }
      if (line && line.indent > indent) fail(line.n, 'unexpected indentation');
      return out;
    }
    function block(indent) {
      const line = peek();
      if (!line) return null;
      if (isItem(line.text)) return sequence(indent);
      if (colonAt(line.text) < 0) {
        i = line.n + 1;
        const v = inline(line.text, line.n);
        const after = peek();
        if (after && after.indent >= indent) fail(after.n, 'text across several lines: put it in quotes on one line, or use | or >');
        return v;
      }
      return mapping(indent);
    }
    const first = peek();
    if (!first) return null;
    if (first.indent > 0) fail(first.n, 'the first line must not be indented');
    const result = block(0);
    const left = peek();
    if (left) fail(left.n, 'unexpected text (check the indentation)');
    return result;
  }

  // ---- Session ----
  $('logout').addEventListener('click', async () => {
    await api('POST', `${CONSOLE_API}/logout`, {});
    location.assign('/console/login');
  });

  async function boot() {
    const r = await api('GET', `${CONSOLE_API}/me`);
    if (r.status === 401) { toLogin(); return; }
    if (!r.ok || !r.data || !r.data.user) {
      $('boot').textContent = 'The dashboard could not be loaded: ' + (r.error ? r.error.message : 'unknown error');
      return;
    }
    S.user = r.data.user;
    S.csrf = r.data.csrf;
    $('boot').hidden = true;
    if (S.user.role !== 'admin' && S.user.role !== 'reviewer') { $('denied').hidden = false; return; }
    $('app').hidden = false;
    $('an-user').textContent = `${S.user.name || S.user.email} (${S.user.role})`;
    $('rollup').hidden = S.user.role !== 'admin';
    $('exp-new').hidden = S.user.role !== 'admin';
    readUrl();
    syncControls();
    loadRange();
    loadGaps();
    loadExperiments();
  }

  boot();
})();
