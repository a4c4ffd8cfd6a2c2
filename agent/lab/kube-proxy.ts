/**
 * Kubernetes mode: what kube-proxy and cluster DNS do on a node, from the API's Services and
 * EndpointSlices (as kube-proxy reads them): the same DNAT rules and hosts files as the local
 * lab (services.ts), with an endpoint's readiness taken from its slice (`conditions.ready`;
 * terminating and not-ready endpoints get no new connections). Pure views here; the lab's
 * kubelet (kubelet.ts) installs them.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ServiceView } from './services.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** Services with their ready endpoints, resolved per port name from the slices. */
export function serviceViewsFromApi(services: readonly V1Service[], slices: readonly V1EndpointSlice[]): ServiceView[] {
  const byService = new Map<string, V1EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (svc === undefined || s.addressType !== 'IPv4') continue;
    const key = `${s.metadata?.namespace ?? 'default'}/${svc}`;
    byService.set(key, [...(byService.get(key) ?? []), s]);
  }
  const views: ServiceView[] = [];
  for (const svc of services) {
    const name = svc.metadata?.name;
    if (name === undefined) continue;
    const namespace = svc.metadata?.namespace ?? 'default';
    const key = `${namespace}/${name}`;
    const vip = svc.spec?.clusterIP;
    const clusterIP = vip === undefined || vip === '' || vip === 'None' ? undefined : vip;
    const mine = byService.get(key) ?? [];
    views.push({
      key,
      name,
      namespace,
      clusterIP,
      ports: (svc.spec?.ports ?? []).map((sp) => {
        const seen = new Set<string>();
        const endpoints: ServiceView['ports'][number]['endpoints'] = [];
        for (const slice of mine) {
          const port = (slice.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === (sp.protocol ?? 'TCP'));
          if (port?.port === undefined) continue;
          for (const ep of slice.endpoints ?? []) {
            // kube-proxy: an unset `ready` means ready; terminating endpoints are never ready.
            if (ep.conditions?.ready === false || ep.conditions?.terminating === true) continue;
            const ip = ep.addresses[0];
            if (ip === undefined || seen.has(`${ip}:${port.port}`)) continue;
            seen.add(`${ip}:${port.port}`);
            endpoints.push({ pod: ep.targetRef?.name ?? ip, ip, targetPort: port.port });
          }
        }
        endpoints.sort((a, b) => a.pod.localeCompare(b.pod) || a.ip.localeCompare(b.ip));
        return { name: sp.name, port: sp.port, protocol: sp.protocol ?? 'TCP', targetPort: sp.targetPort ?? sp.port, endpoints };
      }),
    });
  }
  return views.sort((a, b) => a.key.localeCompare(b.key));
}
