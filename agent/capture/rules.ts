/**
 * The in-pod redirection rules (ARCHITECTURE.md "Capture"): Weft's own chains in the mangle and
 * nat tables of the pod's network namespace, plus the policy route that brings the app's replies
 * back to the agent's transparent upstream sockets. Installing is idempotent (chains are
 * re-declared, which flushes them; jumps are added only where missing) and removal leaves the
 * namespace as it was.
 */
import { runCommand } from '../util/exec.js';
import { WeftError } from '../errors.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, MARK_MASK, MESH_MARK, OUTBOUND_PORT, PROBE_SNAT_IP, REPLY_CONNMARK, REPLY_ROUTE_TABLE, REPLY_RULE_PREF } from '../config.js';

const PRERT = 'WEFT_PRERT';
const OUTPUT = 'WEFT_OUTPUT';
const hex = (n: number): string => `0x${n.toString(16)}`;
const mark = `${hex(MESH_MARK)}/${hex(MARK_MASK)}`;
const connmark = `${hex(REPLY_CONNMARK)}/${hex(MARK_MASK)}`;

export interface CaptureRuleOptions {
  /**
   * The node's own address (the pod's hostIP): connections from it reach the app without
   * capture, so kubelet probes pass under STRICT and ALLOW-only policies without touching the
   * node's namespace. Trade-off (docs/architecture.md "Kubelet probes"): any process on the
   * node can then reach the pod's ports unauthenticated, as it could with Istio's probe SNAT.
   */
  nodeIp?: string;
}

/** Rules of Weft's chains, per table. Kept as data so tests and `weft status` can show them. */
export function chainRules(options: CaptureRuleOptions = {}): Readonly<Record<'mangle' | 'nat', readonly string[]>> {
  return {
    mangle: [
      `-A ${PRERT} -m mark --mark ${mark} -j CONNMARK --set-xmark ${connmark}`,
      `-A ${OUTPUT} -m connmark --mark ${connmark} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
    ],
    nat: [
      `-A ${PRERT} -s ${PROBE_SNAT_IP}/32 -p tcp -m tcp -j ACCEPT`,
      ...(options.nodeIp ? [`-A ${PRERT} -s ${options.nodeIp}/32 -p tcp -m tcp ! --dport ${HBONE_PORT} -j ACCEPT`] : []),
      `-A ${PRERT} ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport ${HBONE_PORT} -m mark ! --mark ${mark} -j REDIRECT --to-ports ${INBOUND_PLAINTEXT_PORT}`,
      `-A ${OUTPUT} -d ${PROBE_SNAT_IP}/32 -p tcp -m tcp -j ACCEPT`,
      `-A ${OUTPUT} -p tcp -m mark --mark ${connmark} -j ACCEPT`,
      `-A ${OUTPUT} ! -d 127.0.0.1/32 -o lo -j ACCEPT`,
      `-A ${OUTPUT} ! -d 127.0.0.1/32 -p tcp -m mark ! --mark ${mark} -j REDIRECT --to-ports ${OUTBOUND_PORT}`,
    ],
  };
}

export const CHAIN_RULES = chainRules();

const JUMPS: readonly { table: 'mangle' | 'nat'; from: string; to: string }[] = [
  { table: 'mangle', from: 'PREROUTING', to: PRERT },
  { table: 'mangle', from: 'OUTPUT', to: OUTPUT },
  { table: 'nat', from: 'PREROUTING', to: PRERT },
  { table: 'nat', from: 'OUTPUT', to: OUTPUT },
];

/** Runs a program inside the namespace behind `netnsPath` (a path nsenter can open). */
function inNamespace(netnsPath: string, file: string, args: string[], input?: string) {
  return runCommand('nsenter', [`--net=${netnsPath}`, '--', file, ...args], input);
}

function jumpLine(j: (typeof JUMPS)[number]): string {
  return `-A ${j.from} -j ${j.to}`;
}

/** Which of Weft's jumps and chains exist now, read from iptables-save. */
function present(saved: string): { jumps: Set<string>; chains: Set<string> } {
  const jumps = new Set<string>();
  const chains = new Set<string>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(`:${PRERT} `) || line.startsWith(`:${OUTPUT} `)) chains.add(`${table}/${line.slice(1).split(' ')[0]}`);
    else if (line.startsWith('-A ')) {
      for (const j of JUMPS) if (j.table === table && line.trim() === jumpLine(j)) jumps.add(`${j.table}/${j.from}`);
    }
  }
  return { jumps, chains };
}
/** The iptables-save reader, for the fuzz target (test/fuzz). */
export { present as parseSavedRules };

async function save(netnsPath: string): Promise<string> {
  return (await inNamespace(netnsPath, 'iptables-save', ['-t', 'mangle'])).stdout + (await inNamespace(netnsPath, 'iptables-save', ['-t', 'nat'])).stdout;
}

/** Installs (or refreshes) the rules and the reply route in the pod's namespace. */
export async function installCaptureRules(netnsPath: string, options: CaptureRuleOptions = {}): Promise<void> {
  const chains = chainRules(options);
  try {
    const { jumps } = present(await save(netnsPath));
    let script = '';
    for (const table of ['mangle', 'nat'] as const) {
      script += `*${table}\n:${PRERT} - [0:0]\n:${OUTPUT} - [0:0]\n`;
      for (const j of JUMPS) if (j.table === table && !jumps.has(`${table}/${j.from}`)) script += `${jumpLine(j)}\n`;
      script += chains[table].join('\n') + '\nCOMMIT\n';
    }
    await inNamespace(netnsPath, 'iptables-restore', ['--noflush'], script);
    const rules = await inNamespace(netnsPath, 'ip', ['rule', 'show', 'pref', String(REPLY_RULE_PREF)]);
    if (!rules.stdout.includes(`lookup ${REPLY_ROUTE_TABLE}`)) {
      await inNamespace(netnsPath, 'ip', ['rule', 'add', 'fwmark', connmark, 'pref', String(REPLY_RULE_PREF), 'lookup', String(REPLY_ROUTE_TABLE)]);
    }
    await inNamespace(netnsPath, 'ip', ['route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(REPLY_ROUTE_TABLE)]);
  } catch (err) {
    throw new WeftError('WEFT_ERR_CAPTURE_RULES', `installing capture rules in ${netnsPath} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Removes everything installCaptureRules added; a namespace without Weft's rules is left as is. */
export async function removeCaptureRules(netnsPath: string): Promise<void> {
  try {
    const { jumps, chains } = present(await save(netnsPath));
    let script = '';
    for (const table of ['mangle', 'nat'] as const) {
      const lines: string[] = [];
      for (const j of JUMPS) if (j.table === table && jumps.has(`${table}/${j.from}`)) lines.push(`-D ${j.from} -j ${j.to}`);
      for (const chain of [PRERT, OUTPUT]) {
        if (chains.has(`${table}/${chain}`)) lines.push(`-F ${chain}`, `-X ${chain}`);
      }
      if (lines.length > 0) script += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
    }
    if (script) await inNamespace(netnsPath, 'iptables-restore', ['--noflush'], script);
    const rules = await inNamespace(netnsPath, 'ip', ['rule', 'show', 'pref', String(REPLY_RULE_PREF)]);
    if (rules.stdout.trim()) await inNamespace(netnsPath, 'ip', ['rule', 'del', 'pref', String(REPLY_RULE_PREF)]);
    await inNamespace(netnsPath, 'ip', ['route', 'flush', 'table', String(REPLY_ROUTE_TABLE)]).catch(() => undefined);
  } catch (err) {
    throw new WeftError('WEFT_ERR_CAPTURE_RULES', `removing capture rules in ${netnsPath} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** True when the namespace holds any of Weft's chains or its reply rule (used by tests and status). */
export async function hasCaptureRules(netnsPath: string): Promise<boolean> {
  const { jumps, chains } = present(await save(netnsPath));
  const rules = await inNamespace(netnsPath, 'ip', ['rule', 'show', 'pref', String(REPLY_RULE_PREF)]);
  return jumps.size > 0 || chains.size > 0 || rules.stdout.trim() !== '';
}
