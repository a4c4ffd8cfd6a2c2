import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { relay, type RelayResult } from '../../agent/proxy/relay.js';
import { id, issue, testCa } from '../tunnel/fixtures.js';

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

describe('relay', () => {
  it('aborts a TLS side when the TCP side is reset, and reports the error once', { timeout: 10_000 }, async () => {
    const cert = await issue(testCa(), id('shop', 'cart'));
    const tlsOptions = { key: cert.keyPem, cert: cert.certPem + cert.chainPem.join(''), ca: cert.trustBundle, minVersion: 'TLSv1.3' as const };

    // app <-TCP-> [relay: TCP side | TLS side] <-TLS-> tls client
    const appSockets: net.Socket[] = [];
    const app = net.createServer((s) => appSockets.push(s));
    const appPort = await listen(app);
    const results: RelayResult[] = [];
    const front = tls.createServer({ ...tlsOptions, allowHalfOpen: true }, (secure) => {
      const upstream = net.connect({ port: appPort, host: '127.0.0.1', allowHalfOpen: true });
      relay(secure, upstream, (r) => results.push(r));
    });
    const frontPort = await listen(front);
    const client = tls.connect({ ...tlsOptions, host: '127.0.0.1', port: frontPort, checkServerIdentity: () => undefined });
    const closed = once(client, 'close');
    client.on('error', () => undefined);
    await once(client, 'secureConnect');
    client.write('hello');
    const [appSide] = (await once(app, 'connection')) as [net.Socket];
    await once(appSide, 'data');

    appSide.resetAndDestroy();
    await closed;
    assert.equal(results.length, 1, 'done is called exactly once');
    assert.ok(results[0]!.error, 'the relay reports the reset as an error');
    assert.equal(results[0]!.bytesFromDownstream, 5);

    front.close();
    app.close();
  });
});
