import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WeftError, isWeftError } from '../../agent/errors.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { CaClient, SignedCertificate } from '../../agent/identity/ca-types.js';
import { IdentityManager, type WorkloadCertificate } from '../../agent/identity/manager.js';
import { FakeTime, id, testCa } from '../tunnel/fixtures.js';

/** Wraps a CA client: counts requests and can be switched off like an unreachable CA. */
class FlakyCa implements CaClient {
  down = false;
  signs = 0;
  readonly #inner: CaClient;
  constructor(inner: CaClient) {
    this.#inner = inner;
  }
  async sign(csr: string, identity: string): Promise<SignedCertificate> {
    this.signs++;
    if (this.down) throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'connect ECONNREFUSED (test)');
    return this.#inner.sign(csr, identity);
  }
  bundle(): Promise<string[]> {
    return this.#inner.bundle();
  }
}

function setup(): { time: FakeTime; ca: FlakyCa; mgr: IdentityManager } {
  const time = new FakeTime();
  const ca = new FlakyCa(new InProcessCaClient(testCa({ now: () => time.now() }), 'node-a'));
  // random() = 0.5: no jitter, so renewal is exactly at half-life and retries exactly at backoff.
  const mgr = new IdentityManager({ caClient: ca, clock: time, timers: time, random: () => 0.5, retryInitialMs: 1000, retryMaxMs: 8000 });
  return { time, ca, mgr };
}

describe('identity manager', () => {
  it('issues one certificate per identity, shared by concurrent callers', async () => {
    const { ca, mgr } = setup();
    const [a, b] = await Promise.all([mgr.get(id('shop', 'cart')), mgr.get(id('shop', 'cart'))]);
    assert.equal(a, b);
    assert.equal(ca.signs, 1);
    assert.equal(await mgr.get(id('shop', 'cart')), a);
    assert.equal(ca.signs, 1);
    const other = await mgr.get(id('shop', 'payments'));
    assert.notEqual(other.serial, a.serial);
    assert.equal(mgr.stats().identities, 2);
    assert.ok(a.keyPem.includes('PRIVATE KEY') && a.secureContext !== undefined);
    assert.deepEqual(await mgr.trustBundle(), a.trustBundle);
    mgr.close();
  });

  it('renews at half-life, counted from when the certificate arrived (the CA backdates notBefore)', async () => {
    const { time, ca, mgr } = setup();
    const first = await mgr.get(id('shop', 'cart'));
    const arrived = Math.max(first.notBefore.getTime(), time.now());
    assert.ok(arrived > first.notBefore.getTime(), 'the CA backdated notBefore');
    const halfLife = arrived + (first.notAfter.getTime() - arrived) / 2;
    assert.equal(time.nextDue(), Math.floor(halfLife));
    assert.equal(mgr.stats().certificates[0]!.nextAttempt?.getTime(), Math.floor(halfLife));
    assert.equal(ca.signs, 1);

    const rotated = once(mgr, 'rotated') as Promise<[string, WorkloadCertificate]>;
    time.advanceTo(halfLife);
    const [identity, second] = await rotated;
    assert.equal(identity, id('shop', 'cart'));
    assert.equal(ca.signs, 2);
    assert.notEqual(second.serial, first.serial);
    assert.notEqual(second.keyPem, first.keyPem, 'a new key per certificate');
    assert.equal(await mgr.get(id('shop', 'cart')), second);
    assert.equal(mgr.stats().renewed, 1);
    mgr.close();
  });

  it('keeps serving the cached certificate while the CA is down, retries with capped backoff, recovers', async () => {
    const { time, ca, mgr } = setup();
    const first = await mgr.get(id('shop', 'cart'));
    ca.down = true;
    // Half-life, then retries after 1 s, 2 s, 4 s, 8 s, 8 s (capped), each less 10% jitter at random() = 0.5.
    const expectedGaps = [900, 1800, 3600, 7200, 7200];
    let due = time.nextDue()!;
    for (let i = 0; i <= expectedGaps.length; i++) {
      const failed = once(mgr, 'renewalFailed');
      time.advanceTo(due);
      await failed;
      assert.equal(ca.signs, 2 + i);
      assert.equal(await mgr.get(id('shop', 'cart')), first, 'cached certificate still served');
      assert.equal(mgr.current(id('shop', 'cart')), first);
      const next = time.nextDue()!;
      if (i < expectedGaps.length) assert.equal(next - due, expectedGaps[i]);
      due = next;
    }
    assert.equal(mgr.stats().certificates[0]!.consecutiveFailures, 6);
    ca.down = false;
    const rotated = once(mgr, 'rotated') as Promise<[string, WorkloadCertificate]>;
    time.advanceTo(due);
    const [, second] = await rotated;
    assert.notEqual(second.serial, first.serial);
    assert.equal(await mgr.get(id('shop', 'cart')), second);
    assert.equal(mgr.stats().certificates[0]!.consecutiveFailures, 0);
    mgr.close();
  });

  it('after expiry with the CA down, get() fails with WEFT_ERR_IDENTITY_UNAVAILABLE and does not hammer the CA', async () => {
    const { time, ca, mgr } = setup();
    const first = await mgr.get(id('shop', 'cart'));
    ca.down = true;
    time.advanceTo(first.notAfter.getTime() + 1);
    await assert.rejects(mgr.get(id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_IDENTITY_UNAVAILABLE'));
    assert.equal(mgr.current(id('shop', 'cart')), undefined);
    const signs = ca.signs;
    // A retry is pending: callers fail fast instead of each asking the CA.
    for (let i = 0; i < 10; i++) await assert.rejects(mgr.get(id('shop', 'cart')));
    assert.equal(ca.signs, signs);
    ca.down = false;
    time.advanceTo(time.nextDue()!);
    await new Promise<void>((resolve) => {
      const check = (): void => void (mgr.current(id('shop', 'cart')) !== undefined ? resolve() : setImmediate(check));
      check();
    });
    assert.notEqual((await mgr.get(id('shop', 'cart'))).serial, first.serial);
    mgr.close();
  });

  it('setWanted prefetches new identities and drops those that left the node', async () => {
    const { time, mgr } = setup();
    await mgr.get(id('shop', 'cart'));
    await mgr.get(id('shop', 'old'));
    assert.equal(time.pending(), 2);
    mgr.setWanted([id('shop', 'cart'), id('shop', 'new')]);
    await new Promise<void>((resolve) => {
      const check = (): void => void (mgr.current(id('shop', 'new')) !== undefined ? resolve() : setImmediate(check));
      check();
    });
    assert.deepEqual(mgr.stats().certificates.map((c) => c.identity), [id('shop', 'cart'), id('shop', 'new')]);
    assert.equal(mgr.current(id('shop', 'old')), undefined);
    assert.equal(time.pending(), 2, 'the dropped identity has no renewal timer left');
    mgr.close();
    assert.equal(time.pending(), 0);
  });

  it('refuses a certificate the CA issued for another identity', async () => {
    const ca = testCa();
    const liar: CaClient = {
      sign: (csr) => ca.sign(csr, id('shop', 'admin'), 'n'),
      bundle: async () => ca.trustBundle(),
    };
    const mgr = new IdentityManager({ caClient: liar, timers: new FakeTime() });
    await assert.rejects(mgr.get(id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_IDENTITY_UNAVAILABLE') && /instead of/.test(String((e as Error).message)));
    mgr.close();
  });
});
