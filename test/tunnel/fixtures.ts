/** Shared by the identity and tunnel tests: a capturing logger, a fake clock, a test CA. */
import { waitFor as waitUntil } from '../helpers/wait.js';
import { CertificateAuthority, type CaKeyMaterial } from '../../agent/identity/ca.js';
import { PlacementAuthorizer } from '../../agent/identity/ca-auth.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { Clock, TimerHandle, Timers } from '../../agent/identity/clock.js';
import { requestCertificate, type WorkloadCertificate } from '../../agent/identity/manager.js';
import type { Logger } from '../../agent/log.js';

export const TD = 'cluster.local';
export const id = (ns: string, sa: string): string => `spiffe://${TD}/ns/${ns}/sa/${sa}`;

export { captureLogger, type LogLine } from '../helpers/logs.js';

/** Waits until `cond` holds, up to `ms` (the shared poller with this file's tighter default). */
export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  await waitUntil(cond, what, ms);
}

/** A clock and timers that move only when told to. */
export class FakeTime implements Clock, Timers {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Math.floor(Date.now() / 1000) * 1000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = ++this.#seq;
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms), fn });
    return handle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }
  /** When the earliest pending timer fires, if any. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }
  pending(): number {
    return this.#timers.size;
  }
  /** Moves to `at`, firing every timer due on the way in time order. */
  advanceTo(at: number): void {
    for (let guard = 0; guard < 10_000; guard++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= at && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = Math.max(this.#now, at);
  }
}

/** A CA with a fresh root that allows every identity on every node unless told otherwise. */
export function testCa(opts: { allow?: (node: string, ns: string, sa: string) => boolean; now?: () => number; lifetimeMs?: number; logger?: Logger; material?: CaKeyMaterial } = {}): CertificateAuthority {
  return new CertificateAuthority(opts.material ?? CertificateAuthority.generateRoot(TD, opts.now), {
    authorizer: new PlacementAuthorizer(opts.allow ?? (() => true)),
    trustDomain: TD,
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.lifetimeMs === undefined ? {} : { lifetimeMs: opts.lifetimeMs }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}

/** A workload certificate for `identity` straight from `ca`. */
export function issue(ca: CertificateAuthority, identity: string): Promise<WorkloadCertificate> {
  return requestCertificate(new InProcessCaClient(ca, 'node-a'), identity);
}
