/**
 * `weft waypoint generate NAME -n NS`: the YAML that makes a waypoint on a real cluster (the
 * Gateway, and what the lab deploys for it: ServiceAccount, Deployment, Service, from the same
 * waypointObjects), plus the RBAC its discovery needs. The image is daemonset/'s; the pod runs
 * `weft waypoint --in-cluster` with the CA flags the agents use and a projected token of audience
 * weft-ca of its own service account. Its account is bound to the waypoints' ClusterRole that
 * `kubectl apply -k daemonset/` installs.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA_TOKEN_AUDIENCE } from '../identity/token-review.js';
import type { KubeObject } from '../discovery/types.js';
import { waypointGateway, waypointObjects } from '../waypoint/objects.js';
import { REPO_DIR } from '../lab/paths.js';
import { WeftError } from '../errors.js';

export const WEFT_IMAGE_REPOSITORY = 'ghcr.io/weft-mesh/weft';
/** Where the image has the CLI (daemonset/agent.yaml runs the same path). */
const IMAGE_MAIN = '/opt/weft/dist/agent/cli/main.js';
const CA_URL = 'https://weft-ca.weft-system.svc:15012';
const TOKEN_DIR = '/var/run/secrets/weft';
const ROOT_DIR = '/etc/weft/ca-root';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** The ClusterRole of waypoints that daemonset/rbac.yaml installs. */
export const WAYPOINT_CLUSTER_ROLE = 'weft-waypoint';

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The waypoint's account bound to the `weft-waypoint` ClusterRole daemonset/rbac.yaml installs
 * (discovery's reads cluster-wide and route status writes: one definition, not a copy per
 * waypoint), and a Role of its namespace for its own Gateway's status.
 */
function rbac(name: string, namespace: string): KubeObject[] {
  const subject = [{ kind: 'ServiceAccount', name, namespace }];
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `weft-waypoint-${namespace}-${name}`.slice(0, 253) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: WAYPOINT_CLUSTER_ROLE },
      subjects: subject,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: `weft-waypoint-${name}`, namespace },
      rules: [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways/status'], resourceNames: [name], verbs: ['get', 'patch', 'update'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `weft-waypoint-${name}`, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `weft-waypoint-${name}` },
      subjects: subject,
    },
  ] as unknown as KubeObject[];
}

/** Every object `generate` prints, in apply order. */
export function generateWaypoint(name: string, namespace: string, version = packageVersion()): KubeObject[] {
  for (const [what, v] of [['NAME', name], ['namespace', namespace]] as const) {
    if (!DNS_LABEL.test(v)) throw new WeftError('WEFT_ERR_CONFIG', `${what} "${v}" must be a DNS label (lower-case letters, digits, "-", at most 63)`);
  }
  const gateway = waypointGateway(name, namespace);
  const deployed = waypointObjects(gateway, {
    cli: ['node', IMAGE_MAIN],
    image: `${WEFT_IMAGE_REPOSITORY}:${version}`,
    args: ['--in-cluster', `--ca=${CA_URL}`, `--ca-token-file=${TOKEN_DIR}/token`, `--ca-root=${ROOT_DIR}/root-cert.pem`],
    pod: {
      volumes: [
        { name: 'ca-token', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: CA_TOKEN_AUDIENCE, expirationSeconds: 3600 } }] } },
        // The CA's trust bundle; the CA publishes it as weft-ca-root (ca-bootstrap.ts).
        { name: 'ca-root', configMap: { name: 'weft-ca-root' } },
      ],
      volumeMounts: [
        { name: 'ca-token', mountPath: TOKEN_DIR, readOnly: true },
        { name: 'ca-root', mountPath: ROOT_DIR, readOnly: true },
      ],
      // No capabilities: a waypoint only listens and connects (no netns, no iptables).
      securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    },
  });
  const [serviceAccount, ...rest] = deployed;
  return [gateway, serviceAccount!, ...rbac(name, namespace), ...rest];
}

export function generateWaypointYaml(name: string, namespace: string): string {
  return generateWaypoint(name, namespace).map((o) => stringify(o)).join('---\n');
}

/** Adds `generate` to the `weft waypoint` command (wp's), or makes a `waypoint` group for it. */
export function registerWaypointGenerate(program: Command): void {
  const waypoint = program.commands.find((c) => c.name() === 'waypoint') ?? program.command('waypoint').description('the L7 waypoint');
  waypoint
    .command('generate')
    .description('print the Gateway, Deployment, Service, ServiceAccount and RBAC bindings of a waypoint, for kubectl apply -f - (after kubectl apply -k daemonset/)')
    .argument('<name>', 'name of the waypoint Gateway')
    .option('-n, --namespace <ns>', 'namespace of the waypoint', 'default')
    .action((name: string, opts: { namespace: string }) => {
      process.stdout.write(generateWaypointYaml(name, opts.namespace));
    });
}
