/**
 * The in-pod fetch script answers every request, also when the peer resets each connection as
 * soon as it has accepted it (what an agent does to a connection it refuses). On Node 20 the old
 * script, without a referenced timer, lost such a request: node exited 0 with nothing printed,
 * within a hundred requests every time on this machine (CI run of stop 19: "the fetch script
 * printed no answers"). Loopback only, no lab, no root.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { FETCH_SCRIPT } from './pod-fetch.js';

const REQUESTS = 100;
let server: Server;
let port = 0;
const open = new Set<Socket>();

before(async () => {
  server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  for (const s of open) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test(`the fetch script prints an answer for each of ${REQUESTS} requests whose connection is reset at once`, async () => {
  const reqs = Array.from({ length: REQUESTS }, (_, i) => ({ url: `http://127.0.0.1:${port}/reset/${i}`, timeoutMs: 2000 }));
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', FETCH_SCRIPT, JSON.stringify(reqs)], { timeout: 120_000 });
  assert.ok(stdout.startsWith('['), `the script printed no answers: ${JSON.stringify(stdout)}`);
  const answers = JSON.parse(stdout) as { status?: number; error?: string }[];
  assert.equal(answers.length, REQUESTS);
  for (const a of answers) assert.match(a.error ?? `answered ${String(a.status)}`, /^(ECONNRESET|UND_ERR_SOCKET|TimeoutError|ECONNREFUSED)\b/);
});
