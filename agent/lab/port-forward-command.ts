/** `weft lab port-forward` (port-forward.ts): prints what it forwards, runs until interrupted. */
import { Option, type Command } from 'commander';
import { labPortForward, parseForwardSpec, type ForwardTarget } from './port-forward.js';
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
    .argument('<ports>', 'LOCAL:REMOTE, :REMOTE (any free local port), PORT, or ADDRESS:LOCAL:REMOTE (127.0.0.1:8080:80)')
    .option('-n, --namespace <namespace>', 'namespace of the pod or service', 'default')
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    // The lab's own forwards (labStartForward) run in its fabric namespace and listen on the host's.
    .addOption(new Option('--listen-netns <path>', 'make the listening socket inside this network namespace').hideHelp())
    // ...and get their target resolved by the lab, where the lab's status can be read (JSON of a ForwardTarget).
    .addOption(new Option('--resolved <json>', 'the target, resolved').hideHelp())
    .action(async (target: string, ports: string, opts: { namespace: string; address: string; name: string; listenNetns?: string; resolved?: string }) => {
      const spec = parseForwardSpec(ports);
      const address = spec.address ?? opts.address;
      const netnsSocket = opts.listenNetns === undefined ? undefined : await import('../dashboard/netns-socket.js');
      const forward = await labPortForward({
        name: opts.name,
        namespace: opts.namespace,
        target,
        ports: spec.ports,
        address,
        ...(netnsSocket !== undefined ? { listenFd: () => netnsSocket.listeningFdInNetns(opts.listenNetns!, address, spec.ports.local) } : {}),
        ...(opts.resolved !== undefined ? { resolved: JSON.parse(opts.resolved) as ForwardTarget } : {}),
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
