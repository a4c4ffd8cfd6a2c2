/**
 * A request body kept for retries: the downstream body is forwarded to the current attempt's
 * upstream as it arrives (backpressure kept: the source pauses while the upstream is full or
 * while no attempt is attached, during a backoff or a wait for a connection) and remembered up
 * to a limit, so that a retry can send it again. Past the limit nothing is kept and the request
 * is no longer replayable: it is never retried (Envoy's buffer limit rule).
 */
import type { Readable, Writable } from 'node:stream';

export class ReplayBody {
  readonly #source: Readable;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflowed = false;
  #complete = false;
  #target: Writable | undefined;
  readonly #resume = (): void => {
    if (this.#target !== undefined) this.#source.resume();
  };

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.#limit = limit;
    source.on('data', (c: Buffer) => this.#data(c));
    source.on('end', () => {
      this.#complete = true;
      this.#target?.end();
    });
    source.pause();
  }

  /** Whether the whole body so far is kept (a retry can resend it). */
  get replayable(): boolean {
    return !this.#overflowed;
  }

  /** Sends the kept body to `target`, then what still arrives. Call only while replayable or for the first attempt. */
  attach(target: Writable): void {
    this.#target = target;
    let ok = true;
    for (const c of this.#chunks) ok = target.write(c) && ok;
    if (this.#complete) {
      target.end();
      return;
    }
    if (ok) this.#source.resume();
    else target.once('drain', this.#resume);
  }

  /** The attempt is over: arriving bytes wait (the source pauses) for the next attach. */
  detach(): void {
    const t = this.#target;
    if (t === undefined) return;
    t.off('drain', this.#resume);
    this.#target = undefined;
    this.#source.pause();
  }

  #data(c: Buffer): void {
    if (!this.#overflowed) {
      this.#size += c.length;
      if (this.#size > this.#limit) {
        this.#overflowed = true;
        this.#chunks = [];
      } else this.#chunks.push(c);
    }
    const t = this.#target;
    if (t === undefined) {
      // Between attempts the source is paused; a chunk already on its way is kept above for the next one.
      this.#source.pause();
      return;
    }
    if (!t.write(c)) {
      this.#source.pause();
      t.once('drain', this.#resume);
    }
  }
}
