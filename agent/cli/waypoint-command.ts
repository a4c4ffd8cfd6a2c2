/**
 * `weft waypoint`: runs the L7 proxy for one waypoint Gateway (agent/waypoint/). The pod runs
 * it with its Gateway's name and namespace, a discovery source like the agent's, and the CA
 * flags (proxy-setup.ts, shared with `weft gateway`); `weft waypoint generate`
 * (waypoint-generate.ts) prints what deploys it.
 */
import type { Command } from 'commander';
import { DEFAULT_WAYPOINT_HBONE_ADDRESS, HBONE_PORT } from '../config.js';
import { exitOnStopSignals } from './stop-signals.js';
import { addProxyAddressOptions, addProxyOptions, hostPortFlag, setUpProxy, type ProxyFlags, type ProxyHelp } from './proxy-setup.js';

interface WaypointFlags extends ProxyFlags {
  hbone: string;
}

const HELP: ProxyHelp = {
  gateway: 'waypoint Gateway',
  reporter: 'waypoint',
  caToken: 'bearer token for the CA, re-read on every request (the lab: the token of the node the pod runs on)',
  admin: "admin API (/config_dump with the bound services and route status, /healthz/ready); '' disables",
};

/** Registers `weft waypoint` and returns it (`generate` is added to it as a subcommand). */
export function registerWaypointCommand(program: Command): Command {
  // Options only before a subcommand, so that `waypoint generate NAME --namespace NS` is
  // generate's --namespace, not the waypoint's (commander needs it on every level above).
  program.enablePositionalOptions();
  const cmd = program
    .command('waypoint')
    .enablePositionalOptions()
    .description(
      'run a waypoint: the L7 proxy of the services bound to one waypoint Gateway (class weft-waypoint) by the label ' +
        'weft.dev/use-waypoint. It serves HBONE (mutual TLS with its own service account\'s SPIFFE ID) on 15008; source agents ' +
        'send it those services\' connections (:authority = service VIP:port). HTTP/1.1 and HTTP/2 (h2c, gRPC) are routed per ' +
        'request by the HTTPRoutes and GRPCRoutes of the service, authorized by L7 AuthorizationPolicies, load-balanced per ' +
        'request (least outstanding requests, power of two choices) over pooled HBONE connections to the pods; anything else ' +
        'is relayed as L4. Ready (15021) once it has its certificate and a discovery model.',
    );
  addProxyOptions(cmd, HELP).option('--hbone <host:port>', 'HBONE listener (mutual TLS)', hostPortFlag(), DEFAULT_WAYPOINT_HBONE_ADDRESS);
  return addProxyAddressOptions(cmd, HELP)
    .addHelpText(
      'after',
      `\nThe waypoint's pod is not captured by the node agent (label weft.dev/mesh: disabled): it does its own mutual TLS.\n` +
        `Upstream it dials each destination pod's ${HBONE_PORT} expecting the pod's identity, with forwarded: for="<client>"\n` +
        'on the CONNECT; pods outside the mesh get plain TCP. Every request is one JSON access-log line (component "access").\n' +
        'Response flags as Envoy\'s: UH no ready endpoint (503), UF upstream connect failed (503), UT route timeout (504),\n' +
        'DC client went away, NR no route / no valid backend. SIGTERM or SIGINT stops it.',
    )
    .action(async (opts: WaypointFlags) => {
      const p = await setUpProxy(opts, 'waypoint');
      // Kubernetes mode: the status of the routes of the services this waypoint serves (route-status.ts).
      const kubeConfig = p.kubeConfig;
      const statusWriter = kubeConfig === undefined ? undefined : new (await import('../discovery/route-status.js')).RouteStatusWriter({ kubeConfig, waypoint: `${p.namespace}/${p.name}`, podName: process.env['POD_NAME'] ?? process.env['HOSTNAME'], logger: p.logger });
      if (statusWriter !== undefined) p.source.on('update', (model) => statusWriter.update(model));
      const { Waypoint } = await import('../waypoint/waypoint.js');
      const waypoint = new Waypoint({
        name: p.name,
        namespace: p.namespace,
        ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
        trustDomain: opts.trustDomain,
        clusterName: opts.cluster,
        source: p.source,
        caClient: p.caClient,
        identityOptions: { trustBundle: p.trustBundle },
        logger: p.logger,
        hboneAddress: opts.hbone,
        metricsAddress: opts.metrics,
        readinessAddress: opts.readiness,
        adminAddress: opts.admin,
      });
      exitOnStopSignals(p.logger, async () => {
        statusWriter?.stop();
        await waypoint.stop();
      });
      await waypoint.start();
      statusWriter?.update(p.source.current());
    });
}
