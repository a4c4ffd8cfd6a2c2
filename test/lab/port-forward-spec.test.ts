// `weft lab port-forward`'s ports argument with a local address in front (ADDRESS:LOCAL:REMOTE,
// as the issue's `127.0.0.1:PORT:80`); the forms without one are parsePortSpec's (test/dashboard).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseForwardSpec } from '../../agent/lab/port-forward.js';

test('ADDRESS:LOCAL:REMOTE gives the address and the ports; the other forms no address', () => {
  assert.deepEqual(parseForwardSpec('127.0.0.1:8080:80'), { address: '127.0.0.1', ports: { local: 8080, remote: 80 } });
  assert.deepEqual(parseForwardSpec('localhost::80'), { address: '127.0.0.1', ports: { local: 0, remote: 80 } });
  assert.deepEqual(parseForwardSpec('8080:80'), { ports: { local: 8080, remote: 80 } });
  assert.deepEqual(parseForwardSpec('9080'), { ports: { local: 9080, remote: 9080 } });
  assert.throws(() => parseForwardSpec('300.0.0.1:8080:80'), /not an IPv4 address/);
  for (const bad of ['1:2:3', '127.0.0.1:8080', '127.0.0.1:8080:0', 'host:1:2']) assert.throws(() => parseForwardSpec(bad), { code: 'WEFT_ERR_CONFIG' }, bad);
});
