/**
 * Point 7 of issue 10, identity: renewal after a CA outage is retried with a backoff capped at
 * seconds (it grew to 60 s: an agent restarted during an outage stayed without certificates for
 * a minute after the CA came back), and the cache never evicts an identity a pod still wants
 * (an LRU of 10,000 would drop the oldest wanted one when unwanted lookups filled it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../../agent/errors.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { CaClient, SignedCertificate } from '../../agent/identity/ca-types.js';
import { IdentityManager } from '../../agent/identity/manager.js';
import { IDENTITY_RETRY_MAX_MS } from '../../agent/config.js';
import { FakeTime, id, testCa } from '../tunnel/fixtures.js';

class SwitchableCa implements CaClient {
  down = false;
  readonly #inner: CaClient;
  constructor(inner: CaClient) {
    this.#inner = inner;
  }
  async sign(csr: string, identity: string): Promise<SignedCertificate> {
    if (this.down) throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'connect ECONNREFUSED (test)');
    return this.#inner.sign(csr, identity);
  }
  bundle(): Promise<string[]> {
    return this.#inner.bundle();
  }
}

/** The next due timer once the request in flight has failed and scheduled its retry. */
async function nextRetry(time: FakeTime): Promise<number | undefined> {
  for (let i = 0; i < 500 && time.nextDue() === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 1));
  return time.nextDue();
}

test('after a long CA outage the next attempt is due within the cap (seconds), with default options', async () => {
  const time = new FakeTime();
  const ca = new SwitchableCa(new InProcessCaClient(testCa({ now: () => time.now() }), 'node-a'));
  const mgr = new IdentityManager({ caClient: ca, clock: time, timers: time, random: () => 0.5 });
  try {
    ca.down = true;
    mgr.setWanted([id('shop', 'cart')]);
    // Ten minutes of outage: every due attempt fails.
    const end = time.now() + 10 * 60_000;
    while (time.now() < end) {
      const due = await nextRetry(time);
      assert.ok(due !== undefined, 'a retry is always scheduled');
      assert.ok(due - time.now() <= IDENTITY_RETRY_MAX_MS, `retry in ${due - time.now()} ms`);
      time.advanceTo(due);
    }
    ca.down = false;
    time.advanceTo((await nextRetry(time))!);
    for (let i = 0; i < 500 && mgr.current(id('shop', 'cart')) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.ok(mgr.current(id('shop', 'cart')), 'a certificate within one capped retry of the CA coming back');
    assert.ok(IDENTITY_RETRY_MAX_MS <= 5000);
  } finally {
    mgr.close();
  }
});

test('the cache never evicts an identity that is still wanted', async () => {
  const time = new FakeTime();
  const ca = new SwitchableCa(new InProcessCaClient(testCa({ now: () => time.now() }), 'node-a'));
  const mgr = new IdentityManager({ caClient: ca, clock: time, timers: time, random: () => 0.5, maxIdentities: 2 });
  try {
    const wanted = [id('shop', 'cart'), id('shop', 'payments')];
    mgr.setWanted(wanted);
    await Promise.all(wanted.map((w) => mgr.get(w)));
    // Lookups of identities no pod here has: they take the room, never a wanted entry's.
    await mgr.get(id('other', 'a'));
    await mgr.get(id('other', 'b'));
    for (const w of wanted) assert.ok(mgr.current(w), `${w} still cached`);
    assert.ok(mgr.stats().identities <= 3);
  } finally {
    mgr.close();
  }
});
