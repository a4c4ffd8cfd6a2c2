/**
 * Port-forwards the lab keeps running after the command that asked for them (the demo's
 * `--keep`: the bookinfo productpage through the ingress gateway, for a browser on this machine):
 * `weft lab port-forward` as a process of the fabric namespace, so `lab down` stops it with that
 * namespace's other processes, listening on this machine's loopback all the same (it is handed
 * the host's network namespace as fd 3, as the dashboard is). Recorded in state.json `forwards`.
 */
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freeLoopbackPort } from '../dashboard/lab.js';
import { WeftError } from '../errors.js';
import { checkLabName, labPaths, REPO_DIR, WEFT_MAIN } from './paths.js';
import { logTail, refAlive, startInNetns, stopProcesses, type ProcRef } from './procs.js';
import { readState, withLabLock, writeState } from './state.js';
import { resolveForwardTarget } from './port-forward.js';
import { statusOf } from './status.js';
import { kubeLabStatus } from './kube-mode.js';

const READY_TIMEOUT_MS = 20_000;
const HOST_NETNS_FD_IN_CHILD = 3;

export interface LabForwardState extends ProcRef {
  namespace: string;
  /** `svc/NAME` or `pod/NAME`. */
  target: string;
  remote: number;
  /** On 127.0.0.1. */
  port: number;
}

export interface LabForwardStatus {
  namespace: string;
  target: string;
  remote: number;
  url: string;
  pid: number;
  running: boolean;
}

function forwardUrl(port: number): string {
  return `http://127.0.0.1:${port}/`;
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts a kept forward of `target` (in `namespace`) port `remote` on a free loopback port (the
 * one it had if the same forward ran before), or returns the running one.
 */
export async function labStartForward(o: { name: string; namespace: string; target: string; remote: number }): Promise<LabForwardStatus> {
  const lab = checkLabName(o.name);
  return withLabLock(lab, async () => {
    const state = await readState(lab);
    if (state === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${lab} is not up`);
    const forwards = state.forwards ?? [];
    const same = (f: LabForwardState): boolean => f.namespace === o.namespace && f.target === o.target && f.remote === o.remote;
    const had = forwards.find(same);
    if (had !== undefined && refAlive(had)) return statusOfForward(had);
    // Resolved here: in the fabric namespace a Kubernetes-mode lab's API is not where its kubeconfig says.
    const resolved = resolveForwardTarget(state.kubernetes === undefined ? statusOf(state) : await kubeLabStatus(state, statusOf(state)), o.namespace, o.target, o.remote);
    const port = await freeLoopbackPort(had?.port);
    const log = join(labPaths(lab).logsDir, `forward-${o.namespace}-${o.target.replace('/', '-')}-${o.remote}.log`);
    const hostNetns = openSync('/proc/thread-self/ns/net', 'r');
    let ref: ProcRef;
    try {
      ref = await startInNetns(
        {
          what: `the forward of ${o.namespace}/${o.target}:${o.remote}`,
          netns: state.fabricNetns,
          argv: [process.execPath, WEFT_MAIN, 'lab', 'port-forward', o.target, `127.0.0.1:${port}:${o.remote}`, '-n', o.namespace, '--name', lab, '--listen-netns', `/proc/self/fd/${HOST_NETNS_FD_IN_CHILD}`, '--resolved', JSON.stringify(resolved)],
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
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await connects(port))) {
      if (!refAlive(ref) || Date.now() > deadline) {
        await stopProcesses([ref], [], 1_000);
        throw new WeftError('WEFT_ERR_PORT_FORWARD', `the forward of ${o.namespace}/${o.target}:${o.remote} did not listen on 127.0.0.1:${port}; last lines of ${log}:\n${await logTail(log, 10)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const entry: LabForwardState = { ...ref, namespace: o.namespace, target: o.target, remote: o.remote, port };
    state.forwards = [...forwards.filter((f) => !same(f)), entry];
    await writeState(state);
    return statusOfForward(entry);
  });
}

export function statusOfForward(f: LabForwardState): LabForwardStatus {
  return { namespace: f.namespace, target: f.target, remote: f.remote, url: forwardUrl(f.port), pid: f.pid, running: refAlive(f) };
}
