/**
 * `weft lab kube-apiserver` (hidden): runs the lab's Kubernetes API test double as a process
 * the lab spawns, listening on host addresses and inside network namespaces at once, and
 * writing a kubeconfig for the admin token once it listens.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../../log.js';
import { startKubeApiServer, type ListenAddress } from './index.js';

function hostPort(value: string): ListenAddress {
  const m = /^([^:]+):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be HOST:PORT');
  return { host: m[1]!, port: Number(m[2]) };
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
    .option('--kubeconfig <file>', 'write an admin kubeconfig here once listening')
    .option('--kubeconfig-server <url>', 'server URL for that kubeconfig (default: the first --listen)')
    .option('--dns-name <name>', 'extra DNS name in the serving certificate (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (opts: { state: string; listen: ListenAddress[]; listenNetns: ListenAddress[]; kubeconfig?: string; kubeconfigServer?: string; dnsName: string[] }) => {
      const logger = createLogger({ component: 'kube-apiserver' });
      const server = await startKubeApiServer({ stateFile: opts.state, listen: [...opts.listen, ...opts.listenNetns], dnsNames: opts.dnsName, logger });
      if (opts.kubeconfig !== undefined) await server.writeKubeconfig(opts.kubeconfig, opts.kubeconfigServer ? { server: opts.kubeconfigServer } : {});
      const stop = (): void => {
        void server.stop().then(() => process.exit(0));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
