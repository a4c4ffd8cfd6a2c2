/**
 * Where a lab lives: the names of its network namespaces, its state directory, its files. One
 * place, so `down` removes exactly what `up` creates (the shared contract in ARCHITECTURE.md).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../errors.js';

/** The repository (this file is dist/agent/lab/paths.js once built). */
export const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_LAB_DIR = join(REPO_DIR, 'examples', 'bookinfo');
export const DEFAULT_LAB_NAME = 'lab';
/** The CLI the agents run (built JavaScript, not the TypeScript source). */
export const WEFT_MAIN = join(REPO_DIR, 'dist', 'agent', 'cli', 'main.js');

export const STATE_ROOT = '/run/weft/lab';
export const NETNS_DIR = '/run/netns';
export const ETC_NETNS_DIR = '/etc/netns';
/** Longest file name Linux allows; a netns name is a file in /run/netns and a dir in /etc/netns. */
const NAME_MAX = 255;

/**
 * Letters and digits only: `-` separates the parts of a namespace name, so a lab `a-b` would own
 * the namespaces of a lab `a` by prefix (`weft-a-`).
 */
const LAB_NAME = /^[a-z0-9]{1,20}$/;

export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw new WeftError(
      'WEFT_ERR_CONFIG',
      `invalid lab name "${name}": use 1-20 lower-case letters or digits (no "-": it separates the parts of the lab's namespace names)`,
    );
  }
  return name;
}

export function labPrefix(lab: string): string {
  return `weft-${lab}-`;
}

export function fabricNetns(lab: string): string {
  return `weft-${lab}-fabric`;
}

/** The network outside the cluster: a client host reaching the lab's external addresses. */
export function internetNetns(lab: string): string {
  return `weft-${lab}-internet`;
}

export function nodeNetns(lab: string, node: string): string {
  return checkNetnsName(`weft-${lab}-node-${node}`);
}

export function podNetns(lab: string, namespace: string, pod: string): string {
  return checkNetnsName(`weft-${lab}-pod-${namespace}-${pod}`);
}

function checkNetnsName(name: string): string {
  if (name.length > NAME_MAX) {
    throw new WeftError('WEFT_ERR_CONFIG', `network namespace name ${name} is longer than ${NAME_MAX} characters: use shorter names`);
  }
  return name;
}

/**
 * The lab a namespace name belongs to, for `down --all`: `weft-<lab>-fabric`, `weft-<lab>-internet`, `weft-<lab>-node-*`,
 * `weft-<lab>-pod-*`. Other `weft-*` names (a test's own namespaces) are not labs.
 */
export function labOfNetns(netns: string): string | undefined {
  const m = /^weft-([a-z0-9]{1,20})-(?:fabric$|internet$|node-.|pod-.)/.exec(netns);
  return m === null ? undefined : m[1];
}

export interface LabPaths {
  stateDir: string;
  stateFile: string;
  manifestsDir: string;
  logsDir: string;
  lockFile: string;
}

export function labPaths(lab: string): LabPaths {
  const stateDir = join(STATE_ROOT, lab);
  return {
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    manifestsDir: join(stateDir, 'manifests'),
    logsDir: join(stateDir, 'logs'),
    // Beside the state dir, not in it: `down` removes the state dir while holding the lock.
    lockFile: join(STATE_ROOT, `.${lab}.lock`),
  };
}

/** A node's Weft runtime directory (a real node's /var/run/weft): CNI requests, the handover marker. */
export function nodeRunDir(lab: string, node: string): string {
  return join(labPaths(lab).stateDir, 'run', node);
}

export function agentLogFile(lab: string, node: string): string {
  return join(labPaths(lab).logsDir, `agent-${node}.log`);
}

export function podLogFile(lab: string, namespace: string, pod: string): string {
  return join(labPaths(lab).logsDir, `pod-${namespace}-${pod}.log`);
}

export function etcNetnsDir(netns: string): string {
  return join(ETC_NETNS_DIR, netns);
}
