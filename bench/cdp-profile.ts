/**
 * Runs inside an agent's network namespace (`ip netns exec <node> node --experimental-websocket
 * dist/bench/cdp-profile.js <port> <out>`): attaches to the agent's inspector (opened with
 * SIGUSR1, listening on 127.0.0.1 of that namespace), starts the V8 CPU profiler, prints
 * "started", and on SIGTERM stops it and writes the .cpuprofile (the format `node --cpu-prof`
 * writes, readable by Chrome DevTools and bench/profile-summary). With `heap` as the third
 * argument it writes a heap snapshot instead and exits.
 */
import { writeFile } from 'node:fs/promises';

interface CdpSocket {
  onopen: (() => void) | null;
  onmessage: ((ev: { data: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(): void;
}
// Node 20's WebSocket client is behind --experimental-websocket and has no typings in @types/node.
const WebSocketCtor = (globalThis as unknown as { WebSocket: new (url: string) => CdpSocket }).WebSocket;

async function debuggerUrl(port: number, deadline: number): Promise<string> {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`);
      const list = (await res.json()) as { webSocketDebuggerUrl: string }[];
      if (list[0] !== undefined) return list[0].webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no inspector on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const out = process.argv[3]!;
  const mode = process.argv[4] ?? 'cpu';
  const url = await debuggerUrl(port, Date.now() + 10_000);
  const ws = new WebSocketCtor(url);
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  const chunks: string[] = [];
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data) as { id?: number; result?: unknown; method?: string; params?: { chunk?: string }; error?: unknown };
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(msg.params!.chunk!);
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.error ?? msg.result);
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(`inspector websocket: ${String(e)}`));
  });
  const call = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  if (mode === 'heap') {
    await call('HeapProfiler.enable');
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    await writeFile(out, chunks.join(''));
    ws.close();
    return;
  }
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  await call('Profiler.start');
  process.stdout.write('started\n');
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  const result = (await call('Profiler.stop')) as { profile: unknown };
  await writeFile(out, JSON.stringify(result.profile));
  ws.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`cdp-profile: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
