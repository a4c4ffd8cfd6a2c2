// The graph drawn as SVG by the dashboard itself, when the page has no cytoscape (the package
// was installed without it). A layered layout, left to right in the direction of traffic:
// each namespace a horizontal band, each workload in the column of its longest call chain, an
// app's versions stacked together in one box, services just before the workloads they reach.
// Elements are kept by id between refreshes (only their attributes change), so a click is never
// lost to a redraw and the picture does not jump.
'use strict';
window.weftViews = window.weftViews || {};
window.weftViews.svg = function svgView(container, { edgeLabel, onSelect }) {
  const NS = 'http://www.w3.org/2000/svg';
  const COL = 250;
  const ROW = 74;
  const BAND_TOP = 34;
  const BAND_GAP = 26;
  const MARGIN = 70;
  const COLORS = { mutual_tls: '#1a9b55', none: '#d9480f', mixed: '#b08800', member: '#b197fc' };

  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', '100%');
  svg.setAttribute('height', '100%');
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  svg.setAttribute('role', 'img');
  svg.style.display = 'block';
  const defs = document.createElementNS(NS, 'defs');
  for (const [name, color] of Object.entries(COLORS)) {
    const m = document.createElementNS(NS, 'marker');
    m.setAttribute('id', `arrow-${name}`);
    m.setAttribute('viewBox', '0 0 10 10');
    m.setAttribute('refX', '9');
    m.setAttribute('refY', '5');
    // Fixed size: a selected (wider) edge keeps its arrow.
    m.setAttribute('markerUnits', 'userSpaceOnUse');
    m.setAttribute('markerWidth', '14');
    m.setAttribute('markerHeight', '14');
    m.setAttribute('orient', 'auto-start-reverse');
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', 'M 0 0 L 10 5 L 0 10 z');
    p.setAttribute('fill', color);
    m.append(p);
    defs.append(m);
  }
  const layers = {};
  svg.append(defs);
  for (const name of ['groups', 'edges', 'nodes', 'labels']) {
    layers[name] = document.createElementNS(NS, 'g');
    layers[name].setAttribute('class', name);
    svg.append(layers[name]);
  }
  container.replaceChildren(svg);
  svg.addEventListener('click', (evt) => {
    if (evt.target === svg) onSelect(undefined);
  });

  const kept = new Map();
  let graph = { nodes: [], edges: [], members: [] };
  let selected;

  function make(layer, key, tag, init) {
    let el = kept.get(key);
    if (el === undefined) {
      el = document.createElementNS(NS, tag);
      if (init) init(el);
      layers[layer].append(el);
      kept.set(key, el);
    }
    el.dataset.seen = '1';
    return el;
  }
  function attrs(el, a) {
    for (const [k, v] of Object.entries(a)) el.setAttribute(k, String(v));
    return el;
  }

  const drawable = (n) => n.kind !== 'namespace' && n.kind !== 'app';

  /** Column per node: its longest chain of callers (bounded, so a cycle cannot loop). */
  function columns(nodes, edges) {
    const col = new Map(nodes.map((n) => [n.id, 0]));
    for (let round = 0; round < nodes.length; round++) {
      let changed = false;
      for (const e of edges) {
        if (e.source === e.target || !col.has(e.source) || !col.has(e.target)) continue;
        const want = col.get(e.source) + 1;
        if (col.get(e.target) < want && want < nodes.length) {
          col.set(e.target, want);
          changed = true;
        }
      }
      if (!changed) break;
    }
    return col;
  }

  function layout(g) {
    const nodes = g.nodes.filter(drawable);
    const trafficTargets = new Set(g.edges.map((e) => e.target));
    const memberOnly = (n) => n.kind === 'service' && !trafficTargets.has(n.id) && !g.edges.some((e) => e.source === n.id);
    const col = columns(nodes.filter((n) => !memberOnly(n)), g.edges);
    const pos = new Map();
    const nsOf = (n) => n.namespace || '~';
    const namespaces = [...new Set(nodes.map(nsOf))].sort((a, b) => {
      const first = (ns) => Math.min(...nodes.filter((n) => nsOf(n) === ns && col.has(n.id)).map((n) => col.get(n.id)), 99);
      return first(a) - first(b) || a.localeCompare(b);
    });
    let top = 10;
    const bands = [];
    for (const ns of namespaces) {
      const inBand = nodes.filter((n) => nsOf(n) === ns && col.has(n.id));
      const byCol = new Map();
      for (const n of inBand) {
        const c = col.get(n.id);
        if (!byCol.has(c)) byCol.set(c, []);
        byCol.get(c).push(n);
      }
      let rows = 1;
      for (const [c, list] of byCol) {
        list.sort((a, b) => (a.app || a.label).localeCompare(b.app || b.label) || a.label.localeCompare(b.label));
        list.forEach((n, i) => pos.set(n.id, { x: MARGIN + c * COL, y: top + BAND_TOP + i * ROW + ROW / 2 }));
        rows = Math.max(rows, list.length);
      }
      // A service that only fronts workloads: half a column before them, amid them.
      for (const n of nodes.filter((x) => nsOf(x) === ns && memberOnly(x))) {
        const reached = g.members.filter((m) => m.service === n.id).map((m) => pos.get(m.workload)).filter(Boolean);
        if (reached.length === 0) continue;
        // Below the line into its workloads, so it does not sit on the callers' edges.
        pos.set(n.id, { x: Math.min(...reached.map((p) => p.x)) - COL * 0.3, y: reached.reduce((s, p) => s + p.y, 0) / reached.length + ROW * 0.42 });
      }
      const height = BAND_TOP + rows * ROW;
      bands.push({ ns, top, height });
      top += height + BAND_GAP;
    }
    return { pos, bands };
  }

  function nodeShape(el, n, p) {
    const r = n.kind === 'waypoint' || n.kind === 'gateway' ? 16 : n.kind === 'service' ? 12 : 14;
    let d;
    if (n.kind === 'service') d = `M ${p.x} ${p.y - r} L ${p.x + r} ${p.y} L ${p.x} ${p.y + r} L ${p.x - r} ${p.y} Z`;
    else if (n.kind === 'waypoint' || n.kind === 'gateway') {
      const pts = [0, 1, 2, 3, 4, 5].map((i) => [p.x + r * Math.cos((Math.PI / 3) * i), p.y + r * Math.sin((Math.PI / 3) * i)]);
      d = `M ${pts.map((q) => q.join(' ')).join(' L ')} Z`;
    } else d = `M ${p.x - r} ${p.y} a ${r} ${r} 0 1 0 ${2 * r} 0 a ${r} ${r} 0 1 0 ${-2 * r} 0`;
    attrs(el, { d, fill: n.kind === 'service' ? '#fff' : n.kind === 'waypoint' || n.kind === 'gateway' ? '#e8590c' : n.kind === 'unknown' ? '#adb5bd' : '#4c6ef5', stroke: n.kind === 'service' ? '#7048e8' : '#fff', 'stroke-width': 2.5 });
  }

  function edgeGeometry(e, p, q, index, count) {
    // Parallel edges of one pair (TCP and HTTP) bend apart; a backward edge bends wide.
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len;
    const ny = dx / len;
    const bend = (count > 1 ? (index - (count - 1) / 2) * 36 : 0) + (dx <= 0 ? 60 : 0);
    const shrink = (from, to, by) => ({ x: from.x + ((to.x - from.x) * by) / len, y: from.y + ((to.y - from.y) * by) / len });
    const a = shrink(p, q, 17);
    const b = shrink(q, p, 19);
    const c = { x: (a.x + b.x) / 2 + nx * bend, y: (a.y + b.y) / 2 + ny * bend };
    const mid = { x: 0.25 * a.x + 0.5 * c.x + 0.25 * b.x, y: 0.25 * a.y + 0.5 * c.y + 0.25 * b.y };
    return { d: `M ${a.x} ${a.y} Q ${c.x} ${c.y} ${b.x} ${b.y}`, mid };
  }

  function draw(g) {
    graph = g;
    for (const el of kept.values()) el.dataset.seen = '';
    const { pos, bands } = layout(g);
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    let maxX = 0;
    for (const p of pos.values()) maxX = Math.max(maxX, p.x);
    // Namespace bands and app boxes.
    for (const b of bands) {
      const rect = make('groups', `ns-rect:${b.ns}`, 'rect');
      attrs(rect, { x: 8, y: b.top, width: maxX + MARGIN + 90, height: b.height, rx: 10, fill: '#f1f3f5', stroke: '#adb5bd' });
      const label = make('groups', `ns-label:${b.ns}`, 'text');
      attrs(label, { x: 20, y: b.top + 20, 'font-weight': 'bold', 'font-size': 14, fill: '#495057' });
      label.textContent = b.ns === '~' ? '(outside any namespace)' : b.ns;
    }
    for (const app of g.nodes.filter((n) => n.kind === 'app')) {
      const members = g.nodes.filter((n) => n.parent === app.id && pos.has(n.id)).map((n) => pos.get(n.id));
      if (members.length === 0) continue;
      const x0 = Math.min(...members.map((p) => p.x)) - 62;
      const x1 = Math.max(...members.map((p) => p.x)) + 62;
      const y0 = Math.min(...members.map((p) => p.y)) - 26;
      const y1 = Math.max(...members.map((p) => p.y)) + 34;
      attrs(make('groups', `app:${app.id}`, 'rect'), { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 8, fill: '#e7f5ff', stroke: '#74c0fc', 'stroke-dasharray': '5 3' });
    }
    // Edges: members (service -> workload) first, then traffic.
    for (const m of g.members) {
      const p = pos.get(m.service);
      const q = pos.get(m.workload);
      if (!p || !q) continue;
      const geo = edgeGeometry(m, p, q, 0, 1);
      attrs(make('edges', `member:${m.service}->${m.workload}`, 'path'), { d: geo.d, fill: 'none', stroke: COLORS.member, 'stroke-width': 1.2, 'stroke-dasharray': '2 3' });
    }
    const pairCount = new Map();
    const pairIndex = new Map();
    for (const e of g.edges) pairCount.set(`${e.source}|${e.target}`, (pairCount.get(`${e.source}|${e.target}`) || 0) + 1);
    for (const e of g.edges) {
      const p = pos.get(e.source);
      const q = pos.get(e.target);
      if (!p || !q) continue;
      const pair = `${e.source}|${e.target}`;
      const index = pairIndex.get(pair) || 0;
      pairIndex.set(pair, index + 1);
      const geo = edgeGeometry(e, p, q, index, pairCount.get(pair));
      const color = COLORS[e.mtls] || COLORS.none;
      const line = make('edges', `edge:${e.id}`, 'path', (el) => el.setAttribute('class', 'edge'));
      attrs(line, {
        d: geo.d,
        fill: 'none',
        stroke: color,
        'stroke-width': selected === e.id ? 5 : e.protocol === 'tcp' ? 2.5 : 3.5,
        'stroke-dasharray': e.denied > 0 ? '2 4' : e.protocol === 'tcp' ? '8 5' : 'none',
        'marker-end': `url(#arrow-${e.mtls in COLORS ? e.mtls : 'none'})`,
        'data-protocol': e.protocol,
        'data-mtls': e.mtls,
      });
      const hit = make('edges', `hit:${e.id}`, 'path', (el) => {
        el.style.cursor = 'pointer';
        el.dataset.edge = e.id;
        el.addEventListener('click', () => onSelect({ kind: 'edge', id: e.id }));
      });
      attrs(hit, { d: geo.d, fill: 'none', stroke: selected === e.id ? 'rgba(245,159,0,.35)' : 'transparent', 'stroke-width': 14 });
      const label = make('labels', `label:${e.id}`, 'text', (el) => {
        el.style.cursor = 'pointer';
        el.addEventListener('click', () => onSelect({ kind: 'edge', id: e.id }));
      });
      attrs(label, { x: geo.mid.x, y: geo.mid.y - 5, 'text-anchor': 'middle', 'font-size': 11, fill: '#1d2330', stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke' });
      label.textContent = edgeLabel(e);
    }
    // Nodes and their labels.
    for (const n of g.nodes.filter(drawable)) {
      const p = pos.get(n.id);
      if (!p) continue;
      const shape = make('nodes', `node:${n.id}`, 'path', (el) => {
        el.style.cursor = 'pointer';
        el.dataset.node = n.id;
        el.addEventListener('click', () => onSelect({ kind: 'node', id: n.id }));
      });
      nodeShape(shape, n, p);
      if (selected === n.id) attrs(shape, { stroke: '#f59f00', 'stroke-width': 5 });
      const label = make('labels', `node-label:${n.id}`, 'text');
      attrs(label, { x: p.x, y: p.y + 30, 'text-anchor': 'middle', 'font-size': 12, fill: n.kind === 'service' ? '#5f3dc4' : '#1d2330', stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke' });
      label.textContent = n.kind === 'service' ? `${n.label} (service)` : n.label;
    }
    for (const [key, el] of kept) {
      if (el.dataset.seen !== '1') {
        el.remove();
        kept.delete(key);
      }
    }
    const height = bands.length === 0 ? 200 : bands[bands.length - 1].top + bands[bands.length - 1].height + 10;
    svg.setAttribute('viewBox', `0 0 ${maxX + MARGIN + 110} ${height}`);
  }

  return {
    name: 'svg',
    draw,
    select(id) {
      selected = id;
      draw(graph);
    },
    elements() {
      return {
        nodes: graph.nodes.map((n) => ({ id: n.id, kind: n.kind, label: n.label, parent: n.parent })),
        edges: graph.edges.filter((e) => kept.has(`edge:${e.id}`)).map((e) => ({ ...e, label: edgeLabel(e) })),
      };
    },
    clickPoint(id) {
      const hit = kept.get(`hit:${id}`);
      if (hit) {
        const len = hit.getTotalLength();
        const pt = hit.getPointAtLength(len / 2).matrixTransform(hit.getScreenCTM());
        return { x: pt.x, y: pt.y };
      }
      const node = kept.get(`node:${id}`);
      if (!node) return undefined;
      const box = node.getBoundingClientRect();
      return { x: box.left + box.width / 2, y: box.top + box.height / 2 };
    },
  };
};
