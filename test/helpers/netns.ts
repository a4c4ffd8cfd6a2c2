import { execFileSync } from 'node:child_process';

/** Runs a command and returns its stdout; throws with stderr on failure. */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip netns exec NS cmd...` */
export function inNs(ns: string, cmd: string, args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/**
 * A network namespace that belongs to one test: created fresh (a leftover of a crashed run with
 * the same name is deleted first) with loopback up; `remove()` deletes it.
 */
export function createTestNetns(name: string, setup: string[][] = []): { name: string; path: string; remove(): void } {
  removeNetns(name);
  run('ip', ['netns', 'add', name]);
  inNs(name, 'ip', ['link', 'set', 'lo', 'up']);
  for (const cmd of setup) inNs(name, cmd[0]!, cmd.slice(1));
  return { name, path: `/var/run/netns/${name}`, remove: () => removeNetns(name) };
}

export function removeNetns(name: string): void {
  try {
    run('ip', ['netns', 'del', name]);
  } catch {
    // not there: nothing to remove
  }
}

export function netnsList(): string[] {
  return run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}
