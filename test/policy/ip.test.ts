import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, FAMILY_NONE, FAMILY_V4, FAMILY_V6, parseCidr, parseIp } from '../../policy/ip.js';

test('parseIp reads IPv4, IPv6 and IPv4-mapped IPv6, and refuses malformed text', () => {
  const out = new Uint32Array(4);
  const cases: [string, number, number[]][] = [
    ['198.18.0.5', FAMILY_V4, [0xc6120005]],
    ['0.0.0.0', FAMILY_V4, [0]],
    ['255.255.255.255', FAMILY_V4, [0xffffffff]],
    ['::ffff:198.18.0.5', FAMILY_V4, [0xc6120005]],
    ['::FFFF:c612:0005', FAMILY_V4, [0xc6120005]],
    ['::1', FAMILY_V6, [0, 0, 0, 1]],
    ['::', FAMILY_V6, [0, 0, 0, 0]],
    ['2001:db8::1', FAMILY_V6, [0x20010db8, 0, 0, 1]],
    ['2001:db8:0:0:1:0:0:1', FAMILY_V6, [0x20010db8, 0, 0x10000, 1]],
    ['fe80::1%eth0', FAMILY_V6, [0xfe800000, 0, 0, 1]],
    ['64:ff9b::198.18.0.5', FAMILY_V6, [0x0064ff9b, 0, 0, 0xc6120005]],
    ['1::', FAMILY_V6, [0x10000, 0, 0, 0]],
  ];
  for (const [text, family, words] of cases) {
    assert.equal(parseIp(text, out), family, text);
    for (let i = 0; i < words.length; i++) assert.equal(out[i], words[i], `${text} word ${i}`);
  }
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1..2.3', 'a.b.c.d', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7', ':1::', '1::2:', 'localhost']) {
    assert.equal(parseIp(bad, out), FAMILY_NONE, JSON.stringify(bad));
  }
});

test('parseCidr masks host bits, accepts single addresses and refuses bad prefixes', () => {
  assert.equal(parseCidr('198.18.7.9/15')?.text, '198.18.0.0/15');
  assert.equal(parseCidr('10.1.2.3')?.text, '10.1.2.3/32');
  assert.equal(parseCidr('2001:db8::1/32')?.text, '2001:db8::/32');
  assert.equal(parseCidr('::1')?.text, '::1/128');
  assert.equal(parseCidr('0.0.0.0/0')?.text, '0.0.0.0/0');
  assert.equal(parseCidr('::ffff:198.18.0.0/111')?.text, '198.18.0.0/15');
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '::/129', 'fe80::1%eth0/64', '10.0.0.0/a', 'x/8']) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

test('cidrContains matches by family and prefix (IPv4 and IPv6)', () => {
  const out = new Uint32Array(4);
  const table: [string, string, boolean][] = [
    ['198.18.0.0/15', '198.19.255.255', true],
    ['198.18.0.0/15', '198.20.0.0', false],
    ['198.18.0.0/15', '::ffff:198.18.1.1', true],
    ['10.0.0.1', '10.0.0.1', true],
    ['10.0.0.1', '10.0.0.2', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['2001:db8::/127', '2001:db8::1', true],
    ['2001:db8::/127', '2001:db8::2', false],
    ['2001:db8:0:0:8000::/65', '2001:db8::8000:0:0:1', true],
    ['2001:db8:0:0:8000::/65', '2001:db8::7fff:0:0:1', false],
    ['::/0', '::1', true],
    ['::/0', '10.0.0.1', false],
  ];
  for (const [block, addr, expected] of table) {
    const c = parseCidr(block)!;
    const fam = parseIp(addr, out);
    assert.equal(cidrContains(c, fam, out), expected, `${block} contains ${addr}`);
  }
});
