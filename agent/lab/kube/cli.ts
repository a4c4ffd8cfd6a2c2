/**
 * `weft lab kube-apiserver` (hidden): runs the lab's Kubernetes API test double as a process
 * the lab spawns, listening on host addresses and inside network namespaces at once, and
 * writing a kubeconfig for the admin token once it listens.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../../log.js';
import { existsSync } from 'node:fs';
import { startKubeApiServer, type ListenAddress, type PodNetworkResolver } from './index.js';
import { isJsonObject, type KubeObject } from './types.js';

function hostPort(value: string): ListenAddress {
  const m = /^([^:]+):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be HOST:PORT');
  return { host: m[1]!, port: Number(m[2]) };
}

/** A resolver from path templates with {namespace}, {name} and {node}; only paths that exist. */
export function templateResolver(podTemplate: string | undefined, hostTemplate: string | undefined): PodNetworkResolver {
  return (pod: KubeObject) => {
    const spec = isJsonObject(pod['spec']) ? pod['spec'] : {};
    const node = typeof spec['nodeName'] === 'string' ? spec['nodeName'] : '';
    const template = spec['hostNetwork'] === true ? hostTemplate : podTemplate;
    if (template === undefined || node === '') return undefined;
    const path = template.replaceAll('{namespace}', pod.metadata.namespace ?? '').replaceAll('{name}', pod.metadata.name ?? '').replaceAll('{node}', node);
    return existsSync(path) ? path : undefined;
  };
}

export function registerKubeApiServerCommand(lab: Command): void {
  lab
    .command('kube-apiserver', { hidden: true })
    .description('run the lab\'s Kubernetes API server (a test double for the lab, not a Kubernetes distribution)')
    .requiredOption('--state <file>', 'state file: objects, keys and resourceVersion survive restarts here')
    .option('--listen <host:port>', 'listen on the host (repeatable)', (v: string, acc: ListenAddress[]) => [...acc, hostPort(v)], [] as ListenAddress[])
    .option('--listen-netns <path=host:port>', 'listen inside a network namespace, e.g. /run/netns/x=198.19.0.254:6443 (repeatable)', (v: string, acc: ListenAddress[]) => {
      const i = v.lastIndexOf('=');
      if (i <= 0) throw new InvalidArgumentError('must be NETNS_PATH=HOST:PORT');
      return [...acc, { ...hostPort(v.slice(i + 1)), netnsPath: v.slice(0, i) }];
    }, [] as ListenAddress[])
    .option('--advertise <host:port>', 'address of the kubernetes Service\'s endpoints (default: the first --listen-netns)', hostPort)
    .option('--kubeconfig <file>', 'write an admin kubeconfig here once listening')
    .option('--kubeconfig-server <url>', 'server URL for that kubeconfig (default: the first --listen)')
    .option('--pod-netns <template>', 'network namespace of a pod for port-forward and proxy, e.g. /run/netns/weft-lab-pod-{namespace}-{name}')
    .option('--host-netns <template>', 'network namespace of a hostNetwork pod, e.g. /run/netns/weft-lab-node-{node}')
    .option('--pod-log <template>', 'log file of a container for kubectl logs, e.g. /run/weft/lab/x/logs/pod-{namespace}-{name}-{container}.log')
    .option('--dns-name <name>', 'extra DNS name in the serving certificate (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (opts: { state: string; listen: ListenAddress[]; listenNetns: ListenAddress[]; kubeconfig?: string; kubeconfigServer?: string; dnsName: string[]; podNetns?: string; hostNetns?: string; advertise?: ListenAddress; podLog?: string }) => {
      // The server adds its own `component` binding.
      const logger = createLogger();
      const server = await startKubeApiServer({ stateFile: opts.state, listen: [...opts.listen, ...opts.listenNetns], dnsNames: opts.dnsName, logger, ...(opts.advertise ? { advertise: { ip: opts.advertise.host, port: opts.advertise.port } } : {}) });
      const logTemplate = opts.podLog;
      if (logTemplate !== undefined) {
        server.setPodLogResolver((pod, container) => logTemplate.replaceAll('{namespace}', pod.metadata.namespace ?? '').replaceAll('{name}', pod.metadata.name ?? '').replaceAll('{container}', container));
      }
      if (opts.podNetns !== undefined || opts.hostNetns !== undefined) server.setPodNetworkResolver(templateResolver(opts.podNetns, opts.hostNetns));
      if (opts.kubeconfig !== undefined) await server.writeKubeconfig(opts.kubeconfig, opts.kubeconfigServer ? { server: opts.kubeconfigServer } : {});
      const stop = (): void => {
        void server.stop().then(() => process.exit(0));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
