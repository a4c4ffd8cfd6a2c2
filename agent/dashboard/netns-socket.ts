/**
 * Sockets made inside another network namespace (a lab's fabric or node namespace, or the host's
 * from inside a lab): the socket stays in the namespace it was made in, whatever the process's.
 */
import net from 'node:net';
import { closeNetns, createTcpSocket, openNetns } from '../../native/index.js';

/** An unconnected client socket made inside `netnsPath` (call `.connect(port, host)` on it). */
export function socketInNetns(netnsPath: string): net.Socket {
  const nsFd = openNetns(netnsPath);
  try {
    return new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
  } finally {
    closeNetns(nsFd);
  }
}

/** A listening socket's fd on `address:port` inside `netnsPath` (hand it to server.listen({ fd })). */
export function listeningFdInNetns(netnsPath: string, address: string, port: number): number {
  const nsFd = openNetns(netnsPath);
  try {
    return createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address, port }, listenBacklog: 128 });
  } finally {
    closeNetns(nsFd);
  }
}
