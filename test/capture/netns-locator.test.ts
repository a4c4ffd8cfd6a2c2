/** Finding a pod's namespace by its IP: unique, ambiguous, scoped by name prefix. Needs root. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsLocator, parseLocalAddresses } from '../../agent/capture/netns-locator.js';
import { isWeftError } from '../../agent/errors.js';
import { createTestNetns } from '../helpers/netns.js';

const IP = '198.18.253.7';
const one = createTestNetns(`weft-test-loc1-pod-x`, [['ip', 'addr', 'add', `${IP}/32`, 'dev', 'lo']]);
const two = createTestNetns(`weft-test-loc2-pod-x`, [['ip', 'addr', 'add', `${IP}/32`, 'dev', 'lo']]);
const other = createTestNetns(`weft-test-loc1-pod-y`, [['ip', 'addr', 'add', '198.18.253.8/32', 'dev', 'lo']]);
after(() => {
  one.remove();
  two.remove();
  other.remove();
});

test('fib_trie: only /32 host LOCAL leaves are local addresses', () => {
  const trie = ['Main:', '  +-- 0.0.0.0/0 3 0 5', '     |-- 198.18.1.0', '        /24 link UNICAST', '     |-- 198.18.1.5', '        /32 link UNICAST', '     |-- 198.18.1.9', '        /32 host LOCAL'].join('\n');
  assert.deepEqual([...parseLocalAddresses(trie)], ['198.18.1.9']);
});

test('an IP held by two namespaces is refused as ambiguous, never guessed', () => {
  assert.throws(() => new NetnsLocator().locate(IP), (err: unknown) => isWeftError(err, 'WEFT_ERR_NETNS_AMBIGUOUS') && err.message.includes('2 network namespaces'));
});

test('a name prefix scopes the search to one runtime (one lab) and finds the one namespace', () => {
  const found = new NetnsLocator({ namePrefix: 'weft-test-loc1-pod-' }).locate(IP);
  assert.equal(found.path, `/var/run/netns/${one.name}`);
  assert.equal(new NetnsLocator({ namePrefix: 'weft-test-loc1-pod-' }).locate('198.18.253.8').path, `/var/run/netns/${other.name}`);
});

test('an IP nobody holds is not found', () => {
  assert.throws(() => new NetnsLocator({ namePrefix: 'weft-test-loc1-pod-' }).locate('198.18.253.99'), (err: unknown) => isWeftError(err, 'WEFT_ERR_NETNS_NOT_FOUND'));
});
