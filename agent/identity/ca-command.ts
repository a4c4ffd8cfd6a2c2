import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { LocalSource } from '../discovery/local.js';
import { WeftError } from '../errors.js';
import { parseHostPort } from '../util/host-port.js';
import { createLogger } from '../log.js';
import { CertificateAuthority } from './ca.js';
import { PlacementAuthorizer, TokenFileAuthenticator } from './ca-auth.js';
import { CaServer, DEFAULT_CA_NAMESPACE } from './ca-server.js';
import { DEFAULT_CA_KEYS_SECRET, DEFAULT_CA_ROOT_CONFIGMAP } from './ca-bootstrap.js';
import { readFileSync } from 'node:fs';
import type { IdentityAuthorizer } from './ca-types.js';
import { DEFAULT_CA_ADDRESS, DEFAULT_CLUSTER_DOMAIN, DEFAULT_TRUST_DOMAIN } from '../config.js';
import { parseTrustDomain } from './spiffe.js';
import type { DiscoverySource } from '../discovery/types.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** "24h", "90m", "1h30m", "45s", "7d" -> milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed += m[0].length;
  }
  if (text === '' || consumed !== text.length) {
    throw new WeftError('WEFT_ERR_CONFIG', `not a duration: ${JSON.stringify(text)} (e.g. 24h, 90m, 1h30m)`);
  }
  return total;
}

interface CaCommandOptions {
  listen: string;
  dir?: string;
  lifetime: string;
  tokens?: string;
  manifests?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  agentServiceAccount: string;
  trustDomain: string;
  namespace?: string;
  clusterDomain: string;
  dnsName: string[];
  keysSecret: string;
  rootConfigmap: string;
}

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The CA's namespace: --namespace, else the pod's (POD_NAMESPACE from the downward API, or the service account's), else weft-system. */
export function caNamespace(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, saFile = SERVICE_ACCOUNT_NAMESPACE_FILE): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  if (env['POD_NAMESPACE']) return env['POD_NAMESPACE'];
  try {
    const ns = readFileSync(saFile, 'utf8').trim();
    if (ns !== '') return ns;
  } catch {
    // not in a pod
  }
  return DEFAULT_CA_NAMESPACE;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Registers `weft ca`. */
export function registerCaCommand(program: Command): void {
  program
    .command('ca')
    .description(
      'run the certificate authority that signs workload identities over HTTPS ' +
        '(POST /v1/sign, GET /v1/bundle). Agents authenticate with a bearer token; an identity is ' +
        'issued only if a pod with its namespace and service account is scheduled on the agent\'s node.',
    )
    .option('--listen <host:port>', 'address to serve on', DEFAULT_CA_ADDRESS)
    .option('--dir <dir>', 'CA directory: ca-key.pem, ca-cert.pem, [cert-chain.pem], root-cert.pem (an intermediate from your PKI), or empty to generate a root. Required in local mode; in Kubernetes mode it replaces the Secret bootstrap and the bundle publication (you manage both)')
    .option('--lifetime <duration>', 'workload certificate lifetime', '24h')
    .option('--tokens <file>', 'JSON file {token: nodeName} authenticating agents (re-read when it changes)')
    .option('--manifests <dir>', 'directory of pod manifests saying which service accounts run on which node')
    .option('--kubeconfig <file>', 'Kubernetes mode: agents authenticate with projected service-account tokens (TokenReview), pods come from this API server')
    .option('--in-cluster', 'Kubernetes mode with the CA pod\'s own service account')
    .option('--agent-service-account <user>', 'Kubernetes mode: the only account agents may use', 'system:serviceaccount:weft-system:weft-agent')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', parseTrustDomain, DEFAULT_TRUST_DOMAIN)
    .option('--keys-secret <name>', 'Kubernetes mode: Secret in the CA\'s namespace with the signing key (Weft/Istio cacerts layout or cert-manager tls.crt/tls.key/ca.crt); created with a new self-signed root when absent', DEFAULT_CA_KEYS_SECRET)
    .option('--root-configmap <name>', 'Kubernetes mode: ConfigMap the trust bundle (root-cert.pem) is published to, for the agents', DEFAULT_CA_ROOT_CONFIGMAP)
    .option('--namespace <ns>', 'namespace of the CA\'s Service, Secret and ConfigMap (default: the pod\'s own, else weft-system)')
    .option('--cluster-domain <domain>', 'cluster DNS domain, for the serving certificate name weft-ca.<ns>.svc.<domain>', DEFAULT_CLUSTER_DOMAIN)
    .option('--dns-name <name>', 'another DNS name for the serving certificate (repeatable)', collect, [])
    .action(async (opts: CaCommandOptions) => {
      const kubernetes = opts.kubeconfig !== undefined || opts.inCluster === true;
      if (kubernetes === (opts.tokens !== undefined || opts.manifests !== undefined)) {
        throw new WeftError('WEFT_ERR_CONFIG', 'give either --tokens FILE and --manifests DIR (the lab), or --kubeconfig FILE / --in-cluster (Kubernetes)');
      }
      if (!kubernetes && (opts.tokens === undefined || opts.manifests === undefined || opts.dir === undefined)) {
        // --dir is optional only in Kubernetes mode, where the key comes from the Secret.
        throw new WeftError('WEFT_ERR_CONFIG', '--dir, --tokens and --manifests go together');
      }
      const namespace = caNamespace(opts.namespace);
      const { host, port } = parseHostPort(opts.listen);
      const logger = createLogger({ component: 'weft-ca' });
      // The Kubernetes client is loaded only in Kubernetes mode (it is large).
      const k8s = kubernetes ? await import('../discovery/kubernetes.js') : undefined;
      const kubeConfig = k8s?.loadKubeConfig(opts.kubeconfig);
      // Placement: on Kubernetes a Pods-only informer (the CA's RBAC is pods get/list/watch);
      // in the lab the manifest directory.
      let stopPlacement: () => Promise<void>;
      let authorizer: IdentityAuthorizer;
      if (kubeConfig) {
        const placement = new (await import('./pod-placement.js')).PodPlacement({ kubeConfig, logger });
        await placement.start();
        authorizer = placement;
        stopPlacement = () => placement.stop();
      } else {
        const source: DiscoverySource = new LocalSource({ dir: opts.manifests!, logger, trustDomain: opts.trustDomain });
        await source.start();
        authorizer = new PlacementAuthorizer((node, ns, serviceAccount) =>
          source.current().workloadsOnNode(node).some((w) => w.namespace === ns && w.serviceAccount === serviceAccount),
        );
        stopPlacement = () => source.stop();
      }
      const authenticator = kubeConfig
        ? new (await import('./token-review.js')).TokenReviewAuthenticator({ kubeConfig, agentServiceAccount: opts.agentServiceAccount })
        : new TokenFileAuthenticator(opts.tokens!);
      const caOptions = { authorizer, trustDomain: opts.trustDomain, lifetimeMs: parseDuration(opts.lifetime), logger, registry: new Registry() };
      let ca: CertificateAuthority;
      let publisher: { stop(): void } | undefined;
      if (kubeConfig && opts.dir === undefined) {
        // As istiod: the key from the Secret (created when absent, race-safe between replicas),
        // the roots published to the ConfigMap the agents mount, before serving.
        const { bootstrapCaKeys, TrustBundlePublisher } = await import('./ca-bootstrap.js');
        const api = new (await import('./ca-kube-api.js')).KubernetesCaApi(kubeConfig);
        const { material } = await bootstrapCaKeys({ api, namespace, secretName: opts.keysSecret, trustDomain: opts.trustDomain, logger });
        ca = new CertificateAuthority(material, caOptions);
        const p = new TrustBundlePublisher({ api, namespace, secretName: opts.keysSecret, configMapName: opts.rootConfigmap, logger, signingCertPem: material.certPem });
        await p.start();
        // The same bundle in every namespace, for waypoints and gateways (istio-ca-root-cert's way).
        const { NamespaceBundlePublisher } = await import('./ca-root-namespaces.js');
        const namespaces = new NamespaceBundlePublisher({ api, kubeConfig, bundle: () => p.bundle, configMapName: opts.rootConfigmap, skip: [namespace], logger });
        namespaces.start();
        publisher = { stop: () => { p.stop(); void namespaces.stop(); } };
      } else {
        ca = await CertificateAuthority.loadOrCreate(opts.dir!, caOptions);
      }
      const server = new CaServer({ ca, authenticator, logger, namespace, clusterDomain: opts.clusterDomain, dnsNames: opts.dnsName });
      await server.listen(port, host);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      publisher?.stop();
      await server.close();
      await stopPlacement();
      logger.flush();
    });
}
