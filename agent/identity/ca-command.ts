import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { LocalSource } from '../discovery/local.js';
import { WeftError } from '../errors.js';
import { parseHostPort } from '../util/host-port.js';
import { createLogger } from '../log.js';
import { CertificateAuthority } from './ca.js';
import { PlacementAuthorizer, TokenFileAuthenticator } from './ca-auth.js';
import { CaServer } from './ca-server.js';
import { DEFAULT_TRUST_DOMAIN } from './spiffe.js';
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
  dir: string;
  lifetime: string;
  tokens?: string;
  manifests?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  agentServiceAccount: string;
  trustDomain: string;
}

/** Registers `weft ca`. */
export function registerCaCommand(program: Command): void {
  program
    .command('ca')
    .description(
      'run the certificate authority that signs workload identities over HTTPS ' +
        '(POST /v1/sign, GET /v1/bundle). Agents authenticate with a bearer token; an identity is ' +
        'issued only if a pod with its namespace and service account is scheduled on the agent\'s node.',
    )
    .option('--listen <host:port>', 'address to serve on', '127.0.0.1:15012')
    .requiredOption('--dir <dir>', 'CA directory: ca-key.pem, ca-cert.pem, [cert-chain.pem], root-cert.pem (an intermediate from your PKI), or empty to generate a root')
    .option('--lifetime <duration>', 'workload certificate lifetime', '24h')
    .option('--tokens <file>', 'JSON file {token: nodeName} authenticating agents (re-read when it changes)')
    .option('--manifests <dir>', 'directory of pod manifests saying which service accounts run on which node')
    .option('--kubeconfig <file>', 'Kubernetes mode: agents authenticate with projected service-account tokens (TokenReview), pods come from this API server')
    .option('--in-cluster', 'Kubernetes mode with the CA pod\'s own service account')
    .option('--agent-service-account <user>', 'Kubernetes mode: the only account agents may use', 'system:serviceaccount:weft-system:weft-agent')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', DEFAULT_TRUST_DOMAIN)
    .action(async (opts: CaCommandOptions) => {
      const kubernetes = opts.kubeconfig !== undefined || opts.inCluster === true;
      if (kubernetes === (opts.tokens !== undefined || opts.manifests !== undefined)) {
        throw new WeftError('WEFT_ERR_CONFIG', 'give either --tokens FILE and --manifests DIR (the lab), or --kubeconfig FILE / --in-cluster (Kubernetes)');
      }
      if (!kubernetes && (opts.tokens === undefined || opts.manifests === undefined)) {
        throw new WeftError('WEFT_ERR_CONFIG', '--tokens and --manifests go together');
      }
      const { host, port } = parseHostPort(opts.listen);
      const logger = createLogger({ component: 'weft-ca' });
      // The Kubernetes client is loaded only in Kubernetes mode (it is large).
      const k8s = kubernetes ? await import('../discovery/kubernetes.js') : undefined;
      const kubeConfig = k8s?.loadKubeConfig(opts.kubeconfig);
      const source: DiscoverySource = k8s && kubeConfig
        ? new k8s.KubernetesSource({ kubeConfig, logger, trustDomain: opts.trustDomain, kinds: 'pods' })
        : new LocalSource({ dir: opts.manifests!, logger, trustDomain: opts.trustDomain });
      await source.start();
      const authorizer = new PlacementAuthorizer((node, namespace, serviceAccount) =>
        source.current().workloadsOnNode(node).some((w) => w.namespace === namespace && w.serviceAccount === serviceAccount),
      );
      const authenticator = kubeConfig
        ? new (await import('./token-review.js')).TokenReviewAuthenticator({ kubeConfig, agentServiceAccount: opts.agentServiceAccount })
        : new TokenFileAuthenticator(opts.tokens!);
      const ca = await CertificateAuthority.loadOrCreate(opts.dir, {
        authorizer,
        trustDomain: opts.trustDomain,
        lifetimeMs: parseDuration(opts.lifetime),
        logger,
        registry: new Registry(),
      });
      const server = new CaServer({ ca, authenticator, logger });
      await server.listen(port, host);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      await source.stop();
      logger.flush();
    });
}
