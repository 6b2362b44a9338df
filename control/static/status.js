// The operator status page: reads /api/observability (now) and /api/observability/history
// (one point a minute) every 10 s and redraws in place. No library, no build step: plots are
// SVG made here. Served with script-src 'self' and style-src 'self': nothing inline.
'use strict';

(() => {
  const REFRESH_MS = 10000;
  const DETAIL_MINUTES = 1440;
  const SVG = 'http://www.w3.org/2000/svg';
  const CLASSES = ['2xx', '4xx', '429', '5xx'];
  const state = { detail: null, detailData: null, detailFetched: 0, timer: null };

  // --- formatting: every number carries its unit ----------------------------------------
  const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const count = (n) => (n === null || n === undefined ? '–' : integer.format(n));
  const ms = (n) => (n === null || n === undefined ? '–'
    : (n < 10 ? n.toFixed(2) : decimal.format(n)) + ' ms');
  const percent = (ratio) => (ratio === null || ratio === undefined ? '–'
    : (ratio >= 0.9995 && ratio < 1 ? '99.9' : decimal.format(ratio * 100)) + ' %');
  const rate = (perSecond) => (perSecond < 10 ? perSecond.toFixed(2) : decimal.format(perSecond))
    + ' req/s';
  const bytes = (n) => (n === null || n === undefined ? '–'
    : n >= 1073741824 ? decimal.format(n / 1073741824) + ' GiB'
      : decimal.format(n / 1048576) + ' MiB');
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s % 60} s`;
    return `${s} s`;
  }
  const clock = (epochSeconds) => new Date(epochSeconds * 1000).toLocaleTimeString(
    undefined, { hour: '2-digit', minute: '2-digit' });

  const byId = (id) => document.getElementById(id);
  function setText(id, text) {
    const node = byId(id);
    if (node && node.textContent !== text) node.textContent = text;
  }
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- SVG plots ------------------------------------------------------------------------
  function svgNode(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, String(value));
    }
    return node;
  }

  // A path through `values` (null: a gap) scaled to width x height with `max` at the top.
  function pathOf(values, width, height, max, pad) {
    const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
    let d = '';
    let drawing = false;
    values.forEach((value, i) => {
      if (value === null || value === undefined || !Number.isFinite(value)) {
        drawing = false;
        return;
      }
      const x = pad + i * step;
      const y = height - pad - (max > 0 ? (value / max) * (height - 2 * pad) : 0);
      d += `${drawing ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)} `;
      drawing = true;
    });
    return d.trim();
  }

  function areaOf(values, width, height, max, pad) {
    const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
    let d = '';
    let start = null;
    let last = null;
    const close = () => {
      if (start !== null) d += `L${last.toFixed(1)} ${height - pad} L${start.toFixed(1)} ${height - pad} Z `;
      start = null;
    };
    values.forEach((value, i) => {
      if (value === null || value === undefined || !Number.isFinite(value)) {
        close();
        return;
      }
      const x = pad + i * step;
      const y = height - pad - (max > 0 ? (value / max) * (height - 2 * pad) : 0);
      d += `${start === null ? 'M' : 'L'}${x.toFixed(1)} ${y.toFixed(1)} `;
      if (start === null) start = x;
      last = x;
    });
    close();
    return d.trim();
  }

  // lines: [{values, className, area}]; label: the accessible summary (also the tooltip).
  function plot(lines, { width, height, label, max, axis }) {
    const all = lines.flatMap((line) => line.values).filter((v) => Number.isFinite(v));
    const top = max !== undefined ? max : Math.max(0, ...all);
    const svg = svgNode('svg', {
      viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label,
      preserveAspectRatio: 'none',
    });
    const title = svgNode('title');
    title.textContent = label;
    svg.appendChild(title);
    svg.appendChild(svgNode('line', {
      class: 'base', x1: 0, x2: width, y1: height - 1.5, y2: height - 1.5,
    }));
    const pad = 2;
    for (const line of lines) {
      const d = line.area ? areaOf(line.values, width, height, top, pad)
        : pathOf(line.values, width, height, top, pad);
      if (d) svg.appendChild(svgNode('path', { d, class: line.className }));
      // A value with no neighbour draws no line: a dot instead.
      const { values } = line;
      const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
      const known = (i) => i >= 0 && i < values.length && Number.isFinite(values[i]);
      values.forEach((value, i) => {
        if (!known(i) || known(i - 1) || known(i + 1)) return;
        const y = height - pad - (top > 0 ? (value / top) * (height - 2 * pad) : 0);
        svg.appendChild(svgNode('circle', {
          cx: (pad + i * step).toFixed(1), cy: y.toFixed(1), r: 2, class: `dot ${line.className}`,
        }));
      });
    }
    if (axis && all.length) {
      const text = svgNode('text', { x: width - 2, y: 10, 'text-anchor': 'end' });
      text.textContent = axis(top);
      svg.appendChild(text);
    }
    return svg;
  }

  function replaceChildren(node, child) {
    if (!node) return;
    node.replaceChildren(...(child ? [child] : []));
  }

  // --- derived series -------------------------------------------------------------------
  function totalsOf(counts) {
    return CLASSES.reduce((sum, kind) => sum + (counts[kind] || 0), 0);
  }

  // Per point of a history series, then the minute in progress (`live`): requests, 5xx share
  // and latency quantiles (null where there was no request).
  function columns(history, kind, name) {
    const series = history[kind][name];
    const length = history.points.length;
    const live = history.live ? history.live[kind][name] : undefined;
    const out = { requests: [], errorShare: [], p50: [], p95: [], p99: [] };
    const push = (counts, latency) => {
      const total = counts ? totalsOf(counts) : null;
      out.requests.push(total);
      out.errorShare.push(total ? (counts['5xx'] || 0) / total : null);
      for (const q of ['p50', 'p95', 'p99']) out[q].push(latency ? latency[q] : null);
    };
    for (let i = 0; i < length; i += 1) {
      if (!series || series.counts['2xx'][i] === null) {
        push(null, null);
        continue;
      }
      const counts = {};
      for (const cls of CLASSES) counts[cls] = series.counts[cls][i];
      push(counts, { p50: series.latency_ms.p50[i], p95: series.latency_ms.p95[i],
        p99: series.latency_ms.p99[i] });
    }
    if (history.live) push(live ? live.counts : null, live ? live.latency_ms : null);
    return out;
  }

  function worstFirst(rows) {
    const recent = (row) => (row.live.last_5_minutes.requests
      ? row.live.last_5_minutes : row.live.since_start);
    return rows.sort((a, b) => {
      const ra = recent(a);
      const rb = recent(b);
      const ea = ra.requests ? (ra.counts['5xx'] || 0) / ra.requests : 0;
      const eb = rb.requests ? (rb.counts['5xx'] || 0) / rb.requests : 0;
      if (eb !== ea) return eb - ea;
      const pa = ra.latency_ms.p95 || 0;
      const pb = rb.latency_ms.p95 || 0;
      if (pb !== pa) return pb - pa;
      return a.name < b.name ? -1 : 1;
    });
  }

  // --- rendering ------------------------------------------------------------------------
  function renderTable(tableId, kind, live, history) {
    const tbody = byId(tableId).tBodies[0];
    const names = Object.keys(live);
    if (!names.length) {
      const row = element('tr');
      const cell = element('td', 'empty', 'no requests yet');
      cell.colSpan = 10;
      row.appendChild(cell);
      tbody.replaceChildren(row);
      return;
    }
    const rows = worstFirst(names.map((name) => ({ name, live: live[name] })));
    const fresh = rows.map(({ name, live: series }) => {
      const since = series.since_start;
      const recent = series.last_5_minutes;
      const past = columns(history, kind, name);
      const row = element('tr');
      row.dataset.name = name;
      if ((recent.counts['5xx'] || 0) > 0) row.classList.add('bad');
      if (state.detail && state.detail.kind === kind && state.detail.name === name) {
        row.classList.add('selected');
      }
      const nameCell = element('td');
      const button = element('button', 'name', name);
      button.type = 'button';
      button.title = 'last 24 hours';
      button.addEventListener('click', () => openDetail(kind, name));
      nameCell.appendChild(button);
      row.appendChild(nameCell);
      const labelled = (className, text, label) => {
        const td = element('td', className, text);
        td.dataset.label = label;  // the column's name where phones show rows as cards
        return td;
      };
      row.appendChild(labelled('num c-requests', count(since.requests),
        kind === 'webhooks' ? 'deliveries' : 'requests'));
      for (const cls of CLASSES) {
        const extra = cls === '5xx' ? '' : ' detail-col';
        row.appendChild(labelled(`num c-${cls}${extra}`, count(since.counts[cls]), cls));
      }
      row.appendChild(labelled('num c-success', percent(since.success_rate), 'success'));
      row.appendChild(labelled('num c-p95', ms(recent.latency_ms.p95), 'p95, 5 min'));
      const p95Cell = element('td', 'c-spark-p95');
      const p95Max = Math.max(0, ...past.p95.filter(Number.isFinite));
      p95Cell.appendChild(plot([{ values: past.p95, className: 'latency' }], {
        width: 120, height: 28,
        label: past.p95.some(Number.isFinite)
          ? `p95 over the last hour: highest ${ms(p95Max)}` : 'p95: no request in the last hour',
      }));
      row.appendChild(p95Cell);
      const errCell = element('td', 'c-spark-errors');
      const errMax = Math.max(0, ...past.errorShare.filter(Number.isFinite));
      errCell.appendChild(plot([{ values: past.errorShare, className: 'errors', area: true }], {
        width: 120, height: 28, max: Math.max(errMax, 0.05),
        label: `5xx share over the last hour: highest ${percent(errMax)}`,
      }));
      row.appendChild(errCell);
      return row;
    });
    tbody.replaceChildren(...fresh);
  }

  function sumCounts(routes, period) {
    const totals = { '2xx': 0, '4xx': 0, '429': 0, '5xx': 0 };
    for (const series of Object.values(routes)) {
      for (const kind of CLASSES) totals[kind] += series[period].counts[kind] || 0;
    }
    return totals;
  }

  function renderSummary(now, history) {
    const recent = sumCounts(now.routes, 'last_5_minutes');
    const since = sumCounts(now.routes, 'since_start');
    const recentTotal = totalsOf(recent);
    const sinceTotal = totalsOf(since);
    const success = recentTotal ? 1 - recent['5xx'] / recentTotal : null;
    setText('success-rate', percent(success));
    setText('success-rate-start', percent(sinceTotal ? 1 - since['5xx'] / sinceTotal : null));
    const badge = byId('health');
    let verdict = ['none', '– no recent traffic'];
    if (success !== null) {
      verdict = success >= 0.999 ? ['ok', '✓ healthy'] : success >= 0.95
        ? ['warn', '! degraded'] : ['bad', '✕ failing'];
    }
    badge.className = `badge ${verdict[0]}`;
    badge.textContent = verdict[1];
    const windowSeconds = Math.min(300, Math.max(1, now.uptime_seconds));
    setText('request-rate', rate(recentTotal / windowSeconds));
    setText('requests-total', `${count(sinceTotal)} requests`);
    for (const kind of CLASSES) setText(`total-${kind}`, count(since[kind]));

    const points = history.points;
    const perMinute = points.map((p) => {
      const total = totalsOf(p.requests);
      return p.seconds ? (total * 60) / p.seconds : total;
    });
    if (history.live && history.live.seconds >= 1) {  // the minute in progress, as a rate
      const live = Object.values(history.live.routes).reduce((sum, s) => sum + s.requests, 0);
      perMinute.push((live * 60) / history.live.seconds);
    }
    replaceChildren(byId('spark-requests'), plot([{ values: perMinute, className: 'volume', area: true }], {
      width: 200, height: 34, label: 'requests per minute, last hour',
      axis: (top) => `${count(top)}/min`,
    }));

    const outbox = now.outbox;
    setText('outbox-pending', outbox ? `${count(outbox.pending)} entries` : 'unavailable');
    setText('outbox-sending', outbox ? `${count(outbox.sending)} entries` : '–');
    setText('outbox-dead', outbox ? `${count(outbox.dead)} entries` : '–');
    replaceChildren(byId('spark-outbox'), plot([
      { values: points.map((p) => (p.outbox ? p.outbox.pending + p.outbox.sending : null)), className: 'volume', area: true },
      { values: points.map((p) => (p.outbox ? p.outbox.dead : null)), className: 'errors' },
    ], { width: 200, height: 34, label: 'outbox depth (filled) and dead letters (line), last hour',
      axis: (top) => `${count(top)}` }));

    const bot = now.bot;
    setText('bot-status', !bot.enabled ? 'off'
      : bot.connected ? '✓ connected' : '✕ disconnected');
    setText('gateway-latency', ms(bot.gateway_latency_ms));
    setText('guilds', bot.enabled ? count(bot.guilds) : '–');
    setText('shards', history.bot && history.bot.shards !== null ? count(history.bot.shards) : '–');
    replaceChildren(byId('spark-gateway'), plot([
      { values: points.map((p) => p.gateway_latency_ms), className: 'latency' },
    ], { width: 200, height: 34, label: 'gateway latency, last hour', axis: (top) => ms(top) }));

    setText('refusals', `${count(now.rate_limiter.refusals)} req`);
    setText('backend-errors', count(now.rate_limiter.backend_errors));
    replaceChildren(byId('spark-refusals'), plot([
      { values: points.map((p) => p.rate_limit_refusals), className: 'errors', area: true },
    ], { width: 200, height: 34, label: 'rate-limit refusals per minute, last hour',
      axis: (top) => `${count(top)}/min` }));

    const drive = history.drive_sync;
    let driveText = 'not configured (DRIVE_FOLDER_ID)';
    if (drive && drive.last) {
      const last = drive.last;
      const when = new Date(last.started_at).toLocaleString();
      driveText = `${last.status} · ${when} · ${count(last.files_total)} files, `
        + `${count(last.downloaded)} downloaded`
        + (last.duration_seconds !== null ? ` · ${decimal.format(last.duration_seconds)} s` : '')
        + (last.error ? ` · ${last.error}` : '');
    } else if (drive && drive.configured) {
      driveText = 'no sync yet';
    } else if (drive && drive.unavailable) {
      driveText = 'unavailable';
    }
    setText('drive-sync', driveText);

    const process = history.process;
    setText('version', process.version);
    setText('uptime', duration(process.uptime_seconds));
    setText('memory', bytes(process.rss_bytes));
  }

  // --- the 24-hour view of one route or webhook -----------------------------------------
  function openDetail(kind, name) {
    state.detail = { kind, name };
    state.detailData = null;
    byId('detail').hidden = false;
    setText('detail-title', name);
    setText('detail-summary', 'loading the last 24 hours…');
    for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    for (const tr of byId(kind).tBodies[0].rows) {
      if (tr.dataset.name === name) tr.classList.add('selected');
    }
    refreshDetail(true).then(() => byId('detail').scrollIntoView({ block: 'nearest' }));
  }

  function closeDetail() {
    state.detail = null;
    byId('detail').hidden = true;
    for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
  }

  async function refreshDetail(force) {
    if (!state.detail) return;
    if (force || !state.detailData || Date.now() - state.detailFetched > 60000) {
      state.detailData = await getJSON(`/api/observability/history?minutes=${DETAIL_MINUTES}`);
      state.detailFetched = Date.now();
    }
    const data = state.detailData;
    const { kind, name } = state.detail;
    const points = data.points;
    const series = columns(data, kind, name);
    const first = points.length ? clock(points[0].t) : '–';
    const requests = series.requests.reduce((sum, v) => sum + (v || 0), 0);
    const every = `one point every ${count(data.interval_seconds)} s`;
    setText('detail-summary', points.length
      ? `since ${first}, ${points.length} points (${every}) and the current one: `
        + `${count(requests)} requests`
      : `no point recorded yet (${every}); the current one: ${count(requests)} requests`);
    replaceChildren(byId('chart-latency'), plot([
      { values: series.p99, className: 'latency-p99' },
      { values: series.p95, className: 'latency' },
      { values: series.p50, className: 'latency-p50' },
    ], { width: 480, height: 140, label: `${name}: latency p50 (dotted), p95 (solid), p99 (dashed)`,
      axis: (top) => ms(top) }));
    replaceChildren(byId('chart-errors'), plot([
      { values: series.errorShare, className: 'errors', area: true },
    ], { width: 480, height: 140, max: Math.max(0.05, ...series.errorShare.filter(Number.isFinite)),
      label: `${name}: 5xx share per minute`, axis: (top) => percent(top) }));
    replaceChildren(byId('chart-requests'), plot([
      { values: series.requests, className: 'volume', area: true },
    ], { width: 480, height: 140, label: `${name}: requests per minute`,
      axis: (top) => `${count(top)}/min` }));
  }

  // --- fetching -------------------------------------------------------------------------
  async function getJSON(url) {
    const response = await fetch(url, {
      credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    if (response.status === 401) {  // the session expired: back to the sign-in form
      window.location.assign('/status');
      throw new Error('signed out');
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  async function refresh() {
    try {
      const [now, history] = await Promise.all([
        getJSON('/api/observability'), getJSON('/api/observability/history?minutes=60'),
      ]);
      renderSummary(now, history);
      renderTable('routes', 'routes', now.routes, history);
      renderTable('webhooks', 'webhooks', now.webhooks, history);
      await refreshDetail(false);
      document.body.dataset.refreshed = String(Date.now());
      setText('updated', `updated ${new Date().toLocaleTimeString()} · refreshes every 10 s`);
    } catch (error) {
      setText('updated', `update failed (${error.message}); retrying in 10 s`);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('detail-close').addEventListener('click', closeDetail);
    refresh();
    state.timer = window.setInterval(refresh, REFRESH_MS);
  });
})();
