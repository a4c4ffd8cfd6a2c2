/**
 * The waypoint's cost per request, in process: test/waypoint/harness.ts's waypoint, one backend
 * pod, and a bounded keep-alive node:http load over loopback (a source agent's tunnel in front).
 * Prints CPU per 1000 requests (process.cpuUsage: the client, tunnel and backend share the
 * process, so compare runs, not the absolute figure with the lab's) and RSS / heap at idle and
 * after load. `node dist/bench/waypoint-inproc.js [requests] [concurrency]`.
 */
import http from 'node:http';
import { startHarness } from '../test/waypoint/harness.js';

const WEB = '198.18.156.30';
const requests = Number(process.argv[2] ?? 4000);
const concurrency = Number(process.argv[3] ?? 8);

function mb(n: number): number {
  return Math.round((n / 1048576) * 10) / 10;
}

async function load(port: number, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/item', agent }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
}

async function main(): Promise<void> {
  const h = await startHarness({ pods: [{ name: 'web-1', ip: '198.18.156.10', labels: { app: 'web' } }], services: [{ name: 'web', vip: WEB, selector: { app: 'web' } }] });
  try {
    const port = await h.tunnelPort(WEB, 80);
    await load(port, 300); // warm-up: JIT, connections
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const idle = process.memoryUsage();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await load(port, requests);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const after = process.memoryUsage();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(JSON.stringify({ requests, concurrency, cpuMsPer1000: Math.round((cpuMs / requests) * 1000 * 10) / 10, reqPerS: Math.round(requests / (wall / 1000)), idleRssMb: mb(idle.rss), idleHeapMb: mb(idle.heapUsed), afterRssMb: mb(after.rss), afterHeapMb: mb(after.heapUsed), logLines: h.logs.length }));
  } finally {
    await h.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
