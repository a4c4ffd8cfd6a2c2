/**
 * The server pod's application: a request/response server (protocol.ts) and a sink that reads
 * and discards everything. Small on purpose: the benchmark measures the path, not the app.
 * Run: `node dist/bench/server.js [--rr-port 7000] [--sink-port 7001]`.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { RequestParser, RR_PORT, SINK_PORT } from './protocol.js';

/** Responses by size: built once, written many times (Node copies nothing for a Buffer write). */
const responses = new Map<number, Buffer>();

function responseOf(size: number): Buffer {
  let buf = responses.get(size);
  if (buf === undefined) {
    buf = Buffer.alloc(size, 0x62);
    // Bounded: a client asking for many different sizes must not grow the cache forever.
    if (responses.size < 64) responses.set(size, buf);
  }
  return buf;
}

function onRrConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  const parser = new RequestParser((size) => {
    socket.write(responseOf(size));
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk);
    } catch {
      socket.destroy();
    }
  });
  socket.on('end', () => socket.end());
  socket.on('error', ignore);
}

function onSinkConnection(socket: net.Socket): void {
  socket.on('data', ignore);
  socket.on('end', () => socket.end());
  socket.on('error', ignore);
}

function ignore(): void {
  // A client reset is the end of its connection, nothing more.
}

function main(): void {
  const { values } = parseArgs({
    options: { 'rr-port': { type: 'string', default: String(RR_PORT) }, 'sink-port': { type: 'string', default: String(SINK_PORT) } },
  });
  const servers = [
    net.createServer(onRrConnection).listen({ port: Number(values['rr-port']), backlog: 4096 }),
    net.createServer(onSinkConnection).listen({ port: Number(values['sink-port']), backlog: 4096 }),
  ];
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
