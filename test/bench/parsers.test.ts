import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRequest, RequestParser } from '../../bench/protocol.js';
import { haproxyConfig, haproxyHttpConfig, haproxyIngressConfig, nginxIngressConfig } from '../../bench/haproxy-config.js';
import { reverseProxyKind } from '../../bench/systems/reverse-proxy.js';
import { parseIperf } from '../../bench/scenarios/bulk.js';
import { modelUpdatedAt, parsePolicyDecisionNs } from '../../bench/scenarios/scale.js';
import { scaleManifests } from '../../bench/scale-manifests.js';
import { listeningPorts } from '../../bench/netns-process.js';
import { generatorCpu } from '../../bench/loadgen.js';

test('the request parser finds each request however the stream is cut', () => {
  const stream = Buffer.concat([buildRequest(1024, 1024), buildRequest(8, 64), buildRequest(100, 7)]);
  for (const cut of [1, 3, 7, 8, 9, 500, stream.length]) {
    const got: number[] = [];
    const p = new RequestParser((n) => got.push(n));
    for (let i = 0; i < stream.length; i += cut) p.push(stream.subarray(i, i + cut));
    assert.deepEqual(got, [1024, 64, 7], `cut ${cut}`);
  }
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(3, 0);
  bad.writeUInt32BE(1, 4);
  assert.throws(() => new RequestParser(() => undefined).push(bad), RangeError);
});

test('HAProxy configs: one thread, TLS 1.3 only, mutual TLS both ways, one listener per service', () => {
  const common = { ports: [7000, 5201], caFile: '/c/ca.pem', maxconn: 9000 };
  const client = haproxyConfig({ ...common, role: 'client', certPem: '/c/client.pem', listenIp: '198.19.0.1', peerIp: '198.19.0.2' });
  const server = haproxyConfig({ ...common, role: 'server', certPem: '/c/server.pem', listenIp: '198.19.0.2', podIp: '198.18.2.2' });
  for (const cfg of [client, server]) {
    assert.match(cfg, /^\s+nbthread 1$/m);
    assert.match(cfg, /ssl-min-ver TLSv1\.3/);
    assert.match(cfg, /^\s+maxconn 9000$/m);
  }
  assert.match(client, /bind 198\.19\.0\.1:7000\n/);
  assert.match(client, /server peer 198\.19\.0\.2:17000 ssl verify required ca-file \/c\/ca\.pem crt \/c\/client\.pem/);
  assert.match(server, /bind 198\.19\.0\.2:15201 ssl crt \/c\/server\.pem ca-file \/c\/ca\.pem verify required/);
  assert.match(server, /server pod 198\.18\.2\.2:5201\n/);
});

test('iperf3 JSON: bytes and bits per second received; an iperf3 error is an error', () => {
  const ok = JSON.stringify({ end: { sum_received: { bytes: 5e9, bits_per_second: 4e9, seconds: 10 } } });
  assert.deepEqual(parseIperf(ok), { bytes: 5e9, bitsPerSecond: 4e9, senderCpuPercent: undefined });
  const withCpu = JSON.stringify({ end: { sum_received: { bytes: 5e9, bits_per_second: 4e9, seconds: 10 }, cpu_utilization_percent: { host_total: 97.5 } } });
  assert.equal(parseIperf(withCpu).senderCpuPercent, 97.5);
  assert.throws(() => parseIperf(JSON.stringify({ error: 'unable to connect' })), /unable to connect/);
});

test('the scale time is the first model update with every workload; policy ns parsed from the bench', () => {
  const log = [
    '--- weft lab: header line',
    JSON.stringify({ level: 30, time: '2026-11-25T02:00:01.000Z', workloads: 1200, msg: 'mesh model updated' }),
    JSON.stringify({ level: 30, time: '2026-11-25T02:00:02.500Z', workloads: 5000, msg: 'mesh model updated' }),
  ].join('\n');
  assert.equal(modelUpdatedAt(log, 5000), Date.parse('2026-11-25T02:00:02.500Z'));
  assert.equal(modelUpdatedAt(log, 6000), undefined);
  assert.equal(parsePolicyDecisionNs('  evaluate:            712 ns per decision (median of 3 x 1M)'), 712);
  assert.equal(parsePolicyDecisionNs('nothing'), undefined);
  const both = '  evaluate:            712 ns per decision (median)\n  evaluateRequest:     1034 ns per decision (median)';
  assert.equal(parsePolicyDecisionNs(both), 712);
  assert.equal(parsePolicyDecisionNs(both, 'evaluateRequest'), 1034);
  assert.equal(parsePolicyDecisionNs('  evaluate:            712 ns per decision', 'evaluateRequest'), undefined);
});

test('the scale source has the issue\'s size with unique pod IPs and ClusterIPs in the lab ranges', () => {
  const files = scaleManifests({ namespaces: 50, podsPerNamespace: 100, servicesPerNamespace: 20, policiesPerNamespace: 10 });
  const count = (prefix: string) => [...files.keys()].filter((k) => k.startsWith(prefix)).length;
  assert.equal(count('pod.'), 5000);
  assert.equal(count('service.'), 1000);
  assert.equal(count('authorizationpolicy.'), 500);
  const ips = [...files.values()].map((t) => /podIP: (\S+)/.exec(t)?.[1]).filter((x) => x !== undefined);
  assert.equal(new Set(ips).size, 5000);
  assert.ok(ips.every((ip) => ip!.startsWith('198.18.')));
  const vips = [...files.values()].map((t) => /clusterIP: (\S+)/.exec(t)?.[1]).filter((x) => x !== undefined);
  assert.equal(new Set(vips).size, 1000);
  assert.ok(vips.every((ip) => /^198\.19\.(12[89]|13\d)\./.test(ip!)));
});

test('listening ports come from /proc/net/tcp LISTEN rows only', () => {
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
    '   1: 020212C6:1B58 020112C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
  ].join('\n');
  assert.deepEqual([...listeningPorts(text)], [15000]);
});

test("the load generator's own CPU: user + system over wall time, in % of one core", () => {
  const cpu = generatorCpu({ user: 1_000_000, system: 500_000 }, 1_000, { user: 2_500_000, system: 1_000_000 }, 3_000);
  assert.deepEqual(cpu, { userSeconds: 1.5, systemSeconds: 0.5, wallSeconds: 2, percentOfCore: 100 });
  assert.equal(generatorCpu({ user: 0, system: 0 }, 5, { user: 10, system: 0 }, 5).percentOfCore, 0);
});

test('HAProxy in HTTP mode (l7): HTTP/1.1 and h2c fronts, ALPN h2 between the mutual-TLS hops, h2c to the pod; the ingress proxy terminates TLS', () => {
  const common = { ports: [7080, 7090], caFile: '/ca.pem', maxconn: 100, h1Port: 7080, h2Port: 7090 };
  const client = haproxyHttpConfig({ ...common, role: 'client', certPem: '/c.pem', listenIp: '198.19.0.1', peerIp: '198.19.0.2' });
  assert.match(client, /mode http/);
  assert.match(client, /bind 198\.19\.0\.1:7080\n/);
  assert.match(client, /bind 198\.19\.0\.1:7090 proto h2/);
  assert.match(client, /server peer 198\.19\.0\.2:17090 ssl verify required ca-file \/ca\.pem crt \/c\.pem alpn h2/);
  assert.match(client, /server peer 198\.19\.0\.2:17080 ssl .* alpn http\/1\.1/);
  const server = haproxyHttpConfig({ ...common, role: 'server', certPem: '/s.pem', listenIp: '198.19.0.2', podIp: '198.18.2.2' });
  assert.match(server, /bind 198\.19\.0\.2:17090 ssl crt \/s\.pem ca-file \/ca\.pem verify required alpn h2/);
  assert.match(server, /server pod 198\.18\.2\.2:7090 proto h2/);
  assert.match(server, /nbthread 1/);
  const ingress = haproxyIngressConfig({ maxconn: 100, listenIp: '198.19.0.1', listenPort: 8443, certPem: '/i.pem', podIp: '198.18.2.2', podPort: 7080 });
  assert.match(ingress, /bind 198\.19\.0\.1:8443 ssl crt \/i\.pem alpn http\/1\.1/);
  assert.match(ingress, /server pod 198\.18\.2\.2:7080\n/);
  const nginx = nginxIngressConfig({ maxconn: 100, listenIp: '198.19.0.1', listenPort: 8443, crt: '/i.crt', key: '/i.key', podIp: '198.18.2.2', podPort: 7080, dir: '/d' });
  assert.match(nginx, /worker_processes 1;/);
  assert.match(nginx, /listen 198\.19\.0\.1:8443 ssl;/);
  assert.match(nginx, /upstream pod \{ server 198\.18\.2\.2:7080; keepalive 64;/);
});

test('the ingress peer is nginx when installed, else HAProxy; WEFT_BENCH_REVERSE_PROXY chooses', () => {
  assert.equal(reverseProxyKind({}, true), 'nginx');
  assert.equal(reverseProxyKind({}, false), 'haproxy');
  assert.equal(reverseProxyKind({ WEFT_BENCH_REVERSE_PROXY: 'haproxy' }, true), 'haproxy');
  assert.throws(() => reverseProxyKind({ WEFT_BENCH_REVERSE_PROXY: 'envoy' }, true), /haproxy or nginx/);
});
