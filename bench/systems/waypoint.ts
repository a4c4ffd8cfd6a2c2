/**
 * Weft with a waypoint (the l7 scenario): the bench namespace in the mesh, a waypoint Gateway
 * (class weft-waypoint) that the lab deploys as a pod running `weft waypoint` in its own network
 * namespace, and the Service of the server pod's HTTP ports labelled weft.dev/use-waypoint, so
 *   client pod -> client agent -> HBONE -> waypoint pod -> HBONE -> server agent -> server pod.
 * The route is an Istio VirtualService (one destination), in three variants measured one after
 * the other on the same waypoint: `plain`, `retry` (retries: attempts 3, retryOn 5xx) and
 * `outlier` (plain plus a DestinationRule with outlierDetection consecutive5xxErrors 5): what a
 * retry policy and outlier detection cost when nothing fails (issue 12 point 4).
 */
import { benchLabStatus, NAMESPACE, setMesh, waitCaptured, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import type { Target } from '../loadgen.js';
import { SERVICE_PORTS } from './direct.js';
import type { Service, System } from './system.js';
import type { ProfileTarget } from '../profile.js';
import { applyYaml, deleteYaml, gatewayPod, podConfigDump, SERVER_FQDN, SERVER_SERVICE, SERVER_VIP, serverServiceYaml, until, type GatewayPod } from './lab-objects.js';

/** Lands on server-node (agent/lab/deployments.ts placeReplica hashes the name). */
export const WAYPOINT_NAME = 'bench-waypoint';
export const ROUTE_VARIANTS = ['plain', 'retry', 'outlier'] as const;
export type RouteVariant = (typeof ROUTE_VARIANTS)[number];

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${WAYPOINT_NAME}, namespace: ${NAMESPACE}}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
`;

function virtualService(retries: boolean): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${SERVER_SERVICE}, namespace: ${NAMESPACE}}
spec:
  hosts: [${SERVER_FQDN}]
  http:
    - name: all
      route: [{destination: {host: ${SERVER_FQDN}}}]
${retries ? '      retries: {attempts: 3, retryOn: 5xx}\n' : ''}`;
}

const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${SERVER_SERVICE}, namespace: ${NAMESPACE}}
spec:
  host: ${SERVER_FQDN}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100}
`;

interface RouteRow {
  route: string;
  accepted: string;
}

export class WaypointSystem implements System {
  readonly name = 'weft' as const;
  #lab: BenchLab | undefined;
  #agents: number[] = [];
  #waypoint: GatewayPod | undefined;
  #variant: RouteVariant | undefined;

  async start(lab: BenchLab): Promise<void> {
    await setMesh(true);
    await applyYaml(`${GATEWAY}---\n${serverServiceYaml({ 'weft.dev/use-waypoint': WAYPOINT_NAME })}---\n${virtualService(false)}`, 'waypoint');
    this.#variant = 'plain';
    await waitCaptured(lab, true);
    this.#lab = await benchLabStatus();
    const agents = [this.#lab.clientNode.agentPid, this.#lab.serverNode.agentPid];
    if (agents.some((p) => p === undefined)) throw new BenchError('an agent of the bench lab is not running');
    this.#agents = agents as number[];
    let pod: GatewayPod | undefined;
    await until(`the waypoint pod ${WAYPOINT_NAME} runs and is ready with Service ${SERVER_SERVICE} bound`, 60_000, async () => {
      pod = await gatewayPod(WAYPOINT_NAME);
      if (pod === undefined) return 'no running pod';
      const dump = await podConfigDump(pod);
      const bound = ((dump['services'] as { key: string }[] | undefined) ?? []).some((s) => s.key === `${NAMESPACE}/${SERVER_SERVICE}`);
      return (dump['ready'] === true && bound) || `ready ${String(dump['ready'])}, service bound ${bound}`;
    });
    this.#waypoint = pod;
    await this.#waitRoutes('plain');
  }

  /** The waypoint process (its CPU and memory are reported on their own). */
  waypointPid(): number {
    if (this.#waypoint === undefined) throw new BenchError('the waypoint is not started');
    return this.#waypoint.pid;
  }

  get waypointNode(): string | undefined {
    return this.#waypoint?.node;
  }

  /** HBONE streams the waypoint accepted so far (the harness checks that the load went through it). */
  async waypointStreams(): Promise<number> {
    if (this.#waypoint === undefined) return 0;
    const dump = await podConfigDump(this.#waypoint);
    return (dump['hbone'] as { streamsAccepted?: number } | undefined)?.streamsAccepted ?? 0;
  }

  /** Switches the route to `variant` and waits until the waypoint serves it. */
  async setVariant(variant: RouteVariant): Promise<void> {
    if (variant === this.#variant) return;
    if (variant === 'outlier') await applyYaml(`${virtualService(false)}---\n${DESTINATION_RULE}`, 'route-outlier');
    else {
      if (this.#variant === 'outlier') await deleteYaml(DESTINATION_RULE, 'route-no-outlier');
      await applyYaml(virtualService(variant === 'retry'), `route-${variant}`);
    }
    this.#variant = variant;
    await this.#waitRoutes(variant);
  }

  async #waitRoutes(variant: RouteVariant): Promise<void> {
    const pod = this.#waypoint!;
    // The waypoint reads the manifests as the agents do (debounced): wait until its route rows
    // show the VirtualService accepted and the DestinationRule present exactly for `outlier`.
    // (Rows do not show the retries; their VirtualService is applied before the rows are read
    // and the waypoint applies a model as a whole.)
    await until(`the waypoint serves the ${variant} route`, 30_000, async () => {
      const rows = ((await podConfigDump(pod))['routes'] as RouteRow[] | undefined) ?? [];
      const vs = rows.find((r) => r.route === `VirtualService ${NAMESPACE}/${SERVER_SERVICE}`);
      const dr = rows.find((r) => r.route === `DestinationRule ${NAMESPACE}/${SERVER_SERVICE}`);
      const ok = vs !== undefined && vs.accepted.startsWith('True') && (variant === 'outlier' ? dr !== undefined && dr.accepted.startsWith('True') : dr === undefined);
      return ok || JSON.stringify(rows);
    });
  }

  /** `--profile`: the pod's process is profiled with the agents. */
  profileTargets(): ProfileTarget[] {
    const p = this.#waypoint;
    return p === undefined ? [] : [{ name: p.name, netns: p.netns, pid: p.pid }];
  }

  async stop(): Promise<void> {
    const lab = this.#lab;
    this.#lab = undefined;
    this.#waypoint = undefined;
    await deleteYaml(`${GATEWAY}---\n${virtualService(false)}---\n${DESTINATION_RULE}`, 'waypoint-gone').catch(() => undefined);
    await applyYaml(serverServiceYaml(), 'service-plain');
    this.#variant = undefined;
    await setMesh(false);
    if (lab !== undefined) await waitCaptured(lab, false);
  }

  target(service: Service): Target {
    if (this.#lab === undefined) throw new BenchError('weft is not started');
    return { host: SERVER_VIP, port: SERVICE_PORTS[service] };
  }

  /** Both agents and the waypoint. */
  proxyPids(): number[] {
    return this.#waypoint === undefined ? this.#agents : [...this.#agents, this.#waypoint.pid];
  }
}
