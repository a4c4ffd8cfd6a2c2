/**
 * `weft waypoint`: runs the L7 proxy for one waypoint Gateway (agent/waypoint/). The pod runs
 * it with its Gateway's name and namespace, a discovery source like the agent's, and the CA
 * flags; `weft waypoint generate` (waypoint-generate.ts) prints what deploys it.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { CA_PORT, DEFAULT_ADMIN_ADDRESS, DEFAULT_METRICS_ADDRESS, DEFAULT_READINESS_ADDRESS, DEFAULT_TRUST_DOMAIN, DEFAULT_WAYPOINT_HBONE_ADDRESS, HBONE_PORT } from '../config.js';
import { WeftError } from '../errors.js';
import { HttpCaClient } from '../identity/ca-client.js';
import { parseTrustDomain } from '../identity/spiffe.js';
import { TrustBundleFile } from '../identity/trust-bundle.js';
import { LocalSource } from '../discovery/local.js';
import type { DiscoverySource } from '../discovery/types.js';
import { createLogger } from '../log.js';
import { exitOnStopSignals } from './stop-signals.js';
import { parseHostPort } from '../util/host-port.js';

interface WaypointFlags {
  name?: string;
  namespace?: string;
  serviceAccount?: string;
  manifests?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  ca?: string;
  caTokenFile?: string;
  caRoot?: string;
  trustDomain: string;
  hbone: string;
  metrics: string;
  readiness: string;
  admin: string;
  cluster: string;
}

function hostPort(): (v: string) => string {
  return (v) => {
    if (v !== '') parseHostPort(v);
    return v;
  };
}

/** Registers `weft waypoint` and returns it (`generate` is added to it as a subcommand). */
export function registerWaypointCommand(program: Command): Command {
  // Options only before a subcommand, so that `waypoint generate NAME --namespace NS` is
  // generate's --namespace, not the waypoint's (commander needs it on every level above).
  program.enablePositionalOptions();
  return program
    .command('waypoint')
    .enablePositionalOptions()
    .description(
      'run a waypoint: the L7 proxy of the services bound to one waypoint Gateway (class weft-waypoint) by the label ' +
        'weft.dev/use-waypoint. It serves HBONE (mutual TLS with its own service account\'s SPIFFE ID) on 15008; source agents ' +
        'send it those services\' connections (:authority = service VIP:port). HTTP/1.1 and HTTP/2 (h2c, gRPC) are routed per ' +
        'request by the HTTPRoutes and GRPCRoutes of the service, authorized by L7 AuthorizationPolicies, load-balanced per ' +
        'request (least outstanding requests, power of two choices) over pooled HBONE connections to the pods; anything else ' +
        'is relayed as L4. Ready (15021) once it has its certificate and a discovery model.',
    )
    .option('--name <name>', 'the waypoint Gateway this process serves (required)')
    .option('--namespace <ns>', 'namespace of that Gateway (required)')
    .option('--service-account <sa>', "the pod's service account: its identity is spiffe://<trust-domain>/ns/<ns>/sa/<sa> (default: the Gateway's name, as `weft waypoint generate` makes it)")
    .option('--manifests <dir>', 'discovery from a directory of Kubernetes-style YAML, watched for changes (the lab)')
    .option('--kubeconfig <file>', 'discovery from the Kubernetes API server of this kubeconfig (list + watch)')
    .option('--in-cluster', "discovery from the Kubernetes API server, with the pod's service account")
    .option('--ca <url>', `the CA that signs the waypoint's certificate (https://host:${CA_PORT})`)
    .option('--ca-token-file <file>', 'bearer token for the CA, re-read on every request (the lab: the token of the node the pod runs on)')
    .option('--ca-root <file>', "PEM roots of the CA's serving certificate; also trusted for peers (the weft-ca-root ConfigMap, followed while running)")
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh (the agents\' and the CA\'s)', parseTrustDomain, DEFAULT_TRUST_DOMAIN)
    .option('--hbone <host:port>', 'HBONE listener (mutual TLS)', hostPort(), DEFAULT_WAYPOINT_HBONE_ADDRESS)
    .option('--metrics <host:port>', "Prometheus /metrics (istio_requests_total etc. with reporter=\"waypoint\"); '' disables", hostPort(), DEFAULT_METRICS_ADDRESS)
    .option('--readiness <host:port>', "readiness probe /healthz/ready; '' disables", hostPort(), DEFAULT_READINESS_ADDRESS)
    .option('--admin <host:port>', "admin API (/config_dump with the bound services and route status, /healthz/ready); '' disables", hostPort(), DEFAULT_ADMIN_ADDRESS)
    .option('--cluster <name>', 'the cluster name in the metrics (source_cluster, destination_cluster)', 'Kubernetes')
    .addHelpText(
      'after',
      `\nThe waypoint's pod is not captured by the node agent (label weft.dev/mesh: disabled): it does its own mutual TLS.\n` +
        `Upstream it dials each destination pod's ${HBONE_PORT} expecting the pod's identity, with forwarded: for="<client>"\n` +
        'on the CONNECT; pods outside the mesh get plain TCP. Every request is one JSON access-log line (component "access").\n' +
        'Response flags as Envoy\'s: UH no ready endpoint (503), UF upstream connect failed (503), UT route timeout (504),\n' +
        'DC client went away, NR no route / no valid backend. SIGTERM or SIGINT stops it.',
    )
    .action(async (opts: WaypointFlags) => {
      if (!opts.name || !opts.namespace) throw new WeftError('WEFT_ERR_CONFIG', '--name and --namespace (the waypoint Gateway) are required');
      const sources = [opts.manifests, opts.kubeconfig, opts.inCluster].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new WeftError('WEFT_ERR_CONFIG', 'give exactly one discovery source: --manifests DIR, --kubeconfig FILE or --in-cluster');
      if (!opts.ca || !opts.caTokenFile || !opts.caRoot) throw new WeftError('WEFT_ERR_CONFIG', '--ca, --ca-token-file and --ca-root are required: a waypoint never runs without mutual TLS');
      const logger = createLogger({ component: 'waypoint', waypoint: `${opts.namespace}/${opts.name}` });
      const dlog = logger.child({ component: 'discovery' });
      // Without a node: every pod of the cluster, as facts (the endpoints this waypoint may dial).
      const kubeConfig = opts.manifests ? undefined : (await import('../discovery/kubernetes.js')).loadKubeConfig(opts.kubeconfig);
      const source: DiscoverySource = kubeConfig === undefined
        ? new LocalSource({ dir: opts.manifests!, trustDomain: opts.trustDomain, logger: dlog })
        : await import('../discovery/kubernetes.js').then(({ KubernetesSource }) => new KubernetesSource({ kubeConfig, trustDomain: opts.trustDomain, logger: dlog, referenceGrants: true }));
      // Kubernetes mode: the status of the routes of the services this waypoint serves (route-status.ts).
      const statusWriter = kubeConfig === undefined ? undefined : new (await import('../discovery/route-status.js')).RouteStatusWriter({ kubeConfig, waypoint: `${opts.namespace}/${opts.name}`, podName: process.env['POD_NAME'] ?? process.env['HOSTNAME'], logger });
      if (statusWriter !== undefined) source.on('update', (model) => statusWriter.update(model));
      const tokenFile = opts.caTokenFile;
      const trustBundle = new TrustBundleFile({ path: opts.caRoot, logger }).start();
      const caClient = new HttpCaClient({ url: opts.ca, token: () => readFileSync(tokenFile, 'utf8').trim(), caCertificates: () => trustBundle.current() });
      const { Waypoint } = await import('../waypoint/waypoint.js');
      const waypoint = new Waypoint({
        name: opts.name,
        namespace: opts.namespace,
        ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
        trustDomain: opts.trustDomain,
        clusterName: opts.cluster,
        source,
        caClient,
        identityOptions: { trustBundle },
        logger,
        hboneAddress: opts.hbone,
        metricsAddress: opts.metrics,
        readinessAddress: opts.readiness,
        adminAddress: opts.admin,
      });
      exitOnStopSignals(logger, async () => {
        statusWriter?.stop();
        await waypoint.stop();
      });
      await waypoint.start();
      statusWriter?.update(source.current());
    });
}
