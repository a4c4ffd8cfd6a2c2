// The lab's pure parts: address plan, cluster spec checks, kube-proxy rules, hosts files.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseManifestText } from '../../agent/discovery/manifest.js';
import { allocateClusterIp, allocatePodHost, clusterIpProblem, inCidr } from '../../agent/lab/addressing.js';
import { labOfNetns, podNetns } from '../../agent/lab/paths.js';
import { hostsFile, portView, serviceRules, type ServiceView } from '../../agent/lab/services.js';
import { clusterSpec, podInMesh } from '../../agent/lab/spec.js';

function spec(yaml: string) {
  const parsed = parseManifestText(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors, []);
  return clusterSpec(parsed.objects, () => 'test.yaml');
}

const POD = (name: string, extra = '') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ns, labels: {app: a}}
spec:
  nodeName: n1
  containers: [{name: c, command: [node, x.mjs], ports: [{containerPort: 9080, name: http}]}]
${extra}`;

describe('addressing', () => {
  it('hands out pod hosts round-robin from the last one, wrapping past 254 and skipping used ones', () => {
    const cases: [number[], number, number | undefined][] = [
      [[], 1, 2],
      [[], 5, 6],
      [[], 254, 2],
      [[2, 3], 254, 4],
      [[6], 5, 7],
      [Array.from({ length: 253 }, (_, i) => i + 2), 10, undefined],
    ];
    for (const [used, last, want] of cases) assert.equal(allocatePodHost(new Set(used), last), want, `used=${used.length} last=${last}`);
  });

  it('accepts ClusterIPs of the service range only', () => {
    const cases: [string, boolean][] = [
      ['198.19.128.10', true],
      ['198.19.255.254', true],
      ['198.19.128.0', false],
      ['198.19.255.255', false],
      ['198.19.0.5', false],
      ['198.18.1.2', false],
      ['10.0.0.1', false],
      ['nonsense', false],
    ];
    for (const [ip, ok] of cases) assert.equal(clusterIpProblem(ip) === undefined, ok, ip);
    assert.equal(allocateClusterIp(new Set(['198.19.128.1', '198.19.128.2'])), '198.19.128.3');
    assert.ok(inCidr(allocateClusterIp(new Set())!, '198.19.128.0/17'));
  });

  it('names namespaces by the contract and recognises only lab namespaces', () => {
    assert.equal(podNetns('lab', 'default', 'details-v1'), 'weft-lab-pod-default-details-v1');
    assert.equal(labOfNetns('weft-lab-pod-default-details-v1'), 'lab');
    assert.equal(labOfNetns('weft-x1-fabric'), 'x1');
    assert.equal(labOfNetns('weft-x1-node-node-1'), 'x1');
    assert.equal(labOfNetns('weft-native-test'), undefined);
    assert.equal(labOfNetns('weft-x1-fabricx'), undefined);
  });
});

describe('cluster spec', () => {
  it('reads pods, services and namespace labels', () => {
    const r = spec(`
apiVersion: v1
kind: Namespace
metadata: {name: ns, labels: {weft.dev/mesh: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec: {selector: {app: a}, ports: [{port: 80, targetPort: http}]}
---${POD('p1')}`);
    assert.ok(r.spec);
    assert.deepEqual(r.spec.nodes, ['n1']);
    const pod = r.spec.pods.get('ns/p1')!;
    assert.deepEqual(pod.containers[0]!.argv, ['node', 'x.mjs']);
    assert.deepEqual(pod.containers[0]!.tcpPorts, [9080]);
    assert.equal(r.spec.services.get('ns/s')!.clusterIP, undefined);
    assert.equal(podInMesh(pod.labels, r.spec.namespaces.get('ns')), true);
    assert.equal(podInMesh({ 'weft.dev/mesh': 'disabled' }, r.spec.namespaces.get('ns')), false);
    assert.equal(podInMesh({}, undefined), false);
  });

  it('keeps the spec hash across label changes and changes it with the command', () => {
    const a = spec(POD('p1')).spec!.pods.get('ns/p1')!;
    const b = spec(POD('p1').replace('{app: a}', '{app: b}')).spec!.pods.get('ns/p1')!;
    const c = spec(POD('p1').replace('x.mjs', 'y.mjs')).spec!.pods.get('ns/p1')!;
    assert.equal(a.specHash, b.specHash);
    assert.notEqual(a.specHash, c.specHash);
  });

  it('refuses what the lab cannot run, naming file and object', () => {
    const cases: [string, RegExp][] = [
      [POD('p1').replace('nodeName: n1', ''), /spec\.nodeName: required/],
      [POD('p1').replace('nodeName: n1', 'nodeName: Node_1'), /must be a DNS label/],
      [POD('p1').replace('command: [node, x.mjs], ', ''), /command: required in the lab/],
      [`${POD('a-b')}\n---\n${POD('b').replace('namespace: ns', 'namespace: ns-a')}`, /network namespace name would be the same/],
      [
        'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}',
        /outside the lab's service range/,
      ],
      [
        'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 198.19.128.5, ports: [{port: 80}]}\n---\n' +
          'apiVersion: v1\nkind: Service\nmetadata: {name: t}\nspec: {clusterIP: 198.19.128.5, ports: [{port: 80}]}',
        /already the ClusterIP of service default\/s/,
      ],
    ];
    for (const [yaml, why] of cases) {
      const r = spec(yaml);
      assert.equal(r.spec, undefined, String(why));
      assert.match(r.errors.map((e) => `${e.file}: ${e.reason}`).join('\n'), why);
      assert.equal(r.errors[0]!.file, 'test.yaml');
    }
  });
});

describe('service rules', () => {
  const candidates = [
    { name: 'b', namespace: 'ns', ip: '198.18.1.3', labels: {}, namedPorts: new Map([['http', 8080]]) },
    { name: 'a', namespace: 'ns', ip: '198.18.1.2', labels: {}, namedPorts: new Map([['http', 9080]]) },
    { name: 'c', namespace: 'ns', ip: '198.18.2.2', labels: {}, namedPorts: new Map() },
  ];

  it('resolves named target ports per pod and leaves out pods without the port', () => {
    const v = portView({ port: 80, targetPort: 'http' }, candidates);
    assert.deepEqual(v.endpoints, [
      { pod: 'a', ip: '198.18.1.2', targetPort: 9080 },
      { pod: 'b', ip: '198.18.1.3', targetPort: 8080 },
    ]);
    assert.equal(portView({ port: 80 }, candidates).endpoints.length, 3);
  });

  const view = (endpoints: number): ServiceView => ({
    key: 'ns/s',
    name: 's',
    namespace: 'ns',
    clusterIP: '198.19.128.9',
    ports: [portView({ port: 80 }, candidates.slice(0, endpoints))],
  });

  it('spreads connections evenly with statistic rules and DNATs to each endpoint', () => {
    const text = serviceRules([view(3)], '');
    const jumps = text.split('\n').filter((l) => l.startsWith('-A WEFT-LAB-SVC-'));
    assert.equal(jumps.length, 3);
    assert.match(jumps[0]!, /--probability 0\.3333333333/);
    assert.match(jumps[1]!, /--probability 0\.5000000000/);
    assert.doesNotMatch(jumps[2]!, /statistic/);
    for (const ip of ['198.18.1.2:80', '198.18.1.3:80', '198.18.2.2:80']) assert.match(text, new RegExp(`DNAT --to-destination ${ip}`));
    assert.match(text, /-A WEFT-LAB-SERVICES -d 198\.19\.128\.9\/32 -p tcp -m tcp --dport 80 .* -j WEFT-LAB-SVC-/);
    assert.match(text, /-A PREROUTING -j WEFT-LAB-SERVICES/);
    assert.match(text, /-A OUTPUT -j WEFT-LAB-SERVICES/);
    assert.match(text, /\*filter[\s\S]*-d 198\.19\.128\.9\/32 .*REJECT/);
  });

  it('adds no second jump and deletes the chains of services that are gone', () => {
    const first = serviceRules([view(2)], '');
    const saved = `*nat\n:PREROUTING ACCEPT [0:0]\n${first
      .split('\n')
      .filter((l) => l.startsWith(':') || l.startsWith('-A'))
      .join('\n')}\nCOMMIT\n*filter\n:WEFT-LAB-SERVICES - [0:0]\n-A FORWARD -j WEFT-LAB-SERVICES\n-A OUTPUT -j WEFT-LAB-SERVICES\nCOMMIT\n`;
    const second = serviceRules([view(1)], saved);
    assert.doesNotMatch(second, /-A PREROUTING -j WEFT-LAB-SERVICES/);
    assert.doesNotMatch(second, /-A FORWARD -j WEFT-LAB-SERVICES/);
    const gone = second.split('\n').filter((l) => l.startsWith('-X '));
    assert.equal(gone.length, 1, 'the SEP chain of the endpoint that left');
    const empty = serviceRules([], saved);
    assert.equal(empty.split('\n').filter((l) => l.startsWith('-X ')).length, 3);
  });

  it('writes hosts entries by the namespace of the reading pod', () => {
    const services = [
      { name: 'details', namespace: 'default', clusterIP: '198.19.128.11' },
      { name: 'other', namespace: 'outside', clusterIP: '198.19.128.12' },
      { name: 'headless', namespace: 'default', clusterIP: undefined },
    ];
    const text = hostsFile('lab', { name: 'p', namespace: 'default', ip: '198.18.1.2' }, services);
    assert.match(text, /^198\.19\.128\.11\tdetails details\.default details\.default\.svc\.cluster\.local$/m);
    assert.match(text, /^198\.19\.128\.12\tother\.outside other\.outside\.svc\.cluster\.local$/m);
    assert.match(text, /^198\.18\.1\.2\tp$/m);
    assert.doesNotMatch(text, /headless/);
  });
});
