import { defaultHboneImpl, parseHboneImpl, setDefaultHboneImpl, type HboneImpl } from '../tunnel/impl.js';
import type { Command } from 'commander';
import { createLogger } from '../log.js';
import { exitOnStopSignals } from './stop-signals.js';
import { readFileSync } from 'node:fs';
import { Agent } from '../agent.js';
import { HttpCaClient } from '../identity/ca-client.js';
import { TrustBundleFile } from '../identity/trust-bundle.js';
import { parseTrustDomain } from '../identity/spiffe.js';
import { WeftError } from '../errors.js';
import { isIPv4 } from 'node:net';

import { CA_PORT, DEFAULT_DRAIN_SECONDS, DEFAULT_ADMIN_ADDRESS, DEFAULT_METRICS_ADDRESS, DEFAULT_READINESS_ADDRESS, DEFAULT_TRUST_DOMAIN, HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_PORT } from '../config.js';
export const DEFAULT_RUN_DIR = '/var/run/weft';

/** Registers `weft uninstall`: removes Weft's rules from every pod namespace on this node. */
export function registerUninstallCommand(program: Command): void {
  program
    .command('uninstall')
    .description(
      "remove Weft's capture rules from every network namespace on this node (run after the agents are gone, e.g. when removing Weft). " +
        'Agents never remove rules when they stop or crash: pods stay refused, never plaintext, until an agent serves them again.',
    )
    .option('--pod-netns-prefix <prefix>', 'only /var/run/netns entries named with this prefix (as the agent)')
    .action(async (opts: { podNetnsPrefix?: string }) => {
      const logger = createLogger({ component: 'uninstall' });
      const { uninstallCapture } = await import('../capture/uninstall.js');
      const { removed, failed } = await uninstallCapture({ ...(opts.podNetnsPrefix !== undefined ? { podNetnsPrefix: opts.podNetnsPrefix } : {}), logger });
      process.stdout.write(`rules removed from ${removed.length} namespace(s)${failed.length > 0 ? `; failed in ${failed.join(', ')}` : ''}\n`);
      if (failed.length > 0) process.exitCode = 1;
    });
}

/** Registers `weft cni-install`: what the DaemonSet's init container runs. */
export function registerCniInstallCommand(program: Command): void {
  program
    .command('cni-install')
    .description(
      "install Weft's chained CNI plugin on this node (the DaemonSet's init container runs it): copies weft-cni into the CNI bin dir " +
        "and appends it to the node's active *.conflist, so every new pod is captured before its app runs. Idempotent; --remove undoes it.",
    )
    .option('--bin-dir <dir>', "the node's CNI plugin directory", '/opt/cni/bin')
    .option('--conf-dir <dir>', "the node's CNI configuration directory", '/etc/cni/net.d')
    .option('--run-dir <dir>', "the agent's --run-dir, as the node sees it (where the plugin and the agent meet)", DEFAULT_RUN_DIR)
    .option('--remove', 'remove the plugin and its conflist entry instead')
    .action(async (opts: { binDir: string; confDir: string; runDir: string; remove?: boolean }) => {
      const { installCni, removeCni } = await import('../capture/cni-install.js');
      if (opts.remove === true) {
        removeCni(opts);
        process.stdout.write(`weft-cni removed from ${opts.binDir} and ${opts.confDir}\n`);
        return;
      }
      const r = installCni(opts);
      process.stdout.write(`weft-cni installed: ${r.plugin}; ${r.added ? 'added to' : 'already in'} ${r.conflist}\n`);
    });
}

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
    .option('--admin <host:port>', 'admin API (config dump, connections, readiness)', DEFAULT_ADMIN_ADDRESS)
    .option('--metrics <host:port>', 'Prometheus /metrics (Istio TCP metrics + weft_*)', DEFAULT_METRICS_ADDRESS)
    .option('--readiness <host:port>', 'readiness probe /healthz/ready', DEFAULT_READINESS_ADDRESS)
    .option('--ca <url>', `the CA that signs workload certificates (https://host:${CA_PORT})`)
    .option('--ca-token-file <file>', "this node's bearer token for the CA (re-read on every request, so it can be rotated)")
    .option('--ca-root <file>', "PEM roots the CA's own serving certificate chains to")
    .option('--pod-netns-prefix <prefix>', 'find pods only in /var/run/netns entries named with this prefix, without scanning processes (runtimes that name pod namespaces; the lab uses weft-<lab>-pod-)')
    .option('--node-ip <ip>', "the node's own address (pods' status.hostIP): connections from it reach pods without capture, so kubelet probes pass under STRICT (any process on the node can then reach pods unauthenticated; see docs/architecture.md)")
    .option('--run-dir <dir>', 'node directory shared with the CNI plugin (its requests) and with a second agent during a handover', DEFAULT_RUN_DIR)
    .option('--drain-timeout <seconds>', 'on SIGTERM: stop accepting, GOAWAY, and relay open connections for at most this long, then exit (rules stay in the pods)', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new WeftError('WEFT_ERR_CONFIG', `--drain-timeout must be a number of seconds >= 0, got ${v}`);
      return n;
    }, DEFAULT_DRAIN_SECONDS)
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh (the CA\'s --trust-domain): workload identities, accepted peers, policy namespaces', parseTrustDomain, DEFAULT_TRUST_DOMAIN)
    .option('--no-mtls', 'run without a CA: meshed traffic is captured but NOT encrypted or authenticated (capture debugging only)')
    .option('--hbone-impl <impl>', "HBONE's HTTP/2: node (node:http2) or lean (Weft's own framer); default WEFT_HBONE_IMPL, else lean", parseHboneImpl, defaultHboneImpl())
    .addHelpText(
      'after',
      `\nPorts inside each captured pod: ${OUTBOUND_PORT} outbound capture, ${INBOUND_PLAINTEXT_PORT} inbound plaintext, ${HBONE_PORT} HBONE.\n` +
        'SIGTERM drains (see --drain-timeout) and exits; SIGINT exits at once. Either way the rules stay in the pods, whose\n' +
        'connections are refused until an agent serves them again (fail closed); `weft uninstall` removes them.',
    )
    .action(async (opts: { node: string; manifests?: string; kubeconfig?: string; inCluster?: boolean; admin: string; metrics: string; readiness: string; ca?: string; caTokenFile?: string; caRoot?: string; mtls: boolean; podNetnsPrefix?: string; nodeIp?: string; runDir: string; drainTimeout: number; trustDomain: string; hboneImpl: HboneImpl }) => {
      setDefaultHboneImpl(opts.hboneImpl);
      if (opts.nodeIp !== undefined && !isIPv4(opts.nodeIp)) throw new WeftError('WEFT_ERR_CONFIG', `--node-ip must be an IPv4 address, got ${opts.nodeIp}`);
      const logger = createLogger({ component: 'agent', node: opts.node });
      logger.info({ hboneImpl: opts.hboneImpl }, 'HBONE implementation');
      const sources = [opts.manifests, opts.kubeconfig, opts.inCluster].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new WeftError('WEFT_ERR_CONFIG', 'give exactly one discovery source: --manifests DIR, --kubeconfig FILE or --in-cluster');
      // Loaded only when used: the Kubernetes client is ~20 MiB of code in every agent's heap.
      const source = opts.manifests ? undefined : await import('../discovery/kubernetes.js').then(({ KubernetesSource, loadKubeConfig }) => new KubernetesSource({ kubeConfig: loadKubeConfig(opts.kubeconfig), nodeName: opts.node, trustDomain: opts.trustDomain, logger: logger.child({ component: 'discovery' }) }));
      let caClient: HttpCaClient | undefined;
      let trustBundle: TrustBundleFile | undefined;
      if (opts.mtls) {
        if (!opts.ca || !opts.caTokenFile || !opts.caRoot) {
          throw new WeftError('WEFT_ERR_CONFIG', '--ca, --ca-token-file and --ca-root are required (or --no-mtls to run without encryption, for debugging)');
        }
        const tokenFile = opts.caTokenFile;
        // The projected weft-ca-root ConfigMap: followed while the agent runs (root rotation).
        trustBundle = new TrustBundleFile({ path: opts.caRoot, logger }).start();
        const bundle = trustBundle;
        caClient = new HttpCaClient({ url: opts.ca, token: () => readFileSync(tokenFile, 'utf8').trim(), caCertificates: () => bundle.current() });
      } else {
        logger.warn('running with --no-mtls: meshed traffic is NOT encrypted or authenticated');
      }
      const agent = new Agent({
        ...(caClient ? { caClient } : {}),
        ...(trustBundle ? { identityOptions: { trustBundle } } : {}),
        nodeName: opts.node,
        ...(source ? { source } : { manifestsDir: opts.manifests! }),
        ...(opts.podNetnsPrefix !== undefined ? { podNetnsPrefix: opts.podNetnsPrefix } : {}),
        ...(opts.nodeIp !== undefined ? { nodeIp: opts.nodeIp } : {}),
        runDir: opts.runDir,
        trustDomain: opts.trustDomain,
        logger, adminAddress: opts.admin, metricsAddress: opts.metrics, readinessAddress: opts.readiness });
      const drainMs = (signal: string): number => (signal === 'SIGTERM' ? opts.drainTimeout * 1000 : 0);
      exitOnStopSignals(logger, (signal) => agent.stop(drainMs(signal)), (signal) => ({ drainMs: drainMs(signal) }));
      await agent.start();
    });
}
