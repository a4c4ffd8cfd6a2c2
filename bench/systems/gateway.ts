/**
 * Weft's ingress gateway (the ingress scenario): the bench namespace in the mesh, a Gateway of
 * class `weft` with one HTTPS listener (the scenario's certificate as a kubernetes.io/tls Secret)
 * that the lab deploys as a pod running `weft gateway`, and an HTTPRoute to the server pod's
 * HTTP port, so
 *   outside pod -> TLS -> gateway pod -> HBONE (mutual TLS) -> server agent -> server pod.
 * The outside pod is not in the mesh (a client outside the cluster); the gateway is on
 * client-node, where the reverse proxy of the comparison runs too.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { benchLabStatus, NAMESPACE, setMesh, waitCaptured, WORK_DIR, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import { makeCerts, INGRESS_HOST, type BenchCerts } from '../certs.js';
import type { Target } from '../loadgen.js';
import type { Service, System } from './system.js';
import type { ProfileTarget } from '../profile.js';
import { applyYaml, deleteYaml, gatewayPod, podConfigDump, SERVER_SERVICE, serverServiceYaml, until, type GatewayPod } from './lab-objects.js';

/** Lands on client-node (agent/lab/deployments.ts placeReplica hashes the name). */
export const GATEWAY_NAME = 'bench-gateway';
/** The HTTPS port of the ingress (the gateway's listener, the reverse proxy's bind). */
export const INGRESS_PORT = 8443;

export interface IngressSystem extends System {
  /** The CA that signed the serving certificate (the client verifies with it) and the name it is for. */
  readonly tls: { caFile: string; servername: string };
  /** The ingress processes only (without the server agent): the figure beside the total. */
  ingressPids(): number[];
}

export async function ingressCerts(): Promise<BenchCerts> {
  const dir = join(WORK_DIR, 'ingress-certs');
  await mkdir(dir, { recursive: true });
  return makeCerts(dir);
}

async function objects(certs: BenchCerts | undefined): Promise<string> {
  const data = certs === undefined ? '{}' : `{tls.crt: ${(await readFile(certs.ingress.crt)).toString('base64')}, tls.key: ${(await readFile(certs.ingress.key)).toString('base64')}}`;
  return `apiVersion: v1
kind: Secret
metadata: {name: bench-ingress-cert, namespace: ${NAMESPACE}}
type: kubernetes.io/tls
data: ${data}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${GATEWAY_NAME}, namespace: ${NAMESPACE}}
spec:
  gatewayClassName: weft
  listeners:
    - {name: https, port: ${INGRESS_PORT}, protocol: HTTPS, hostname: ${INGRESS_HOST}, tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: bench-ingress-cert}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench-ingress, namespace: ${NAMESPACE}}
spec:
  parentRefs: [{name: ${GATEWAY_NAME}, sectionName: https}]
  hostnames: [${INGRESS_HOST}]
  rules:
    - backendRefs: [{name: ${SERVER_SERVICE}, port: 7080}]
`;
}

export class GatewaySystem implements IngressSystem {
  readonly name = 'weft' as const;
  #tls: { caFile: string; servername: string } | undefined;
  #lab: BenchLab | undefined;
  #pod: GatewayPod | undefined;
  #serverAgent: number | undefined;

  get tls(): { caFile: string; servername: string } {
    if (this.#tls === undefined) throw new BenchError('the gateway is not started');
    return this.#tls;
  }

  async start(lab: BenchLab): Promise<void> {
    const certs = await ingressCerts();
    this.#tls = { caFile: certs.caFile, servername: INGRESS_HOST };
    await setMesh(true);
    await applyYaml(`${serverServiceYaml()}---\n${await objects(certs)}`, 'gateway');
    await waitCaptured(lab, true);
    this.#lab = await benchLabStatus();
    this.#serverAgent = this.#lab.serverNode.agentPid;
    if (this.#serverAgent === undefined) throw new BenchError('the server node agent of the bench lab is not running');
    let pod: GatewayPod | undefined;
    await until(`the gateway pod ${GATEWAY_NAME} runs with its HTTPS listener ready and the route attached`, 60_000, async () => {
      pod = await gatewayPod(GATEWAY_NAME);
      if (pod === undefined) return 'no running pod';
      const dump = await podConfigDump(pod);
      const listeners = (dump['status'] as { listeners?: { name: string; attachedRoutes: number }[] } | undefined)?.listeners ?? [];
      const https = listeners.find((l) => l.name === 'https');
      return (dump['ready'] === true && (https?.attachedRoutes ?? 0) > 0) || JSON.stringify({ ready: dump['ready'], listeners });
    });
    this.#pod = pod;
  }

  get node(): string | undefined {
    return this.#pod?.node;
  }

  /** `--profile`: the pod's process is profiled with the agents. */
  profileTargets(): ProfileTarget[] {
    const p = this.#pod;
    return p === undefined ? [] : [{ name: p.name, netns: p.netns, pid: p.pid }];
  }

  async stop(): Promise<void> {
    const lab = this.#lab;
    this.#lab = undefined;
    this.#pod = undefined;
    await deleteYaml(await objects(undefined), 'gateway-gone').catch(() => undefined);
    await setMesh(false);
    if (lab !== undefined) await waitCaptured(lab, false);
  }

  target(service: Service): Target {
    if (this.#pod === undefined) throw new BenchError('the gateway is not started');
    if (service !== 'http') throw new BenchError(`the gateway serves the HTTP service only, not ${service}`);
    return { host: this.#pod.ip, port: INGRESS_PORT };
  }

  ingressPids(): number[] {
    return this.#pod === undefined ? [] : [this.#pod.pid];
  }

  /** The gateway and the server node's agent (the HBONE hop's other end). */
  proxyPids(): number[] {
    return [...this.ingressPids(), ...(this.#serverAgent === undefined ? [] : [this.#serverAgent])];
  }
}
