/** Time as the identity and tunnel code sees it: injectable so tests advance it without sleeping. */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** Opaque timer handle returned by `Timers.setTimeout`. */
export type TimerHandle = unknown;

export interface Timers {
  /** Background timers: they must not keep the process alive (real ones are unref'd). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = { now: Date.now };

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
};

/** setTimeout's limit (2^31-1 ms, about 24.8 days); longer delays are re-armed on expiry. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
