/**
 * The benchmark's own failure: a step that did not work (a system that did not start, a load
 * run that reported an error). The message says which step; `cause` carries the lower error.
 */
export class BenchError extends Error {
  readonly code = 'WEFT_ERR_BENCH';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
  }
}
