/**
 * `weft dashboard`'s server (node:http): the single-page UI (agent/dashboard/ui/), the graph
 * library from the package's own node_modules (no CDN: it works offline), and a JSON API:
 *   GET /api/graph?window=1m&namespace=a,b    nodes and edges (graph.ts) over the window
 *   GET /api/details?node=ID | ?edge=ID       the details panel (details.ts)
 *   GET /healthz                              200 once listening
 * A failed refresh keeps serving the last good graph with the error beside it.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { WAYPOINT_GATEWAY_CLASS, type ManifestObject } from '../discovery/types.js';
import { buildGraph, parseWindow, type Graph, type GraphInput, type Sample } from './graph.js';
import { graphQueries, type QueryName } from './queries.js';
import { edgeDetails, gatewayKeys, nodeDetails, type DetailInputs } from './details.js';
import type { AgentDump, DashboardSources } from './sources.js';

/** agent/dashboard/ui in the package (this file is dist/agent/dashboard/server.js once built). */
export const UI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'agent', 'dashboard', 'ui');
export const DEFAULT_WINDOW = '1m';
/** Agents' dumps and the cluster's objects change slowly: read at most this often. */
const SLOW_DATA_TTL_MS = 5_000;

/** The browser build of the graph library, from node_modules wherever npm put it. */
export function graphLibraryPath(): string {
  const require = createRequire(import.meta.url);
  return require.resolve('cytoscape/dist/cytoscape.min.js');
}

const STATIC: Record<string, { file: () => string; type: string }> = {
  '/': { file: () => join(UI_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: () => join(UI_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: () => join(UI_DIR, 'app.css'), type: 'text/css; charset=utf-8' },
  '/view-svg.js': { file: () => join(UI_DIR, 'view-svg.js'), type: 'text/javascript; charset=utf-8' },
  '/view-cytoscape.js': { file: () => join(UI_DIR, 'view-cytoscape.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/cytoscape.min.js': { file: graphLibraryPath, type: 'text/javascript; charset=utf-8' },
};

export interface GraphAnswer {
  graph: Graph;
  /** Every namespace seen in the window, before the filter (for the filter's choices). */
  namespaces: string[];
  window: string;
  generatedAt: string;
  source: string;
  /** Set when this refresh failed and `graph` is the last good one. */
  error?: string;
  /** Agents whose admin API did not answer. */
  agentErrors: string[];
}

class Cached<T> {
  #value: T | undefined;
  #at = 0;
  #pending: Promise<T> | undefined;
  readonly #load: () => Promise<T>;
  readonly #ttlMs: number;

  constructor(load: () => Promise<T>, ttlMs: number) {
    this.#load = load;
    this.#ttlMs = ttlMs;
  }

  async get(): Promise<T> {
    if (this.#value !== undefined && Date.now() - this.#at < this.#ttlMs) return this.#value;
    this.#pending ??= this.#load().then(
      (v) => {
        this.#value = v;
        this.#at = Date.now();
        this.#pending = undefined;
        return v;
      },
      (err: unknown) => {
        this.#pending = undefined;
        throw err;
      },
    );
    return this.#pending;
  }
}

export interface DashboardOptions {
  sources: DashboardSources;
  logger: Logger;
  /** host:port; port 0 picks one. */
  listen: { host: string; port: number };
  /** A listening fd to serve on instead (made in another network namespace). */
  fd?: number;
}

export interface Dashboard {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export class DashboardData {
  readonly #sources: DashboardSources;
  readonly #dumps: Cached<AgentDump[]>;
  readonly #objects: Cached<ManifestObject[]>;
  readonly #lastGood = new Map<string, GraphAnswer>();

  constructor(sources: DashboardSources) {
    this.#sources = sources;
    this.#dumps = new Cached(() => sources.agentDumps(), SLOW_DATA_TTL_MS);
    this.#objects = new Cached(() => sources.objects().catch(() => []), SLOW_DATA_TTL_MS);
  }

  async graph(window: string, namespaces: readonly string[]): Promise<GraphAnswer> {
    const seconds = parseWindow(window);
    if (seconds === undefined) throw new WeftError('WEFT_ERR_CONFIG', `window ${window} is not one of 10s..24h written as 30s, 1m, 5m, 1h`);
    const key = `${window}|${namespaces.join(',')}`;
    try {
      const queries = graphQueries(seconds);
      const names = Object.keys(queries) as QueryName[];
      const [results, objects] = await Promise.all([Promise.all(names.map((n) => this.#sources.query(queries[n]))), this.#objects.get()]);
      const { waypoints, gateways } = gatewayKeys(objects, WAYPOINT_GATEWAY_CLASS);
      const samples = Object.fromEntries(names.map((n, i) => [n, results[i]!])) as Record<QueryName, Sample[]>;
      const input: GraphInput = { windowSeconds: seconds, waypoints, gateways, ...samples };
      const everything = buildGraph(input);
      const graph = namespaces.length === 0 ? everything : buildGraph({ ...input, namespaces });
      const answer: GraphAnswer = {
        graph,
        namespaces: [...new Set(everything.nodes.filter((n) => n.kind === 'namespace').map((n) => n.label))].sort(),
        window,
        generatedAt: new Date().toISOString(),
        source: this.#sources.description,
        agentErrors: [],
      };
      this.#lastGood.set(key, answer);
      return answer;
    } catch (err) {
      const last = this.#lastGood.get(key);
      const message = (err as Error).message;
      if (last === undefined) throw err;
      return { ...last, error: message };
    }
  }

  async details(query: URLSearchParams): Promise<unknown> {
    const answer = await this.graph(query.get('window') ?? DEFAULT_WINDOW, splitList(query.get('namespace')));
    const [dumps, objects] = await Promise.all([this.#dumps.get(), this.#objects.get()]);
    const inputs: DetailInputs = { graph: answer.graph, dumps, objects };
    const agentErrors = dumps.filter((d) => d.error !== undefined).map((d) => `${d.agent}: ${d.error}`);
    const node = query.get('node');
    const edge = query.get('edge');
    const found = node !== null ? nodeDetails(node, inputs) : edge !== null ? edgeDetails(edge, inputs) : undefined;
    if (found === undefined) return undefined;
    return { ...found, agentErrors };
  }
}

function splitList(text: string | null): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const data = new DashboardData(options.sources);
  const log = options.logger;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const fail = (err: unknown): void => {
      const code = err instanceof WeftError ? err.code : 'WEFT_ERR_DASHBOARD';
      log.warn({ err, path: url.pathname }, 'dashboard request failed');
      send(code === 'WEFT_ERR_CONFIG' ? 400 : 502, { error: (err as Error).message, code });
    };
    if (req.method !== 'GET') return send(405, { error: 'GET only' });
    if (url.pathname === '/healthz') return send(200, { ok: true });
    if (url.pathname === '/api/graph') {
      data.graph(url.searchParams.get('window') ?? DEFAULT_WINDOW, splitList(url.searchParams.get('namespace'))).then((a) => send(200, a), fail);
      return;
    }
    if (url.pathname === '/api/details') {
      data.details(url.searchParams).then((d) => (d === undefined ? send(404, { error: 'no such node or edge in the graph of this window' }) : send(200, d)), fail);
      return;
    }
    const asset = STATIC[url.pathname];
    if (asset === undefined) return send(404, { error: `no such path ${url.pathname}` });
    let file: string;
    try {
      file = asset.file();
    } catch {
      // Installed without cytoscape: the page draws with its own SVG view instead.
      res.writeHead(404, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end('// cytoscape is not installed in this package; the dashboard draws with view-svg.js\n');
      return;
    }
    readFile(file).then(
      (body) => {
        res.writeHead(200, { 'content-type': asset.type, 'content-length': body.length });
        res.end(body);
      },
      (err: unknown) => fail(new WeftError('WEFT_ERR_DASHBOARD', `cannot read ${file}: ${(err as Error).message}`, { cause: err })),
    );
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err) => reject(new WeftError('WEFT_ERR_DASHBOARD', `cannot listen on ${options.listen.host}:${options.listen.port}: ${err.message}`, { cause: err })));
    if (options.fd !== undefined) server.listen({ fd: options.fd }, resolveListen);
    else server.listen(options.listen.port, options.listen.host, resolveListen);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${options.listen.host}:${address.port}/`;
  log.info({ url, source: options.sources.description }, 'dashboard listening');
  return {
    server,
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await options.sources.close();
    },
  };
}
