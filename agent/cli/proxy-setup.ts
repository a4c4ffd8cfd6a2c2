/**
 * What `weft waypoint` and `weft gateway` share: the flags of a meshed L7 proxy (which Gateway,
 * its service account, one discovery source, the CA, the trust domain, the metrics, readiness
 * and admin addresses, the cluster name) and their setup (logger, discovery source, trust
 * bundle, CA client). Each command adds its own flags and starts its own proxy.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { CA_PORT, DEFAULT_ADMIN_ADDRESS, DEFAULT_METRICS_ADDRESS, DEFAULT_READINESS_ADDRESS, DEFAULT_TRUST_DOMAIN } from '../config.js';
import { WeftError } from '../errors.js';
import { HttpCaClient } from '../identity/ca-client.js';
import { parseTrustDomain } from '../identity/spiffe.js';
import { TrustBundleFile } from '../identity/trust-bundle.js';
import { LocalSource } from '../discovery/local.js';
import type { DiscoverySource } from '../discovery/types.js';
import { createLogger, type Logger } from '../log.js';
import { parseHostPort } from '../util/host-port.js';

export interface ProxyFlags {
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
  metrics: string;
  readiness: string;
  admin: string;
  cluster: string;
}

/** A host:port flag ('' allowed: disabled). */
export function hostPortFlag(): (v: string) => string {
  return (v) => {
    if (v !== '') parseHostPort(v);
    return v;
  };
}

export interface ProxyHelp {
  /** `waypoint Gateway` / `Gateway (class weft)` */
  readonly gateway: string;
  /** What reporter its metrics have, for the --metrics help. */
  readonly reporter: string;
  /** Its own help of --ca-token-file and --admin. */
  readonly caToken: string;
  readonly admin: string;
}

/** Adds the shared flags to `cmd`, in the order `--help` shows them. */
export function addProxyOptions(cmd: Command, help: ProxyHelp): Command {
  return cmd
    .option('--name <name>', `the ${help.gateway} this process serves (required)`)
    .option('--namespace <ns>', 'namespace of that Gateway (required)')
    .option('--service-account <sa>', "the pod's service account: its identity is spiffe://<trust-domain>/ns/<ns>/sa/<sa> (default: the Gateway's name)")
    .option('--manifests <dir>', 'discovery from a directory of Kubernetes-style YAML, watched for changes (the lab)')
    .option('--kubeconfig <file>', 'discovery from the Kubernetes API server of this kubeconfig (list + watch)')
    .option('--in-cluster', "discovery from the Kubernetes API server, with the pod's service account")
    .option('--ca <url>', `the CA that signs the proxy's certificate (https://host:${CA_PORT})`)
    .option('--ca-token-file <file>', help.caToken)
    .option('--ca-root <file>', "PEM roots of the CA's serving certificate; also trusted for peers (the weft-ca-root ConfigMap, followed while running)")
    .option('--trust-domain <domain>', "SPIFFE trust domain of the mesh (the agents' and the CA's)", parseTrustDomain, DEFAULT_TRUST_DOMAIN);
}

/** The shared address flags (after a command's own listener flags). */
export function addProxyAddressOptions(cmd: Command, help: ProxyHelp): Command {
  return cmd
    .option('--metrics <host:port>', `Prometheus /metrics (istio_requests_total etc. with reporter="${help.reporter}"); '' disables`, hostPortFlag(), DEFAULT_METRICS_ADDRESS)
    .option('--readiness <host:port>', "readiness probe /healthz/ready; '' disables", hostPortFlag(), DEFAULT_READINESS_ADDRESS)
    .option('--admin <host:port>', help.admin, hostPortFlag(), DEFAULT_ADMIN_ADDRESS)
    .option('--cluster <name>', 'the cluster name in the metrics (source_cluster, destination_cluster)', 'Kubernetes');
}

export interface ProxySetup {
  readonly name: string;
  readonly namespace: string;
  readonly logger: Logger;
  /** The discovery source's logger. */
  readonly dlog: Logger;
  readonly source: DiscoverySource;
  /** Kubernetes mode only. */
  readonly kubeConfig: KubeConfig | undefined;
  readonly trustBundle: TrustBundleFile;
  readonly caClient: HttpCaClient;
}

/** Checks the shared flags and builds what both proxies start from; `kind` names the proxy in logs and errors. */
export async function setUpProxy(opts: ProxyFlags, kind: 'waypoint' | 'gateway'): Promise<ProxySetup> {
  if (!opts.name || !opts.namespace) throw new WeftError('WEFT_ERR_CONFIG', `--name and --namespace (the ${kind === 'waypoint' ? 'waypoint ' : ''}Gateway) are required`);
  const sources = [opts.manifests, opts.kubeconfig, opts.inCluster].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new WeftError('WEFT_ERR_CONFIG', 'give exactly one discovery source: --manifests DIR, --kubeconfig FILE or --in-cluster');
  if (!opts.ca || !opts.caTokenFile || !opts.caRoot) throw new WeftError('WEFT_ERR_CONFIG', `--ca, --ca-token-file and --ca-root are required: a ${kind} never runs without mutual TLS`);
  const logger = createLogger({ component: kind, [kind]: `${opts.namespace}/${opts.name}` });
  const dlog = logger.child({ component: 'discovery' });
  let source: DiscoverySource;
  let kubeConfig: KubeConfig | undefined;
  if (opts.manifests) source = new LocalSource({ dir: opts.manifests, trustDomain: opts.trustDomain, logger: dlog });
  else {
    // Without a node: every pod of the cluster, as facts (the endpoints the proxy may dial).
    const { KubernetesSource, loadKubeConfig } = await import('../discovery/kubernetes.js');
    kubeConfig = loadKubeConfig(opts.kubeconfig);
    source = new KubernetesSource({ kubeConfig, trustDomain: opts.trustDomain, logger: dlog, referenceGrants: true });
  }
  const tokenFile = opts.caTokenFile;
  const trustBundle = new TrustBundleFile({ path: opts.caRoot, logger }).start();
  const caClient = new HttpCaClient({ url: opts.ca, token: () => readFileSync(tokenFile, 'utf8').trim(), caCertificates: () => trustBundle.current() });
  return { name: opts.name, namespace: opts.namespace, logger, dlog, source, kubeConfig, trustBundle, caClient };
}
