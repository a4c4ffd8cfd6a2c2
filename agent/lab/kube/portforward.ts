/**
 * pods/portforward over WebSocket, the channel protocol the kubelet speaks (`v4.channel.k8s.io`,
 * what @kubernetes/client-node's PortForward and older kubectl use): for the i-th requested
 * port, channel 2i carries data and 2i+1 errors; the server opens each channel with the port
 * number (2 bytes, little endian); every message is one channel byte and the payload. The lab
 * says where a pod's port is (`connect`); the API server has authenticated the caller and
 * authorized `create pods/portforward` before this runs.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export const PORTFORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'channel.k8s.io'] as const;

/** Opens a connection to `port` of pod namespace/name (as the kubelet does, on the pod's localhost). */
export type PodPortConnector = (namespace: string, pod: string, port: number) => Promise<Duplex>;

export interface UpgradeTarget {
  namespace: string;
  name: string;
  query: URLSearchParams;
}

/** A handler for upgraded subresource requests (see KubeApiServer.setUpgradeHandler). */
export type SubresourceUpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, target: UpgradeTarget) => void;

function channelFrame(channel: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([channel]), payload]);
}

function portFrame(channel: number, port: number): Buffer {
  const b = Buffer.alloc(3);
  b[0] = channel;
  b.writeUInt16LE(port, 1);
  return b;
}

/** The pods/portforward upgrade handler, connecting through `connect`. */
export function portForwardHandler(connect: PodPortConnector): SubresourceUpgradeHandler {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => PORTFORWARD_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  return (req, socket, head, target) => {
    const ports = target.query.getAll('ports').flatMap((p) => p.split(',')).map(Number);
    if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nports: one or more port numbers are required\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const conns: (Duplex | undefined)[] = ports.map(() => undefined);
      // What the client sent before the pod's port answered, written once it does.
      const pending: Buffer[][] = ports.map(() => []);
      const close = (): void => {
        for (const c of conns) c?.destroy();
        ws.close();
      };
      ws.on('close', () => {
        for (const c of conns) c?.destroy();
      });
      ws.on('error', () => close());
      ports.forEach((port, i) => {
        ws.send(portFrame(2 * i, port));
        ws.send(portFrame(2 * i + 1, port));
        connect(target.namespace, target.name, port).then(
          (conn) => {
            conns[i] = conn;
            for (const b of pending[i]!.splice(0)) conn.write(b);
            conn.on('data', (chunk: Buffer) => ws.send(channelFrame(2 * i, chunk)));
            conn.on('end', close);
            conn.on('error', (err: Error) => {
              ws.send(channelFrame(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${target.namespace}/${target.name}: ${err.message}`)));
              close();
            });
          },
          (err: unknown) => {
            ws.send(channelFrame(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${target.namespace}/${target.name}: ${(err as Error).message}`)));
            close();
          },
        );
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary || data.length === 0) return;
        const channel = data[0]!;
        if (channel % 2 !== 0 || channel / 2 >= ports.length) return;
        const conn = conns[channel / 2];
        if (conn === undefined) pending[channel / 2]!.push(Buffer.from(data.subarray(1)));
        else conn.write(data.subarray(1));
      });
    });
  };
}
