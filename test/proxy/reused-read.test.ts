/**
 * Sockets that read into a reused buffer (relay.ts REUSED_READS): the bytes of a write that has
 * not completed must never be overwritten by the next read, and what the socket read before the
 * relay started is not lost.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { adoptAccepted, relay, REUSED_READS, type RelayResult } from '../../agent/proxy/relay.js';
import { waitFor } from '../helpers/wait.js';

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function sha256(chunks: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

describe('relay with reused read buffers', () => {
  it('delivers every byte intact to a destination that falls behind (writes left pending)', { timeout: 30_000 }, async () => {
    // app --(reused-buffer upstream socket)--> relay --> slow reader. The reader pauses often, so
    // the relay's writes to it stay queued while the upstream keeps reading.
    const payload = randomBytes(8 * 1024 * 1024);
    const app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.end(payload);
    });
    const appPort = await listen(app);
    const results: RelayResult[] = [];
    const front = net.createServer({ allowHalfOpen: true }, (down) => {
      const up = net.connect({ port: appPort, host: '127.0.0.1', allowHalfOpen: true, onread: REUSED_READS });
      relay(down, up, (r) => results.push(r));
    });
    const frontPort = await listen(front);
    const client = net.connect({ port: frontPort, host: '127.0.0.1', allowHalfOpen: true });
    const received: Buffer[] = [];
    let n = 0;
    client.on('data', (d: Buffer) => {
      received.push(d);
      // every few chunks, stop reading until the next macrotask: the relay's writes pile up
      if (++n % 4 === 0) {
        client.pause();
        setImmediate(() => client.resume());
      }
    });
    await once(client, 'end');
    client.end();
    await waitFor(() => results.length === 1, 'the relay is done');
    const got = Buffer.concat(received);
    assert.equal(got.length, payload.length);
    assert.equal(sha256([got]), sha256([payload]), 'the bytes arrive unchanged');
    assert.equal(results[0]!.error, undefined);
    front.close();
    app.close();
  });

  it('an adopted accepted socket (its descriptor duplicated, the accepted one closed) carries both directions to the end', { timeout: 30_000 }, async () => {
    const payload = randomBytes(4 * 1024 * 1024);
    const app = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => s.end(createHash('sha256').update(Buffer.concat(got)).digest('hex')));
    });
    const appPort = await listen(app);
    const results: RelayResult[] = [];
    const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (accepted) => {
      const down = adoptAccepted(accepted);
      assert.notEqual(down, accepted, 'the descriptor was duplicated');
      const up = net.connect({ port: appPort, host: '127.0.0.1', allowHalfOpen: true, onread: REUSED_READS });
      relay(down, up, (r) => results.push(r));
    });
    const frontPort = await listen(front);
    const client = net.connect({ port: frontPort, host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString()));
    client.end(payload);
    await once(client, 'end');
    assert.equal(answer, sha256([payload]), 'the app got every byte, and its answer came back');
    await waitFor(() => results.length === 1, 'the relay is done');
    assert.equal(results[0]!.bytesFromDownstream, payload.length);
    front.close();
    app.close();
  });

  it('keeps what the socket read before the relay started and relays it first', { timeout: 10_000 }, async () => {
    const app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.write('banner\n'); // a server-first protocol: bytes before the client said anything
      s.on('data', (d: Buffer) => s.end(`echo ${d.toString()}`));
    });
    const appPort = await listen(app);
    const up = net.connect({ port: appPort, host: '127.0.0.1', allowHalfOpen: true, onread: REUSED_READS });
    await waitFor(() => up.bytesRead > 0, 'the upstream socket read the banner');
    const front = net.createServer({ allowHalfOpen: true }, (down) => relay(down, up, () => undefined));
    const frontPort = await listen(front);
    const client = net.connect({ port: frontPort, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    client.on('data', (d: Buffer) => {
      text += d.toString();
      if (text === 'banner\n') client.write('hi');
    });
    await once(client, 'end');
    assert.equal(text, 'banner\necho hi');
    client.end();
    front.close();
    app.close();
  });
});
