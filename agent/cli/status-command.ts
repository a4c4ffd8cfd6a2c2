import http from 'node:http';
import net from 'node:net';
import { readFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { createTcpSocket, openNetns, closeNetns } from '../../native/index.js';
import { splitHostPort } from '../admin/server.js';
import { WeftError } from '../errors.js';

const SECTIONS = ['workloads', 'services', 'policies', 'certs', 'connections'] as const;
type Section = (typeof SECTIONS)[number];

interface Target {
  label: string;
  admin: string;
  netns?: string;
}

/** GET a path on an agent's admin API, from inside `netns` when given (the admin port is local to the agent's namespace). */
export async function fetchAdmin(target: Target, path: string): Promise<unknown> {
  const [host, port] = splitHostPort(target.admin);
  let nsFd = -1;
  try {
    const createConnection = (): net.Socket => {
      if (!target.netns) return net.connect(Number(port), host);
      nsFd = openNetns(target.netns);
      const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
      return socket.connect(Number(port), host);
    };
    return await new Promise((resolve, reject) => {
      const req = http.request({ host, port, path, createConnection, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString()));
          } catch (err) {
            reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: the admin API answered with something that is not JSON`, { cause: err }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
      req.on('error', (err) =>
        reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: cannot reach the agent's admin API at ${target.admin}${target.netns ? ` in ${target.netns}` : ''}: ${err.message} (is the agent running?)`, { cause: err })),
      );
      req.end();
    });
  } finally {
    if (nsFd >= 0) closeNetns(nsFd);
  }
}

/** The agents of a running lab, from its state file. */
function labTargets(lab: string): Target[] {
  const stateFile = `/run/weft/lab/${lab}/state.json`;
  if (!existsSync(stateFile)) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `no lab named ${lab} is up (no ${stateFile}); start one with 'weft lab up'`);
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { nodes?: Record<string, { netns?: string }> | { name: string; netns?: string }[] };
  const nodes = Array.isArray(state.nodes) ? state.nodes : Object.entries(state.nodes ?? {}).map(([name, n]) => ({ name, ...n }));
  return nodes.map((n) => ({ label: `node ${n.name}`, admin: '127.0.0.1:15000', netns: `/var/run/netns/${n.netns ?? `weft-${lab}-node-${n.name}`}` }));
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
        columns: ['key', 'clusterIP', 'ports'],
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
    .description("show what an agent knows and does, read from its admin API: workloads, services, policies, certs or connections")
    .argument('<what>', `one of: ${SECTIONS.join(', ')}`)
    .option('--json', 'print the raw JSON instead of tables')
    .option('--admin <host:port>', "the agent's admin API", '127.0.0.1:15000')
    .option('--netns <path>', "reach the admin API from inside this network namespace (the agent's node namespace)")
    .option('--lab <name>', 'ask every agent of a running lab (overrides --admin and --netns)')
    .action(async (what: string, opts: { json?: boolean; admin: string; netns?: string; lab?: string }) => {
      if (!(SECTIONS as readonly string[]).includes(what)) throw new WeftError('WEFT_ERR_CONFIG', `unknown status section '${what}'; use one of: ${SECTIONS.join(', ')}`);
      const section = what as Section;
      const targets: Target[] = opts.lab ? labTargets(opts.lab) : [{ label: opts.admin, admin: opts.admin, ...(opts.netns ? { netns: opts.netns } : {}) }];
      const results = [];
      for (const target of targets) {
        const dump = (await fetchAdmin(target, '/config_dump')) as Record<string, unknown>;
        const connections = section === 'connections' ? ((await fetchAdmin(target, '/connections')) as Record<string, unknown>) : {};
        results.push({ target, dump, connections });
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
