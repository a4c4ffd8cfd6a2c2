/**
 * `weft gateway`: runs the ingress gateway of one Gateway of class `weft` (agent/gateway/), and
 * with --ingress also the cluster's Ingresses of class weft and Istio Gateways with selector
 * `istio: ingressgateway`. Its pod runs it with the Gateway's name and namespace, a discovery
 * source and the CA flags (proxy-setup.ts, shared with `weft waypoint`: it is a meshed workload
 * with its own identity), and where its Secrets are: files (the lab), or the API server.
 */
import type { Command } from 'commander';
import { exitOnStopSignals } from './stop-signals.js';
import { addProxyAddressOptions, addProxyOptions, setUpProxy, type ProxyFlags, type ProxyHelp } from './proxy-setup.js';

interface GatewayFlags extends ProxyFlags {
  secrets?: string;
  listenHost: string;
  ingress?: boolean;
  address: string[];
  status: boolean;
}

const HELP: ProxyHelp = {
  gateway: 'Gateway (class weft)',
  reporter: 'source',
  caToken: 'bearer token for the CA, re-read on every request',
  admin: "admin API (/config_dump with listener, route, Ingress and Istio Gateway status, /healthz/ready); '' disables",
};

export function registerGatewayCommand(program: Command): Command {
  const cmd = program
    .command('gateway')
    .description(
      'run the ingress gateway of one Gateway of class weft: its HTTP and HTTPS listeners (TLS terminated with the ' +
        'kubernetes.io/tls Secrets of tls.certificateRefs, chosen by SNI; HTTP/2 by ALPN), the HTTPRoutes attached to it (parentRefs, ' +
        'sectionName, allowedRoutes, hostnames), routed by the waypoint\'s L7 engine to the meshed backends over HBONE with ' +
        "the gateway's own SPIFFE identity; L7 AuthorizationPolicies with targetRefs to the Gateway; request metrics with " +
        'reporter="source". A listener with a bad Secret is not served (its status says why); the others are. With --ingress ' +
        'also Kubernetes Ingresses of class weft and Istio Gateways + VirtualServices (docs/ingress.md).',
    );
  addProxyOptions(cmd, HELP)
    .option('--secrets <dir>', 'directory of YAML with the kubernetes.io/tls Secrets the listeners name (default: --manifests; with --kubeconfig/--in-cluster: watched from the API server)')
    .option('--listen-host <ip>', "address the listeners' ports are opened on", '0.0.0.0');
  return addProxyAddressOptions(cmd, HELP)
    .option('--ingress', "also the cluster's ingress controller: Ingresses of class weft (IngressClass controller weft.dev/gateway-controller) and Istio Gateways with selector istio: ingressgateway")
    .option('--address <ip>', "the external address written to the Gateway and Ingress status (repeatable; default: the clusterIP of the Service of the Gateway's name)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--no-status', 'Kubernetes mode: do not write the Gateway, HTTPRoute and Ingress status')
    .action(async (opts: GatewayFlags) => {
      const p = await setUpProxy(opts, 'gateway');
      const [{ IngressGateway }, { SecretFiles }] = await Promise.all([import('../gateway/gateway.js'), import('../gateway/secret-files.js')]);
      const secretsDir = opts.secrets ?? opts.manifests;
      const files = secretsDir === undefined ? undefined : new SecretFiles(secretsDir);
      // Kubernetes mode: Secrets (kubernetes.io/tls), Ingresses and Istio Gateways watched by the gateway itself; status written.
      const kube = p.kubeConfig === undefined ? undefined : await import('../gateway/kube.js').then(({ GatewayObjectWatch, GatewayStatusWriter, kubeRequest }) => ({ objects: new GatewayObjectWatch(p.kubeConfig!, p.dlog), writer: opts.status ? new GatewayStatusWriter(kubeRequest(p.kubeConfig!), p.logger.child({ component: 'status' })) : undefined }));
      if (kube !== undefined) await kube.objects.start();
      const host = opts.listenHost;
      const gateway = new IngressGateway({
        name: p.name,
        namespace: p.namespace,
        ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
        trustDomain: opts.trustDomain,
        clusterName: opts.cluster,
        source: p.source,
        secrets: files?.lookup ?? kube!.objects.secrets,
        refreshSecrets: () => files?.refresh(),
        ...(opts.ingress === true ? { ingress: true } : {}),
        ...(opts.address.length > 0 ? { addresses: opts.address } : {}),
        ...(kube !== undefined ? { objects: kube.objects, ...(kube.writer !== undefined ? { statusWriter: kube.writer } : {}) } : {}),
        caClient: p.caClient,
        identityOptions: { trustBundle: p.trustBundle },
        logger: p.logger,
        bindAddress: (port) => ({ host, port }),
        metricsAddress: opts.metrics,
        readinessAddress: opts.readiness,
        adminAddress: opts.admin,
      });
      exitOnStopSignals(p.logger, async () => {
        kube?.writer?.stop();
        await gateway.stop();
        await kube?.objects.stop();
      });
      await gateway.start();
    });
}
