/**
 * Listening on a socket made with native/createTcpSocket (SO_REUSEPORT, inside a pod's
 * namespace): the server takes the fd, and a listen that fails closes it, so a failed start
 * leaks no descriptor.
 */
import { once } from 'node:events';
import type net from 'node:net';
import { closeFd } from '../../native/index.js';

export async function listenOnFd(server: net.Server, fd: number): Promise<void> {
  server.listen({ fd });
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}
