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

