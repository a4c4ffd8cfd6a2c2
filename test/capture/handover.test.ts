// The handover marker: the agent that started last is the newest; an older agent's readiness
// then says "superseded", and its exit does not remove the newer agent's claim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HandoverMarker } from '../../agent/capture/handover.js';

test('the last agent to claim is the newest; the older one leaves its claim alone on exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-failhandover-'));
  try {
    const old = new HandoverMarker(dir);
    assert.equal(old.isNewest(), true, 'nobody claimed yet');
    old.claim();
    assert.equal(old.isNewest(), true);
    const next = new HandoverMarker(dir);
    next.claim();
    assert.equal(old.isNewest(), false, 'superseded');
    assert.equal(next.isNewest(), true);
    old.release();
    assert.equal(next.isNewest(), true, "the old agent's exit keeps the new claim");
    assert.equal(existsSync(join(dir, 'agent.newest')), true);
    next.release();
    assert.equal(existsSync(join(dir, 'agent.newest')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
