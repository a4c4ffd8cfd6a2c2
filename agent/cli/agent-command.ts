import type { Command } from 'commander';
import { createLogger } from '../log.js';
import { readFileSync } from 'node:fs';
import { Agent } from '../agent.js';
import { HttpCaClient } from '../identity/ca-client.js';
import { splitPemCertificates } from '../identity/der.js';
import { WeftError } from '../errors.js';

/** Registers `weft agent`. */
export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      'run the node agent: captures the traffic of the opted-in pods on this node inside their ' +
        'network namespaces and proxies it. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and sees the ' +
        "node's pods' namespaces (hostPID, /var/run/netns).",
    )
    .requiredOption('--node <name>', 'the node this agent serves (pods with spec.nodeName equal to it)')
    .option('--manifests <dir>', 'local discovery source: a directory of Kubernetes-style YAML, watched for changes')
    .option('--kubeconfig <file>', 'discovery from the Kubernetes API server of this kubeconfig (list + watch)')
    .option('--in-cluster', 'discovery from the Kubernetes API server, with the pod\'s service account (in a DaemonSet)')
    .option('--admin <host:port>', 'admin API (config dump, connections, readiness)', '127.0.0.1:15000')
    .option('--metrics <host:port>', 'Prometheus /metrics (Istio TCP metrics + weft_*)', '0.0.0.0:15020')
    .option('--readiness <host:port>', 'readiness probe /healthz/ready', '0.0.0.0:15021')
    .option('--ca <url>', 'the CA that signs workload certificates (https://host:15012)')
    .option('--ca-token-file <file>', "this node's bearer token for the CA (re-read on every request, so it can be rotated)")
    .option('--ca-root <file>', "PEM roots the CA's own serving certificate chains to")
    .option('--pod-netns-prefix <prefix>', 'find pods only in /var/run/netns entries named with this prefix, without scanning processes (runtimes that name pod namespaces; the lab uses weft-<lab>-pod-)')
    .option('--no-mtls', 'run without a CA: meshed traffic is captured but NOT encrypted or authenticated (capture debugging only)')
    .addHelpText(
      'after',
      '\nPorts inside each captured pod: 15001 outbound capture, 15006 inbound plaintext, 15008 HBONE.\n' +
        'Stop with SIGTERM: every rule and listener the agent made is removed.',
    )
    .action(async (opts: { node: string; manifests?: string; kubeconfig?: string; inCluster?: boolean; admin: string; metrics: string; readiness: string; ca?: string; caTokenFile?: string; caRoot?: string; mtls: boolean; podNetnsPrefix?: string }) => {
      const logger = createLogger({ component: 'agent', node: opts.node });
      const sources = [opts.manifests, opts.kubeconfig, opts.inCluster].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new WeftError('WEFT_ERR_CONFIG', 'give exactly one discovery source: --manifests DIR, --kubeconfig FILE or --in-cluster');
      // Loaded only when used: the Kubernetes client is ~20 MiB of code in every agent's heap.
      const source = opts.manifests ? undefined : await import('../discovery/kubernetes.js').then(({ KubernetesSource, loadKubeConfig }) => new KubernetesSource({ kubeConfig: loadKubeConfig(opts.kubeconfig), nodeName: opts.node, logger: logger.child({ component: 'discovery' }) }));
      let caClient: HttpCaClient | undefined;
      if (opts.mtls) {
        if (!opts.ca || !opts.caTokenFile || !opts.caRoot) {
          throw new WeftError('WEFT_ERR_CONFIG', '--ca, --ca-token-file and --ca-root are required (or --no-mtls to run without encryption, for debugging)');
        }
        const tokenFile = opts.caTokenFile;
        let roots: string[];
        try {
          roots = splitPemCertificates(readFileSync(opts.caRoot, 'utf8'));
        } catch (err) {
          throw new WeftError('WEFT_ERR_CONFIG', `--ca-root ${opts.caRoot}: ${(err as Error).message}`, { cause: err });
        }
        caClient = new HttpCaClient({ url: opts.ca, token: () => readFileSync(tokenFile, 'utf8').trim(), caCertificates: roots });
      } else {
        logger.warn('running with --no-mtls: meshed traffic is NOT encrypted or authenticated');
      }
      const agent = new Agent({
        ...(caClient ? { caClient } : {}),
        nodeName: opts.node,
        ...(source ? { source } : { manifestsDir: opts.manifests! }),
        ...(opts.podNetnsPrefix !== undefined ? { podNetnsPrefix: opts.podNetnsPrefix } : {}),
        logger, adminAddress: opts.admin, metricsAddress: opts.metrics, readinessAddress: opts.readiness });
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping');
        agent.stop().then(
          () => {
            logger.flush();
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, 'stop failed');
            logger.flush();
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      await agent.start();
    });
}
