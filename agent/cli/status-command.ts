import type { Command } from 'commander';
import { labStatus } from '../lab/index.js';
import type { LabStatus } from '../lab/status.js';
import { fetchAdmin, type AdminTarget as Target } from '../admin/client.js';
import { WeftError } from '../errors.js';
import { ADMIN_PORT, DEFAULT_ADMIN_ADDRESS } from '../config.js';
import { routeStatusRows } from '../l7/status.js';
import type { RouteStatus } from '../l7/types.js';
import { runTop } from './status-top.js';
import { followConnections } from './status-follow.js';

const SECTIONS = ['workloads', 'services', 'waypoints', 'policies', 'certs', 'connections', 'routes', 'top'] as const;
type Section = (typeof SECTIONS)[number];

/** The agents of a running lab (WEFT_ERR_LAB_NOT_FOUND when it is not up); for `routes`, its waypoints' pods. */
async function labTargets(lab: string, section: Section): Promise<Target[]> {
  const status = await labStatus(lab);
  if (section === 'routes') return labWaypointTargets(status);
  return status.nodes.map((n) => ({ label: `node ${n.name}`, admin: n.agentAddresses.admin, netns: `/run/netns/${n.netns}` }));
}

/**
 * The admin APIs of a lab's waypoint pods (route statuses live in waypoints, not in node
 * agents): every pod of a Deployment made for a waypoint Gateway, on 127.0.0.1:15000 inside the
 * pod's network namespace, in Gateway then pod order.
 */
export function labWaypointTargets(status: Pick<LabStatus, 'deployments' | 'pods'>): Target[] {
  const out: Target[] = [];
  const deployments = status.deployments.filter((d) => d.gateway !== undefined && d.ingress !== true).sort((a, b) => a.gateway!.localeCompare(b.gateway!));
  for (const d of deployments) {
    for (const name of [...d.pods].sort()) {
      const pod = status.pods.find((p) => p.namespace === d.namespace && p.name === name);
      if (pod === undefined || pod.netns === '') continue;
      out.push({ label: `waypoint ${d.gateway} pod ${name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: pod.netns.startsWith('/') ? pod.netns : `/run/netns/${pod.netns}` });
    }
  }
  return out;
}

type Row = Record<string, string | number | boolean | undefined>;

/** Formats rows as an aligned text table. */
export function table(rows: Row[], columns: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '-')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

function rowsFor(section: Section, dump: Record<string, unknown>, connections: Record<string, unknown>): { rows: Row[]; columns: string[] } {
  const list = (key: string, from: Record<string, unknown> = dump) => (Array.isArray(from[key]) ? (from[key] as Row[]) : []);
  switch (section) {
    case 'workloads':
      return { rows: list('workloads'), columns: ['namespace', 'name', 'node', 'ip', 'inMesh', 'captured', 'identity', 'certExpiry'] };
    case 'services':
      return {
        rows: list('services').map((s) => ({ ...s, ports: (s['ports'] as unknown as { port: number; endpoints: string[] }[]).map((p) => `${p.port}->${p.endpoints.join(',') || 'none'}`).join(' ') })),
        columns: ['key', 'clusterIP', 'ports', 'waypoint'],
      };
    case 'waypoints':
      return {
        rows: list('waypoints').map((w) => ({ ...w, endpoints: (w['endpoints'] as unknown as string[]).join(',') || 'none', services: (w['services'] as unknown as string[]).join(',') || 'none' })),
        columns: ['key', 'state', 'identity', 'endpoints', 'services'],
      };
    case 'policies':
      return { rows: list('policies'), columns: ['kind', 'namespace', 'name', 'action', 'scope', 'warning'] };
    case 'certs':
      return { rows: list('certificates'), columns: ['identity', 'notBefore', 'notAfter', 'state'] };
    case 'top':
    case 'connections':
      return { rows: list('open', connections), columns: ['direction', 'sourceIp', 'sourceWorkload', 'originalDestination', 'upstream', 'destinationWorkload', 'mutualTls'] };
    case 'routes':
      // A waypoint's /config_dump lists `routes` (RouteStore.statuses()); an agent's has none.
      return { rows: routeRows(list('routes')), columns: ['route', 'parent', 'accepted', 'resolvedRefs', 'message'] };
  }
}

/** `routes` as RouteStatus objects (rows made here) or as rows already (routeStatusRows on the waypoint's side). */
function routeRows(items: Row[]): Row[] {
  const first = items[0];
  if (first === undefined || !Array.isArray((first as Record<string, unknown>)['parents'])) return items;
  return routeStatusRows(items as unknown as RouteStatus[]);
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description("show what an agent knows and does, read from its admin API: workloads, services, waypoints, policies, certs or connections; routes: the route statuses of waypoints (--admin/--netns of a waypoint, or --lab: every waypoint pod of the lab); `top` shows the busiest edges live")
    .argument('<what>', `one of: ${SECTIONS.join(', ')}`)
    .option('--json', 'print the raw JSON instead of tables')
    .option('--admin <host:port...>', "the agent's admin API (several: ask each)", [DEFAULT_ADMIN_ADDRESS])
    .option('--follow', 'with connections: stream opens, policy decisions and closes as they happen (until Ctrl-C)')
    .option('--once', 'with top: print one table (rates over one interval) and exit, for scripts')
    .option('--interval <seconds>', 'with top: seconds between samples', '2')
    .option('--limit <n>', 'with top: edges shown', '20')
    .option('--netns <path>', "reach the admin API from inside this network namespace (the agent's node namespace)")
    .option('--lab <name>', 'ask every agent of a running lab (overrides --admin and --netns)')
    .option('--kubeconfig <file>', 'ask every agent pod of a cluster, through the API server (pods/portforward to its admin port, as istioctl ztunnel-config does)')
    .option('--namespace <ns>', 'with --kubeconfig: the agents\' namespace', 'weft-system')
    .option('--selector <labels>', 'with --kubeconfig: the agent pods\' labels', 'app=weft-agent')
    .option('--admin-port <port>', 'with --kubeconfig: the admin port inside the agent pod', String(ADMIN_PORT))
    .action(async (what: string, opts: { json?: boolean; admin: string[]; netns?: string; lab?: string; kubeconfig?: string; namespace: string; selector: string; adminPort: string; follow?: boolean; once?: boolean; interval: string; limit: string }) => {
      if (!(SECTIONS as readonly string[]).includes(what)) throw new WeftError('WEFT_ERR_CONFIG', `unknown status section '${what}'; use one of: ${SECTIONS.join(', ')}`);
      if (opts.follow && what !== 'connections') throw new WeftError('WEFT_ERR_CONFIG', '--follow goes with `weft status connections`');
      const interval = Number(opts.interval);
      const limit = Number(opts.limit);
      if (!(interval > 0)) throw new WeftError('WEFT_ERR_CONFIG', `--interval ${opts.interval} is not a positive number of seconds`);
      if (!Number.isInteger(limit) || limit < 1) throw new WeftError('WEFT_ERR_CONFIG', `--limit ${opts.limit} is not a positive whole number`);
      if (opts.lab !== undefined && opts.kubeconfig !== undefined) throw new WeftError('WEFT_ERR_CONFIG', 'give --lab or --kubeconfig, not both');
      const section = what as Section;
      let forwarded: { targets: Target[]; errorFor(t: Target): Error | undefined; close(): Promise<void> } | undefined;
      if (opts.kubeconfig !== undefined) {
        const adminPort = Number(opts.adminPort);
        if (!Number.isInteger(adminPort) || adminPort < 1 || adminPort > 65535) throw new WeftError('WEFT_ERR_CONFIG', `--admin-port ${opts.adminPort} is not a port`);
        const { loadKubeConfig } = await import('../discovery/kubernetes.js');
        const { forwardAgents } = await import('./kube-admin.js');
        forwarded = await forwardAgents({ kubeConfig: loadKubeConfig(opts.kubeconfig), namespace: opts.namespace, selector: opts.selector, adminPort });
      }
      const targets: Target[] = forwarded ? forwarded.targets : opts.lab ? await labTargets(opts.lab, what as Section) : opts.admin.map((admin) => ({ label: admin, admin, ...(opts.netns ? { netns: opts.netns } : {}) }));
      if (section === 'routes' && opts.lab !== undefined && targets.length === 0) {
        process.stdout.write(`# lab ${opts.lab} runs no waypoint: no routes are served (a Gateway of class weft-waypoint gets one)\n`);
        return;
      }
      if (section === 'top' || opts.follow) {
        try {
          if (section === 'top') await runTop(targets, { intervalSeconds: interval, once: opts.once === true, limit, out: process.stdout });
          else await followConnections(targets, { json: opts.json === true, out: process.stdout });
        } finally {
          await forwarded?.close();
        }
        return;
      }
      const results = [];
      try {
        for (const target of targets) {
          const fetch = (path: string): Promise<unknown> => fetchAdmin(target, path).catch((err: unknown) => {
            throw forwarded?.errorFor(target) ?? err;
          });
          const dump = (await fetch('/config_dump')) as Record<string, unknown>;
          const connections = section === 'connections' ? ((await fetch('/connections')) as Record<string, unknown>) : {};
          results.push({ target, dump, connections });
        }
      } finally {
        await forwarded?.close();
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(results.map((r) => ({ agent: r.target.label, ...(section === 'connections' ? r.connections : { [section]: r.dump[section === 'certs' ? 'certificates' : section] }) })), null, 2) + '\n');
        return;
      }
      for (const r of results) {
        if (section === 'routes' && !Array.isArray(r.dump['routes'])) {
          // Routes live in waypoints; a node agent's dump has none.
          process.stdout.write(`# ${r.target.label}: no routes here (not a waypoint; give --admin and --netns of a waypoint's admin API)\n\n`);
          continue;
        }
        const { rows, columns } = rowsFor(section, r.dump, r.connections);
        const where = r.dump['waypoint'] !== undefined ? '' : ` (node ${String(r.dump['node'] ?? '?')})`;
        process.stdout.write(`# ${r.target.label}${where}\n${table(rows, columns)}\n`);
      }
    });
}
