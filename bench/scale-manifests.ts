/**
 * A large local discovery source for the scale scenario: 5,000 pods (50 namespaces x 100),
 * 1,000 services (20 per namespace) and 500 AuthorizationPolicies (10 per namespace), one YAML
 * file per object as the lab writes them, or (multiDocumentFiles) one multi-document file per
 * kind, as a `kubectl apply -f` user keeps them. Pods sit on nodes the measuring agent does not serve,
 * so it models them without capturing. Pure: names -> file contents.
 */
import { stringify } from 'yaml';

export interface ScaleSize {
  namespaces: number;
  podsPerNamespace: number;
  servicesPerNamespace: number;
  policiesPerNamespace: number;
}

export const ISSUE_SIZE: ScaleSize = { namespaces: 50, podsPerNamespace: 100, servicesPerNamespace: 20, policiesPerNamespace: 10 };

export function scaleManifests(size: ScaleSize): Map<string, string> {
  const files = new Map<string, string>();
  let podIndex = 0;
  let svcIndex = 0;
  for (let n = 0; n < size.namespaces; n++) {
    const ns = `scale-${n}`;
    files.set(`namespace.${ns}.yaml`, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'weft.dev/mesh': 'enabled' } } }));
    for (let p = 0; p < size.podsPerNamespace; p++) {
      const app = `app-${p % size.servicesPerNamespace}`;
      // 198.18.10.0 and up: 250 pods per /24, inside the lab's range, away from the bench pods.
      const ip = `198.18.${10 + Math.floor(podIndex / 250)}.${2 + (podIndex % 250)}`;
      podIndex++;
      const name = `${app}-${p}`;
      files.set(
        `pod.${ns}.${name}.yaml`,
        stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: ns, labels: { app, version: `v${p % 3}` } },
          spec: { nodeName: `scale-node-${podIndex % 20}`, serviceAccountName: app, containers: [{ name: 'app', command: ['sleep', 'infinity'], ports: [{ containerPort: 8080, name: 'http' }] }] },
          status: { podIP: ip, phase: 'Running' },
        }),
      );
    }
    for (let s = 0; s < size.servicesPerNamespace; s++) {
      const app = `app-${s}`;
      const vip = 0xc6138001 + svcIndex++; // 198.19.128.1 and up
      const clusterIP = `${(vip >>> 24) & 255}.${(vip >>> 16) & 255}.${(vip >>> 8) & 255}.${vip & 255}`;
      files.set(
        `service.${ns}.${app}.yaml`,
        stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: ns }, spec: { clusterIP, selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }),
      );
    }
    for (let a = 0; a < size.policiesPerNamespace; a++) {
      const app = `app-${a % size.servicesPerNamespace}`;
      files.set(
        `authorizationpolicy.${ns}.allow-${a}.yaml`,
        stringify({
          apiVersion: 'weft.dev/v1alpha1',
          kind: 'AuthorizationPolicy',
          metadata: { name: `allow-${a}`, namespace: ns },
          spec: {
            selector: { matchLabels: { app } },
            action: 'ALLOW',
            rules: [
              {
                from: [{ source: { principals: [`cluster.local/ns/${ns}/sa/app-${(a + 1) % size.servicesPerNamespace}`] } }, { source: { namespaces: [`scale-${(n + 1) % size.namespaces}`] } }],
                to: [{ operation: { ports: ['8080'] } }],
              },
            ],
          },
        }),
      );
    }
  }
  return files;
}

/**
 * The same objects as one multi-document file per kind (`pods.yaml`, `services.yaml`, ...), in
 * the order of `files`. Pure.
 */
export function multiDocumentFiles(files: ReadonlyMap<string, string>): Map<string, string> {
  const byKind = new Map<string, string[]>();
  for (const [name, content] of files) {
    const kind = name.slice(0, name.indexOf('.'));
    const docs = byKind.get(kind);
    if (docs === undefined) byKind.set(kind, [content]);
    else docs.push(content);
  }
  const out = new Map<string, string>();
  for (const [kind, docs] of byKind) out.set(`${kind}s.yaml`, docs.join('---\n'));
  return out;
}
