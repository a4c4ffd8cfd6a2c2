/**
 * `weft status routes --admin H:P` prints a waypoint's route statuses from its /config_dump
 * (`routes`: RouteStore.statuses()). The admin API is a stand-in on loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { RouteStore } from '../../agent/l7/store.js';
import { routeStatusRows } from '../../agent/l7/status.js';
import { backend, CART_PARENT, httpRoute, model, SHOP } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));

test('weft status routes shows each route and parent with its conditions', async () => {
  const store = new RouteStore();
  store.update(model(SHOP, [httpRoute('r', { parentRefs: [CART_PARENT], rules: [{ backendRefs: [backend('missing')] }] })]));
  let body: unknown = { node: 'waypoint shop/waypoint', routes: store.statuses() };
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/config_dump' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/config_dump' ? body : { error: 'no' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const admin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { stdout } = await promisify(execFile)(process.execPath, [MAIN, 'status', 'routes', '--admin', admin], { encoding: 'utf8' });
    const lines = stdout.trim().split('\n');
    assert.match(lines[1]!, /^ROUTE\s+PARENT\s+ACCEPTED\s+RESOLVEDREFS\s+MESSAGE$/);
    assert.match(lines[2]!, /^HTTPRoute shop\/r\s+Service shop\/cart\s+True\s+False \(BackendNotFound\)\s+backendRef shop\/missing: Service not found$/);
    const json = JSON.parse((await promisify(execFile)(process.execPath, [MAIN, 'status', 'routes', '--admin', admin, '--json'], { encoding: 'utf8' })).stdout) as { routes: unknown }[];
    assert.deepEqual(json[0]!.routes, JSON.parse(JSON.stringify(store.statuses())));
    // A waypoint may serve the rows themselves (routeStatusRows): printed the same.
    body = { node: 'waypoint shop/waypoint', routes: routeStatusRows(store.statuses()) };
    const again = await promisify(execFile)(process.execPath, [MAIN, 'status', 'routes', '--admin', admin], { encoding: 'utf8' });
    assert.equal(again.stdout, stdout);
    // A node agent's dump has no routes: said so, not an empty table.
    body = { node: 'n1', workloads: [] };
    const agent = await promisify(execFile)(process.execPath, [MAIN, 'status', 'routes', '--admin', admin], { encoding: 'utf8' });
    assert.match(agent.stdout, /no routes here \(not a waypoint/);
  } finally {
    server.close();
  }
});
