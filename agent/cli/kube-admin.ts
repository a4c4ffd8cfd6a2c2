/**
 * The agents' admin APIs through the Kubernetes API server, as `istioctl ztunnel-config` does:
 * the admin API listens on the agent pod's loopback only (127.0.0.1:15000, hostNetwork), which
 * a port-forward reaches (the kubelet connects to localhost inside the pod) and a pod proxy
 * (pod IP) does not. Each agent pod gets a local listener on 127.0.0.1:0 whose connections are
 * carried over pods/portforward (WebSocket, client-node's PortForward), so fetchAdmin is used
 * unchanged. Needs `pods` list and `pods/portforward` create in the agents' namespace.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ApiException, AuthorizationV1Api, CoreV1Api, PortForward, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { WeftError } from '../errors.js';
import type { AdminTarget } from '../admin/client.js';

export interface KubeAgentsOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Label selector of the agent pods (the DaemonSet's: app=weft-agent). */
  selector: string;
  /** The admin port inside the agent pod. */
  adminPort: number;
}

/** Forwarded agents: one target per running agent pod; `close()` stops every listener. */
export interface ForwardedAgents {
  targets: AdminTarget[];
  /** Why the forward to a target failed, if it did (a hung-up local socket says nothing). */
  errorFor(target: AdminTarget): WeftError | undefined;
  close(): Promise<void>;
}

function requestError(what: string, err: unknown): WeftError {
  const status = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
  const hint = err instanceof ApiException && err.code === 403 ? ': the kubeconfig\'s user needs list pods and create pods/portforward in that namespace' : '';
  return new WeftError('WEFT_ERR_KUBE_REQUEST', `${what} failed${status}: ${(err as Error).message}${hint}`, { cause: err });
}

export async function forwardAgents(opts: KubeAgentsOptions): Promise<ForwardedAgents> {
  let pods: V1Pod[];
  try {
    pods = (await opts.kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: opts.namespace, labelSelector: opts.selector })).items;
  } catch (err) {
    throw requestError(`listing pods -n ${opts.namespace} -l ${opts.selector}`, err);
  }
  // Asked first, so that a refusal is said plainly instead of as a hung-up forward.
  let mayForward: boolean | undefined;
  try {
    mayForward = (await opts.kubeConfig.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'create', resource: 'pods', subresource: 'portforward', namespace: opts.namespace } } },
    })).status?.allowed;
  } catch {
    mayForward = undefined; // no self-review on this server: the forward itself will say
  }
  if (mayForward === false) {
    throw new WeftError('WEFT_ERR_KUBE_REQUEST', `the kubeconfig's user may not create pods/portforward in ${opts.namespace} (403 from a SelfSubjectAccessReview): grant it, or use an admin kubeconfig`);
  }
  const running = pods.filter((p) => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined);
  if (running.length === 0) {
    throw new WeftError('WEFT_ERR_KUBE_REQUEST', `no running agent pod in ${opts.namespace} with labels ${opts.selector} (${pods.length} pod(s) found): kubectl -n ${opts.namespace} get pods -l ${opts.selector}`);
  }
  const forward = new PortForward(opts.kubeConfig);
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const targets: AdminTarget[] = [];
  const errors = new Map<string, WeftError>();
  for (const pod of running) {
    const name = pod.metadata!.name!;
    const label = `pod ${name} (node ${pod.spec?.nodeName ?? '?'})`;
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      forward.portForward(opts.namespace, name, [opts.adminPort], socket, null, socket).catch((err: unknown) => {
        const e = requestError(`port-forward to pod ${opts.namespace}/${name}:${opts.adminPort}`, err);
        errors.set(label, e);
        socket.destroy(e);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(server);
    targets.push({ label, admin: `127.0.0.1:${(server.address() as AddressInfo).port}` });
  }
  return {
    targets,
    errorFor: (t) => errors.get(t.label),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
