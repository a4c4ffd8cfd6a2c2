/**
 * A gRPC call that L7 policy denies is answered as Envoy answers every local reply to a gRPC
 * request (Http::Utility::sendLocalReply with is_grpc: HTTP 200, content-type application/grpc,
 * trailers only, grpc-status from the HTTP status by gRPC's http-grpc-status-mapping, the body as
 * grpc-message): the RBAC filter's 403 `RBAC: access denied` becomes grpc-status 7
 * (PERMISSION_DENIED) with grpc-message `RBAC: access denied`, so gRPC clients behind an Istio
 * waypoint and behind Weft's see the same status and message. A plain HTTP/2 request to the same
 * path still gets the 403 text.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { NS, startHarness, type Harness } from './harness.js';

const WEB = '198.18.124.40';

const denySecret: ManifestObject = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'no-secret', namespace: NS },
  spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/test.Echo/Secret'] } }] }] },
} as ManifestObject;

interface Answer {
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: Buffer;
}

function call(session: http2.ClientHttp2Session, path: string, contentType: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers' });
    let headers: Answer['headers'] | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    s.on('response', (h) => (headers = h));
    s.on('trailers', (t) => (trailers = t));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve({ headers: headers!, trailers, body: Buffer.concat(chunks) }));
    s.on('error', reject);
    // One empty gRPC message (flag 0, length 0).
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe('a gRPC call denied by L7 policy', () => {
  let h: Harness;
  let session: http2.ClientHttp2Session;
  before(async () => {
    h = await startHarness({
      pods: [{ name: 'web-1', ip: '198.18.125.41', labels: { app: 'web' } }],
      services: [{ name: 'web', vip: WEB, selector: { app: 'web' } }],
      extra: [denySecret],
      h2app: (_pod, stream) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.resume();
        stream.on('end', () => stream.end());
        return true;
      },
    });
    session = http2.connect(`http://127.0.0.1:${await h.tunnelPort(WEB, 9090)}`);
  });
  after(async () => {
    session?.close();
    await h?.close();
  });

  it('is answered trailers-only, HTTP 200, grpc-status 7 (PERMISSION_DENIED), grpc-message "RBAC: access denied", as Envoy answers it', async () => {
    const allowed = await call(session, '/test.Echo/Hello', 'application/grpc');
    assert.equal(allowed.trailers?.['grpc-status'], '0', 'the policy lets other methods through');

    const denied = await call(session, '/test.Echo/Secret', 'application/grpc');
    assert.equal(denied.headers[':status'], 200, `HTTP 200 (got ${String(denied.headers[':status'])}: ${denied.body.toString()})`);
    assert.equal(denied.headers['content-type'], 'application/grpc');
    assert.equal(denied.headers['grpc-status'], '7', 'PERMISSION_DENIED, in the only header block');
    assert.equal(decodeURIComponent(String(denied.headers['grpc-message'])), 'RBAC: access denied');
    assert.equal(denied.trailers, undefined, 'trailers-only: no second header block');
    assert.equal(denied.body.length, 0, 'no message');
    assert.equal(h.pods.get('web-1')!.requests.some((q) => q.url === '/test.Echo/Secret'), false, 'never reached the pod');
  });

  it('a request that is not gRPC to the same path still gets the 403 text', async () => {
    const r = await call(session, '/test.Echo/Secret', 'application/octet-stream');
    assert.equal(r.headers[':status'], 403);
    assert.equal(r.body.toString(), 'RBAC: access denied');
  });
});
