'use strict';
// The page's only script: it polls the history document (same origin,
// relative, so that it also works behind the API server's node proxy) and
// renders the node cards and the pod table from it. Rows are built as one
// string and set with one innerHTML, so that 500 pods cost one layout.
(function () {
  const SPARK_W = 160, SPARK_H = 22, WIDE_W = 300, WIDE_H = 36;
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  // Container rows are shown from the start up to this many pods; above it
  // the table starts with pods alone, a third of the rows (the checkbox
  // shows them).
  const CONTAINERS_UP_TO = 100;
  const state = { doc: null, etag: '', sort: { key: 'cpu', dir: -1 }, filter: '', containers: null, timer: 0 };
  const $ = (id) => document.getElementById(id);

  // fixed writes an integer count of 10^-decimals units as a decimal.
  function fixed(scaled, decimals) {
    if (decimals === 0) return String(scaled);
    const s = String(scaled).padStart(decimals + 1, '0');
    return s.slice(0, -decimals) + '.' + s.slice(-decimals);
  }
  // bytes: binary units, three significant digits.
  function bytes(b) {
    if (b == null) return '–';
    if (b < 1024) return Math.round(b) + ' B';
    let v = b, u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    const d = v < 10 ? 2 : v < 100 ? 1 : 0;
    return fixed(Math.round(v * 10 ** d), d) + ' ' + UNITS[u];
  }
  // millicores from nanocores: one decimal below 10m, as kubectl top otherwise.
  function millicores(n) {
    if (n == null) return '–';
    const tenths = Math.round(n / 1e5);
    return tenths < 100 ? fixed(tenths, 1) + 'm' : Math.round(n / 1e6) + 'm';
  }
  function cores(n) { return n == null ? '–' : fixed(Math.round(n / 1e7), 2); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  const attr = (v) => (v == null ? '' : String(v));
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  // interval is the housekeeping period, read off the passes.
  function interval(doc) {
    const p = doc.passes || [];
    return p.length > 1 ? (p[p.length - 1] - p[0]) / (p.length - 1) : 10000;
  }
  function windowLabel(doc) {
    const p = doc.passes || [];
    if (p.length < 2) return 'trend';
    const s = Math.round((p[p.length - 1] - p[0]) / 1000);
    return 'last ' + (s >= 90 ? Math.round(s / 60) + ' min' : s + ' s');
  }

  // path draws the non-null runs of values as polylines, and with withArea
  // the areas below them.
  function path(values, w, h, max, withArea) {
    const n = values.length;
    const x = (i) => (n > 1 ? 2 + (i * (w - 4)) / (n - 1) : w / 2).toFixed(1);
    const y = (v) => (max > 0 ? h - 2 - (v / max) * (h - 5) : h - 2).toFixed(1);
    let line = '', area = '', dots = '';
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        const pts = run.map((i) => x(i) + ',' + y(values[i])).join('L');
        line += 'M' + pts;
        if (withArea) area += 'M' + x(run[0]) + ',' + h + 'L' + pts + 'L' + x(run[run.length - 1]) + ',' + h + 'Z';
      } else if (run.length === 1) {
        dots += `<circle class="dot" cx="${x(run[0])}" cy="${y(values[run[0]])}" r="1.5"/>`;
      }
      run = [];
    };
    values.forEach((v, i) => { if (v == null) flush(); else run.push(i); });
    flush();
    return { line, area, dots, x };
  }
  function maxOf(values) {
    let max = 0;
    for (const v of values || []) if (v != null && v > max) max = v;
    return max;
  }
  function oomMarks(marks, x, h, passes) {
    return (marks || []).map((i) =>
      `<line class="oom-mark" x1="${x(i)}" y1="0" x2="${x(i)}" y2="${h}"/><circle class="oom-dot" cx="${x(i)}" cy="3" r="2.5"><title>OOM kill${passes[i] ? ' at ' + clock(passes[i]) : ''}</title></circle>`).join('');
  }
  // spark is one row's chart of values (null = no sample) with its OOM
  // marks, and the tooltip of its cell. The tooltip is an attribute of the
  // cell, not an SVG title: one element less per chart, over 1000 charts.
  function spark(values, cls, marks, passes, label) {
    values = values || [];
    const max = maxOf(values);
    const p = path(values, SPARK_W, SPARK_H, max);
    const last = values.length ? values[values.length - 1] : null;
    const tip = values.length ? `max ${label(max)} · now ${last == null ? '–' : label(last)}` : 'no samples';
    return `<td class="trend" title="${tip}"><svg class="${cls}" viewBox="0 0 ${SPARK_W} ${SPARK_H}" aria-hidden="true">` +
      `<path class="line" d="${p.line}"/>${p.dots}${oomMarks(marks, p.x, SPARK_H, passes)}</svg></td>`;
  }
  // wide is a card's chart: one or two series stretched to the card.
  function wide(series, label) {
    const max = Math.max(...series.map((s) => maxOf(s.values)));
    let body = '';
    for (const s of series) {
      const p = path(s.values || [], WIDE_W, WIDE_H, max, series.length === 1);
      body += (series.length === 1 ? `<path class="area" d="${p.area}"/>` : '') + `<path class="line ${s.cls}" d="${p.line}"/>`;
    }
    return `<svg class="${series[0].cls}" viewBox="0 0 ${WIDE_W} ${WIDE_H}" preserveAspectRatio="none" role="img">` +
      `<title>max ${label(max)}</title>${body}</svg>`;
  }
  function bar(used, total) {
    const pct = total > 0 && used != null ? Math.min(100, (used / total) * 100) : 0;
    return `<svg viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true"><rect class="track" width="100" height="6"/>` +
      `<rect class="fill${pct >= 90 ? ' high' : ''}" width="${pct.toFixed(2)}" height="6"/></svg>`;
  }
  const percent = (used, total) => (total > 0 && used != null ? ' · ' + Math.round((used / total) * 100) + '%' : '');
  const lastValue = (values) => {
    for (let i = (values || []).length - 1; i >= 0; i--) if (values[i] != null) return values[i];
    return null;
  };
  const cpuLabel = (m) => millicores(m * 1e6);
  const memLabel = (kib) => bytes(kib * 1024);
  const rateLabel = (b) => bytes(b) + '/s';

  function setValue(id, text, v) {
    const el = $(id);
    el.textContent = text;
    el.dataset.v = attr(v);
  }

  function renderNode(doc) {
    const n = doc.nodeStats || {}, h = n.history || {};
    setValue('node-cpu', cores(n.cpu), n.cpu);
    $('node-cpu-of').textContent = doc.cores ? `of ${doc.cores} cores${percent(n.cpu, doc.cores * 1e9)}` : 'cores';
    $('node-cpu-bar').innerHTML = bar(n.cpu, (doc.cores || 0) * 1e9);
    $('node-cpu-spark').innerHTML = wide([{ values: h.cpu, cls: 'cpu' }], cpuLabel);
    setValue('node-memory', bytes(n.memory), n.memory);
    $('node-memory-of').textContent = doc.memoryCapacity ? `of ${bytes(doc.memoryCapacity)}${percent(n.memory, doc.memoryCapacity)}` : '';
    $('node-memory-bar').innerHTML = bar(n.memory, doc.memoryCapacity);
    $('node-memory-spark').innerHTML = wide([{ values: h.mem, cls: 'memory' }], memLabel);
    const fs = n.fs || {};
    setValue('node-fs', bytes(fs.used), fs.used);
    $('node-fs-of').textContent = fs.capacity ? `of ${bytes(fs.capacity)}${percent(fs.used, fs.capacity)}` : '';
    $('node-fs-bar').innerHTML = bar(fs.used, fs.capacity);
    const img = n.imageFs;
    $('node-imagefs').textContent = img ? `image fs ${bytes(img.used)} of ${bytes(img.capacity)}${percent(img.used, img.capacity)}` : '';
    setValue('node-rx-rate', h.rx ? rateLabel(lastValue(h.rx)) : '–', lastValue(h.rx));
    setValue('node-tx-rate', h.tx ? rateLabel(lastValue(h.tx)) : '–', lastValue(h.tx));
    setValue('node-rx', bytes(n.rx), n.rx);
    setValue('node-tx', bytes(n.tx), n.tx);
    $('node-network-spark').innerHTML = wide([{ values: h.rx, cls: 'rx' }, { values: h.tx, cls: 'tx' }], rateLabel);
  }

  // compare orders rows by the sort key; a missing number sorts below
  // every number, and equal values by name.
  function compare(a, b) {
    const { key, dir } = state.sort;
    if (key === 'name') return dir * (a.sortName < b.sortName ? -1 : a.sortName > b.sortName ? 1 : 0);
    const x = a[key] == null ? -1 : a[key], y = b[key] == null ? -1 : b[key];
    return x === y ? (a.sortName < b.sortName ? -1 : 1) : dir * (x - y);
  }
  function matches(pod, filter) {
    if (!filter) return true;
    if ((pod.namespace + '/' + pod.name).toLowerCase().includes(filter)) return true;
    return (pod.containers || []).some((c) => c.name.toLowerCase().includes(filter));
  }
  function cells(row, history, passes) {
    const h = history || {};
    return `<td class="num cpu" data-v="${attr(row.cpu)}">${millicores(row.cpu)}</td>` +
      spark(h.cpu, 'cpu', h.oom, passes, cpuLabel) +
      `<td class="num memory" data-v="${attr(row.memory)}">${bytes(row.memory)}</td>` +
      spark(h.mem, 'memory', h.oom, passes, memLabel);
  }
  function oomTag(h, ownKills) {
    const kills = Math.max(ownKills, (h && h.oomTotal) || 0);
    return kills > 0 || (h && h.oom) ? `<span class="oom-tag" title="OOM kills counted by the kernel">OOM${kills > 1 ? ' ×' + kills : ''}</span>` : '';
  }

  function renderTable() {
    const doc = state.doc;
    if (!doc) return;
    const started = performance.now();
    const passes = doc.passes || [];
    const filter = state.filter;
    const pods = (doc.pods || []).filter((p) => matches(p, filter));
    for (const p of pods) p.sortName = p.namespace + '/' + p.name;
    pods.sort(compare);
    const out = [];
    let containers = 0;
    for (const p of pods) {
      const kids = (p.containers || []).slice();
      for (const c of kids) c.sortName = c.name;
      kids.sort(compare);
      const childKills = kids.reduce((sum, c) => sum + ((c.history && c.history.oomTotal) || 0), 0);
      const ns = p.namespace ? `<span class="ns">${esc(p.namespace)}/</span>` : '';
      out.push(`<tr class="pod" data-pod="${esc(p.namespace + '/' + p.name)}"><td class="name" title="${esc(p.sortName)}">${ns}${esc(p.name)}${oomTag(p.history, childKills)}</td>${cells(p, p.history, passes)}</tr>`);
      containers += kids.length;
      if (!state.containers) continue;
      kids.forEach((c, i) => {
        out.push(`<tr class="container${i === kids.length - 1 ? ' last' : ''}" data-pod="${esc(p.namespace + '/' + p.name)}" data-container="${esc(c.name)}">` +
          `<td class="name" title="${esc(c.name)}">${esc(c.name)}${oomTag(c.history, 0)}</td>${cells(c, c.history, passes)}</tr>`);
      });
    }
    $('rows').innerHTML = out.join('');
    void $('rows').offsetHeight; // lay out here, so that renderMs counts it
    $('empty').hidden = pods.length > 0;
    const total = (doc.pods || []).length;
    $('count').textContent = (pods.length === total ? `${total} pods` : `${pods.length} of ${total} pods`) + ` · ${containers} containers`;
    for (const th of document.querySelectorAll('th[data-key]')) {
      th.setAttribute('aria-sort', th.dataset.key !== state.sort.key ? 'none' : state.sort.dir > 0 ? 'ascending' : 'descending');
    }
    document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  }

  function render() {
    const doc = state.doc;
    document.title = `${doc.node} · kubelet-stats-server`;
    $('node-name').textContent = doc.node;
    const last = (doc.passes || []).slice(-1)[0];
    $('meta').textContent = `snapshot ${last ? clock(last) : doc.time} · every ${Math.round(interval(doc) / 1000)} s`;
    $('cpu-window').textContent = $('memory-window').textContent = windowLabel(doc);
    renderNode(doc);
    renderTable();
    // The snapshot this page shows, for tests and for whoever inspects it.
    document.body.dataset.time = doc.time;
    document.body.dataset.generation = doc.generation;
    performance.mark('kss-rendered');
  }

  function showError(message) {
    $('error').hidden = !message;
    $('error').textContent = message;
  }

  function schedule() {
    clearTimeout(state.timer);
    const every = state.doc ? interval(state.doc) : 2000;
    state.timer = setTimeout(refresh, Math.min(10000, Math.max(1000, every / 2)));
  }

  // refresh fetches the history document; 304 means the snapshot is the
  // one shown.
  async function refresh() {
    if (document.hidden) { schedule(); return; }
    try {
      const resp = await fetch('history', { headers: state.etag ? { 'If-None-Match': state.etag } : {}, cache: 'no-store' });
      if (resp.status !== 304) {
        if (!resp.ok) throw new Error(`${resp.status} ${(await resp.text()).trim()}`);
        const doc = await resp.json();
        state.etag = resp.headers.get('ETag') || '';
        state.doc = doc;
        if (state.containers === null) {
          state.containers = (doc.pods || []).length <= CONTAINERS_UP_TO;
          $('show-containers').checked = state.containers;
        }
        render();
      }
      showError('');
    } catch (err) {
      showError(`Could not refresh: ${err.message}`);
    } finally {
      schedule();
    }
  }

  document.querySelector('thead').addEventListener('click', (event) => {
    const th = event.target.closest('th[data-key]');
    if (!th) return;
    const key = th.dataset.key;
    state.sort = key === state.sort.key ? { key, dir: -state.sort.dir } : { key, dir: key === 'name' ? 1 : -1 };
    renderTable();
  });
  let pending = 0;
  $('filter').addEventListener('input', (event) => {
    state.filter = event.target.value.trim().toLowerCase();
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(renderTable);
  });
  $('show-containers').addEventListener('change', (event) => {
    state.containers = event.target.checked;
    renderTable();
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
  refresh();
})();
