/**
 * tunnel-throughput's `aead` mode measures a record layer of our own; these tests make sure it
 * does the work it claims (a broken opener would make the figure cheap): RFC 8446 records that
 * open in any cut, with the section 5.3 nonce, and refuse a tampered or missing record.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { RecordOpener, RecordSealer, type DirectionKeys } from '../../bench/aead-records.js';

/** What the sealer writes, collected (it uses cork, write and uncork only). */
function collector(): { sink: net.Socket; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = { cork: () => undefined, uncork: () => undefined, write: (b: Buffer) => (parts.push(Buffer.from(b)), true) };
  return { sink: sink as unknown as net.Socket, bytes: () => Buffer.concat(parts) };
}

function sealAll(keys: DirectionKeys, messages: Buffer[]): Buffer {
  const sealer = new RecordSealer(keys);
  const c = collector();
  for (const m of messages) sealer.write(m, c.sink);
  return c.bytes();
}

function openAll(keys: DirectionKeys, wire: Buffer, cuts: number[]): Buffer {
  const opener = new RecordOpener(keys);
  const out: Buffer[] = [];
  let from = 0;
  for (const at of [...cuts.filter((c) => c > 0 && c < wire.length).sort((a, b) => a - b), wire.length]) {
    // A reused read buffer: the chunk's bytes are overwritten after the call.
    const chunk = Buffer.from(wire.subarray(from, at));
    opener.feed(chunk, (p) => out.push(Buffer.from(p)));
    chunk.fill(0);
    from = at;
  }
  return Buffer.concat(out);
}

const keys = (): DirectionKeys => ({ key: randomBytes(32), iv: randomBytes(12) });

test('sealed records open to the same bytes however the stream is cut', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40_000 }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(200_000), { maxLength: 20 }), (messages, cuts) => {
      const k = keys();
      const plain = messages.map((m) => Buffer.from(m));
      assert.deepEqual(openAll(k, sealAll(k, plain), cuts), Buffer.concat(plain));
    }),
    { numRuns: 60 },
  );
});

test('records follow RFC 8446: 16 KiB of plaintext at most, the nonce is the IV XOR the sequence number', () => {
  const k = keys();
  const wire = sealAll(k, [randomBytes(20_000)]);
  const first = wire.readUInt16BE(3);
  assert.equal(wire[0], 23);
  assert.equal(wire.readUInt16BE(1), 0x0303);
  assert.equal(first, 16 * 1024 + 1 + 16);
  // Open the second record by hand: sequence number 1.
  const off = 5 + first;
  const length = wire.readUInt16BE(off + 3);
  const nonce = Buffer.from(k.iv);
  nonce[11] = nonce[11]! ^ 1;
  const d = createDecipheriv('aes-256-gcm', k.key, nonce);
  d.setAAD(wire.subarray(off, off + 5));
  d.setAuthTag(wire.subarray(off + 5 + length - 16, off + 5 + length));
  const inner = Buffer.concat([d.update(wire.subarray(off + 5, off + 5 + length - 16)), d.final()]);
  assert.equal(inner.length, 20_000 - 16 * 1024 + 1);
  assert.equal(inner[inner.length - 1], 23);
});

test('a flipped bit or a dropped record is refused, not delivered', () => {
  const k = keys();
  const wire = sealAll(k, [randomBytes(100), randomBytes(100)]);
  const flipped = Buffer.from(wire);
  flipped[20] = flipped[20]! ^ 1;
  assert.throws(() => openAll(k, flipped, []));
  const recordBytes = 5 + wire.readUInt16BE(3);
  assert.throws(() => openAll(k, wire.subarray(recordBytes), []));
});
