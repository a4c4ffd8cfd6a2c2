/**
 * The pure parts of the ingress translations: which Ingresses are Weft's, what of an Ingress or an
 * Istio Gateway is refused and why, listeners of several APIs on one port, the Ingress spec's
 * one-label wildcard. No sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildModel } from '../../agent/discovery/model.js';
import type { ManifestObject } from '../../agent/discovery/types.js';
import type { Listener } from '../../agent/gateway/config.js';
import { isWeftIngress, translateIngresses, weftIngressClasses } from '../../agent/gateway/ingress.js';
import { selects, translateIstioGateways } from '../../agent/gateway/istio-gateway.js';
import { mergeListeners, vhostMatches } from '../../agent/gateway/vhosts.js';
import { validateIstioObject } from '../../agent/l7/istio/validate.js';

const svc: ManifestObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '198.18.131.20', ports: [{ port: 80 }] } };
const ing = (name: string, spec: object, annotations?: Record<string, string>): ManifestObject => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'shop', ...(annotations ? { annotations } : {}) }, spec } as ManifestObject);
const web = { service: { name: 'web', port: { number: 80 } } };
const listener = (name: string, port: number, protocol: string, hostname?: string): Listener => ({ name, port, protocol, hostname, allowedRoutes: { from: 'All', selector: undefined, unsupported: undefined }, certificates: [], ready: true, conditions: [] });

describe('Ingress class', () => {
  it('is Weft\'s by ingressClassName, the legacy annotation, an IngressClass of its controller, or the default class', () => {
    const none = weftIngressClasses([]);
    assert.ok(isWeftIngress(ing('a', { ingressClassName: 'weft' }), none));
    assert.ok(isWeftIngress(ing('b', {}, { 'kubernetes.io/ingress.class': 'weft' }), none));
    assert.ok(!isWeftIngress(ing('c', { ingressClassName: 'nginx' }), none));
    assert.ok(!isWeftIngress(ing('d', {}), none));
    const custom = weftIngressClasses([{ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'public', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } }, spec: { controller: 'weft.dev/gateway-controller' } }]);
    assert.ok(isWeftIngress(ing('e', { ingressClassName: 'public' }), custom));
    assert.ok(isWeftIngress(ing('f', {}), custom));
    // The field wins over the annotation.
    assert.ok(!isWeftIngress(ing('g', { ingressClassName: 'nginx' }, { 'kubernetes.io/ingress.class': 'weft' }), custom));
  });
});

describe('Ingress translation', () => {
  it('refuses what it cannot serve, with the field, and serves the rest', () => {
    const model = buildModel([
      svc,
      ing('shop', {
        ingressClassName: 'weft',
        tls: [{ hosts: ['a.example.com'] }],
        rules: [
          {
            host: 'a.example.com',
            http: {
              paths: [
                { path: '/ok', pathType: 'Prefix', backend: web },
                { path: 'relative', pathType: 'Prefix', backend: web },
                { path: '/named', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } },
                { path: '/res', pathType: 'Prefix', backend: { resource: { kind: 'Bucket', name: 'b' } } },
                { path: '/x', pathType: 'Regex', backend: web },
              ],
            },
          },
          { host: 'Bad_Host', http: { paths: [{ path: '/', pathType: 'Prefix', backend: web }] } },
        ],
      }),
    ]);
    const t = translateIngresses(model, () => undefined);
    const problems = t.ingresses[0]!.problems.join('\n');
    assert.match(problems, /paths\[1\]: path relative must start with \//);
    assert.match(problems, /paths\[2\]: backend.service.port.name is not supported/);
    assert.match(problems, /paths\[3\]: resource backends are not supported/);
    assert.match(problems, /paths\[4\]: pathType Regex/);
    assert.match(problems, /rules\[1\].host bad_host: not a DNS name/);
    assert.match(problems, /secretName is required/);
    // The valid path is served on port 80; the TLS host's listener is down with the reason.
    assert.equal(t.parts.filter((p) => p.listener === 'ingress:http' && p.hostname === 'a.example.com').length, 1);
    const tls = t.listeners.find((l) => l.protocol === 'HTTPS')!;
    assert.equal(tls.ready, false);
    assert.equal(tls.conditions.find((c) => c.type === 'ResolvedRefs')!.reason, 'InvalidCertificateRef');
  });

  it('a wildcard host matches exactly one label (the Ingress spec), Gateway API\'s one or more', () => {
    assert.ok(vhostMatches({ hostname: '*.foo.com', oneLabel: true }, 'bar.foo.com'));
    assert.ok(!vhostMatches({ hostname: '*.foo.com', oneLabel: true }, 'baz.bar.foo.com'));
    assert.ok(!vhostMatches({ hostname: '*.foo.com', oneLabel: true }, 'foo.com'));
    assert.ok(vhostMatches({ hostname: '*.foo.com' }, 'baz.bar.foo.com'));
    assert.ok(vhostMatches({ hostname: 'foo.com', oneLabel: true }, 'foo.com'));
  });
});

describe('Istio Gateway translation', () => {
  it('selects by a subset of the pod labels; an empty selector selects nothing', () => {
    assert.ok(selects({ istio: 'ingressgateway' }, { istio: 'ingressgateway', app: 'x' }));
    assert.ok(!selects({ istio: 'ingressgateway', app: 'y' }, { istio: 'ingressgateway', app: 'x' }));
    assert.ok(!selects({}, { istio: 'ingressgateway' }));
    assert.ok(!selects(undefined, { istio: 'ingressgateway' }));
  });

  it('refuses per server what it does not serve (tls modes, protocols, a missing credential), and serves the other servers', () => {
    const model = buildModel([
      svc,
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name: 'g', namespace: 'shop' },
        spec: {
          selector: { istio: 'ingressgateway' },
          servers: [
            { port: { number: 443, name: 'pass', protocol: 'HTTPS' }, hosts: ['a.example.com'], tls: { mode: 'PASSTHROUGH' } },
            { port: { number: 9000, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
            { port: { number: 8443, name: 'simple', protocol: 'HTTPS' }, hosts: ['b.example.com'], tls: { mode: 'SIMPLE', credentialName: 'nope' } },
            { port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['shop/c.example.com', 'd.example.com'] },
          ],
        },
      } as ManifestObject,
    ]);
    const t = translateIstioGateways(model, () => undefined, { istio: 'ingressgateway' }, 'istio-system');
    const problems = t.gateways[0]!.problems.join('\n');
    assert.match(problems, /server 0 \(pass\): tls.mode PASSTHROUGH is not supported/);
    assert.match(problems, /server 1 \(tcp\): protocol TCP is not supported/);
    assert.match(problems, /server 2 \(simple\): Secret istio-system\/nope not found/);
    const served = t.listeners.filter((l) => l.ready).map((l) => [l.port, l.hostname]);
    assert.deepEqual(served, [[8080, 'c.example.com'], [8080, 'd.example.com']]);
  });
});

describe('VirtualService validation for gateways', () => {
  it('takes wildcard hosts of a VirtualService bound only to gateways (bookinfo\'s hosts: ["*"]), refuses them for the mesh', () => {
    const vs = (gateways: string[] | undefined) => ({ apiVersion: 'networking.istio.io/v1alpha3', kind: 'VirtualService', metadata: { name: 'bookinfo', namespace: 'default' }, spec: { hosts: ['*'], ...(gateways !== undefined ? { gateways } : {}), http: [{ route: [{ destination: { host: 'productpage', port: { number: 9080 } } }] }] } });
    assert.equal(validateIstioObject(vs(['bookinfo-gateway'])).ok, true);
    assert.equal(validateIstioObject(vs(['bookinfo-gateway', 'mesh'])).ok, false);
    assert.equal(validateIstioObject(vs(undefined)).ok, false);
  });
});

describe('listeners of several APIs on one port', () => {
  it('merges plain HTTP listeners of one hostname, refuses an HTTPS hostname twice and HTTP next to HTTPS', () => {
    const m = mergeListeners([
      [listener('gw-http', 80, 'HTTP'), listener('gw-https', 443, 'HTTPS', 'a.example.com')],
      [listener('ingress:http', 80, 'HTTP'), listener('ingress:https:a.example.com', 443, 'HTTPS', 'a.example.com'), listener('ingress:https:b.example.com', 443, 'HTTPS', 'b.example.com')],
      [listener('istio:x', 443, 'HTTP', 'c.example.com')],
    ]);
    assert.equal(m.alias.get('ingress:http'), 'gw-http');
    const by = new Map(m.listeners.map((l) => [l.name, l]));
    assert.equal(by.get('ingress:https:a.example.com')!.ready, false);
    assert.equal(by.get('ingress:https:a.example.com')!.conditions.find((c) => c.type === 'Conflicted')!.reason, 'HostnameConflict');
    assert.equal(by.get('ingress:https:b.example.com')!.ready, true);
    assert.equal(by.get('istio:x')!.conditions.find((c) => c.type === 'Conflicted')!.reason, 'ProtocolConflict');
  });
});
