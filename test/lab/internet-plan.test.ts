// The lab's internet edge, pure parts: the address plan of the internet link and of external
// (LoadBalancer) addresses stays clear of pods, nodes and ClusterIPs; the fabric's DNAT rules
// spread a frontend over its endpoints and are the whole chain each time; the manifests the
// agents and gateways read carry the address in the Service's and the Gateway's status.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseManifestText } from '../../agent/discovery/manifest.js';
import { allocateExternalIp, EXTERNAL_CIDR, FABRIC_CIDR, inCidr, INTERNET_CIDR, INTERNET_CLIENT_IP, LAB_RANGE, SERVICE_CIDR } from '../../agent/lab/addressing.js';
import { externalFrontends } from '../../agent/lab/converge.js';
import { assignExternalIps } from '../../agent/lab/external-controller.js';
import { CHAIN_EXTERNAL, edgeRules, externalRules } from '../../agent/lab/internet.js';
import { renderManifests } from '../../agent/lab/manifests.js';
import { internetNetns, labOfNetns } from '../../agent/lab/paths.js';
import { clusterSpec } from '../../agent/lab/spec.js';
import { labSpecOptions } from '../../agent/lab/waypoints.js';

describe('the internet address plan', () => {
  it('uses the lab range outside the fabric, pod CIDRs and the service range', () => {
    for (const cidr of [INTERNET_CIDR, EXTERNAL_CIDR]) {
      const base = cidr.split('/')[0]!;
      assert.ok(inCidr(base, LAB_RANGE), `${cidr} in ${LAB_RANGE}`);
      assert.ok(!inCidr(base, SERVICE_CIDR), `${cidr} not in the service range`);
      assert.ok(!inCidr(base, FABRIC_CIDR), `${cidr} not on the fabric`);
      assert.ok(base.startsWith('198.19.'), `${cidr} not a pod CIDR (198.18.i.0/24)`);
    }
    assert.ok(inCidr(INTERNET_CLIENT_IP, INTERNET_CIDR));
  });

  it('hands out the lowest free external address, and none when the range is full', () => {
    assert.equal(allocateExternalIp(new Set()), '198.19.65.1');
    assert.equal(allocateExternalIp(new Set(['198.19.65.1', '198.19.65.3'])), '198.19.65.2');
    const all = new Set(Array.from({ length: 254 }, (_, i) => `198.19.65.${i + 1}`));
    assert.equal(allocateExternalIp(all), undefined);
  });

  it('names the internet namespace as the lab\'s own, so down --all finds it', () => {
    assert.equal(internetNetns('x1'), 'weft-x1-internet');
    assert.equal(labOfNetns('weft-x1-internet'), 'x1');
    assert.equal(labOfNetns('weft-x1-internetx'), undefined);
  });
});

describe('the fabric edge rules', () => {
  it('DNATs each frontend to its endpoints, evenly, in a chain it replaces whole', () => {
    const rules = externalRules([
      { service: 'default/gw', ip: '198.19.65.1', port: 443, endpoints: [{ ip: '198.18.1.4', port: 443 }, { ip: '198.18.2.4', port: 443 }] },
      { service: 'default/gw', ip: '198.19.65.1', port: 80, endpoints: [{ ip: '198.18.1.4', port: 8080 }] },
      { service: 'default/none', ip: '198.19.65.2', port: 80, endpoints: [] },
    ]);
    const lines = rules.split('\n');
    assert.equal(lines[0], '*nat');
    assert.equal(lines[1], `:${CHAIN_EXTERNAL} - [0:0]`);
    const dnat = lines.filter((l) => l.includes('DNAT'));
    assert.deepEqual(dnat.map((l) => /--dport (\d+).*--to-destination (\S+)/.exec(l)!.slice(1).join(' ')), ['80 198.18.1.4:8080', '443 198.18.1.4:443', '443 198.18.2.4:443']);
    assert.match(dnat[1]!, /--probability 0\.5000000000 /);
    assert.doesNotMatch(dnat[2]!, /statistic/);
    // A frontend without endpoints has no rule: the filter table refuses what was not DNATed.
    assert.ok(!rules.includes('198.19.65.2'));
    assert.match(edgeRules(), /-A WEFT-LAB-FROM-INTERNET -m conntrack --ctstate DNAT -j ACCEPT\n.*ESTABLISHED,RELATED -j ACCEPT\n.*-p tcp -j REJECT --reject-with tcp-reset/);
  });
});

describe('external addresses in the lab spec and manifests', () => {
  const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  gatewayClassName: weft
  listeners:
    - {name: http, port: 80, protocol: HTTP}
`;
  it('a Gateway of class weft makes a LoadBalancer Service whose external address is in both statuses', () => {
    const parsed = parseManifestText(yaml, 'gw.yaml');
    const built = clusterSpec(parsed.objects, () => 'gw.yaml', labSpecOptions('x1'));
    const s = built.spec!;
    assert.equal(s.services.get('default/public')!.type, 'LoadBalancer');
    assert.equal(s.deployments.get('default/public')!.ingress, true);
    const files = renderManifests({
      objects: [...s.objects.values(), ...s.derived.values()],
      podIps: new Map(),
      clusterIps: new Map([['default/public', '198.19.128.9']]),
      externalIps: new Map([['default/public', '198.19.65.1']]),
    });
    const svc = parse(files.get('service.default.public.yaml')!) as { status: unknown };
    assert.deepEqual(svc.status, { loadBalancer: { ingress: [{ ip: '198.19.65.1' }] } });
    const gw = parse(files.get('gateway.default.public.yaml')!) as { status: unknown };
    assert.deepEqual(gw.status, { addresses: [{ type: 'IPAddress', value: '198.19.65.1' }] });
  });

  it('frontends come from the ready endpoints of LoadBalancer Services only', () => {
    const views = [
      { key: 'default/public', name: 'public', namespace: 'default', clusterIP: '198.19.128.9', ports: [{ name: 'listener-80', port: 80, protocol: 'TCP', targetPort: 80, endpoints: [{ pod: 'p', ip: '198.18.1.2', targetPort: 80 }] }] },
      { key: 'default/inner', name: 'inner', namespace: 'default', clusterIP: '198.19.128.8', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 80, endpoints: [{ pod: 'q', ip: '198.18.1.3', targetPort: 80 }] }] },
    ];
    assert.deepEqual(externalFrontends(views, new Map([['default/public', '198.19.65.1']])), [
      { service: 'default/public', ip: '198.19.65.1', port: 80, endpoints: [{ ip: '198.18.1.2', port: 80 }] },
    ]);
  });
});

describe('the Kubernetes-mode load balancer controller\'s assignment', () => {
  const svc = (name: string, type: string, ip?: string) => ({ metadata: { name, namespace: 'default' }, spec: { type }, ...(ip !== undefined ? { status: { loadBalancer: { ingress: [{ ip }] } } } : {}) });
  it('keeps an address a Service has, gives new ones the lowest free, and ignores other types', () => {
    const ips = assignExternalIps([svc('b', 'LoadBalancer', '198.19.65.1'), svc('a', 'LoadBalancer'), svc('c', 'ClusterIP'), svc('d', 'LoadBalancer', '10.0.0.1')]);
    assert.deepEqual([...ips].sort(), [['default/a', '198.19.65.2'], ['default/b', '198.19.65.1'], ['default/d', '198.19.65.3']]);
  });
  it('two Services claiming one address: the first by name keeps it', () => {
    const ips = assignExternalIps([svc('y', 'LoadBalancer', '198.19.65.7'), svc('x', 'LoadBalancer', '198.19.65.7')]);
    assert.equal(ips.get('default/x'), '198.19.65.7');
    assert.equal(ips.get('default/y'), '198.19.65.1');
  });
});
