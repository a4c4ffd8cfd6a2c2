/**
 * `weft dashboard`: the live service graph in the browser (agent/dashboard/). Runs until
 * interrupted. In a lab, `weft lab up` runs one itself (agent/dashboard/lab.ts).
 */
import { Command, Option } from 'commander';
import { WeftError } from '../errors.js';
import { createLogger } from '../log.js';
import { parseHostPort } from '../util/host-port.js';
import { ADMIN_PORT } from '../config.js';

/** Kiali's port: the place people look for a mesh's graph. */
export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:20001';

export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description(
      'serve a live service graph of the mesh in the browser: workloads by namespace and app, services, waypoints and gateways; ' +
        'edges with requests/s or bytes/s, error rate, p99, mutual TLS or not, denied connections (from Prometheus), ' +
        "and on click identities, certificate expiry, policies and routes (from the agents' admin APIs and the cluster)",
    )
    .option('--prometheus <url>', "Prometheus that scrapes the agents (and waypoints); with --lab the lab's own by default")
    .option('--lab <name>', "a running lab's Prometheus, agents and objects")
    .option('--kubeconfig <file>', "a cluster's agents (through pods/portforward, as weft status) and Gateway API objects")
    .option('--agents-namespace <ns>', 'with --kubeconfig: the agents\' namespace', 'weft-system')
    .option('--listen <host:port>', 'where to serve the UI', DEFAULT_DASHBOARD_LISTEN)
    // For the lab: the dashboard runs in the lab's fabric namespace and listens in the host's.
    .addOption(new Option('--listen-netns <path>', 'make the listening socket inside this network namespace').hideHelp())
    .action(async (opts: { prometheus?: string; lab?: string; kubeconfig?: string; agentsNamespace: string; listen: string; listenNetns?: string }) => {
      if (opts.lab !== undefined && opts.kubeconfig !== undefined) throw new WeftError('WEFT_ERR_CONFIG', 'give --lab or --kubeconfig, not both');
      if (opts.lab === undefined && opts.prometheus === undefined) throw new WeftError('WEFT_ERR_CONFIG', '--prometheus <url> is needed (or --lab <name> for a lab\'s own)');
      if (opts.prometheus !== undefined && !/^https?:\/\//.test(opts.prometheus)) throw new WeftError('WEFT_ERR_CONFIG', `--prometheus ${opts.prometheus}: expected an http:// or https:// URL`);
      const listen = parseHostPort(opts.listen);
      const sources = await import('../dashboard/sources.js');
      const source =
        opts.lab !== undefined
          ? await sources.labSources(opts.lab, opts.prometheus)
          : opts.kubeconfig !== undefined
            ? await sources.kubeSources(opts.kubeconfig, opts.prometheus!, opts.agentsNamespace, 'app=weft-agent', ADMIN_PORT)
            : sources.prometheusOnlySources(opts.prometheus!);
      const { startDashboard } = await import('../dashboard/server.js');
      let fd: number | undefined;
      if (opts.listenNetns !== undefined) {
        const { listeningFdInNetns } = await import('../dashboard/netns-socket.js');
        fd = listeningFdInNetns(opts.listenNetns, listen.host, listen.port);
      }
      const logger = createLogger({ component: 'dashboard' }, 2);
      const dashboard = await startDashboard({ sources: source, logger, listen, ...(fd !== undefined ? { fd } : {}) });
      process.stdout.write(`weft dashboard: ${dashboard.url} (data: ${source.description})\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await dashboard.close();
    });
}
