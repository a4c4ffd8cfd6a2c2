/**
 * Runs the system tools the lab drives (ip, nsenter, iptables-restore, sysctl). Arguments are
 * passed as an argv array, never through a shell; input (ip -batch, iptables-restore) goes to
 * stdin. A failure becomes a WeftError naming the step, the command and what it printed.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import { NETNS_DIR } from './paths.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** Return the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean;
  /** What the lab was doing, for the error message ("create pod default/details-v1"). */
  step?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const step = options.step ?? 'run a command';
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      const hint = (e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (not installed? run `npm run setup` as root)' : '';
      reject(new WeftError('WEFT_ERR_LAB', `${step}: cannot run ${file}${hint}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      const result: RunResult = {
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code === 0 || options.allowFailure === true) {
        resolvePromise(result);
        return;
      }
      const why = signal !== null ? `killed by ${signal}` : `exit code ${result.code}`;
      const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
      reject(new WeftError('WEFT_ERR_LAB', `${step}: ${file} ${args.join(' ')} failed (${why}): ${said}`));
    });
    // A tool that exits before reading its input makes stdin emit EPIPE; its exit code says why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** `ip -batch -` (optionally `-n <netns>`): many changes for the price of one process. */
export function ipBatch(netns: string | undefined, lines: readonly string[], step: string): Promise<RunResult> {
  const args = netns === undefined ? ['-batch', '-'] : ['-n', netns, '-batch', '-'];
  return run('ip', args, { input: lines.join('\n') + '\n', step });
}

/** A tool run inside a namespace's network stack only (nsenter: no mount namespace of its own). */
export function inNetns(netns: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('nsenter', [`--net=${join(NETNS_DIR, netns)}`, '--', file, ...args], options);
}
