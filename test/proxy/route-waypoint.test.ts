/**
 * A waypointed service end to end in process (issue 11, point 2; needs root): two pod
 * namespaces and the agent (test/helpers/two-pods.ts) plus a third namespace W holding a fake
 * waypoint: an HBONE server with the waypoint's certificate that records each CONNECT and, as a
 * waypoint does, opens its own HBONE stream to the destination pod with `forwarded: for=<client>`.
 *
 *   A (client, captured) --wpa/eth0-- W 198.18.125.2 --eth1/wpb-- B (server, captured)
 *   A --eth0-- B for L4
 *
 * Shown: the source agent tunnels a VIP connection to the waypoint with `:authority` VIP:port and
 * checks the waypoint's identity (a wrong one is refused); the destination agent believes the
 * waypoint's `forwarded` (policy ipBlocks see the client) and ignores the same header from
 * another identity; a waypoint without a ready pod refuses the connection with
 * WEFT_ERR_WAYPOINT_UNAVAILABLE; removing the label returns the service to L4 at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { ClientHttp2Stream } from 'node:http2';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';
import { createTestNetns, inNs, removeNetns, run } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { closeNetns, createTcpSocket, openNetns } from '../../native/index.js';
import { createHboneServer, type HboneServer, type HboneStreamInfo } from '../../agent/tunnel/server.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { requestCertificate, type WorkloadCertificate } from '../../agent/identity/manager.js';
import { silentLogger } from '../../agent/log.js';
import { configDump } from '../../agent/admin/server.js';

const SUBNET = 124;
const W_IP = '198.18.125.2';
const W = 'weft-test-bindwp-w';
const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

let t: TwoPods;
let fdW = -1;
let server: HboneServer | undefined;
let pool: HbonePool | undefined;
const seen: HboneStreamInfo[] = [];
const certs = new Map<string, WorkloadCertificate>();
/** What the fake waypoint presents to source agents, and the identity it uses towards B. */
let presented = id('waypoint');
let forwardAs = id('waypoint');

const plain = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '');

function waypointManifests(ready: boolean): string {
  return [
    'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: waypoint\n  namespace: shop\nspec:\n  gatewayClassName: weft-waypoint\n  listeners:\n  - name: mesh\n    port: 15008\n    protocol: HBONE\n',
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: waypoint\n  namespace: shop\n  labels:\n    gateway.networking.k8s.io/gateway-name: waypoint\n    weft.dev/mesh: disabled\nspec:\n  nodeName: node-1\n  serviceAccountName: waypoint\n  containers:\n  - name: waypoint\n    command: [sleep, infinity]\nstatus:\n  phase: Running\n  podIP: ${W_IP}\n  conditions:\n  - type: Ready\n    status: "${ready ? 'True' : 'False'}"\n`,
  ].join('---\n');
}

function serviceManifest(labels: Record<string, string>): string {
  const l = Object.entries(labels).map(([k, v]) => `\n    ${k}: ${v}`).join('');
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: server\n  namespace: shop${l ? `\n  labels:${l}` : ''}\nspec:\n  clusterIP: ${t.VIP}\n  selector:\n    app: server\n  ports:\n  - port: 80\n    targetPort: 9080\n`;
}

/** The fake waypoint: one HBONE stream to B's pod per CONNECT it accepts, client named in `forwarded`. */
function onWaypointStream(stream: import('node:http2').ServerHttp2Stream, info: HboneStreamInfo): void {
  seen.push(info);
  stream.on('error', () => undefined);
  pool!
    .connect({ sourceIdentity: forwardAs, destination: { host: t.IP_B, port: 15008 }, expectedIdentity: id('server'), authority: `${t.IP_B}:9080`, headers: { forwarded: `for="${plain(info.remoteAddress)}:${info.remotePort ?? 0}"` } })
    .then(
      (up: ClientHttp2Stream) => {
        up.on('error', () => stream.destroy());
        stream.respond({ ':status': 200 });
        stream.pipe(up);
        up.pipe(stream);
      },
      () => {
        if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': 503 }, { endStream: true });
      },
    );
}

before(async () => {
  t = await setupTwoPods('bindwp', SUBNET);
  createTestNetns(W);
  // W has one address on two links: towards A (the source) and towards B (the destination).
  run('ip', ['link', 'add', 'wpa', 'netns', t.A, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', W]);
  run('ip', ['link', 'add', 'wpb', 'netns', t.B, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', W]);
  for (const dev of ['eth0', 'eth1']) {
    inNs(W, 'ip', ['addr', 'add', `${W_IP}/32`, 'dev', dev]);
    inNs(W, 'ip', ['link', 'set', dev, 'up']);
  }
  inNs(W, 'ip', ['route', 'add', `${t.IP_A}/32`, 'dev', 'eth0']);
  inNs(W, 'ip', ['route', 'add', `${t.IP_B}/32`, 'dev', 'eth1']);
  inNs(t.A, 'ip', ['link', 'set', 'wpa', 'up']);
  inNs(t.A, 'ip', ['route', 'add', `${W_IP}/32`, 'dev', 'wpa']);
  inNs(t.B, 'ip', ['link', 'set', 'wpb', 'up']);
  inNs(t.B, 'ip', ['route', 'add', `${W_IP}/32`, 'dev', 'wpb']);
  fdW = openNetns(`/var/run/netns/${W}`);

  t.writeFile('waypoint.yaml', waypointManifests(true));
  t.writeFile('svc.yaml', serviceManifest({ 'weft.dev/use-waypoint': 'waypoint' }));
  await waitFor(() => t.agent.model.services.get('shop/server')?.waypoint === 'shop/waypoint' && t.agent.model.waypoints.get('shop/waypoint')?.endpoints.length === 1, 'the service bound to a waypoint with a ready pod');

  const ca = new InProcessCaClient(t.ca!, 'node-1');
  for (const sa of ['waypoint', 'server', 'client']) certs.set(id(sa), await requestCertificate(ca, id(sa)));
  server = createHboneServer({ credentials: () => certs.get(presented), onStream: onWaypointStream, logger: silentLogger });
  await server.listen({ fd: createTcpSocket({ netnsFd: fdW, reuseAddress: true, bind: { address: W_IP, port: 15008 } }) });
  pool = new HbonePool({
    credentials: async (identity) => certs.get(identity)!,
    createSocket: (host, port) => new net.Socket({ fd: createTcpSocket({ netnsFd: fdW }), readable: true, writable: true }).connect(port, host),
    logger: silentLogger,
  });
});

after(async () => {
  pool?.destroy();
  await server?.close({ timeoutMs: 100 }).catch(() => undefined);
  if (fdW >= 0) closeNetns(fdW);
  removeNetns(W);
  await t?.cleanup();
});

/** A request that the mesh refuses resets or closes without an answer: '' or an error. */
async function refused(host: string, port: number): Promise<boolean> {
  return t.request(host, port, 'x').then((reply) => reply === '', () => true);
}

test('the source agent checks the identity the waypoint presents: a waypoint pod with another identity is refused', async () => {
  presented = id('server');
  const before = seen.length;
  assert.ok(await refused(t.VIP, 80), 'no answer through a waypoint with the wrong identity');
  const line = await waitFor(() => t.logs.find((l) => l['msg'] === 'outbound: HBONE tunnel failed; connection reset' && l['waypoint'] === 'shop/waypoint'), 'the tunnel failure logged with the waypoint');
  assert.match(JSON.stringify(line['err']), /WEFT_ERR_TLS_PEER_IDENTITY/);
  assert.equal(seen.length, before, 'no CONNECT reached the wrong server');
  presented = id('waypoint');
});

test('a VIP connection goes to the waypoint: authority the VIP:port, the client identity proven; the destination believes its forwarded', async () => {
  const reply = await t.request(t.VIP, 80, 'via-waypoint');
  // The app sees the TCP peer: the waypoint.
  assert.equal(reply, `${W_IP}|via-waypoint`);
  const connect = seen[seen.length - 1]!;
  assert.equal(connect.authority, `${t.VIP}:80`);
  assert.equal(connect.peerIdentity, id('client'));
  assert.equal(plain(connect.remoteAddress), t.IP_A);

  const outbound = await waitFor(() => t.logs.find((l) => l['direction'] === 'outbound' && l['msg'] === 'connection closed' && l['dst_service'] === 'shop/server' && l['dst_workload'] === 'shop/waypoint'), 'source access log: the service as destination_service, the waypoint as destination workload');
  assert.equal(outbound['mtls'], true);
  const inbound = await waitFor(() => t.logs.find((l) => l['direction'] === 'inbound' && l['msg'] === 'connection closed' && l['src_principal'] === id('waypoint') && l['error'] === undefined), 'destination access log of the waypoint connection');
  assert.match(String(inbound['src']), new RegExp(`^${t.IP_A.replace(/\./g, '\\.')}:`), 'the source is the client the waypoint forwarded for');
  assert.match(String(inbound['peer']), new RegExp(`^${W_IP.replace(/\./g, '\\.')}:`), 'the waypoint is named as the peer');
});

test('the config dump (weft status waypoints / services) shows the waypoint, its state and the services bound to it', () => {
  const dump = configDump({ ready: true, model: t.agent.model, inputs: t.agent.inputs, captured: t.agent.captured, refusals: () => [] });
  assert.deepEqual(dump.waypoints, [{ key: 'shop/waypoint', identity: id('waypoint'), endpoints: [`${W_IP}:15008`], state: 'ready', services: ['shop/server'] }]);
  assert.equal(dump.services.find((s) => s.key === 'shop/server')?.waypoint, 'shop/waypoint');
});

test("policy sees the forwarded client's address from the waypoint, and ignores a forged forwarded from any other identity", async () => {
  let gen = t.agent.inputs.policy.generation;
  t.writeFile('policy.yaml', `apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: only-client-ip\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: server\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        ipBlocks: ["${t.IP_A}/32"]\n`);
  await waitFor(() => t.agent.inputs.policy.generation > gen, 'policy applied');
  assert.equal(await t.request(t.VIP, 80, 'allowed'), `${W_IP}|allowed`, 'the waypoint vouches for the client address');

  forwardAs = id('client');
  try {
    assert.ok(await refused(t.VIP, 80), 'the same forwarded header from a non-waypoint identity does not make it the client');
    const denied = await waitFor(() => t.logs.find((l) => l['direction'] === 'inbound' && l['decision'] === 'deny' && l['src_principal'] === id('client') && String(l['src']).startsWith(`${W_IP}:`)), 'the deny names the real peer address');
    assert.equal(denied['peer'], undefined, 'no forwarding peer: the header was ignored');
  } finally {
    forwardAs = id('waypoint');
    gen = t.agent.inputs.policy.generation;
    t.removeFile('policy.yaml');
    await waitFor(() => t.agent.inputs.policy.generation > gen, 'policy removed');
  }
});

test('a waypoint without a ready pod: the connection is refused with WEFT_ERR_WAYPOINT_UNAVAILABLE and a logged reason, never sent to the endpoints', async () => {
  t.writeFile('waypoint.yaml', waypointManifests(false));
  await waitFor(() => t.agent.model.waypoints.get('shop/waypoint')?.endpoints.length === 0, 'the waypoint pod not ready');
  const before = seen.length;
  assert.ok(await refused(t.VIP, 80));
  const line = await waitFor(() => t.logs.find((l) => l['code'] === 'WEFT_ERR_WAYPOINT_UNAVAILABLE'), 'the refusal logged with its code');
  assert.match(String(line['msg']), /service shop\/server uses waypoint shop\/waypoint, but it has no ready pod/);
  assert.equal(seen.length, before);
  const record = await waitFor(() => t.logs.find((l) => l['direction'] === 'outbound' && l['error_code'] === 'WEFT_ERR_WAYPOINT_UNAVAILABLE'), 'the refused connection in the access log');
  assert.equal(record['dst_service'], 'shop/server');
  t.writeFile('waypoint.yaml', waypointManifests(true));
  await waitFor(() => t.agent.model.waypoints.get('shop/waypoint')?.endpoints.length === 1, 'the waypoint pod ready again');
});

test('a pod IP of the waypointed service is not sent to the waypoint', async () => {
  const before = seen.length;
  assert.equal(await t.request(t.IP_B, 9080, 'by-ip'), `${t.IP_A}|by-ip`);
  assert.equal(seen.length, before);
});

test('removing the label returns the service to L4 at the next connection', async () => {
  t.writeFile('svc.yaml', serviceManifest({}));
  await waitFor(() => t.agent.model.services.get('shop/server')?.waypoint === undefined, 'the label removed');
  const before = seen.length;
  assert.equal(await t.request(t.VIP, 80, 'l4'), `${t.IP_A}|l4`);
  assert.equal(seen.length, before, 'the waypoint saw nothing');
});
