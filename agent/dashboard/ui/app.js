// Weft dashboard: fetches /api/graph every few seconds, draws it (a view of view-*.js), and
// shows /api/details for a clicked node or edge. Plain browser JavaScript, no build step: the
// server serves this file as it is.
'use strict';

const REFRESH_MS = 3000;
const state = { window: '1m', namespaces: new Set(), known: [], selected: undefined, graph: undefined };

const $ = (sel) => document.querySelector(sel);

function fmtBytes(perSecond) {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
  let v = perSecond;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
function fmtRate(v, unit) { return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ${unit}`; }
function fmtPct(v) { return `${(v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1)}%`; }
function mtlsText(m) { return m === 'mutual_tls' ? 'mTLS' : m === 'mixed' ? 'mixed' : 'plaintext'; }

/** The text on an edge: its rate, and its error rate, p99 or denials when there are any. */
function edgeLabel(e) {
  const parts = [];
  if (e.protocol === 'tcp') {
    parts.push(fmtBytes(e.bytesPerSecond || 0));
    if (e.denied > 0) parts.push(`${Math.round(e.denied)} denied`);
  } else {
    parts.push(fmtRate(e.requestsPerSecond || 0, 'req/s'));
    if (e.errorRate > 0) parts.push(`${fmtPct(e.errorRate)} err`);
    if (e.p99Ms !== undefined) parts.push(`p99 ${Math.round(e.p99Ms)} ms`);
  }
  parts.push(e.mtls === 'mutual_tls' ? 'mTLS' : e.mtls === 'mixed' ? 'mixed mTLS' : 'plaintext');
  return parts.join(' · ');
}

// The view draws the graph: cytoscape when the page has it (served from the package's
// node_modules), else the dashboard's own SVG view (view-svg.js). Both have one interface.
const view = (window.cytoscape ? window.weftViews.cytoscape : window.weftViews.svg)($('#graph'), {
  edgeLabel,
  onSelect: (sel) => (sel ? select(sel) : clearSelection()),
});
// For tests and the curious: the live view and what was last fetched.
window.weftDashboard = { view, state, refreshed: 0 };

function labelOf(id) {
  const n = state.graph && state.graph.nodes.find((x) => x.id === id);
  return n ? (n.namespace && n.kind !== 'namespace' ? `${n.namespace}/${n.label}` : n.label) : id;
}

function fillTable(graph) {
  const body = $('#edges tbody');
  body.textContent = '';
  for (const e of graph.edges) {
    const tr = document.createElement('tr');
    tr.dataset.edge = e.id;
    tr.dataset.source = e.source;
    tr.dataset.target = e.target;
    tr.dataset.protocol = e.protocol;
    tr.dataset.mtls = e.mtls;
    if (state.selected && state.selected.id === e.id) tr.className = 'selected';
    const rate = e.protocol === 'tcp' ? fmtBytes(e.bytesPerSecond || 0) : fmtRate(e.requestsPerSecond || 0, 'req/s');
    const bad = e.protocol === 'tcp' ? `${Math.round(e.denied || 0)} denied` : fmtPct(e.errorRate || 0);
    const cells = [labelOf(e.source), labelOf(e.target), e.protocol.toUpperCase(), rate, mtlsText(e.mtls), bad, e.p99Ms !== undefined ? `${Math.round(e.p99Ms)} ms` : '–'];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    }
    tr.addEventListener('click', () => select({ kind: 'edge', id: e.id }));
    body.appendChild(tr);
  }
}

function fillNamespaces(names) {
  if (names.join(',') === state.known.join(',')) return;
  state.known = names;
  const box = $('#namespaces');
  box.querySelectorAll('label').forEach((l) => l.remove());
  for (const ns of names) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = ns;
    input.checked = state.namespaces.size === 0 || state.namespaces.has(ns);
    input.addEventListener('change', () => {
      const checked = [...box.querySelectorAll('input:checked')].map((i) => i.value);
      // All checked is the same as no filter (new namespaces show up by themselves).
      state.namespaces = new Set(checked.length === names.length ? [] : checked);
      refresh();
    });
    label.append(input, ` ${ns}`);
    box.appendChild(label);
  }
}

async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function query() {
  const q = new URLSearchParams({ window: state.window });
  if (state.namespaces.size > 0) q.set('namespace', [...state.namespaces].join(','));
  return q;
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const answer = await getJson(`/api/graph?${query()}`);
    state.graph = answer.graph;
    fillNamespaces(answer.namespaces);
    view.draw(answer.graph);
    if (state.selected) view.select(state.selected.id);
    fillTable(answer.graph);
    const err = $('#error');
    err.hidden = answer.error === undefined;
    err.textContent = answer.error ? `Refresh failed, showing the last good graph: ${answer.error}` : '';
    $('#status').textContent = `${answer.graph.nodes.filter((n) => n.kind !== 'namespace' && n.kind !== 'app').length} nodes, ${answer.graph.edges.length} edges · ${answer.source} · ${new Date(answer.generatedAt).toLocaleTimeString()}`;
    window.weftDashboard.refreshed++;
    if (state.selected) await showDetails(state.selected, false);
  } catch (e) {
    const err = $('#error');
    err.hidden = false;
    err.textContent = `Cannot load the graph: ${e.message}`;
  } finally {
    refreshing = false;
  }
}

function el(tag, text, cls) {
  const x = document.createElement(tag);
  if (text !== undefined) x.textContent = text;
  if (cls) x.className = cls;
  return x;
}

function dl(pairs) {
  const d = el('dl');
  for (const [k, v] of pairs) {
    if (v === undefined || v === '') continue;
    d.append(el('dt', k));
    const dd = el('dd');
    if (v instanceof Node) dd.append(v);
    else dd.textContent = String(v);
    d.append(dd);
  }
  return d;
}

function list(items, empty) {
  if (items.length === 0) return el('p', empty, 'hint');
  const ul = el('ul');
  for (const i of items) ul.append(el('li', i));
  return ul;
}

function untilText(iso) {
  if (!iso) return 'no certificate (not captured by an agent)';
  const ms = new Date(iso).getTime() - Date.now();
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  return `${iso} (${ms < 0 ? 'EXPIRED' : `in ${h} h ${m} min`})`;
}

function nodeSection(title, d) {
  const frag = document.createDocumentFragment();
  frag.append(el('h3', title));
  frag.append(dl([['kind', d.node.kind], ['namespace', d.node.namespace], ['app', d.node.app], ['version', d.node.version], ['identity', d.identities.join(', ') || 'unknown']]));
  if (d.pods.length > 0) {
    frag.append(el('h3', 'Pods and certificates'));
    frag.append(list(d.pods.map((p) => `${p.name} on ${p.node} (${p.ip})${p.inMesh ? '' : ' — not in mesh'}: certificate expires ${untilText(p.certExpiry)}`), ''));
  }
  frag.append(el('h3', 'Policies that select it'));
  frag.append(list(d.policies.map((p) => `${p.kind} ${p.namespace}/${p.name}: ${p.action} (${p.scope})${p.warning ? ` — ${p.warning}` : ''}`), 'none'));
  frag.append(el('h3', 'Routes'));
  frag.append(list(d.routes.map((r) => `${r.kind} ${r.namespace}/${r.name} → ${r.backends.join(', ') || '–'}${r.hostnames.length ? ` (${r.hostnames.join(', ')})` : ''}`), 'none'));
  if (d.services.length > 0) {
    frag.append(el('h3', d.node.kind === 'service' ? 'Backends reached' : 'Services'));
    frag.append(list(d.services.map(labelOf), ''));
  }
  frag.append(el('h3', 'Top callers'));
  frag.append(list(d.topCallers.map((c) => `${c.label}: ${c.unit === 'B/s' ? fmtBytes(c.perSecond) : fmtRate(c.perSecond, c.unit)} (${c.protocol.toUpperCase()})`), 'none in this window'));
  return frag;
}

async function showDetails(sel, scroll) {
  const q = query();
  q.set(sel.kind, sel.id);
  let d;
  try {
    d = await getJson(`/api/details?${q}`);
  } catch (e) {
    $('#details').replaceChildren(el('p', `No details: ${e.message}`, 'hint'));
    return;
  }
  const box = el('div');
  box.dataset.kind = sel.kind;
  box.dataset.id = sel.id;
  if (sel.kind === 'edge') {
    const e = d.edge;
    box.append(el('h2', `${labelOf(e.source)} → ${labelOf(e.target)}`));
    const badge = el('span', mtlsText(e.mtls), `badge ${e.mtls === 'mutual_tls' ? 'mtls' : e.mtls === 'mixed' ? 'mixed' : 'plain'}`);
    badge.id = 'edge-mtls';
    const pairs = [['protocol', e.protocol.toUpperCase()], ['security', badge], ['service', e.service], ['reported by', e.reporter]];
    if (e.protocol === 'tcp') {
      pairs.push(['bytes/s', fmtBytes(e.bytesPerSecond || 0)], ['connections in window', Math.round(e.connections || 0)], ['connections (total)', Math.round(e.connectionsTotal || 0)], ['denied in window', Math.round(e.denied || 0)]);
    } else {
      pairs.push(['requests/s', fmtRate(e.requestsPerSecond || 0, 'req/s')], ['requests (total)', Math.round(e.requestsTotal || 0)], ['error rate', fmtPct(e.errorRate || 0)], ['p99', e.p99Ms !== undefined ? `${Math.round(e.p99Ms)} ms` : '–']);
    }
    box.append(dl(pairs));
    box.append(el('h3', 'Routes of the service'));
    box.append(list(d.routes.map((r) => `${r.kind} ${r.namespace}/${r.name} → ${r.backends.join(', ') || '–'}`), 'none'));
    box.append(nodeSection('Source', d.source));
    box.append(nodeSection('Destination', d.target));
  } else {
    box.append(el('h2', labelOf(d.node.id)));
    box.append(nodeSection('Node', d));
  }
  if (d.agentErrors && d.agentErrors.length > 0) box.append(el('p', `Agents not answering: ${d.agentErrors.join('; ')}`, 'hint'));
  $('#details').replaceChildren(box);
  if (scroll) $('#details').scrollTop = 0;
}

function select(sel) {
  state.selected = sel;
  view.select(sel ? sel.id : undefined);
  document.querySelectorAll('#edges tr').forEach((tr) => tr.classList.toggle('selected', sel !== undefined && tr.dataset.edge === sel.id));
  if (sel) showDetails(sel, true);
}

function clearSelection() {
  state.selected = undefined;
  view.select(undefined);
  $('#details').replaceChildren(el('p', 'Click a node or an edge.', 'hint'));
}

$('#window').addEventListener('change', (e) => {
  state.window = e.target.value;
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
