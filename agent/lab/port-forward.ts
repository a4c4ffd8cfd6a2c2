/**
 * `weft lab port-forward`: a lab's pod or service on this machine's loopback, as `kubectl
 * port-forward` does it. The target is chosen once at start (a service: the first of its ready
 * endpoints for that port, as kubectl picks one pod); each local connection gets a socket made
 * inside that pod's network namespace, connected to the pod's own loopback on the target port
 * (the kubelet connects to localhost inside the pod). The pod's capture rules leave loopback
 * alone, so the app sees a local client, as with kubectl.
 *
 * Only the lab's own pods are reachable: the namespaces come from its status, nothing else.
 */
import net from 'node:net';
import { once } from 'node:events';
import { WeftError } from '../errors.js';
import { closeNetns, createTcpSocket, openNetns } from '../../native/index.js';
import { labStatus } from './lab.js';
import { NETNS_DIR } from './paths.js';
import type { LabStatus, PodStatus } from './status.js';

export interface PortSpec {
  /** 0: any free port (`:REMOTE`). */
  local: number;
  remote: number;
}

/** `LOCAL:REMOTE`, `:REMOTE` (a free local port) or `PORT` (the same on both sides), as kubectl. */
export function parsePortSpec(text: string): PortSpec {
  const m = /^(\d{0,5}):(\d{1,5})$|^(\d{1,5})$/.exec(text);
  const port = (s: string | undefined, allowZero: boolean): number | undefined => {
    if (s === undefined || s === '') return allowZero ? 0 : undefined;
    const n = Number(s);
    return Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535 ? n : undefined;
  };
  const local = m === null ? undefined : m[3] !== undefined ? port(m[3], false) : port(m[1], true);
  const remote = m === null ? undefined : port(m[3] ?? m[2], false);
  if (local === undefined || remote === undefined) {
    throw new WeftError('WEFT_ERR_CONFIG', `port ${JSON.stringify(text)}: expected LOCAL:REMOTE, :REMOTE or PORT (1-65535)`);
  }
  return { local, remote };
}

/**
 * The ports argument with an optional local address in front, `ADDRESS:LOCAL:REMOTE`
 * (`127.0.0.1:8080:80`, as docker's -p takes it; kubectl says the same with --address).
 */
export function parseForwardSpec(text: string): { address?: string; ports: PortSpec } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|localhost):(\d{0,5}:\d{1,5})$/.exec(text);
  if (m === null) return { ports: parsePortSpec(text) };
  if (m[1] !== 'localhost' && net.isIPv4(m[1]!) === false) {
    throw new WeftError('WEFT_ERR_CONFIG', `port ${JSON.stringify(text)}: ${m[1]} is not an IPv4 address`);
  }
  return { address: m[1] === 'localhost' ? '127.0.0.1' : m[1]!, ports: parsePortSpec(m[2]!) };
}

export interface ForwardTarget {
  /** What was asked (`svc/productpage`, `pod/details-v1`). */
  asked: string;
  pod: PodStatus;
  /** Port inside the pod. */
  port: number;
}

/** `svc/NAME`, `service/NAME`, `pod/NAME` or a bare pod name, as kubectl takes them. */
export function parseTargetRef(text: string): { kind: 'pod' | 'service'; name: string } {
  const m = /^(?:(pods?|po|svc|services?)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(text);
  if (m === null) throw new WeftError('WEFT_ERR_CONFIG', `target ${JSON.stringify(text)}: expected pod/NAME or svc/NAME`);
  return { kind: m[1] === undefined || m[1].startsWith('po') ? 'pod' : 'service', name: m[2]! };
}

/** Resolves the target in a lab's status: the pod and the port inside it, or why not. Pure. */
export function resolveForwardTarget(status: LabStatus, namespace: string, ref: string, remote: number): ForwardTarget {
  const { kind, name } = parseTargetRef(ref);
  const namespaces = [...new Set([...status.pods.map((p) => p.namespace), ...status.services.map((s) => s.namespace)])].sort();
  const fail = (why: string): never => {
    throw new WeftError('WEFT_ERR_PORT_FORWARD', `lab ${status.name}: ${why}`);
  };
  if (!namespaces.includes(namespace)) fail(`no namespace ${namespace} (namespaces: ${namespaces.join(', ') || 'none'})`);
  const runningPod = (podName: string): PodStatus | undefined => status.pods.find((p) => p.namespace === namespace && p.name === podName);
  if (kind === 'pod') {
    const pod = runningPod(name);
    if (pod === undefined) {
      const names = status.pods.filter((p) => p.namespace === namespace).map((p) => p.name);
      return fail(`no pod ${namespace}/${name} (pods in ${namespace}: ${names.join(', ') || 'none'})`);
    }
    if (!pod.running) fail(`pod ${namespace}/${name} is not running`);
    return { asked: `pod/${name}`, pod, port: remote };
  }
  const svc = status.services.find((s) => s.namespace === namespace && s.name === name);
  if (svc === undefined) {
    const names = status.services.filter((s) => s.namespace === namespace).map((s) => s.name);
    return fail(`no service ${namespace}/${name} (services in ${namespace}: ${names.join(', ') || 'none'})`);
  }
  if (!svc.ports.some((p) => p.port === remote)) fail(`service ${namespace}/${name} does not expose port ${remote} (ports: ${svc.ports.map((p) => p.port).join(', ') || 'none'})`);
  for (const ep of svc.endpoints.filter((e) => e.port === remote)) {
    const pod = runningPod(ep.pod);
    if (pod?.running === true) return { asked: `svc/${name}`, pod, port: ep.targetPort };
  }
  return fail(`service ${namespace}/${name} has no ready endpoint for port ${remote}`);
}

export interface PortForward {
  target: ForwardTarget;
  /** The local address actually listened on. */
  local: { address: string; port: number };
  close(): Promise<void>;
}

export interface PortForwardOptions {
  name: string;
  namespace: string;
  target: string;
  ports: PortSpec;
  /** Default 127.0.0.1, as kubectl's --address default. */
  address?: string;
  /** Told of each connection that could not be forwarded (kubectl prints these and goes on). */
  onError?: (err: Error) => void;
  /** Makes the listening socket elsewhere (in another network namespace: the lab's own forwards); called once the target is known. */
  listenFd?: () => number;
  /** The target as resolved already (the lab's kept forwards resolve it where the lab's status can be read). */
  resolved?: ForwardTarget;
}

function connectInPod(target: ForwardTarget): net.Socket {
  const nsFd = openNetns(`${NETNS_DIR}/${target.pod.netns}`);
  try {
    const fd = createTcpSocket({ netnsFd: nsFd });
    return new net.Socket({ fd, readable: true, writable: true }).connect(target.port, '127.0.0.1');
  } finally {
    closeNetns(nsFd);
  }
}

export async function labPortForward(options: PortForwardOptions): Promise<PortForward> {
  const target = options.resolved ?? resolveForwardTarget(await labStatus(options.name), options.namespace, options.target, options.ports.remote);
  const address = options.address ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    let upstream: net.Socket;
    try {
      upstream = connectInPod(target);
    } catch (err) {
      options.onError?.(new WeftError('WEFT_ERR_PORT_FORWARD', `forward to ${target.pod.namespace}/${target.pod.name}:${target.port}: ${(err as Error).message}`, { cause: err }));
      client.destroy();
      return;
    }
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', (err) => {
      options.onError?.(new WeftError('WEFT_ERR_PORT_FORWARD', `forward to ${target.pod.namespace}/${target.pod.name}:${target.port}: ${err.message}`, { cause: err }));
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  if (options.listenFd !== undefined) server.listen({ fd: options.listenFd() });
  else server.listen(options.ports.local, address);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  } catch (err) {
    throw new WeftError('WEFT_ERR_PORT_FORWARD', `cannot listen on ${address}:${options.ports.local}: ${(err as Error).message}`, { cause: err });
  }
  const bound = (server.address() as net.AddressInfo | null) ?? { port: options.ports.local };
  return {
    target,
    local: { address, port: bound.port },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
