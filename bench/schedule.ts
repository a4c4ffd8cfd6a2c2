/**
 * Open-loop schedule: request i is due at `start + i / rate`, whatever happened to the requests
 * before it. Latency is then measured from that intended time, so a stall of the path shows up
 * in the latency of every request that should have been sent during it (no coordinated
 * omission). Pure: times are plain numbers in milliseconds from any monotonic clock.
 */
export class OpenLoopSchedule {
  readonly rate: number;
  readonly total: number;
  readonly start: number;

  /** `rate` requests per second, `total` requests, first one due at `start` (ms). */
  constructor(rate: number, total: number, start: number) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number (got ${rate})`);
    if (!Number.isInteger(total) || total < 0) throw new RangeError(`total must be a non-negative integer (got ${total})`);
    this.rate = rate;
    this.total = total;
    this.start = start;
  }

  /** When request `i` should be sent (ms). */
  intended(i: number): number {
    // i * 1000 / rate, not i * interval: exact for integral rates, no drift over a long run.
    return this.start + (i * 1000) / this.rate;
  }

  /** How many requests are due by `now` (0..total): requests [0, dueBy(now)) should have been sent. */
  dueBy(now: number): number {
    if (now < this.start) return 0;
    const due = Math.floor(((now - this.start) * this.rate) / 1000) + 1;
    return due < this.total ? due : this.total;
  }

  /** When the last request is due (ms); `start` for an empty schedule. */
  end(): number {
    return this.total === 0 ? this.start : this.intended(this.total - 1);
  }

  /** The connection (0..connections-1) that carries request `i`: round robin. */
  static connectionOf(i: number, connections: number): number {
    return i % connections;
  }
}
