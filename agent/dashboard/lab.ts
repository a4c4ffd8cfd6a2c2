/**
 * The lab's dashboard: `weft dashboard --lab NAME` as a process of the lab, started by converge
 * beside its Prometheus and, like it, a process of the fabric namespace (so `down` stops it with
 * the namespace's other processes). It listens on this machine's loopback all the same: the lab
 * hands it the host's network namespace as an open fd (fd 3), and it makes its listening socket
 * there. The port is chosen free at the first start and kept, so the URL stays the same across
 * restarts of a dead dashboard.
 */
import { closeSync, openSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import { labPaths, REPO_DIR, WEFT_MAIN } from '../lab/paths.js';
import { logTail, refAlive, startInNetns, stopProcesses, type ProcRef } from '../lab/procs.js';
import type { LabState } from '../lab/state.js';

export const LAB_DASHBOARD_HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;
/** The fd number the host's netns has in the dashboard process (after stdin, stdout, stderr). */
const HOST_NETNS_FD_IN_CHILD = 3;

export interface LabDashboardState extends ProcRef {
  port: number;
}

export interface LabDashboardStatus {
  url: string;
  pid: number | undefined;
  running: boolean;
  log: string;
}

export function labDashboardLog(lab: string): string {
  return join(labPaths(lab).logsDir, 'dashboard.log');
}

export function labDashboardUrl(port: number): string {
  return `http://${LAB_DASHBOARD_HOST}:${port}/`;
}

/** A port free on this machine's loopback now (the dashboard binds it a moment later). */
export async function freeLoopbackPort(preferred: number | undefined): Promise<number> {
  const tryPort = (port: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, LAB_DASHBOARD_HOST, () => {
        const got = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(got));
      });
    });
  if (preferred !== undefined) {
    const same = await tryPort(preferred);
    if (same !== undefined) return same;
  }
  const any = await tryPort(0);
  if (any === undefined) throw new WeftError('WEFT_ERR_LAB', `start the lab's dashboard: no free port on ${LAB_DASHBOARD_HOST}`);
  return any;
}

/** GET /healthz on the loopback until it answers 200 (bounded). */
async function waitHealthy(port: number, ref: ProcRef, log: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const healthy = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = http.get({ host: LAB_DASHBOARD_HOST, port, path: '/healthz', timeout: 1_000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  for (;;) {
    if (await healthy()) return;
    if (!refAlive(ref) || Date.now() > deadline) {
      await stopProcesses([ref], [], 1_000);
      const why = refAlive(ref) ? `not answering on ${labDashboardUrl(port)} after ${READY_TIMEOUT_MS} ms` : 'it exited';
      throw new WeftError('WEFT_ERR_LAB', `start the lab's dashboard: ${why}; last lines of ${log}:\n${await logTail(log, 15)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Called by converge where it ensures the lab's Prometheus: starts the dashboard when it does not run. */
export async function ensureLabDashboard(state: LabState): Promise<LabDashboardState> {
  const had = state.dashboard;
  if (had !== undefined && refAlive(had)) return had;
  const port = await freeLoopbackPort(had?.port);
  const log = labDashboardLog(state.name);
  // This process's own network namespace is the host's: the dashboard listens there.
  const hostNetns = openSync('/proc/thread-self/ns/net', 'r');
  let ref: ProcRef;
  try {
    ref = await startInNetns(
      {
        what: "the lab's dashboard",
        netns: state.fabricNetns,
        argv: [process.execPath, WEFT_MAIN, 'dashboard', '--lab', state.name, '--listen', `${LAB_DASHBOARD_HOST}:${port}`, '--listen-netns', `/proc/self/fd/${HOST_NETNS_FD_IN_CHILD}`],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root' },
        cwd: REPO_DIR,
        log,
        inheritFds: [hostNetns],
      },
      { readyTimeoutMs: READY_TIMEOUT_MS, waitExec: true },
    );
  } finally {
    closeSync(hostNetns);
  }
  await waitHealthy(port, ref, log);
  return { ...ref, port };
}

/** For `weft lab status`; undefined when the lab runs no dashboard (no agents or no Prometheus). */
export function labDashboardStatus(state: LabState): LabDashboardStatus | undefined {
  const d = state.dashboard;
  if (d === undefined) return undefined;
  return { url: labDashboardUrl(d.port), pid: d.pid, running: refAlive(d), log: labDashboardLog(state.name) };
}
