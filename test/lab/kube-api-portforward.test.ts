/**
 * pods/portforward (client-node's PortForward over WebSocket) and pods/proxy of the lab's API
 * server, reaching a server that listens on 127.0.0.1 inside a pod's network namespace. Needs
 * root (ip netns).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { CoreV1Api, PortForward } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { closeNetns, createTcpSocket, openNetns } from '../../native/index.js';
import { createTestNetns } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { rawRequest, startTestApi, type TestApi } from './kube-api-helpers.js';

const NS = 'weft-kapi-pfpod';
let netns: ReturnType<typeof createTestNetns>;
let api: TestApi;
let app: http.Server;

before(async () => {
  netns = createTestNetns(NS);
  const fd = openNetns(netns.path);
  try {
    app = http.createServer((req, res) => res.end(`hello from the pod: ${req.method} ${req.url}`));
    app.listen({ fd: createTcpSocket({ netnsFd: fd, reuseAddress: true, bind: { address: '127.0.0.1', port: 8080 }, listenBacklog: 16 }) });
    await once(app, 'listening');
  } finally {
    closeNetns(fd);
  }
  api = await startTestApi();
  api.server.setPodNetworkResolver((pod) => (pod.metadata.name === 'web' ? netns.path : undefined));
  const core = api.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  for (const name of ['web', 'stopped']) {
    await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name }, spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] } } });
  }
});
after(async () => {
  await api?.close();
  app?.close();
  netns?.remove();
});

test("client-node's PortForward reaches 127.0.0.1:PORT inside the pod's namespace", async () => {
  const output = new PassThrough();
  const input = new PassThrough();
  let received = '';
  output.on('data', (c: Buffer) => (received += c.toString()));
  const ws = (await new PortForward(api.kc).portForward('shop', 'web', [8080], output, null, input)) as WebSocket;
  try {
    input.write('GET /through-the-tunnel HTTP/1.0\r\n\r\n');
    await waitFor(() => received.includes('hello from the pod: GET /through-the-tunnel'), 'the response through the port-forward');
    assert.match(received, /^HTTP\/1\.1 200 OK/);
  } finally {
    ws.close();
  }
});

test('pods/proxy forwards an HTTP request to a port (by number or by name) of the pod', async () => {
  const byNumber = await rawRequest(api, 'GET', '/api/v1/namespaces/shop/pods/web:8080/proxy/stats?x=1');
  assert.equal(byNumber.status, 200);
  assert.equal(byNumber.text, 'hello from the pod: GET /stats?x=1');
  const byName = await rawRequest(api, 'GET', '/api/v1/namespaces/shop/pods/http:web:http/proxy/');
  assert.equal(byName.text, 'hello from the pod: GET /');
  const closed = await rawRequest(api, 'GET', '/api/v1/namespaces/shop/pods/web:9/proxy/');
  assert.equal(closed.status, 503, 'nothing listens on that port');
  const notRunning = await rawRequest(api, 'GET', '/api/v1/namespaces/shop/pods/stopped:8080/proxy/');
  assert.equal(notRunning.status, 503);
  assert.match(notRunning.text, /no network namespace is known for pod shop\/stopped/);
});

test('port-forward needs create on pods/portforward (403 otherwise) and a channel subprotocol', async () => {
  const core = api.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'viewer' } } });
  const url = `${api.server.urls[0]!.replace('https', 'wss')}/api/v1/namespaces/shop/pods/web/portforward?ports=8080`;
  const statusOfUpgrade = async (token: string, protocols: string[]): Promise<number> => {
    const ws = new WebSocket(url, protocols, { ca: api.server.caPem, headers: { Authorization: `Bearer ${token}` } });
    ws.on('error', () => undefined); // terminate() before the handshake reports one
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    res.resume();
    ws.terminate();
    return res.statusCode ?? 0;
  };
  assert.equal(await statusOfUpgrade(api.server.issueToken('shop', 'viewer'), ['v4.channel.k8s.io']), 403);
  assert.equal(await statusOfUpgrade(api.server.adminToken, ['portforward.k8s.io']), 400);
  assert.equal(await statusOfUpgrade('bad-token', ['v4.channel.k8s.io']), 401);
});
