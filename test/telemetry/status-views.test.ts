/**
 * The pure parts of `weft status top` and `weft status connections --follow`: edges from the
 * agents' connection tables (an edge seen by both agents counted once, rates between samples,
 * busiest first) and the one-line form of each event. No root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { edgesOf, formatTop, topEdges, type ConnectionsSample } from '../../agent/cli/status-top.js';
import { formatEvent } from '../../agent/cli/status-follow.js';

const pair = (direction: string, source: string, destination: string, n: { opened: number; bytes: number; errors?: number; denied?: number; mutualTls?: boolean }) => ({
  direction, source, destination, opened: n.opened, connections: n.opened, bytesFromClient: n.bytes, bytesToClient: 0, errors: n.errors ?? 0, denied: n.denied ?? 0, mutualTls: n.mutualTls ?? true,
});

test('an edge both agents saw is the source agent\'s, with the destination\'s denials; a client outside the mesh is the destination\'s', () => {
  const nodeA: ConnectionsSample = { open: [], totals: [pair('outbound', 'shop/client', 'shop/server', { opened: 10, bytes: 1000 })] };
  const nodeB: ConnectionsSample = {
    open: [{ direction: 'inbound', sourceIp: '198.18.128.9', upstream: '198.18.128.3:9080', destinationWorkload: 'shop/server' }],
    totals: [pair('inbound', 'shop/client', 'shop/server', { opened: 10, bytes: 1000, denied: 2 }), pair('inbound', '198.18.128.9', 'shop/server', { opened: 3, bytes: 30, mutualTls: false })],
  };
  const edges = [...edgesOf([nodeA, nodeB]).values()];
  assert.equal(edges.length, 2);
  const inside = edges.find((e) => e.source === 'shop/client')!;
  assert.deepEqual({ reporter: inside.reporter, opened: inside.opened, bytes: inside.bytes, denied: inside.denied, mutualTls: inside.mutualTls }, { reporter: 'source', opened: 10, bytes: 1000, denied: 2, mutualTls: true });
  const outside = edges.find((e) => e.source === '198.18.128.9')!;
  assert.deepEqual({ reporter: outside.reporter, opened: outside.opened, open: outside.open, mutualTls: outside.mutualTls }, { reporter: 'destination', opened: 3, open: 1, mutualTls: false });
});

test('rates are the growth between two samples; the busiest edge comes first; an evicted pair never goes negative', () => {
  const before: ConnectionsSample[] = [{ open: [], totals: [pair('outbound', 'a/x', 'b/y', { opened: 10, bytes: 100 }), pair('outbound', 'a/x', 'c/z', { opened: 500, bytes: 9000 })] }];
  const after: ConnectionsSample[] = [{ open: [], totals: [pair('outbound', 'a/x', 'b/y', { opened: 30, bytes: 2100, errors: 1 }), pair('outbound', 'a/x', 'c/z', { opened: 3, bytes: 10 })] }];
  const top = topEdges(before, after, 2);
  assert.deepEqual(top.map((e) => [e.destination, e.connectionsPerSecond, e.bytesPerSecond, e.recentErrors]), [
    ['b/y', 10, 1000, 1],
    ['c/z', 0, 0, 0],
  ]);
  const text = formatTop(top, 2, 1);
  assert.match(text, /^SOURCE\s+DESTINATION\s+CONN\/S\s+BYTES\/S\s+OPEN\s+TOTAL\s+BYTES\s+ERRORS\s+DENIED\s+MTLS$/m);
  assert.match(text, /^a\/x\s+b\/y\s+10\s+1000 B\/s\s+0\s+30\s+2\.1 KiB\s+1 \(\+1\)\s+0\s+yes$/m);
  assert.match(text, /\(1 more edges\)/, 'the limit is said, not silent');
});

test('follow lines: open, decision and close with identities, decision, bytes, flags and error', () => {
  const base = { id: 7, time: '2026-12-01T18:00:01.250Z', direction: 'inbound', src: '198.18.128.2:40000', srcWorkload: 'shop/client', srcPrincipal: 'spiffe://cluster.local/ns/shop/sa/client', dst: '198.18.128.3:9080', upstream: '198.18.128.3:9080', dstWorkload: 'shop/server', dstPrincipal: 'spiffe://cluster.local/ns/shop/sa/server', mtls: true };
  assert.equal(
    formatEvent('node-1', { ...base, event: 'open' }),
    '18:00:01.250  node-1  OPEN     #7 inbound  shop/client (spiffe://cluster.local/ns/shop/sa/client) -> shop/server (spiffe://cluster.local/ns/shop/sa/server) mtls',
  );
  assert.match(formatEvent('node-1', { ...base, event: 'decision', decision: 'deny', policy: 'AuthorizationPolicy/shop/only-frontend', reason: 'no ALLOW policy matched' })!, /DECISION #7 .* deny by AuthorizationPolicy\/shop\/only-frontend \(no ALLOW policy matched\)$/);
  assert.match(
    formatEvent('node-1', { ...base, event: 'close', decision: 'allow', bytesFromClient: 5, bytesToClient: 20, durationMs: 3, responseFlags: 'UF', error: 'connect ECONNREFUSED', errorCode: 'ECONNREFUSED' })!,
    /CLOSE    #7 .* allow, 5 B from client, 20 B to client, 3 ms, flags UF, error connect ECONNREFUSED \[ECONNREFUSED\]$/,
  );
  // A peer outside the model is its address; the subscription line prints nothing.
  assert.match(formatEvent('n', { ...base, event: 'open', srcWorkload: undefined, srcPrincipal: undefined, mtls: false })!, /198\.18\.128\.2:40000 -> shop\/server .* plaintext$/);
  assert.equal(formatEvent('n', { event: 'subscribed' }), undefined);
});
