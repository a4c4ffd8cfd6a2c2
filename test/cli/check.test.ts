/**
 * `weft check` against the lab's Kubernetes API server (a test double that enforces RBAC), after
 * `kubectl apply -k daemonset/` and a running CA: every check passes with the shipped manifests;
 * a rule taken out of the CA's Role, a missing CRD or an unreachable API fail with the fix; and
 * the shipped RBAC is exactly what `components()` lists (least privilege both ways).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../agent/discovery/kubernetes.js';
import { checkIptables, components, type CheckResult } from '../../agent/cli/preflight.js';
import { join } from 'node:path';
import { installWeft, REPO, startCa, WEFT_MAIN, type KubeInstall } from '../helpers/kube-install.js';

const execFileAsync = promisify(execFile);

/** Runs `weft check --json ...`; resolves with its results and exit code. */
async function weftCheck(args: string[]): Promise<{ code: number; results: CheckResult[]; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [WEFT_MAIN, 'check', '--json', '--no-iptables', ...args], { encoding: 'utf8' });
    return { code: 0, results: JSON.parse(stdout) as CheckResult[], stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, results: JSON.parse(e.stdout || '[]') as CheckResult[], stderr: e.stderr };
  }
}

const byName = (results: CheckResult[], name: string): CheckResult => {
  const r = results.find((x) => x.name === name);
  assert.ok(r, `check ${name} ran: ${JSON.stringify(results)}`);
  return r;
};

describe('weft check (issue 9, build point 7)', () => {
  let k: KubeInstall;
  let caPort = 0;
  before(async () => {
    k = await installWeft();
    caPort = (await startCa(k, await k.kubeconfigFor('weft-ca'))).port;
  });
  after(async () => {
    await k?.close();
  });

  it('passes every check on the shipped manifests with a running CA', async () => {
    const { code, results, stderr } = await weftCheck(['--kubeconfig', k.admin, '--ca', `https://127.0.0.1:${caPort}`]);
    assert.equal(code, 0, `${stderr}\n${JSON.stringify(results, null, 2)}`);
    for (const name of ['api', 'rbac agent', 'rbac ca', 'crds', 'ca bundle', 'ca']) assert.equal(byName(results, name).status, 'pass', name);
    assert.match(byName(results, 'rbac agent').detail, /SubjectAccessReview/);
    assert.match(byName(results, 'ca').detail, /weft-ca\.weft-system\.svc\.cluster\.local/);
  });

  it('uses SelfSubjectAccessReview when run with the component\'s own account', async () => {
    const { results } = await weftCheck(['--kubeconfig', await k.kubeconfigFor('weft-agent'), '--ca', `https://127.0.0.1:${caPort}`]);
    const agent = byName(results, 'rbac agent');
    assert.equal(agent.status, 'pass');
    assert.match(agent.detail, /\(SelfSubjectAccessReview\)/);
    // The agent may not review others' permissions: said so, with what to do.
    const ca = byName(results, 'rbac ca');
    assert.equal(ca.status, 'fail');
    assert.match(ca.fix ?? '', /cluster admin/);
  });

  it('the shipped RBAC grants each component what it uses and nothing more (least privilege)', async () => {
    // Sufficient: the first test. Not more: a sample of what the components never need is refused.
    const authz = loadKubeConfig(k.admin).makeApiClient(AuthorizationV1Api);
    const denied = async (user: string, verb: string, resource: string, namespace?: string): Promise<boolean> => {
      const review = await authz.createSubjectAccessReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { verb, resource, group: resource === 'tokenreviews' ? 'authentication.k8s.io' : '', ...(namespace ? { namespace } : {}) } } },
      });
      return review.status?.allowed !== true;
    };
    const [agent, ca] = components('weft-system');
    for (const [verb, resource] of [['get', 'secrets'], ['create', 'pods'], ['update', 'services'], ['get', 'configmaps'], ['create', 'tokenreviews']]) {
      assert.ok(await denied(agent!.serviceAccount, verb!, resource!), `agent may not ${verb} ${resource}`);
    }
    assert.ok(await denied(ca!.serviceAccount, 'get', 'secrets', 'default'), 'the CA reads no Secret outside its namespace');
    assert.ok(await denied(ca!.serviceAccount, 'list', 'secrets', 'weft-system'), 'the CA lists no Secrets');
    assert.ok(await denied(ca!.serviceAccount, 'delete', 'configmaps', 'weft-system'));
    assert.ok(await denied(ca!.serviceAccount, 'list', 'services'));
  });

  it('a rule missing from the CA\'s ClusterRole fails with what is missing and the fix', async () => {
    const role = JSON.parse(await k.kubectl(['get', 'clusterrole', 'weft-ca', '-o', 'json'])) as { metadata: { resourceVersion?: string }; rules: { verbs: string[]; resources: string[] }[] };
    delete role.metadata.resourceVersion;
    const trimmed = { ...role, rules: role.rules.map((r) => (r.resources.includes('configmaps') && r.verbs.includes('update') ? { ...r, verbs: ['get'] } : r)) };
    await k.kubectl(['replace', '-f', '-'], JSON.stringify(trimmed));
    try {
      const { code, results, stderr } = await weftCheck(['--kubeconfig', k.admin, '--ca', `https://127.0.0.1:${caPort}`]);
      assert.equal(code, 1);
      assert.match(stderr, /WEFT_ERR_CHECK_FAILED/);
      const ca = byName(results, 'rbac ca');
      assert.equal(ca.status, 'fail');
      assert.match(ca.detail, /update configmaps\/weft-ca-root \(cluster-wide\)/);
      assert.match(ca.fix ?? '', /daemonset\/rbac\.yaml/);
      assert.equal(byName(results, 'rbac agent').status, 'pass');
    } finally {
      await k.kubectl(['replace', '-f', '-'], JSON.stringify(role));
    }
  });

  it('a missing CRD and a CA that does not answer fail with their fixes', async () => {
    await k.kubectl(['delete', 'crd', 'peerauthentications.weft.dev']);
    try {
      const { results } = await weftCheck(['--kubeconfig', k.admin, '--ca', 'https://127.0.0.1:1']);
      const crds = byName(results, 'crds');
      assert.equal(crds.status, 'fail');
      assert.match(crds.detail, /peerauthentications\.weft\.dev/);
      const ca = byName(results, 'ca');
      assert.equal(ca.status, 'fail');
      assert.match(ca.fix ?? '', /port-forward svc\/weft-ca/);
    } finally {
      await k.kubectl(['apply', '-k', join(REPO, 'daemonset')]);
    }
  });

  it('an API server that does not answer fails the first check and skips the others', async () => {
    await k.api.goDown();
    try {
      const { code, results } = await weftCheck(['--kubeconfig', k.admin]);
      assert.equal(code, 1);
      assert.equal(byName(results, 'api').status, 'fail');
      assert.match(byName(results, 'api').fix ?? '', /kubectl --kubeconfig F version/);
      assert.equal(byName(results, 'crds').status, 'skip');
    } finally {
      await k.api.comeBack();
    }
  });
});

describe('iptables pre-flight check', () => {
  const probe = (outputs: Record<string, string | Error>) => ({
    run: async (cmd: string) => {
      const out = outputs[cmd];
      if (out === undefined || out instanceof Error) throw out ?? new Error(`${cmd}: not found`);
      return out;
    },
  });

  it('passes a working backend, warns when the node\'s rules live in the other one, fails without iptables', async () => {
    const rules = '*nat\n:PREROUTING ACCEPT\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n';
    assert.equal((await checkIptables(probe({ iptables: 'iptables v1.8.9 (nf_tables)', 'iptables-save': '', 'iptables-nft-save': rules, 'iptables-legacy-save': '' }))).status, 'pass');
    const mixed = await checkIptables(probe({ iptables: 'iptables v1.8.9 (nf_tables)', 'iptables-save': '', 'iptables-nft-save': '', 'iptables-legacy-save': rules }));
    assert.equal(mixed.status, 'warn');
    assert.match(mixed.fix ?? '', /iptables-legacy/);
    const none = await checkIptables(probe({}));
    assert.equal(none.status, 'fail');
    assert.match(none.fix ?? '', /install iptables/);
    const broken = await checkIptables(probe({ iptables: 'iptables v1.8.9 (nf_tables)', 'iptables-save': new Error('Could not fetch rule set generation id: Invalid argument') }));
    assert.equal(broken.status, 'fail');
    assert.match(broken.fix ?? '', /iptables-legacy/);
  });

  it('works on this machine (read-only: --version and iptables-save)', async () => {
    const r = await checkIptables();
    assert.notEqual(r.status, 'fail', JSON.stringify(r));
  });
});
