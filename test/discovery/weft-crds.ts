/** Installs Weft's own CRDs (daemonset/crds) into a test API server: the required kinds of a Kubernetes source. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { rawRequest, type TestApi } from '../lab/kube-api-helpers.js';

const WEFT_CRDS = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'daemonset', 'crds');

export async function installWeftCrds(api: TestApi): Promise<void> {
  for (const file of ['weft.dev_authorizationpolicies.yaml', 'weft.dev_peerauthentications.yaml']) {
    for (const doc of parseAllDocuments(readFileSync(join(WEFT_CRDS, file), 'utf8'))) {
      const res = await rawRequest(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', doc.toJSON());
      assert.equal(res.status, 201, res.text);
    }
  }
}
