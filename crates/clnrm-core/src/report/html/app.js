// clnrm's report and web UI (SPEC §10). Plain modern JavaScript, no build step.
// Every text from a report reaches the page through text nodes (`textContent`),
// never as markup: a span name or an output holding `<script>` shows as text.
//
// Two modes, one set of views:
// - a static report.html: the data is in <script id="clnrm-data">;
// - the runs service's UI: <body data-api="/api/v1">, data fetched with a token.
'use strict';
(() => {
  const ROW = 24; // waterfall row height, px (also in app.css)
  const OVERSCAN = 12; // rows rendered beyond the visible ones
  const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];
  const STATUSES = ['UNSET', 'OK', 'ERROR'];
  const ORDER = ['failed', 'error', 'flaky', 'passed', 'cached', 'skipped'];
  // Marks every font has (ASCII), drawn as coloured badges by app.css: an emoji
  // shows as an empty box where no emoji font is installed.
  const MARKS = {
    same: ['=', 'same'],
    changed: ['~', 'changed'],
    extra: ['+', 'extra: only in this run'],
    missing: ['-', 'missing: only in the baseline'],
  };

  const app = document.getElementById('app');
  const dataEl = document.getElementById('clnrm-data');
  const API = document.body.dataset.api || null;
  let STATIC = null; // the report's data, once inflated

  // report.html's data: JSON, gzipped, in base64 (see html.rs).
  async function loadStatic() {
    const text = atob(dataEl.textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
    const json = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return JSON.parse(await new Response(json).text());
  }

  // ---------------------------------------------------------------- DOM helpers
  // h('div', {class: 'x', title: 't', onclick: f}, 'text', child, [more]) — strings
  // become text nodes; attributes are set with setAttribute (no markup parsed).
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    add(el, kids);
    return el;
  }
  function add(el, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) add(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }
  function show(...kids) {
    app.replaceChildren();
    add(app, kids);
    const first = app.querySelector('h1');
    if (first) document.title = first.textContent;
    // The first view is drawn and usable (tests and benches read this).
    if (!document.documentElement.dataset.ready) document.documentElement.dataset.ready = String(performance.now());
  }
  const ms = (n) => (n === null || n === undefined ? '' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(2)} s`);
  const usText = (us) => (us < 1000 ? `${us} µs` : us < 1e6 ? `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms` : `${(us / 1e6).toFixed(2)} s`);
  const badge = (status) => h('span', { class: `badge st-${status}` }, status);
  const when = (msEpoch) => (msEpoch ? new Date(msEpoch).toLocaleString() : '');

  // ----------------------------------------------------------------- the data
  // A span as the views use it, from a compact row of report.html or a span of the API.
  function spansFromRows(block, strings) {
    const s = (i) => (i < 0 ? null : strings[i]);
    const pairs = (list) => {
      const out = [];
      for (let i = 0; i + 1 < list.length; i += 2) out.push([strings[list[i]], strings[list[i + 1]]]);
      return out;
    };
    return block.rows.map((r) => ({
      id: r[0], parent: r[1], name: s(r[2]), kind: KINDS[r[3]] || 'internal', start: r[4], dur: r[5],
      status: STATUSES[r[6]] || 'UNSET', message: s(r[7]), service: s(r[8]), trace: s(r[9]),
      attrs: pairs(r[10]), events: r[11].map((e) => ({ name: strings[e[0]], at: e[1], attrs: pairs(e[2]) })),
    }));
  }
  function spansFromRecords(list) {
    const shownValue = (v) => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v.map(shownValue).join(', ')}]` : String(v));
    const toUs = (ns) => Number(BigInt(ns) / 1000n);
    const t0 = list.reduce((m, x) => (BigInt(x.start_time_unix_nano) < m ? BigInt(x.start_time_unix_nano) : m), list.length ? BigInt(list[0].start_time_unix_nano) : 0n);
    const rel = (ns) => Number((BigInt(ns) - t0) / 1000n);
    const rowOf = new Map();
    list.forEach((x, i) => { if (!rowOf.has(x.span_id)) rowOf.set(x.span_id, i); });
    return list.map((x, i) => {
      const p = x.parent_span_id !== undefined && rowOf.has(x.parent_span_id) ? rowOf.get(x.parent_span_id) : -1;
      const service = x.resource && x.resource['service.name'];
      return {
        id: x.span_id, parent: p === i ? -1 : p, name: x.name, kind: x.kind || 'internal', start: rel(x.start_time_unix_nano),
        dur: Math.max(0, toUs(x.end_time_unix_nano) - toUs(x.start_time_unix_nano)), status: x.status || 'UNSET',
        message: x.status_message || null, service: service === undefined ? null : String(service), trace: x.trace_id,
        attrs: Object.entries(x.attributes || {}).map(([k, v]) => [k, shownValue(v)]),
        events: (x.events || []).map((e) => ({ name: e.name, at: rel(e.time_unix_nano), attrs: Object.entries(e.attributes || {}).map(([k, v]) => [k, shownValue(v)]) })),
      };
    });
  }

  // ---------------------------------------------------------------- the API
  const tokenKey = 'clnrm.token';
  class Unauthorized extends Error {}
  async function api(path, init = {}) {
    const token = localStorage.getItem(tokenKey) || '';
    const res = await fetch(API + path, { ...init, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(init.headers || {}) } });
    if (res.status === 401) throw new Unauthorized();
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (_) { /* not a problem document */ }
      throw new Error(`${res.status}: ${detail}`);
    }
    return res.json();
  }
  // Follows a server-sent event stream with fetch (EventSource cannot send a token),
  // from after event `from.id` (kept up to date, for a reconnect to resume).
  async function follow(path, onEvent, signal, from) {
    const token = localStorage.getItem(tokenKey) || '';
    const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
    if (from.id) headers['Last-Event-ID'] = from.id;
    const res = await fetch(API + path, { headers, signal });
    if (res.status === 401) throw new Unauthorized();
    if (!res.ok || !res.body) throw new Error(`${res.status}: cannot follow the run`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
        const lines = block.split(/\r?\n/);
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        const id = lines.find((l) => l.startsWith('id:'));
        if (id) from.id = id.slice(3).trim();
        let event = null;
        try { event = data ? JSON.parse(data) : null; } catch (_) { /* an error line of the service */ }
        if (event && typeof event === 'object') onEvent(event);
      }
    }
  }

  // ------------------------------------------------------------- the run view
  let filters = { key: null, statuses: new Set(), tag: '', file: '', text: '' };

  function summaryOf(scenarios) {
    const counts = {};
    for (const s of scenarios) counts[s.status] = (counts[s.status] || 0) + 1;
    return counts;
  }

  // The summary and the filterable list of `scenarios`; `link(s)` is a scenario's page.
  function runView(title, meta, scenarios, link) {
    // Filters hold while one run is shown, and start afresh for another.
    if (filters.key !== title) filters = { key: title, statuses: new Set(), tag: '', file: '', text: '' };
    const counts = summaryOf(scenarios);
    const statuses = ORDER.filter((s) => counts[s]);
    const tags = [...new Set(scenarios.flatMap((s) => s.tags || []))].sort();
    const files = [...new Set(scenarios.map((s) => s.file))].sort();
    const rows = scenarios.map((s) => {
      const diff = s.diff && s.diff.counts;
      const tr = h('tr', { class: `row st-${s.status}`, 'data-status': s.status, 'data-id': s.id },
        h('td', {}, badge(s.status)),
        h('td', {}, h('a', { href: link(s) }, s.name)),
        h('td', { class: 'file' }, s.file),
        h('td', { class: 'tags' }, (s.tags || []).join(', ')),
        h('td', { class: 'num' }, ms(s.duration_ms)),
        h('td', { class: 'num' }, s.spans ? String(s.spans) : ''),
        h('td', { class: 'num' }, diff ? `~${diff.changed} +${diff.extra} -${diff.missing}` : ''));
      tr.scenario = s;
      return tr;
    });
    const shown = h('p', { class: 'shown', 'aria-live': 'polite' });
    const apply = () => {
      const text = filters.text.toLowerCase();
      let n = 0;
      for (const tr of rows) {
        const s = tr.scenario;
        const ok = (!filters.statuses.size || filters.statuses.has(s.status)) &&
          (!filters.tag || (s.tags || []).includes(filters.tag)) &&
          (!filters.file || s.file === filters.file) &&
          (!text || s.name.toLowerCase().includes(text) || s.id.toLowerCase().includes(text));
        tr.hidden = !ok;
        if (ok) n += 1;
      }
      shown.textContent = `${n} of ${scenarios.length} scenarios shown`;
    };
    const chips = statuses.map((st) => h('label', { class: `chip st-${st}` },
      h('input', { type: 'checkbox', name: 'status', value: st, checked: filters.statuses.has(st), onchange: (e) => { if (e.target.checked) filters.statuses.add(st); else filters.statuses.delete(st); apply(); } }),
      ` ${st} ${counts[st]}`));
    const select = (label, name, values, key) => h('label', {}, `${label} `,
      h('select', { name, onchange: (e) => { filters[key] = e.target.value; apply(); } },
        h('option', { value: '' }, 'all'), values.map((v) => h('option', { value: v, selected: filters[key] === v }, v))));
    const view = [
      h('h1', {}, title), meta,
      h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
        h('fieldset', {}, h('legend', {}, 'Status'), chips),
        tags.length ? select('Tag', 'tag', tags, 'tag') : null,
        files.length > 1 ? select('File', 'file', files, 'file') : null,
        h('label', {}, 'Search ', h('input', { type: 'search', name: 'q', value: filters.text, oninput: (e) => { filters.text = e.target.value; apply(); } }))),
      shown,
      h('div', { class: 'table-wrap' }, h('table', { class: 'scenarios' },
        h('thead', {}, h('tr', {}, ['Status', 'Scenario', 'File', 'Tags', 'Duration', 'Spans', 'Diff'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows))),
    ];
    apply();
    return view;
  }

  function summaryLine(report) {
    const s = report.summary || {};
    return h('p', { class: 'summary' },
      ['passed', 'flaky', 'failed', 'errors', 'cached', 'skipped'].map((k) => h('span', { class: `count c-${k}` }, `${s[k] || 0} ${k}`)),
      h('span', { class: 'count' }, `in ${ms(s.duration_ms)}`),
      report.interrupted ? h('strong', { class: 'interrupted' }, 'interrupted') : null);
  }

  // --------------------------------------------------------- the scenario view
  function scenarioView(s, spans, back, extra) {
    const parts = [
      h('nav', {}, h('a', { href: back.href }, `← ${back.label}`)),
      h('h1', {}, badge(s.status), ' ', s.name),
      h('p', { class: 'meta' }, h('span', {}, s.file), (s.tags || []).length ? h('span', {}, `tags: ${s.tags.join(', ')}`) : null,
        h('span', {}, `duration ${ms(s.duration_ms)}`), s.setup_ms ? h('span', {}, `set-up ${ms(s.setup_ms)}`) : null, extra),
    ];
    if (s.message) parts.push(h('p', { class: 'message' }, s.message));
    if ((s.unmet || []).length) {
      parts.push(h('section', { class: 'unmet' }, h('h2', {}, 'Unmet expectations'),
        h('ul', {}, s.unmet.map((u) => h('li', {},
          h('span', { class: 'where' }, [u.file, u.line, u.col].filter((x) => x !== undefined && x !== null).join(':')), ' ',
          h('strong', {}, u.what), h('div', {}, `expected: ${u.expected}`), h('div', {}, `found: ${u.found}`))))));
    }
    const attempts = (s.attempts || []).filter((a) => a.status !== 'passed' || s.status === 'flaky');
    if (attempts.length > 1) {
      parts.push(h('section', {}, h('h2', {}, 'Attempts'),
        h('ol', {}, s.attempts.map((a) => h('li', {}, badge(a.status), ` ${ms(a.duration_ms)} `, a.message || '')))));
    }
    parts.push(h('section', { class: 'steps' }, h('h2', {}, 'Steps'),
      (s.steps || []).length ? s.steps.map(stepView) : h('p', {}, 'No steps ran.')));
    if ((s.services || []).length) {
      parts.push(h('section', { class: 'services' }, h('h2', {}, 'Services'), s.services.map((sv) => h('div', { class: 'service' },
        h('h3', {}, sv.id), h('p', { class: 'meta' }, h('span', {}, sv.image), h('span', {}, `container ${sv.container}`),
          sv.exit_code !== null && sv.exit_code !== undefined ? h('span', {}, `exited ${sv.exit_code}`) : h('span', {}, 'running'),
          sv.oom_killed ? h('strong', {}, 'killed: out of memory') : null),
        sv.log_tail ? h('details', { open: s.status === 'failed' || s.status === 'error' }, h('summary', {}, 'Log tail'), h('pre', { class: 'log' }, sv.log_tail)) : h('p', {}, 'No log.')))));
    }
    parts.push(h('section', { class: 'spans' }, h('h2', {}, 'Spans'), spans.note ? h('p', { class: 'meta' }, spans.note) : null,
      spans.list && spans.list.length ? waterfall(spans.list) : h('p', {}, s.spans ? `${s.spans} spans were collected; their data is not in this report.` : 'No spans were collected.')));
    if (s.diff) parts.push(h('section', { class: 'diff' }, h('h2', {}, 'Baseline diff'), diffView(s.diff)));
    return parts;
  }

  function stepView(st) {
    const failed = st.status === 'failed' || st.status === 'error';
    const out = (label, text, cls) => text ? h('details', { open: failed, class: cls }, h('summary', {}, label), h('pre', {}, text)) : null;
    const snap = st.snapshot;
    return h('article', { class: `step st-${st.status}`, 'data-step': st.name },
      h('h3', {}, badge(st.status), ' ', st.name, h('span', { class: 'meta' }, ` on ${st.service}`)),
      h('pre', { class: 'command' }, h('code', {}, st.command)),
      h('p', { class: 'meta' },
        st.http_status ? h('span', {}, `HTTP ${st.http_status}`) : null,
        st.exit_code !== null && st.exit_code !== undefined ? h('span', {}, `exit ${st.exit_code}`) : null,
        h('span', {}, ms(st.duration_ms)), st.attempts > 1 ? h('span', {}, `${st.attempts} tries`) : null,
        st.tolerated ? h('span', {}, 'failure tolerated') : null),
      st.message ? h('p', { class: 'message' }, st.message) : null,
      out('stdout', st.stdout, 'stdout'), out('stderr', st.stderr, 'stderr'),
      snap ? h('div', { class: 'snapshot' }, `snapshot: ${snap.outcome}`, snap.pending ? ` (${snap.pending})` : '', snap.diff ? h('pre', {}, snap.diff) : null) : null);
  }

  // --------------------------------------------------------------- the waterfall
  // Spans in tree order (children by start), each with its depth. Iterative: a
  // deep chain does not overflow the stack.
  function treeOrder(spans) {
    const kids = spans.map(() => []);
    const roots = [];
    spans.forEach((s, i) => (s.parent >= 0 && s.parent < spans.length ? kids[s.parent] : roots).push(i));
    const byStart = (a, b) => spans[a].start - spans[b].start || a - b;
    roots.sort(byStart);
    kids.forEach((k) => k.sort(byStart));
    const out = [];
    const seen = new Uint8Array(spans.length);
    const stack = roots.slice().reverse().map((i) => [i, 0]);
    while (stack.length) {
      const [i, depth] = stack.pop();
      if (seen[i]) continue; // a cycle of parents
      seen[i] = 1;
      out.push({ span: spans[i], depth });
      for (let k = kids[i].length - 1; k >= 0; k -= 1) stack.push([kids[i][k], depth + 1]);
    }
    // Spans on a cycle of parents that no root reaches.
    spans.forEach((s, i) => { if (!seen[i]) out.push({ span: s, depth: 0 }); });
    return out;
  }

  function waterfall(spans) {
    const rows = treeOrder(spans);
    const end = rows.reduce((m, r) => Math.max(m, r.span.start + r.span.dur), 0);
    const total = Math.max(end, 1);
    const errors = rows.filter((r) => r.span.status === 'ERROR').length;
    const detail = h('div', { class: 'span-detail', 'aria-live': 'polite' }, h('p', { class: 'meta' }, 'Select a span to see its attributes and events.'));
    const inner = h('div', { class: 'wf-inner', role: 'listbox', 'aria-label': 'spans' });
    inner.style.height = `${rows.length * ROW}px`;
    const scroller = h('div', { class: 'wf-scroll', tabindex: '0' }, inner);
    const axis = h('div', { class: 'wf-axis' }, h('span', { class: 'wf-label' }, `${rows.length} spans${errors ? `, ${errors} with errors` : ''}`),
      h('span', { class: 'wf-ticks' }, [0, 0.25, 0.5, 0.75, 1].map((f) => { const t = h('span', { class: 'tick' }, usText(Math.round(total * f))); t.style.left = `${f * 100}%`; return t; })));
    let selected = -1;
    const drawn = new Map(); // row index → element
    const rowEl = (i) => {
      const { span: s, depth } = rows[i];
      const bar = h('span', { class: 'wf-bar' });
      bar.style.left = `${(s.start / total) * 100}%`;
      bar.style.width = `${(s.dur / total) * 100}%`;
      const label = h('span', { class: 'wf-name' }, s.status === 'ERROR' ? h('span', { class: 'err-mark', title: 'error' }, '!') : null, s.name,
        h('span', { class: 'wf-dur' }, ` ${usText(s.dur)}`));
      label.style.paddingLeft = `${Math.min(depth, 40) * 12 + 4}px`;
      const el = h('div', { class: `wf-row${s.status === 'ERROR' ? ' err' : ''}${i === selected ? ' sel' : ''}`, role: 'option', 'aria-selected': i === selected ? 'true' : 'false',
        'data-row': i, 'data-name': s.name, 'data-depth': depth, 'data-start': s.start, 'data-dur': s.dur, onclick: () => select(i) },
      label, h('span', { class: 'wf-track' }, bar));
      el.style.top = `${i * ROW}px`;
      return el;
    };
    // Only the rows in view (and a few around) are in the document.
    const draw = () => {
      const h0 = scroller.clientHeight || 400;
      const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
      const last = Math.min(rows.length - 1, Math.ceil((scroller.scrollTop + h0) / ROW) + OVERSCAN);
      for (const [i, el] of drawn) if (i < first || i > last) { el.remove(); drawn.delete(i); }
      for (let i = first; i <= last; i += 1) if (!drawn.has(i)) { const el = rowEl(i); drawn.set(i, el); inner.appendChild(el); }
    };
    const select = (i) => {
      if (i < 0 || i >= rows.length) return;
      selected = i;
      for (const [j, el] of drawn) { el.classList.toggle('sel', j === i); el.setAttribute('aria-selected', j === i ? 'true' : 'false'); }
      const top = i * ROW;
      if (top < scroller.scrollTop) scroller.scrollTop = top;
      else if (top + ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW - scroller.clientHeight;
      draw();
      detail.replaceChildren(spanDetail(rows[i].span, spans));
    };
    scroller.addEventListener('scroll', () => requestAnimationFrame(draw), { passive: true });
    scroller.addEventListener('keydown', (e) => {
      const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[e.key];
      if (step) { e.preventDefault(); select(Math.max(0, Math.min(rows.length - 1, (selected < 0 ? -1 : selected) + step))); }
      else if (e.key === 'Home') { e.preventDefault(); select(0); }
      else if (e.key === 'End') { e.preventDefault(); select(rows.length - 1); }
    });
    // Drawn once it is in the document (its height is known then).
    requestAnimationFrame(draw);
    draw();
    return h('div', { class: 'waterfall', 'data-total': total, 'data-rows': rows.length }, axis, scroller, detail);
  }

  function spanDetail(s, spans) {
    const kv = (pairs) => h('table', { class: 'kv' }, h('tbody', {}, pairs.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
    const parent = s.parent >= 0 ? spans[s.parent] : null;
    return h('div', {},
      h('h3', {}, s.status === 'ERROR' ? h('span', { class: 'err-mark', title: 'error' }, '!') : '', s.name),
      kv([['kind', s.kind], ['status', s.message ? `${s.status}: ${s.message}` : s.status], ['start', `+${usText(s.start)}`], ['duration', usText(s.dur)],
        ['service', s.service || ''], ['span id', s.id], ['parent', parent ? `${parent.name} (${parent.id})` : '(root)'], ['trace id', s.trace || '']]),
      h('h4', {}, 'Attributes'), s.attrs.length ? kv(s.attrs) : h('p', { class: 'meta' }, 'none'),
      h('h4', {}, 'Events'), s.events.length ? h('ul', { class: 'events' }, s.events.map((e) => h('li', {}, `+${usText(e.at)} `, h('strong', {}, e.name), e.attrs.length ? kv(e.attrs) : null))) : h('p', { class: 'meta' }, 'none'));
  }

  // ---------------------------------------------------------------- the diff tree
  function diffView(diff) {
    const c = diff.counts || {};
    const value = (v) => (v === undefined || v === null ? '(none)' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));
    const differs = (n) => n.mark !== 'same' || (n.children || []).some(differs);
    const node = (n) => {
      const [symbol, label] = MARKS[n.mark] || ['?', n.mark];
      const changes = [];
      for (const a of n.attrs || []) changes.push(h('li', { class: 'change' }, h('code', {}, a.key), ': ', h('span', { class: 'old' }, value(a.old)), ' → ', h('span', { class: 'new' }, value(a.new))));
      if (n.kind_change) changes.push(h('li', { class: 'change' }, `kind: ${n.kind_change[0]} → ${n.kind_change[1]}`));
      if (n.status_change) changes.push(h('li', { class: 'change' }, `status: ${n.status_change[0]} → ${n.status_change[1]}`));
      if (n.events_change) changes.push(h('li', { class: 'change' }, `events: [${n.events_change[0].join(', ')}] → [${n.events_change[1].join(', ')}]`));
      if (n.duration_change) changes.push(h('li', { class: 'change' }, `duration: ${n.duration_change[0]} ms → ${n.duration_change[1]} ms`));
      const head = h('span', { class: `dn m-${n.mark}` }, h('span', { class: 'mark', role: 'img', 'aria-label': label, title: label }, symbol), ' ', n.name, h('span', { class: 'meta' }, ` ${n.kind}`));
      const kids = n.children || [];
      const body = [changes.length ? h('ul', { class: 'changes' }, changes) : null, kids.length ? h('ul', {}, kids.map(node)) : null];
      return h('li', { 'data-mark': n.mark, 'data-name': n.name }, kids.length
        ? h('details', { open: differs(n) }, h('summary', {}, head), body)
        : [head, body]);
    };
    return [
      h('p', { class: 'summary' }, h('span', { class: 'count' }, `~ ${c.changed || 0} changed`), h('span', { class: 'count' }, `+ ${c.extra || 0} extra`), h('span', { class: 'count' }, `- ${c.missing || 0} missing`)),
      h('ul', { class: 'diff-tree' }, ((diff.tree || {}).roots || []).map(node)),
    ];
  }

  // ------------------------------------------------------------- static report
  function renderStatic() {
    const report = STATIC.report;
    const scenarios = report.scenarios || [];
    const route = location.hash.replace(/^#\/?/, '');
    if (route.startsWith('s/')) {
      const i = Number(route.slice(2));
      const s = scenarios[i];
      if (s) {
        const block = STATIC.spans[i];
        const spans = { list: block ? spansFromRows(block, STATIC.strings) : null, note: null };
        if (block && !String(report.run_id).split('+').includes(block.run)) spans.note = `Spans from run ${block.run} (this scenario ${s.status === 'cached' ? 'was cached' : 'ran'} in run ${report.run_id}).`;
        if (block && block.dropped) spans.note = `${spans.note || ''} ${block.dropped} more spans are not shown.`.trim();
        return show(scenarioView(s, spans, { href: '#/', label: `run ${report.run_id}` }));
      }
    }
    show(runView(`clnrm run ${report.run_id}`, summaryLine(report), scenarios, (s) => `#/s/${scenarios.indexOf(s)}`));
  }

  // ----------------------------------------------------------------- the web UI
  let leave = () => {}; // stops what the current page follows
  let nav = 0; // the current navigation; a page whose navigation is gone stops
  const gone = (mine) => mine !== nav;

  function tokenForm(why) {
    const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true });
    show(h('h1', {}, 'clnrm runs'), h('p', {}, why),
      h('form', { class: 'token', onsubmit: (e) => { e.preventDefault(); localStorage.setItem(tokenKey, input.value.trim()); route(); } },
        h('label', { for: 'token' }, 'API token (read scope or more) '), input, h('button', { type: 'submit' }, 'Sign in')));
    input.focus();
  }

  function header() {
    return h('header', { class: 'top' }, h('a', { href: '#/' }, 'clnrm runs'),
      h('button', { type: 'button', class: 'link', onclick: () => { localStorage.removeItem(tokenKey); route(); } }, 'Sign out'));
  }

  function runStatus(r) {
    const s = r.summary || {};
    if (r.status === 'queued' || r.status === 'running') return '';
    return ['passed', 'flaky', 'failed', 'errors', 'cached', 'skipped'].filter((k) => s[k]).map((k) => `${s[k]} ${k}`).join(', ');
  }

  async function runsPage(mine) {
    let timer = 0;
    let stopped = false;
    leave = () => { stopped = true; clearTimeout(timer); };
    const tbody = h('tbody', {});
    show(header(), h('h1', {}, 'Runs'), h('p', { class: 'meta' }, 'Newest first; the list follows new runs as they come.'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'runs' }, h('thead', {}, h('tr', {}, ['Status', 'Run', 'Submitted', 'Duration', 'Scenarios'].map((c) => h('th', { scope: 'col' }, c)))), tbody)));
    const load = async () => {
      const page = await api('/runs?limit=50');
      if (stopped) return;
      tbody.replaceChildren(...page.runs.map((r) => h('tr', { 'data-run': r.id, 'data-status': r.status },
        h('td', {}, badge(r.status)), h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)),
        h('td', {}, when(r.created_ms)), h('td', { class: 'num' }, r.finished_ms && r.started_ms ? ms(r.finished_ms - r.started_ms) : ''),
        h('td', {}, runStatus(r)))));
      if (!page.runs.length) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 5 }, 'No runs yet: clnrm run --server URL submits one.')));
    };
    const tick = async () => {
      try { await load(); } catch (e) { if (e instanceof Unauthorized && !stopped && !gone(mine)) return tokenForm('Your token was refused; enter another.'); }
      if (!stopped && !gone(mine)) timer = setTimeout(tick, 2000);
    };
    await tick();
  }

  const FINAL = new Set(['passed', 'failed', 'error', 'cancelled']);

  async function runPage(id, mine) {
    const run = await api(`/runs/${encodeURIComponent(id)}`);
    if (gone(mine)) return undefined;
    if (FINAL.has(run.status)) return finishedRun(run, mine);
    // Live: the scenarios as they finish, from the run's event stream.
    const ctl = new AbortController();
    leave = () => ctl.abort();
    const results = new Map();
    const running = new Set();
    let total = 0;
    let pending = 0;
    const bar = h('progress', { max: 1, value: 0 });
    const counter = h('p', { class: 'progress-text', 'aria-live': 'polite' });
    const list = h('div', { class: 'live-list' });
    const redraw = () => {
      let done = 0;
      for (const r of results.values()) if (!(r.status === 'skipped' && (r.reason === 'filtered' || r.reason === 'partition'))) done += 1;
      bar.max = Math.max(total, 1);
      bar.value = done;
      counter.textContent = `${done} of ${total || '?'} scenarios finished${running.size ? `, ${running.size} running` : ''}`;
      const all = [...results.values()];
      list.replaceChildren(...runView(`Run ${id}`, h('p', { class: 'meta' }, badge('running')), all, (s) => `#/runs/${encodeURIComponent(id)}/s/${encodeURIComponent(s.id)}`).slice(2));
    };
    show(header(), h('h1', {}, `Run ${id}`), h('p', { class: 'meta' }, badge(run.status === 'queued' ? 'queued' : 'running'), h('span', {}, `submitted ${when(run.created_ms)}`)), bar, counter, list);
    redraw();
    // Redrawn once per frame at most, and only for what changes the view.
    const later = () => { if (!pending) pending = requestAnimationFrame(() => { pending = 0; redraw(); }); };
    const onEvent = (ev) => {
      if (ev.event === 'run_started') total = ev.total;
      else if (ev.event === 'scenario_started') running.add(ev.id);
      else if (ev.event === 'retrying') running.delete(ev.id);
      else if (ev.event === 'scenario_finished') { running.delete(ev.id); results.set(ev.id, ev); }
      else return;
      later();
    };
    // Followed until the run ended; a cut stream resumes after the last event seen.
    const from = { id: null };
    for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
      try {
        await follow(`/runs/${encodeURIComponent(id)}/events`, onEvent, ctl.signal, from);
      } catch (e) {
        if (ctl.signal.aborted || gone(mine)) return undefined;
        if (e instanceof Unauthorized) throw e;
      }
      if (ctl.signal.aborted || gone(mine)) return undefined;
      let now = null;
      try { now = await api(`/runs/${encodeURIComponent(id)}`); } catch (e) { if (e instanceof Unauthorized) throw e; }
      if (gone(mine)) return undefined;
      if (now && FINAL.has(now.status)) return finishedRun(now, mine);
      counter.textContent = `${counter.textContent.replace(/ \(reconnecting.*$/, '')} (reconnecting…)`;
      await new Promise((r) => { setTimeout(r, wait); });
    }
  }

  async function finishedRun(run, mine) {
    const id = run.id;
    let report = { run_id: id, summary: run.summary || {}, scenarios: [] };
    try { report = await api(`/runs/${encodeURIComponent(id)}/report`); } catch (e) { if (e instanceof Unauthorized) throw e; }
    if (gone(mine)) return;
    const meta = [h('p', { class: 'meta' }, badge(run.status), h('span', {}, `submitted ${when(run.created_ms)}`), run.worker ? h('span', {}, `worker ${run.worker}`) : null,
      run.attempts > 1 ? h('span', {}, `${run.attempts} claims`) : null,
      h('a', { href: `${API}/runs/${encodeURIComponent(id)}/report?format=html`, download: `clnrm-${id}.html`, onclick: downloadHtml(id) }, 'report.html')),
    summaryLine(report), report.error ? h('p', { class: 'message' }, report.error) : null];
    const scenarios = report.scenarios || [];
    show(header(), runView(`Run ${id}`, meta, scenarios, (s) => `#/runs/${encodeURIComponent(id)}/s/${encodeURIComponent(s.id)}`));
  }

  // The report file needs the token too: fetched, then saved from a blob.
  function downloadHtml(id) {
    return async (e) => {
      e.preventDefault();
      const token = localStorage.getItem(tokenKey) || '';
      const link = e.currentTarget;
      let res = null;
      try { res = await fetch(`${API}/runs/${encodeURIComponent(id)}/report?format=html`, { headers: { Authorization: `Bearer ${token}` } }); } catch (_) { /* below */ }
      if (!res || !res.ok) {
        link.textContent = `report.html (could not be fetched${res ? `: ${res.status}` : ''})`;
        return;
      }
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `clnrm-${id}.html` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    };
  }

  async function scenarioPage(id, sid, mine) {
    const s = await api(`/runs/${encodeURIComponent(id)}/scenarios/${encodeURIComponent(sid)}`);
    if (gone(mine)) return;
    const spans = { list: s.span_list ? spansFromRecords(s.span_list) : null, note: null };
    show(header(), scenarioView(s, spans, { href: `#/runs/${encodeURIComponent(id)}`, label: `run ${id}` },
      h('a', { href: `#/history/${encodeURIComponent(sid)}` }, 'history')));
  }

  async function historyPage(sid, mine) {
    const hist = await api(`/scenarios/${encodeURIComponent(sid)}/history`);
    if (gone(mine)) return;
    const runs = hist.runs || [];
    show(header(), h('h1', {}, `History of ${sid}`),
      h('p', { class: 'summary' }, h('span', { class: 'count', 'data-flaky-rate': hist.flaky_rate }, `flaky rate ${(hist.flaky_rate * 100).toFixed(1)}%`),
        h('span', { class: 'count' }, `${runs.length} runs`)),
      h('ol', { class: 'history-strip', 'aria-label': 'outcomes, newest first' }, runs.map((r) => h('li', { class: `st-${r.status}`, title: `${r.status} in run ${r.run_id}` }, r.status[0].toUpperCase()))),
      h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['Status', 'Run', 'Ended', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, runs.map((r) => h('tr', {}, h('td', {}, badge(r.status)),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(r.run_id)}/s/${encodeURIComponent(sid)}` }, r.run_id)),
          h('td', {}, when(r.finished_ms)), h('td', { class: 'num' }, ms(r.duration_ms))))))));
  }

  const decode = (part) => { try { return decodeURIComponent(part); } catch (_) { return part; } };

  async function route() {
    leave();
    leave = () => {};
    nav += 1;
    const mine = nav;
    if (dataEl) {
      if (!STATIC) STATIC = await loadStatic();
      return renderStatic();
    }
    if (!localStorage.getItem(tokenKey)) return tokenForm('Sign in with a token (`clnrm serve token create --scope read`).');
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decode);
    try {
      if (parts[0] === 'runs' && parts[1] && parts[2] === 's' && parts[3]) return await scenarioPage(parts[1], parts.slice(3).join('/'), mine);
      if (parts[0] === 'runs' && parts[1]) return await runPage(parts[1], mine);
      if (parts[0] === 'history' && parts[1]) return await historyPage(parts.slice(1).join('/'), mine);
      return await runsPage(mine);
    } catch (e) {
      if (gone(mine)) return undefined;
      if (e instanceof Unauthorized) return tokenForm('Your token was refused; enter another.');
      return show(header(), h('h1', {}, 'Something went wrong'), h('p', { class: 'message' }, String(e.message || e)));
    }
  }

  const fail = (e) => show(h('h1', {}, 'This page cannot be shown'), h('p', { class: 'message' }, String(e.message || e)));
  window.addEventListener('hashchange', () => { route().catch(fail); });
  route().catch(fail);
})();
