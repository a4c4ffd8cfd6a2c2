// `weft lab apply` reports what the agents refuse (issue 9, finding 12): a policy that does not
// validate is applied to the lab (its manifests, or its Kubernetes API), the agents refuse it, and
// the apply says so with the agent's code and reason instead of only "created".
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDown, labUp } from '../../agent/lab/index.js';
import { manifestDir, podYaml } from './helpers.js';


const policy = (action: string) => `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: guard
  namespace: default
spec:
  action: ${action}
  rules:
    - from:
        - source:
            namespaces: [default]
`;

for (const mode of ['local', 'kubernetes'] as const) {
  describe(`lab apply reports the agents' refusals (${mode} mode)`, () => {
    const LAB = mode === 'local' ? 'disc2l' : 'disc2k';
    const files = manifestDir({
      'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels:\n    weft.dev/mesh: enabled\n',
      'pod.yaml': podYaml({ name: 'idle', node: 'node-a', script: 'idle.mjs' }),
    });
    const changes = manifestDir({});

    before(async () => {
      await labDown({ name: LAB });
      await labUp({ name: LAB, dir: files.dir, ...(mode === 'kubernetes' ? { kubernetes: true, prometheus: false } : {}) });
    });

    after(async () => {
      await labDown({ name: LAB });
      files.remove();
      changes.remove();
    });

    it('names a policy the agents refuse, with the code and the reason; the fixed policy is not reported', async () => {
      const file = join(changes.dir, 'policy.yaml');
      writeFileSync(file, policy('MAYBE'));
      const refused = await labApply({ name: LAB, file });
      assert.deepEqual(refused.created, ['authorizationpolicy/default/guard']);
      assert.equal(refused.refused?.length, 1, JSON.stringify(refused.refused));
      const r = refused.refused![0]!;
      assert.equal(r.object, 'AuthorizationPolicy/default/guard');
      assert.equal(r.code, 'WEFT_ERR_POLICY_INVALID');
      assert.match(r.reason, /spec\.action/);
      assert.equal(r.node, 'node-a');

      writeFileSync(file, policy('ALLOW'));
      const fixed = await labApply({ name: LAB, file });
      assert.deepEqual(fixed.configured, ['authorizationpolicy/default/guard']);
      assert.deepEqual(fixed.refused, []);
    });
  });
}
