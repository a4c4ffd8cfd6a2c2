/**
 * Reads an agent's admin API. The admin port listens on the agent's own loopback, so from
 * outside the agent's namespace the socket is made inside it (`netns`), as `weft status` and
 * the lab do.
 */
import http from 'node:http';
import net from 'node:net';
import { createTcpSocket, openNetns, closeNetns } from '../../native/index.js';
import { parseHostPort } from '../util/host-port.js';
import { WeftError } from '../errors.js';

export interface AdminTarget {
  label: string;
  admin: string;
  netns?: string;
}

/** GET a path on an agent's admin API, from inside `netns` when given (the admin port is local to the agent's namespace). */
export async function fetchAdmin(target: AdminTarget, path: string): Promise<unknown> {
  const { host, port } = parseHostPort(target.admin);
  let nsFd = -1;
  try {
    const createConnection = (): net.Socket => {
      if (!target.netns) return net.connect(port, host);
      nsFd = openNetns(target.netns);
      const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
      return socket.connect(port, host);
    };
    return await new Promise((resolve, reject) => {
      const req = http.request({ host, port, path, createConnection, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString()));
          } catch (err) {
            reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: the admin API answered with something that is not JSON`, { cause: err }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
      req.on('error', (err) =>
        reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: cannot reach the agent's admin API at ${target.admin}${target.netns ? ` in ${target.netns}` : ''}: ${err.message} (is the agent running?)`, { cause: err })),
      );
      req.end();
    });
  } finally {
    if (nsFd >= 0) closeNetns(nsFd);
  }
}


/**
 * Follows a newline-delimited JSON stream of an agent's admin API (/connections/stream): calls
 * `onLine` with each parsed line until the agent ends the stream (resolves) or the connection
 * fails (rejects). `stop()` ends it from this side.
 */
export function streamAdmin(target: AdminTarget, path: string, onLine: (line: Record<string, unknown>) => void): { done: Promise<void>; stop(): void } {
  const { host, port } = parseHostPort(target.admin);
  let nsFd = -1;
  let stopped = false;
  const createConnection = (): net.Socket => {
    if (!target.netns) return net.connect(port, host);
    nsFd = openNetns(target.netns);
    try {
      const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
      return socket.connect(port, host);
    } finally {
      closeNetns(nsFd);
      nsFd = -1;
    }
  };
  const req = http.request({ host, port, path, createConnection });
  const done = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: ${path} answered ${String(res.statusCode)} (an agent older than this weft?)`));
        return;
      }
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const text = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (text.trim() === '') continue;
          try {
            onLine(JSON.parse(text) as Record<string, unknown>);
          } catch {
            // A line that is not JSON is skipped; the next one stands alone.
          }
        }
      });
      res.on('end', () => resolve());
      res.on('error', (err) => (stopped ? resolve() : reject(err)));
      res.on('aborted', () => (stopped ? resolve() : reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: the agent cut the stream (this reader fell too far behind, or the agent stopped)`))));
    });
    req.on('error', (err) => {
      if (stopped) return resolve();
      reject(new WeftError('WEFT_ERR_CONFIG', `${target.label}: cannot follow ${path} at ${target.admin}: ${err.message} (is the agent running?)`, { cause: err }));
    });
  });
  req.end();
  return {
    done,
    stop: () => {
      stopped = true;
      req.destroy();
    },
  };
}
