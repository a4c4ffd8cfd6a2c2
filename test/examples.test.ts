/** The example policies the README points at validate against the policy schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { validatePolicyObject } from '../policy/validate.js';

const dir = new URL('../../examples/policies/', import.meta.url);

test('every example policy validates', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const result = validatePolicyObject(parse(readFileSync(new URL(f, dir), 'utf8')));
    assert.equal(result.ok, true, `${f}: ${JSON.stringify(!result.ok && result.errors)}`);
  }
});
