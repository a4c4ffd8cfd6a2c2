import type { Command } from 'commander';
import { labStatus } from '../lab/index.js';
import { fetchAdmin, type AdminTarget as Target } from '../admin/client.js';
import { WeftError } from '../errors.js';
import { ADMIN_PORT, DEFAULT_ADMIN_ADDRESS } from '../config.js';

const SECTIONS = ['workloads', 'services', 'waypoints', 'policies', 'certs', 'connections'] as const;
type Section = (typeof SECTIONS)[number];

/** The agents of a running lab (WEFT_ERR_LAB_NOT_FOUND when it is not up). */
async function labTargets(lab: string): Promise<Target[]> {
  const status = await labStatus(lab);
  return status.nodes.map((n) => ({ label: `node ${n.name}`, admin: n.agentAddresses.admin, netns: `/run/netns/${n.netns}` }));
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
    case 'connections':
      return { rows: list('open', connections), columns: ['direction', 'sourceIp', 'sourceWorkload', 'originalDestination', 'upstream', 'destinationWorkload', 'mutualTls'] };
  }
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description("show what an agent knows and does, read from its admin API: workloads, services, waypoints, policies, certs or connections")
    .argument('<what>', `one of: ${SECTIONS.join(', ')}`)
    .option('--json', 'print the raw JSON instead of tables')
    .option('--admin <host:port>', "the agent's admin API", DEFAULT_ADMIN_ADDRESS)
    .option('--netns <path>', "reach the admin API from inside this network namespace (the agent's node namespace)")
    .option('--lab <name>', 'ask every agent of a running lab (overrides --admin and --netns)')
    .option('--kubeconfig <file>', 'ask every agent pod of a cluster, through the API server (pods/portforward to its admin port, as istioctl ztunnel-config does)')
    .option('--namespace <ns>', 'with --kubeconfig: the agents\' namespace', 'weft-system')
    .option('--selector <labels>', 'with --kubeconfig: the agent pods\' labels', 'app=weft-agent')
    .option('--admin-port <port>', 'with --kubeconfig: the admin port inside the agent pod', String(ADMIN_PORT))
    .action(async (what: string, opts: { json?: boolean; admin: string; netns?: string; lab?: string; kubeconfig?: string; namespace: string; selector: string; adminPort: string }) => {
      if (!(SECTIONS as readonly string[]).includes(what)) throw new WeftError('WEFT_ERR_CONFIG', `unknown status section '${what}'; use one of: ${SECTIONS.join(', ')}`);
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
      const targets: Target[] = forwarded ? forwarded.targets : opts.lab ? await labTargets(opts.lab) : [{ label: opts.admin, admin: opts.admin, ...(opts.netns ? { netns: opts.netns } : {}) }];
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
        const { rows, columns } = rowsFor(section, r.dump, r.connections);
        process.stdout.write(`# ${r.target.label} (node ${String(r.dump['node'] ?? '?')})\n${table(rows, columns)}\n`);
      }
    });
}
