/**
 * The latency chart: one panel per request rate, one group of bars per percentile, one bar per
 * system. Hand-written SVG (no dependency), log-free linear scale per panel. Pure.
 */
import type { SystemName } from '../systems/system.js';
import type { LatencySummary } from '../histogram.js';

export interface LatencyPanel {
  rate: number;
  bySystem: Partial<Record<SystemName, LatencySummary>>;
}

const COLORS: Record<SystemName, string> = { direct: '#9e9e9e', weft: '#1565c0', 'haproxy-mtls': '#ef6c00', 'reverse-proxy': '#2e7d32' };
const KEYS = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
] as const;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `x`. */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

export function latencySvg(panels: readonly LatencyPanel[], systems: readonly SystemName[], title: string): string {
  const panelW = 420;
  const panelH = 260;
  const left = 50;
  const top = 50;
  const width = left + panels.length * (panelW + 30) + 10;
  const height = top + panelH + 80;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, pi) => {
    const x0 = left + pi * (panelW + 30);
    let max = 0;
    for (const s of systems) for (const [k] of KEYS) max = Math.max(max, panel.bySystem[s]?.[k] ?? 0);
    const yMax = niceMax(max);
    const y = (v: number): number => top + panelH - (v / yMax) * panelH;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${panel.rate} requests/s</text>`);
    for (let t = 0; t <= 4; t++) {
      const v = (yMax * t) / 4;
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e0e0e0"/>`);
      out.push(`<text x="${x0 - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${+v.toFixed(3)}</text>`);
    }
    out.push(`<text x="${x0 - 40}" y="${top + panelH / 2}" transform="rotate(-90 ${x0 - 40} ${top + panelH / 2})" text-anchor="middle" fill="#555">ms</text>`);
    const groupW = panelW / KEYS.length;
    const barW = Math.min(28, (groupW - 16) / Math.max(1, systems.length));
    KEYS.forEach(([key, label], gi) => {
      const gx = x0 + gi * groupW + (groupW - barW * systems.length) / 2;
      systems.forEach((s, si) => {
        const v = panel.bySystem[s]?.[key];
        if (v === undefined) return;
        const bx = gx + si * barW;
        out.push(`<rect x="${bx.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + panelH - y(v)).toFixed(1)}" fill="${COLORS[s]}"><title>${esc(`${s} ${label}: ${v} ms`)}</title></rect>`);
        out.push(`<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${+v.toFixed(2)}</text>`);
      });
      out.push(`<text x="${(x0 + gi * groupW + groupW / 2).toFixed(1)}" y="${top + panelH + 16}" text-anchor="middle">${label}</text>`);
    });
    out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${top + panelH}" y2="${top + panelH}" stroke="#333"/>`);
  });
  systems.forEach((s, i) => {
    const lx = left + i * 140;
    out.push(`<rect x="${lx}" y="${top + panelH + 34}" width="12" height="12" fill="${COLORS[s]}"/>`);
    out.push(`<text x="${lx + 16}" y="${top + panelH + 44}">${esc(s)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
