/**
 * The lab's Prometheus: a real server (Debian's `prometheus` package) in the fabric namespace,
 * on the bridge's address beside the CA, scraping every agent's 15020/metrics each second. Its
 * target list is a file_sd file rewritten on every converge (Prometheus watches it), so nodes
 * added by `apply` are scraped without a restart. Its TSDB lives under the lab's state dir, and
 * as a process of a lab namespace it goes with `down` like everything else there.
 *
 * Also the client that asks it something (`queryLabPrometheus`): the listener exists only inside
 * the fabric namespace, so the socket is made there.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import { WeftError } from '../errors.js';
import { LAB_CA_IP } from './ca.js';
import { fabricNetns, labPaths, NETNS_DIR, REPO_DIR } from './paths.js';
import { refAlive, startInNetns, type ProcRef } from './procs.js';
import { writeFileAtomic, type LabState } from './state.js';
import { METRICS_PORT } from '../config.js';

/** Same address as the CA (the fabric bridge's): one control-plane host. */
export const LAB_PROMETHEUS_IP = LAB_CA_IP;
export const LAB_PROMETHEUS_PORT = 9090;
export const LAB_PROMETHEUS_URL = `http://${LAB_PROMETHEUS_IP}:${LAB_PROMETHEUS_PORT}`;
/** The agents' Prometheus port (agent --metrics default). */
export const SCRAPE_JOB = 'weft-agents';
/** Short, so that tests and the demo see a change within a second or two. */
export const SCRAPE_INTERVAL = '1s';

const READY_TIMEOUT_MS = 30_000;
const QUERY_TIMEOUT_MS = 5_000;

export function labPrometheusPaths(lab: string) {
  const dir = join(labPaths(lab).stateDir, 'prometheus');
  return {
    dir,
    config: join(dir, 'prometheus.yml'),
    targets: join(dir, 'targets.json'),
    data: join(dir, 'data'),
    log: join(labPaths(lab).logsDir, 'prometheus.log'),
  };
}

/** prometheus.yml: one job, targets from the file_sd file (JSON is YAML, so no YAML writer). */
export function renderPrometheusConfig(lab: string): string {
  const paths = labPrometheusPaths(lab);
  const config = {
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL },
    scrape_configs: [
      {
        job_name: SCRAPE_JOB,
        metrics_path: '/metrics',
        // Prometheus re-reads the file on change (inotify); the interval is only a backstop.
        file_sd_configs: [{ files: [paths.targets], refresh_interval: '5s' }],
      },
    ],
  };
  return `# Written by weft lab for lab ${lab}; rewritten on every up.\n${JSON.stringify(config, null, 2)}\n`;
}

/** The job of the waypoint pods' targets (their `job` label overrides the scrape config's). */
export const WAYPOINT_SCRAPE_JOB = 'weft-waypoints';

export interface WaypointTarget {
  pod: string;
  namespace: string;
  node: string;
  ip: string;
}

/**
 * file_sd targets: one per node, labelled with the node's name and the lab's; and one per
 * waypoint pod (its 15020 on the pod IP, which the fabric routes), in job weft-waypoints, so the
 * agents' queries (job="weft-agents") do not mix the two.
 */
export function renderPrometheusTargets(lab: string, nodes: readonly { name: string; fabricIP: string }[], waypoints: readonly WaypointTarget[] = []): string {
  const groups: { targets: string[]; labels: Record<string, string> }[] = nodes.map((n) => ({ targets: [`${n.fabricIP}:${METRICS_PORT}`], labels: { node: n.name, lab } }));
  for (const w of waypoints) groups.push({ targets: [`${w.ip}:${METRICS_PORT}`], labels: { job: WAYPOINT_SCRAPE_JOB, node: w.node, namespace: w.namespace, pod: w.pod, lab } });
  return JSON.stringify(groups, null, 2) + '\n';
}

/** Rewrites the target file (Prometheus follows it): after the waypoint pods changed. */
export async function writeLabPrometheusTargets(state: LabState, waypoints: readonly WaypointTarget[]): Promise<void> {
  const paths = labPrometheusPaths(state.name);
  await mkdir(paths.dir, { recursive: true });
  await writeFileAtomic(paths.targets, renderPrometheusTargets(state.name, state.nodes, waypoints));
}

/** The `prometheus` executable on PATH (Debian: /usr/bin/prometheus), or undefined. */
export async function findPrometheus(path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, 'prometheus');
    if (await access(file, fsConstants.X_OK).then(() => true, () => false)) return file;
  }
  return undefined;
}

/**
 * Called by converge whenever agents run: the target list follows `state.nodes`; the server is
 * started when it does not run (first `up`, or it died since). Returns its process.
 */
export async function ensureLabPrometheus(state: LabState, waypoints: readonly WaypointTarget[] = []): Promise<ProcRef> {
  const paths = labPrometheusPaths(state.name);
  await mkdir(paths.data, { recursive: true });
  await writeFileAtomic(paths.targets, renderPrometheusTargets(state.name, state.nodes, waypoints));
  if (state.prometheus !== undefined && refAlive(state.prometheus)) return state.prometheus;
  const binary = await findPrometheus();
  if (binary === undefined) {
    throw new WeftError(
      'WEFT_ERR_LAB',
      "start the lab's Prometheus: no prometheus executable on PATH; run `npm run setup` as root (it installs Debian's prometheus package) or `apt-get install prometheus`",
    );
  }
  await writeFileAtomic(paths.config, renderPrometheusConfig(state.name));
  await mkdir(labPaths(state.name).logsDir, { recursive: true });
  return startInNetns(
    {
      what: "the lab's Prometheus",
      netns: state.fabricNetns,
      argv: [
        binary,
        `--config.file=${paths.config}`,
        `--storage.tsdb.path=${paths.data}`,
        // A lab lives for minutes to hours; /run is memory.
        '--storage.tsdb.retention.time=1d',
        `--web.listen-address=${LAB_PROMETHEUS_IP}:${LAB_PROMETHEUS_PORT}`,
      ],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root' },
      cwd: REPO_DIR,
      log: paths.log,
    },
    { readyTimeoutMs: READY_TIMEOUT_MS, waitExec: true, tcpPorts: [LAB_PROMETHEUS_PORT] },
  );
}

export interface PrometheusStatus {
  /** Reachable from inside the fabric namespace only (`netns`). */
  url: string;
  netns: string;
  pid: number | undefined;
  running: boolean;
  dataDir: string;
  log: string;
}

/** For `weft lab status`; undefined for a lab without agents (nothing to scrape, none runs). */
export function labPrometheusStatus(state: LabState): PrometheusStatus | undefined {
  if (!state.agents) return undefined;
  const paths = labPrometheusPaths(state.name);
  return {
    url: LAB_PROMETHEUS_URL,
    netns: state.fabricNetns,
    pid: state.prometheus?.pid,
    running: refAlive(state.prometheus),
    dataDir: paths.data,
    log: paths.log,
  };
}

/** One series of an instant vector. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/**
 * An instant query (`/api/v1/query`) against lab `lab`'s Prometheus, from inside its fabric
 * namespace. Resolves with the vector (a scalar comes back as one sample without labels).
 */
export async function queryLabPrometheus(lab: string, promql: string, options: { timeoutMs?: number } = {}): Promise<PromSample[]> {
  const path = `/api/v1/query?query=${encodeURIComponent(promql)}`;
  const text = await getInNetns(join(NETNS_DIR, fabricNetns(lab)), path, options.timeoutMs ?? QUERY_TIMEOUT_MS);
  let body: { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (err) {
    throw new WeftError('WEFT_ERR_LAB', `lab ${lab}'s Prometheus answered ${promql} with something that is not JSON: ${text.slice(0, 200)}`, { cause: err });
  }
  if (body.status !== 'success' || body.data === undefined) {
    throw new WeftError('WEFT_ERR_LAB', `lab ${lab}'s Prometheus refused ${promql}: ${body.error ?? text.slice(0, 200)}`);
  }
  if (body.data.resultType === 'scalar') {
    const [, value] = body.data.result as [number, string];
    return [{ metric: {}, value: Number(value) }];
  }
  if (body.data.resultType !== 'vector') {
    throw new WeftError('WEFT_ERR_LAB', `${promql}: expected an instant vector from Prometheus, got a ${String(body.data.resultType)}`);
  }
  return (body.data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** GET on the lab's Prometheus with a socket made inside `netnsPath`. */
async function getInNetns(netnsPath: string, path: string, timeoutMs: number): Promise<string> {
  // Loaded here, not at the top: `weft lab status` and the pure parts need no koffi.
  const native = await import('../../native/index.js');
  const createConnection = (): net.Socket => {
    const nsFd = native.openNetns(netnsPath);
    try {
      const fd = native.createTcpSocket({ netnsFd: nsFd });
      return new net.Socket({ fd, readable: true, writable: true }).connect(LAB_PROMETHEUS_PORT, LAB_PROMETHEUS_IP);
    } finally {
      native.closeNetns(nsFd);
    }
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: LAB_PROMETHEUS_IP, port: LAB_PROMETHEUS_PORT, path, createConnection, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(new WeftError('WEFT_ERR_LAB', `cannot reach the lab's Prometheus at ${LAB_PROMETHEUS_URL} in ${netnsPath}: ${err.message} (is the lab up? weft lab status shows it)`, { cause: err })),
    );
    req.end();
  });
}
