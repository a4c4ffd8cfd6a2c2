/**
 * `weft check`'s pre-flight checks, each a function returning a result with what to fix:
 * the API server answers; the agent's and the CA's service accounts may do what they need
 * (SelfSubjectAccessReview when run with that account's own credentials, else
 * SubjectAccessReview about it); Weft's CRDs are installed; the CA published its trust bundle,
 * is reachable and presents the Service's names; and, on the machine it runs on, an iptables
 * backend that works and matches the one holding the node's rules.
 */
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import {
  ApiextensionsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  VersionApi,
  type KubeConfig,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { caServiceDnsNames } from '../identity/ca-server.js';
import { DEFAULT_CA_ROOT_CONFIGMAP, ROOT_BUNDLE_KEY } from '../identity/ca-bootstrap.js';
import { parseTrustBundle } from '../identity/trust-bundle.js';
import { runCommand } from '../util/exec.js';
import { POLICY_GROUP } from '../../policy/schema.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

/** One permission a component needs: RBAC attributes and why (shown when it is missing). */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  /** Namespace-scoped check (else cluster-wide). */
  namespace?: string;
  name?: string;
  why: string;
}

export interface Component {
  name: 'agent' | 'ca';
  serviceAccount: string;
  /** The role in daemonset/rbac.yaml that grants it. */
  role: string;
  permissions: Permission[];
}

/**
 * What each component uses, the single list `weft check` and the RBAC test read. Keep in step
 * with daemonset/rbac.yaml (test/cli/check.test.ts applies that file and runs these checks).
 */
export function components(namespace: string): Component[] {
  const watch = (group: string, resource: string, why: string): Permission[] => ['list', 'watch'].map((verb) => ({ verb, group, resource, why }));
  return [
    {
      name: 'agent',
      serviceAccount: `system:serviceaccount:${namespace}:weft-agent`,
      role: 'ClusterRole weft-agent',
      permissions: [
        ...watch('', 'namespaces', 'the mesh opt-in label of each namespace'),
        ...watch('', 'pods', 'the pods of its node, to capture'),
        ...watch('', 'services', 'service VIPs and ports'),
        ...watch('discovery.k8s.io', 'endpointslices', 'service endpoints, selectorless Services included'),
        ...watch(POLICY_GROUP, 'authorizationpolicies', 'L4 policy'),
        ...watch(POLICY_GROUP, 'peerauthentications', 'mTLS mode'),
        ...watch('gateway.networking.k8s.io', 'gateways', 'waypoints (Gateways of class weft-waypoint)'),
        ...watch('gateway.networking.k8s.io', 'httproutes', 'HTTP routes of waypointed services'),
        ...watch('gateway.networking.k8s.io', 'grpcroutes', 'gRPC routes of waypointed services'),
      ],
    },
    {
      name: 'ca',
      serviceAccount: `system:serviceaccount:${namespace}:weft-ca`,
      role: `ClusterRole weft-ca and Role ${namespace}/weft-ca`,
      permissions: [
        { verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews', why: "checking agents' tokens" },
        ...['get', 'list', 'watch'].map((verb) => ({ verb, group: '', resource: 'pods', why: 'which service accounts run on which node' })),
        { verb: 'get', group: '', resource: 'secrets', namespace, name: 'weft-ca-keys', why: 'its signing key' },
        { verb: 'create', group: '', resource: 'secrets', namespace, why: 'creating weft-ca-keys with a new root when absent' },
        ...['list', 'watch'].map((verb) => ({ verb, group: '', resource: 'namespaces', why: 'the trust bundle in every namespace (waypoints, gateways)' })),
        { verb: 'get', group: '', resource: 'configmaps', name: DEFAULT_CA_ROOT_CONFIGMAP, why: 'the published trust bundle, in every namespace' },
        { verb: 'update', group: '', resource: 'configmaps', name: DEFAULT_CA_ROOT_CONFIGMAP, why: 'keeping the trust bundle in step' },
        { verb: 'create', group: '', resource: 'configmaps', why: 'publishing the trust bundle the first time in a namespace' },
      ],
    },
  ];
}

function describePermission(p: Permission): string {
  const what = `${p.resource}${p.group === '' ? '' : `.${p.group}`}${p.name === undefined ? '' : `/${p.name}`}`;
  return `${p.verb} ${what} ${p.namespace === undefined ? '(cluster-wide)' : `in ${p.namespace}`}`;
}

const messageOf = (err: unknown): string => {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    let reason = '';
    try {
      reason = (JSON.parse(String(e.body)) as { message?: string }).message ?? '';
    } catch {
      // not a Status body
    }
    return `HTTP ${e.code}${reason ? `: ${reason}` : ''}`;
  }
  return e.message ?? String(err);
};

export async function checkApi(kc: KubeConfig): Promise<CheckResult> {
  const server = kc.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  try {
    const v = await kc.makeApiClient(VersionApi).getCode();
    return { name: 'api', status: 'pass', detail: `Kubernetes ${v.gitVersion} at ${server}` };
  } catch (err) {
    return { name: 'api', status: 'fail', detail: `no answer from ${server}: ${messageOf(err)}`, fix: 'check the kubeconfig (server, credentials, CA): `kubectl --kubeconfig F version` must work' };
  }
}

/** RBAC of each component: reviews every permission it needs. */
export async function checkRbac(kc: KubeConfig, namespace: string): Promise<CheckResult[]> {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  let self = '';
  try {
    self = (await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })).status?.userInfo?.username ?? '';
  } catch {
    // older API servers: review others' permissions
  }
  const results: CheckResult[] = [];
  for (const c of components(namespace)) {
    const missing: string[] = [];
    const asSelf = self === c.serviceAccount;
    try {
      for (const p of c.permissions) {
        const attrs: V1ResourceAttributes = { verb: p.verb, group: p.group, resource: p.resource, ...(p.namespace ? { namespace: p.namespace } : {}), ...(p.name ? { name: p.name } : {}) };
        const allowed = asSelf
          ? (await authz.createSelfSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attrs } } })).status?.allowed
          : (await authz.createSubjectAccessReview({
              body: {
                apiVersion: 'authorization.k8s.io/v1',
                kind: 'SubjectAccessReview',
                spec: { user: c.serviceAccount, groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'], resourceAttributes: attrs },
              },
            })).status?.allowed;
        if (allowed !== true) missing.push(`${describePermission(p)}: ${p.why}`);
      }
    } catch (err) {
      results.push({
        name: `rbac ${c.name}`,
        status: 'fail',
        detail: `cannot review the permissions of ${c.serviceAccount}: ${messageOf(err)}`,
        fix: 'run weft check as a cluster admin (it creates SubjectAccessReviews), or with the component\'s own credentials (kubectl exec into its pod, weft check --in-cluster)',
      });
      continue;
    }
    const how = asSelf ? 'SelfSubjectAccessReview' : 'SubjectAccessReview';
    results.push(
      missing.length === 0
        ? { name: `rbac ${c.name}`, status: 'pass', detail: `${c.serviceAccount} may do all ${c.permissions.length} things it needs (${how})` }
        : { name: `rbac ${c.name}`, status: 'fail', detail: `${c.serviceAccount} may not: ${missing.join('; ')}`, fix: `apply daemonset/rbac.yaml (kubectl apply -k daemonset/), or add these rules to ${c.role}` },
    );
  }
  return results;
}

const CRDS = [`authorizationpolicies.${POLICY_GROUP}`, `peerauthentications.${POLICY_GROUP}`];

export async function checkCrds(kc: KubeConfig): Promise<CheckResult> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const missing: string[] = [];
  for (const name of CRDS) {
    try {
      const crd = await api.readCustomResourceDefinition({ name });
      if (!crd.spec.versions.some((v) => v.name === 'v1alpha1' && v.served)) missing.push(`${name} (v1alpha1 not served)`);
    } catch (err) {
      missing.push(`${name} (${messageOf(err)})`);
    }
  }
  return missing.length === 0
    ? { name: 'crds', status: 'pass', detail: CRDS.join(', ') }
    : { name: 'crds', status: 'fail', detail: `missing: ${missing.join(', ')}`, fix: 'kubectl apply -k daemonset/ installs them (daemonset/crds, generated by npm run gen:crds)' };
}

export interface CaCheckOptions {
  namespace: string;
  clusterDomain: string;
  /** Where to connect, e.g. https://weft-ca.weft-system.svc:15012 or a port-forward's https://127.0.0.1:15012. */
  url: string;
  /** The TLS server name to verify (default: the URL's host, or weft-ca.<ns>.svc when that is an address). */
  serverName?: string;
}

/** The published bundle, then the CA itself: TLS verified against that bundle, by name. */
export async function checkCa(kc: KubeConfig, opts: CaCheckOptions): Promise<CheckResult[]> {
  let roots: string[];
  try {
    const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: opts.namespace, name: DEFAULT_CA_ROOT_CONFIGMAP });
    roots = parseTrustBundle(cm.data?.[ROOT_BUNDLE_KEY] ?? '', `ConfigMap ${opts.namespace}/${DEFAULT_CA_ROOT_CONFIGMAP}`);
  } catch (err) {
    return [{
      name: 'ca bundle',
      status: 'fail',
      detail: `no usable trust bundle in ConfigMap ${opts.namespace}/${DEFAULT_CA_ROOT_CONFIGMAP}: ${messageOf(err)}`,
      fix: `the CA publishes it when it starts: kubectl -n ${opts.namespace} get pods -l app=weft-ca; kubectl -n ${opts.namespace} logs deploy/weft-ca (WEFT_ERR_CA_BOOTSTRAP names the cause)`,
    }];
  }
  const results: CheckResult[] = [{ name: 'ca bundle', status: 'pass', detail: `${roots.length} root(s) in ConfigMap ${opts.namespace}/${DEFAULT_CA_ROOT_CONFIGMAP}` }];
  const url = new URL(opts.url);
  const isAddress = /^[\d.]+$/.test(url.hostname) || url.hostname.includes(':');
  const servername = opts.serverName ?? (isAddress ? `weft-ca.${opts.namespace}.svc` : url.hostname);
  const port = Number(url.port || 443);
  const peer = await new Promise<{ cert: PeerCertificate } | { error: string; code: string | undefined }>((resolve) => {
    const s = tlsConnect({ host: url.hostname, port, servername, ca: roots, rejectUnauthorized: true, timeout: 5000 }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      resolve({ cert });
    });
    s.on('timeout', () => s.destroy(new Error('no TLS handshake within 5 s')));
    s.on('error', (err: Error & { code?: string }) => resolve({ error: err.message, code: err.code }));
  });
  if ('error' in peer) {
    const nameProblem = peer.code === 'ERR_TLS_CERT_ALTNAME_INVALID';
    results.push({
      name: 'ca',
      status: 'fail',
      detail: `TLS to ${url.host} as ${servername}: ${peer.error}`,
      fix: nameProblem
        ? `the CA's serving certificate does not name ${servername}: upgrade the CA (it names weft-ca.<ns>.svc[.<domain>]), or set --cluster-domain/--dns-name on weft ca`
        : peer.code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO/.test(peer.code)
          ? `the CA's certificate does not chain to the published bundle: restart the CA (kubectl -n ${opts.namespace} rollout restart deploy/weft-ca) so it signs with the Secret's key`
          : `is the CA running and reachable from here? Outside the cluster: kubectl -n ${opts.namespace} port-forward svc/weft-ca 15012 & weft check --ca https://127.0.0.1:15012`,
    });
    return results;
  }
  const sans = (peer.cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  const want = caServiceDnsNames(opts.namespace, opts.clusterDomain);
  const lacking = want.filter((n) => !sans.includes(n));
  results.push(
    lacking.length === 0
      ? { name: 'ca', status: 'pass', detail: `${url.host} verified as ${servername}; names ${want.join(', ')}` }
      : { name: 'ca', status: 'warn', detail: `${url.host} verified as ${servername}, but its certificate lacks ${lacking.join(', ')}`, fix: 'set the CA\'s namespace (POD_NAMESPACE) and --cluster-domain to match the cluster' },
  );
  return results;
}

export interface IptablesProbe {
  /** Runs a command; rejects when it cannot be run or exits non-zero. */
  run(cmd: string, args: string[]): Promise<string>;
}

const systemProbe: IptablesProbe = {
  run: async (cmd, args) => (await runCommand(cmd, args)).stdout,
};

/** Rule lines of an iptables-save output (not comments, tables or chain headers). */
function ruleCount(save: string): number {
  return save.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/**
 * The backend the agent's `iptables-restore` uses here, whether it works, and whether the node's
 * rules (kube-proxy, CNI) live in the other one: mixing backends makes rules of one invisible
 * to the other. Read-only: only --version and *-save are run.
 */
export async function checkIptables(probe: IptablesProbe = systemProbe): Promise<CheckResult> {
  let version: string;
  try {
    version = (await probe.run('iptables', ['--version'])).trim();
  } catch (err) {
    return { name: 'iptables', status: 'fail', detail: `iptables is not usable here: ${messageOf(err)}`, fix: 'install iptables (Debian: apt-get install iptables); the agent image has it' };
  }
  const backend = /nf_tables/.test(version) ? 'nft' : /legacy/.test(version) ? 'legacy' : 'unknown';
  try {
    await probe.run('iptables-save', ['-t', 'nat']);
  } catch (err) {
    return {
      name: 'iptables',
      status: 'fail',
      detail: `${version}: iptables-save fails: ${messageOf(err)}`,
      fix: backend === 'nft' ? 'the nf_tables kernel modules are missing: use iptables-legacy (update-alternatives --set iptables /usr/sbin/iptables-legacy) or load nf_tables' : 'run as root (CAP_NET_ADMIN), or in the agent pod',
    };
  }
  const other = backend === 'nft' ? 'legacy' : backend === 'legacy' ? 'nft' : undefined;
  if (other !== undefined) {
    const [mine, theirs] = await Promise.all([
      probe.run(`iptables-${backend}-save`, []).then(ruleCount, () => 0),
      probe.run(`iptables-${other}-save`, []).then(ruleCount, () => 0),
    ]);
    if (mine === 0 && theirs > 0) {
      return {
        name: 'iptables',
        status: 'warn',
        detail: `${version}, but the node's ${theirs} rules are in the ${other} backend`,
        fix: `use the ${other} backend in the agent's image (update-alternatives --set iptables /usr/sbin/iptables-${other}), as kube-proxy and the CNI do`,
      };
    }
  }
  return { name: 'iptables', status: 'pass', detail: `${version} works` };
}
