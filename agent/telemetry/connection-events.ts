/**
 * A live feed of connection opens, policy decisions and closes, for `weft status connections
 * --follow` (the admin API's /connections/stream, newline-delimited JSON).
 *
 * It costs nothing until someone listens: the proxy checks `hasSubscribers` before it builds an
 * event. An event is serialised once, whatever the number of readers. A reader is never waited
 * for: what it has not read stays in its response's buffer, and a reader whose buffer passes
 * `maxBufferedBytes` is dropped (its response destroyed), so a stalled reader costs the agent at
 * most that much memory, never an unbounded queue.
 */
import type http from 'node:http';

export type ConnectionEventKind = 'open' | 'decision' | 'close';

export interface ConnectionEvent {
  event: ConnectionEventKind;
  /** The agent's connection id (ties open, decision and close together). */
  id: number;
  /** ISO time of the event. */
  time: string;
  direction: 'outbound' | 'inbound';
  src: string;
  srcWorkload: string | undefined;
  srcPrincipal: string | undefined;
  dst: string;
  dstService: string | undefined;
  upstream: string;
  dstWorkload: string | undefined;
  dstPrincipal: string | undefined;
  mtls: boolean;
  /** decision and close: allow or deny (inbound only: the destination agent decides). */
  decision?: 'allow' | 'deny' | undefined;
  policy?: string | undefined;
  reason?: string | undefined;
  /** close only. */
  bytesFromClient?: number;
  bytesToClient?: number;
  durationMs?: number;
  error?: string | undefined;
  errorCode?: string | undefined;
  responseFlags?: string;
}

/** The default bound of what one reader may leave unread before it is dropped. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;

type Subscriber = (line: string) => void;

export class ConnectionEventHub {
  readonly #subscribers = new Set<Subscriber>();
  /** Readers dropped for falling behind, since start. */
  dropped = 0;

  get hasSubscribers(): boolean {
    return this.#subscribers.size > 0;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  publish(event: ConnectionEvent): void {
    if (this.#subscribers.size === 0) return;
    const line = JSON.stringify(event) + '\n';
    for (const s of this.#subscribers) s(line);
  }

  /** Adds a reader; returns the function that removes it. */
  subscribe(subscriber: Subscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  /**
   * Streams every event to `res` until the client goes away or falls more than
   * `maxBufferedBytes` behind. The first line (`{"event":"subscribed"}`) says the stream is live.
   */
  serve(req: http.IncomingMessage, res: http.ServerResponse, maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(JSON.stringify({ event: 'subscribed', time: new Date().toISOString(), maxBufferedBytes }) + '\n');
    const unsubscribe = this.subscribe((line) => {
      if (res.writableLength + line.length > maxBufferedBytes) {
        unsubscribe();
        this.dropped++;
        // Destroying the socket frees what the reader left unread; it sees the stream cut.
        res.destroy();
        return;
      }
      res.write(line);
    });
    const gone = (): void => {
      unsubscribe();
    };
    req.socket.on('close', gone);
    res.on('close', gone);
  }
}
