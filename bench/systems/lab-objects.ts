/**
 * What the l7 and ingress systems share: applying and deleting YAML in the bench lab (through
 * files in the run's scratch directory), the Service of the server pod's HTTP ports, the pod a
 * Gateway deployed, and its admin API (`/config_dump`, read inside the pod's namespace).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labApply, labDelete, labStatus } from '../../agent/lab/index.js';
import { fetchAdmin } from '../../agent/admin/client.js';
import { DEFAULT_ADMIN_ADDRESS } from '../../agent/config.js';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { BenchError } from '../errors.js';
import { LAB_NAME, NAMESPACE, WORK_DIR } from '../lab-env.js';

/** The Service of bench/lab/service.yaml. */
export const SERVER_SERVICE = 'bench-server';
export const SERVER_VIP = '198.19.136.80';
export const SERVER_FQDN = `${SERVER_SERVICE}.${NAMESPACE}.svc.cluster.local`;

export function serverServiceYaml(labels: Record<string, string> = {}): string {
  const l = Object.entries(labels).map(([k, v]) => `\n    ${k}: ${v}`).join('');
  return `apiVersion: v1
kind: Service
metadata:
  name: ${SERVER_SERVICE}
  namespace: ${NAMESPACE}
  labels:
    app: bench-server${l}
spec:
  clusterIP: ${SERVER_VIP}
  selector:
    app: bench-server
  ports:
    - {name: http, port: 7080, targetPort: 7080}
    - {name: grpc, port: 7090, targetPort: 7090}
`;
}

let files = 0;

async function scratch(yaml: string, what: string): Promise<string> {
  const file = join(WORK_DIR, `${what}-${++files}.yaml`);
  await writeFile(file, yaml);
  return file;
}

export async function applyYaml(yaml: string, what: string): Promise<void> {
  await labApply({ name: LAB_NAME, file: await scratch(yaml, what) });
}

export async function deleteYaml(yaml: string, what: string): Promise<void> {
  await labDelete({ name: LAB_NAME, file: await scratch(yaml, what) });
}

export interface GatewayPod {
  name: string;
  ip: string;
  netns: string;
  node: string;
  /** The `weft waypoint` / `weft gateway` process. */
  pid: number;
}

/** The running pod a Gateway (waypoint or ingress) deployed, or undefined. */
export async function gatewayPod(gateway: string): Promise<GatewayPod | undefined> {
  const s = await labStatus(LAB_NAME);
  const p = s.pods.find((x) => x.namespace === NAMESPACE && x.labels[GATEWAY_NAME_LABEL] === gateway && x.running);
  const pid = p?.containers[0]?.pid;
  if (p === undefined || pid === undefined) return undefined;
  return { name: p.name, ip: p.ip, netns: p.netns, node: p.node, pid };
}

/** The pod's admin API /config_dump (a waypoint's or gateway's). */
export async function podConfigDump(pod: GatewayPod): Promise<Record<string, unknown>> {
  return (await fetchAdmin({ label: `pod ${pod.name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${pod.netns}` }, '/config_dump')) as Record<string, unknown>;
}

/** Polls `check` every 100 ms until it returns true, bounded; the failure says what was awaited and the last state. */
export async function until(what: string, timeoutMs: number, check: () => Promise<boolean | string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'not checked';
  for (;;) {
    try {
      const r = await check();
      if (r === true) return;
      last = r;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) throw new BenchError(`${what} within ${timeoutMs} ms (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
