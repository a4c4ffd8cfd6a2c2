/** Every error code is documented in docs/errors.md, and every documented code exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ErrorCodes } from '../agent/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Set([...doc.matchAll(/^\|\s*`?(WEFT_ERR_[A-Z0-9_]+)`?\s*\|/gm)].map((m) => m[1]));

test('every error code is documented', () => {
  const missing = Object.keys(ErrorCodes).filter((code) => !documented.has(code));
  assert.deepEqual(missing, [], `add these to docs/errors.md: ${missing.join(', ')}`);
});

test('every documented code exists', () => {
  const gone = [...documented].filter((code) => !(code in ErrorCodes));
  assert.deepEqual(gone, [], `remove these from docs/errors.md or add them to agent/errors.ts: ${gone.join(', ')}`);
});
