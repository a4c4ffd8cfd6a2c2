// The graph drawn with cytoscape (window.cytoscape, served by the dashboard from the package's
// node_modules): compound nodes for namespaces and apps, the cose layout, run again only when
// the set of nodes changes, so positions stay put between refreshes.
'use strict';
window.weftViews = window.weftViews || {};
window.weftViews.cytoscape = function cytoscapeView(container, { edgeLabel, onSelect }) {
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

  const cy = window.cytoscape({ container, style, elements: [], wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 3 });
  let lastNodeIds = '';

  function elementsOf(graph) {
    const nodes = graph.nodes.map((n) => ({ group: 'nodes', data: { ...n, ...(n.parent ? { parent: n.parent } : {}) } }));
    const edges = graph.edges.map((e) => ({ group: 'edges', data: { ...e, kind: 'traffic', label: edgeLabel(e) } }));
    const members = graph.members.map((m) => ({ group: 'edges', data: { id: `member:${m.service}->${m.workload}`, source: m.service, target: m.workload, kind: 'member' } }));
    return [...nodes, ...edges, ...members];
  }

  cy.on('tap', 'node', (evt) => {
    const kind = evt.target.data('kind');
    if (kind !== 'namespace' && kind !== 'app') onSelect({ kind: 'node', id: evt.target.id() });
  });
  cy.on('tap', 'edge[kind = "traffic"]', (evt) => onSelect({ kind: 'edge', id: evt.target.id() }));
  cy.on('tap', (evt) => {
    if (evt.target === cy) onSelect(undefined);
  });

  return {
    name: 'cytoscape',
    cy,
    draw(graph) {
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
      if (nodeIds !== lastNodeIds) {
        lastNodeIds = nodeIds;
        cy.layout({ name: 'cose', animate: false, nodeDimensionsIncludeLabels: true, padding: 30, idealEdgeLength: () => 110, nodeRepulsion: () => 9000, randomize: false }).run();
        cy.fit(undefined, 30);
      }
    },
    select(id) {
      cy.elements().unselect();
      if (id !== undefined) cy.getElementById(id).select();
    },
    elements() {
      const nodes = cy.nodes().map((n) => ({ id: n.id(), kind: n.data('kind'), label: n.data('label'), parent: n.data('parent') }));
      const edges = cy.edges('[kind = "traffic"]').map((e) => ({ ...e.data() }));
      return { nodes, edges };
    },
    clickPoint(id) {
      const el = cy.getElementById(id);
      if (el.empty()) return undefined;
      const p = el.isEdge() ? el.renderedMidpoint() : el.renderedPosition();
      const box = container.getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    },
  };
};
