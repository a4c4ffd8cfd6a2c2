// Weft dashboard: fetches /api/graph every few seconds, draws it with cytoscape (served by the
// dashboard itself), and shows /api/details for a clicked node or edge. Plain browser JavaScript,
// no build step: the server serves this file as it is.
/* global cytoscape */
'use strict';

const REFRESH_MS = 3000;
const state = { window: '1m', namespaces: new Set(), known: [], selected: undefined, graph: undefined, lastNodeIds: '' };

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
  parts.push(e.mtls === 'mutual_tls' ? '🔒' : e.mtls === 'mixed' ? '½🔒' : '⚠ plain');
  return parts.join(' · ');
}

const style = [
  { selector: 'node', style: { label: 'data(label)', 'font-size': 11, 'text-valign': 'bottom', 'text-margin-y': 4, 'background-color': '#4c6ef5', width: 26, height: 26, 'border-width': 2, 'border-color': '#fff' } },
  { selector: 'node[kind = "namespace"]', style: { shape: 'round-rectangle', 'background-color': '#f1f3f5', 'background-opacity': 0.6, 'border-color': '#adb5bd', 'border-width': 1, 'text-valign': 'top', 'text-halign': 'center', 'font-weight': 'bold', 'font-size': 13, color: '#495057', padding: 18 } },
  { selector: 'node[kind = "app"]', style: { shape: 'round-rectangle', 'background-color': '#e7f5ff', 'background-opacity': 0.7, 'border-color': '#74c0fc', 'border-width': 1, 'border-style': 'dashed', 'text-valign': 'top', color: '#1864ab', padding: 10 } },
  { selector: 'node[kind = "service"]', style: { shape: 'diamond', 'background-color': '#fff', 'border-color': '#7048e8', 'border-width': 2, width: 20, height: 20, color: '#5f3dc4' } },
  { selector: 'node[kind = "waypoint"], node[kind = "gateway"]', style: { shape: 'hexagon', 'background-color': '#e8590c', width: 30, height: 30 } },
  { selector: 'node[kind = "unknown"]', style: { 'background-color': '#adb5bd' } },
  { selector: 'node:selected', style: { 'border-color': '#f59f00', 'border-width': 4 } },
  { selector: 'edge', style: { width: 2.5, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', 'arrow-scale': 1.1, label: 'data(label)', 'font-size': 10, 'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-background-padding': 2, 'text-rotation': 'autorotate' } },
  { selector: 'edge[protocol = "tcp"]', style: { 'line-style': 'dashed', 'line-dash-pattern': [7, 4] } },
  { selector: 'edge[mtls = "mutual_tls"]', style: { 'line-color': '#1a9b55', 'target-arrow-color': '#1a9b55' } },
  { selector: 'edge[mtls = "none"]', style: { 'line-color': '#d9480f', 'target-arrow-color': '#d9480f' } },
  { selector: 'edge[mtls = "mixed"]', style: { 'line-color': '#b08800', 'target-arrow-color': '#b08800' } },
  { selector: 'edge[protocol != "tcp"]', style: { width: 3.5, 'source-arrow-shape': 'circle', 'source-arrow-color': '#2f6fdf' } },
  { selector: 'edge[denied > 0]', style: { 'line-style': 'dotted', 'target-arrow-shape': 'tee' } },
  { selector: 'edge[kind = "member"]', style: { width: 1, 'line-color': '#b197fc', 'target-arrow-shape': 'none', 'line-style': 'dotted', label: '' } },
  { selector: 'edge:selected', style: { width: 5, 'underlay-color': '#f59f00', 'underlay-opacity': 0.35, 'underlay-padding': 4 } },
];

const cy = cytoscape({ container: $('#graph'), style, elements: [], wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 3 });
// For tests and the curious: the live graph (window.weftDashboard.cy) and what was last fetched.
window.weftDashboard = { cy, state, refreshed: 0 };

function elementsOf(graph) {
  const nodes = graph.nodes.map((n) => ({ group: 'nodes', data: { ...n, ...(n.parent ? { parent: n.parent } : {}) } }));
  const edges = graph.edges.map((e) => ({ group: 'edges', data: { ...e, kind: 'traffic', label: edgeLabel(e) } }));
  const members = graph.members.map((m) => ({ group: 'edges', data: { id: `member:${m.service}->${m.workload}`, source: m.service, target: m.workload, kind: 'member' } }));
  return [...nodes, ...edges, ...members];
}

/** Updates the elements in place (positions kept); lays out again only when the nodes changed. */
function draw(graph) {
  const wanted = elementsOf(graph);
  const ids = new Set(wanted.map((el) => el.data.id));
  cy.batch(() => {
    cy.elements().filter((el) => !ids.has(el.id())).remove();
    for (const el of wanted) {
      const have = cy.getElementById(el.data.id);
      if (have.nonempty()) have.data(el.data);
      else cy.add(el);
    }
  });
  const nodeIds = graph.nodes.map((n) => n.id).join('|');
  if (nodeIds !== state.lastNodeIds) {
    state.lastNodeIds = nodeIds;
    cy.layout({ name: 'cose', animate: false, nodeDimensionsIncludeLabels: true, padding: 30, idealEdgeLength: () => 110, nodeRepulsion: () => 9000, randomize: false }).run();
    cy.fit(undefined, 30);
  }
  if (state.selected) cy.getElementById(state.selected.id).select();
}

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
    draw(answer.graph);
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
  cy.elements().unselect();
  if (sel) cy.getElementById(sel.id).select();
  document.querySelectorAll('#edges tr').forEach((tr) => tr.classList.toggle('selected', sel !== undefined && tr.dataset.edge === sel.id));
  if (sel) showDetails(sel, true);
}

cy.on('tap', 'node', (evt) => {
  const kind = evt.target.data('kind');
  if (kind === 'namespace' || kind === 'app') return;
  select({ kind: 'node', id: evt.target.id() });
});
cy.on('tap', 'edge[kind = "traffic"]', (evt) => select({ kind: 'edge', id: evt.target.id() }));
cy.on('tap', (evt) => {
  if (evt.target === cy) {
    state.selected = undefined;
    $('#details').replaceChildren(el('p', 'Click a node or an edge.', 'hint'));
  }
});

$('#window').addEventListener('change', (e) => {
  state.window = e.target.value;
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
