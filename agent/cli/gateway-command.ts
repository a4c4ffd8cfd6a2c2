/**
 * `weft gateway`: runs the ingress gateway for one Gateway of class `weft` (agent/gateway/). Its
 * pod runs it with the Gateway's name and namespace, a discovery source like the agent's, the
 * CA flags (it is a meshed workload with its own identity), and where its Secrets are.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { CA_PORT, DEFAULT_ADMIN_ADDRESS, DEFAULT_METRICS_ADDRESS, DEFAULT_READINESS_ADDRESS, DEFAULT_TRUST_DOMAIN } from '../config.js';
import { WeftError } from '../errors.js';
import { HttpCaClient } from '../identity/ca-client.js';
import { parseTrustDomain } from '../identity/spiffe.js';
import { TrustBundleFile } from '../identity/trust-bundle.js';
import { LocalSource } from '../discovery/local.js';
import type { DiscoverySource } from '../discovery/types.js';
import { createLogger } from '../log.js';
import { exitOnStopSignals } from './stop-signals.js';
import { parseHostPort } from '../util/host-port.js';

interface GatewayFlags {
  name?: string;
  namespace?: string;
  serviceAccount?: string;
  manifests?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  secrets?: string;
  ca?: string;
  caTokenFile?: string;
  caRoot?: string;
  trustDomain: string;
  listenHost: string;
  metrics: string;
  readiness: string;
  admin: string;
  cluster: string;
  ingress?: boolean;
  address: string[];
  status: boolean;
}

function hostPort(): (v: string) => string {
  return (v) => {
    if (v !== '') parseHostPort(v);
    return v;
  };
}

export function registerGatewayCommand(program: Command): Command {
  return program
    .command('gateway')
    .description(
      'run the ingress gateway of one Gateway of class weft: its HTTP and HTTPS listeners (TLS terminated with the ' +
        'kubernetes.io/tls Secrets of tls.certificateRefs, chosen by SNI), the HTTPRoutes attached to it (parentRefs, ' +
        'sectionName, allowedRoutes, hostnames), routed by the waypoint\'s L7 engine to the meshed backends over HBONE with ' +
        "the gateway's own SPIFFE identity; L7 AuthorizationPolicies with targetRefs to the Gateway; request metrics with " +
        'reporter="source". A listener with a bad Secret is not served (its status says why); the others are.',
    )
    .option('--name <name>', 'the Gateway (class weft) this process serves (required)')
    .option('--namespace <ns>', 'namespace of that Gateway (required)')
    .option('--service-account <sa>', "the pod's service account (default: the Gateway's name)")
    .option('--manifests <dir>', 'discovery from a directory of Kubernetes-style YAML, watched for changes (the lab)')
    .option('--kubeconfig <file>', 'discovery from the Kubernetes API server of this kubeconfig (list + watch)')
    .option('--in-cluster', "discovery from the Kubernetes API server, with the pod's service account")
    .option('--secrets <dir>', 'directory of YAML with the kubernetes.io/tls Secrets the listeners name (default: --manifests; with --kubeconfig/--in-cluster: watched from the API server)')
    .option('--ca <url>', `the CA that signs the gateway's certificate (https://host:${CA_PORT})`)
    .option('--ca-token-file <file>', 'bearer token for the CA, re-read on every request')
    .option('--ca-root <file>', "PEM roots of the CA's serving certificate; also trusted for peers")
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh', parseTrustDomain, DEFAULT_TRUST_DOMAIN)
    .option('--listen-host <ip>', "address the listeners' ports are opened on", '0.0.0.0')
    .option('--metrics <host:port>', "Prometheus /metrics (istio_requests_total etc. with reporter=\"source\"); '' disables", hostPort(), DEFAULT_METRICS_ADDRESS)
    .option('--readiness <host:port>', "readiness probe /healthz/ready; '' disables", hostPort(), DEFAULT_READINESS_ADDRESS)
    .option('--admin <host:port>', "admin API (/config_dump with listener and route status); '' disables", hostPort(), DEFAULT_ADMIN_ADDRESS)
    .option('--cluster <name>', 'the cluster name in the metrics', 'Kubernetes')
    .option('--ingress', 'also the cluster\'s ingress controller: Ingresses of class weft (IngressClass controller weft.dev/gateway-controller) and Istio Gateways with selector istio: ingressgateway')
    .option('--address <ip>', 'the external address written to the Gateway and Ingress status (repeatable; default: the clusterIP of the Service of the Gateway\'s name)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--no-status', 'Kubernetes mode: do not write the Gateway, HTTPRoute and Ingress status')
    .action(async (opts: GatewayFlags) => {
      if (!opts.name || !opts.namespace) throw new WeftError('WEFT_ERR_CONFIG', '--name and --namespace (the Gateway) are required');
      const sources = [opts.manifests, opts.kubeconfig, opts.inCluster].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new WeftError('WEFT_ERR_CONFIG', 'give exactly one discovery source: --manifests DIR, --kubeconfig FILE or --in-cluster');
      if (!opts.ca || !opts.caTokenFile || !opts.caRoot) throw new WeftError('WEFT_ERR_CONFIG', '--ca, --ca-token-file and --ca-root are required: the gateway never reaches the mesh without mutual TLS');
      const secretsDir = opts.secrets ?? opts.manifests;
      const logger = createLogger({ component: 'gateway', gateway: `${opts.namespace}/${opts.name}` });
      const dlog = logger.child({ component: 'discovery' });
      let source: DiscoverySource;
      let kube: { objects: import('../gateway/kube.js').GatewayObjectWatch; writer: import('../gateway/kube.js').GatewayStatusWriter | undefined } | undefined;
      if (opts.manifests) source = new LocalSource({ dir: opts.manifests, trustDomain: opts.trustDomain, logger: dlog });
      else {
        const [{ KubernetesSource, loadKubeConfig }, { GatewayObjectWatch, GatewayStatusWriter, kubeRequest }] = await Promise.all([import('../discovery/kubernetes.js'), import('../gateway/kube.js')]);
        const kubeConfig = loadKubeConfig(opts.kubeconfig);
        source = new KubernetesSource({ kubeConfig, trustDomain: opts.trustDomain, logger: dlog, referenceGrants: true });
        // Secrets (kubernetes.io/tls), Ingresses and Istio Gateways: watched by the gateway itself.
        kube = { objects: new GatewayObjectWatch(kubeConfig, dlog), writer: opts.status ? new GatewayStatusWriter(kubeRequest(kubeConfig), logger.child({ component: 'status' })) : undefined };
      }
      const tokenFile = opts.caTokenFile;
      const trustBundle = new TrustBundleFile({ path: opts.caRoot, logger }).start();
      const caClient = new HttpCaClient({ url: opts.ca, token: () => readFileSync(tokenFile, 'utf8').trim(), caCertificates: () => trustBundle.current() });
      const [{ IngressGateway }, { SecretFiles }] = await Promise.all([import('../gateway/gateway.js'), import('../gateway/secret-files.js')]);
      const files = secretsDir === undefined ? undefined : new SecretFiles(secretsDir);
      if (kube !== undefined) await kube.objects.start();
      const secrets = files?.lookup ?? kube!.objects.secrets;
      const host = opts.listenHost;
      const gateway = new IngressGateway({
        name: opts.name,
        namespace: opts.namespace,
        ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
        trustDomain: opts.trustDomain,
        clusterName: opts.cluster,
        source,
        secrets,
        refreshSecrets: () => files?.refresh(),
        ...(opts.ingress === true ? { ingress: true } : {}),
        ...(opts.address.length > 0 ? { addresses: opts.address } : {}),
        ...(kube !== undefined ? { objects: kube.objects, ...(kube.writer !== undefined ? { statusWriter: kube.writer } : {}) } : {}),
        caClient,
        identityOptions: { trustBundle },
        logger,
        bindAddress: (port) => ({ host, port }),
        metricsAddress: opts.metrics,
        readinessAddress: opts.readiness,
        adminAddress: opts.admin,
      });
      exitOnStopSignals(logger, async () => {
        await gateway.stop();
        await kube?.objects.stop();
      });
      await gateway.start();
    });
}
