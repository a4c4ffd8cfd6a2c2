/** `weft lab port-forward` (port-forward.ts): prints what it forwards, runs until interrupted. */
import type { Command } from 'commander';
import { labPortForward, parsePortSpec } from './port-forward.js';
import { DEFAULT_LAB_NAME } from './paths.js';

export function registerPortForwardCommand(lab: Command): void {
  lab
    .command('port-forward')
    .description(
      "listen on this machine's 127.0.0.1:LOCAL and forward each connection to a pod of the lab, or to one ready endpoint of a service, " +
        "as kubectl port-forward does (to the pod's own loopback on the port; for a service, the target port of its REMOTE port). " +
        'Runs until interrupted. Example: weft lab port-forward svc/productpage 9080:9080',
    )
    .argument('<target>', 'pod/NAME or svc/NAME')
    .argument('<ports>', 'LOCAL:REMOTE, :REMOTE (any free local port) or PORT')
    .option('-n, --namespace <namespace>', 'namespace of the pod or service', 'default')
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .action(async (target: string, ports: string, opts: { namespace: string; address: string; name: string }) => {
      const forward = await labPortForward({
        name: opts.name,
        namespace: opts.namespace,
        target,
        ports: parsePortSpec(ports),
        address: opts.address,
        onError: (err) => process.stderr.write(`weft: ${err.message}\n`),
      });
      const t = forward.target;
      process.stdout.write(`Forwarding from ${forward.local.address}:${forward.local.port} -> ${t.port} (${t.asked} in ${opts.namespace}: pod ${t.pod.name}, lab ${opts.name})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await forward.close();
    });
}
