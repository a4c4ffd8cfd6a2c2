/** HPACK (agent/tunnel/h2/hpack.ts, huffman.ts) against every example of RFC 7541 Appendix C. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeInteger, encodeInteger, HpackDecoder, HpackEncoder, HpackError, type HeaderList } from '../../agent/tunnel/h2/hpack.js';
import { CODE_LENGTHS, CODES, EOS, huffmanDecode, huffmanEncode, huffmanLength } from '../../agent/tunnel/h2/huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

interface Step {
  wire: string;
  headers: HeaderList;
  /** Dynamic table after the block, newest first, and its size. */
  table: HeaderList;
  size: number;
}

function runSeries(tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder({ tableSizeLimit: tableSize });
  for (const [i, s] of steps.entries()) {
    const { headers, tooLarge } = d.decode(hex(s.wire));
    assert.equal(tooLarge, false);
    assert.deepEqual(headers, s.headers, `step ${i + 1}: headers`);
    const t = d.table();
    assert.deepEqual(t.entries, s.table, `step ${i + 1}: dynamic table`);
    assert.equal(t.size, s.size, `step ${i + 1}: table size`);
  }
}

const REQ1: HeaderList = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: HeaderList = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: HeaderList = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const T1: HeaderList = [[':authority', 'www.example.com']];
const T2: HeaderList = [['cache-control', 'no-cache'], ...T1];
const T3: HeaderList = [['custom-key', 'custom-value'], ...T2];

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RES1: HeaderList = [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RES2: HeaderList = [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RES3: HeaderList = [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOC], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];
const RT1: HeaderList = [['location', LOC], ['date', DATE1], ['cache-control', 'private'], [':status', '302']];
const RT2: HeaderList = [[':status', '307'], ['location', LOC], ['date', DATE1], ['cache-control', 'private']];
const RT3: HeaderList = [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]];

describe('HPACK: RFC 7541 Appendix C', () => {
  it('C.1 integer representation (10 and 1337 with a 5-bit prefix, 42 at an octet boundary)', () => {
    const cases: [number, number, string][] = [
      [10, 5, '0a'],
      [1337, 5, '1f9a0a'],
      [42, 8, '2a'],
    ];
    for (const [value, prefix, wire] of cases) {
      const out = Buffer.alloc(8);
      const end = encodeInteger(value, prefix, 0, out, 0);
      assert.equal(out.subarray(0, end).toString('hex'), wire);
      assert.deepEqual(decodeInteger(hex(wire), 0, prefix), [value, end]);
    }
  });

  it('C.2.1 literal with indexing', () => {
    runSeries(4096, [{ wire: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', headers: [['custom-key', 'custom-header']], table: [['custom-key', 'custom-header']], size: 55 }]);
  });
  it('C.2.2 literal without indexing', () => {
    runSeries(4096, [{ wire: '040c 2f73 616d 706c 652f 7061 7468', headers: [[':path', '/sample/path']], table: [], size: 0 }]);
  });
  it('C.2.3 literal never indexed', () => {
    runSeries(4096, [{ wire: '1008 7061 7373 776f 7264 0673 6563 7265 74', headers: [['password', 'secret']], table: [], size: 0 }]);
  });
  it('C.2.4 indexed header field', () => {
    runSeries(4096, [{ wire: '82', headers: [[':method', 'GET']], table: [], size: 0 }]);
  });

  it('C.3 requests without Huffman coding', () => {
    runSeries(4096, [
      { wire: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: REQ1, table: T1, size: 57 },
      { wire: '8286 84be 5808 6e6f 2d63 6163 6865', headers: REQ2, table: T2, size: 110 },
      { wire: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', headers: REQ3, table: T3, size: 164 },
    ]);
  });

  it('C.4 requests with Huffman coding', () => {
    runSeries(4096, [
      { wire: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: REQ1, table: T1, size: 57 },
      { wire: '8286 84be 5886 a8eb 1064 9cbf', headers: REQ2, table: T2, size: 110 },
      { wire: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', headers: REQ3, table: T3, size: 164 },
    ]);
  });

  it('C.5 responses without Huffman coding (table size 256, with evictions)', () => {
    runSeries(256, [
      {
        wire: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
               2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
        headers: RES1, table: RT1, size: 222,
      },
      { wire: '4803 3330 37c1 c0bf', headers: RES2, table: RT2, size: 222 },
      {
        wire: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
               54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
               5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
        headers: RES3, table: RT3, size: 215,
      },
    ]);
  });

  it('C.6 responses with Huffman coding (table size 256, with evictions)', () => {
    runSeries(256, [
      {
        wire: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
               2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        headers: RES1, table: RT1, size: 222,
      },
      { wire: '4883 640e ffc1 c0bf', headers: RES2, table: RT2, size: 222 },
      {
        wire: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
               77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
               9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
        headers: RES3, table: RT3, size: 215,
      },
    ]);
  });
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('codes derived from the lengths are those of Appendix B', () => {
    // A few rows of Appendix B, from short to long codes.
    const rows: [number, number, number][] = [
      [0x30, 0x0, 5], // '0'
      [0x61, 0x3, 5], // 'a'
      [0x20, 0x14, 6], // ' '
      [0x3a, 0x5c, 7], // ':'
      [0x00, 0x1ff8, 13],
      [0x7f, 0xffffffc, 28],
      [0xff, 0x3ffffee, 26],
      [0x0a, 0x3ffffffc, 30],
      [EOS, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of rows) {
      assert.equal(CODES[sym], code, `code of ${sym}`);
      assert.equal(CODE_LENGTHS[sym], len, `length of ${sym}`);
    }
  });

  it('encodes the strings of C.4 and C.6 as the RFC does, and decodes them back', () => {
    const cases: [string, string][] = [
      ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
      ['no-cache', 'a8eb 1064 9cbf'],
      ['custom-key', '25a8 49e9 5ba9 7d7f'],
      ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
      ['302', '6402'],
      ['private', 'aec3 771a 4b'],
      [DATE1, 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
      [LOC, '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
      ['gzip', '9bd9 ab'],
      [COOKIE, '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07'],
    ];
    for (const [s, wire] of cases) {
      const out = Buffer.alloc(huffmanLength(s));
      assert.equal(huffmanEncode(s, out, 0), out.length);
      assert.equal(out.toString('hex'), wire.replace(/ /g, ''), s);
      const w = hex(wire);
      assert.equal(huffmanDecode(w, 0, w.length).toString('latin1'), s);
    }
  });

  it('every byte value round-trips', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
    const out = Buffer.alloc(huffmanLength(all));
    huffmanEncode(all, out, 0);
    assert.equal(huffmanDecode(out, 0, out.length).toString('latin1'), all);
  });

  it('refuses padding longer than 7 bits, padding that is not all ones, and EOS', () => {
    // 'a' (00011) then 11 one bits: padding of 11 bits.
    assert.throws(() => huffmanDecode(hex('1fff'), 0, 2), /padding/);
    // 'a' then 000: padding of zeros.
    assert.throws(() => huffmanDecode(hex('18'), 0, 1), /padding/);
    // EOS (30 ones) then two ones of padding.
    assert.throws(() => huffmanDecode(hex('ffffffff'), 0, 4), /EOS/);
  });
});

describe('HPACK decoder limits and errors', () => {
  it('a table size update above the limit, or after a field, is a COMPRESSION_ERROR', () => {
    // 0x3f e1 1f = size update to 4096 + ... (31 + 0x61 + 0x1f*128 = 4096)
    assert.doesNotThrow(() => new HpackDecoder({ tableSizeLimit: 4096 }).decode(hex('3fe11f')));
    assert.throws(() => new HpackDecoder({ tableSizeLimit: 4096 }).decode(hex('3fe21f')), HpackError);
    assert.throws(() => new HpackDecoder().decode(hex('8220')), HpackError);
  });

  it('a size update evicts; index 0 and indexes beyond the table are refused', () => {
    const d = new HpackDecoder();
    d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    assert.equal(d.table().entries.length, 1);
    d.decode(hex('20'));
    assert.equal(d.table().entries.length, 0);
    assert.equal(d.table().maxSize, 0);
    assert.throws(() => d.decode(hex('80')), HpackError);
    assert.throws(() => d.decode(hex('be')), HpackError);
    assert.throws(() => d.decode(hex('0a')), HpackError, 'truncated literal');
    assert.throws(() => d.decode(hex('ff ff ff ff ff 0f')), HpackError, 'integer beyond 2^32');
  });

  it('a header list above the limit is reported, and the table stays in step', () => {
    const enc = new HpackEncoder();
    const big: HeaderList = [[':method', 'CONNECT'], ['x-big', 'v'.repeat(200)]];
    const d = new HpackDecoder({ maxHeaderListBytes: 100 });
    const r = d.decode(enc.encode(big));
    assert.equal(r.tooLarge, true);
    // The fields after the limit still enter the table: a later block indexing them decodes right.
    const d2 = new HpackDecoder({ maxHeaderListBytes: 100 });
    const bigLiteral = new HpackEncoder().encode([['x-big', 'v'.repeat(200)]]).subarray(1); // without its size update
    const block = Buffer.concat([bigLiteral, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')]);
    assert.equal(d2.decode(block).tooLarge, true);
    assert.deepEqual(d2.decode(hex('be')), { headers: [['custom-key', 'custom-header']], tooLarge: false });
  });

  it('the encoder output decodes to the same list (static matches, names, Huffman and raw literals)', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    const lists: HeaderList[] = [
      [[':method', 'CONNECT'], [':authority', '198.18.136.2:9080'], ['baggage', 'k8s.deployment.name=frontend'], ['forwarded', 'for=198.18.0.9']],
      [[':status', '200']],
      [[':status', '503'], ['x-bytes', '\u0000\u00ff\u007f']],
    ];
    for (const l of lists) assert.deepEqual(dec.decode(enc.encode(l)).headers, l);
    assert.equal(dec.table().maxSize, 0, "the encoder's first block set the table size to 0");
  });
});
