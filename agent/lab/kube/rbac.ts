/**
 * RBAC authorization from the ClusterRole/ClusterRoleBinding/Role/RoleBinding objects in the
 * store, evaluated as Kubernetes' RBAC authorizer does (rules only allow; system:masters may do
 * everything). Built in, as the default `system:basic-user` and `system:discovery` roles grant
 * them to every authenticated user: discovery paths, and creating self-reviews.
 */
import type { UserInfo } from './auth.js';
import { StatusError, qualified } from './status.js';
import type { Store } from './store.js';
import { isJsonObject, type JsonValue, type KubeObject } from './types.js';

export interface RequestAttributes {
  verb: string;
  /** Set for resource requests; undefined for paths like /version. */
  resource?: { group: string; resource: string; subresource: string; name: string; namespace: string };
  path: string;
}

const DISCOVERY_PATHS = [/^\/api(\/.*)?$/, /^\/apis(\/.*)?$/, /^\/version\/?$/, /^\/openapi(\/.*)?$/, /^\/healthz/, /^\/readyz/, /^\/livez/];
const SELF_REVIEWS = new Set(['authorization.k8s.io/selfsubjectaccessreviews', 'authorization.k8s.io/selfsubjectrulesreviews', 'authentication.k8s.io/selfsubjectreviews']);

const strings = (v: JsonValue | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function subjectMatches(subject: JsonValue, user: UserInfo, bindingNamespace: string | undefined): boolean {
  if (!isJsonObject(subject)) return false;
  const name = subject['name'];
  switch (subject['kind']) {
    case 'User':
      return name === user.username;
    case 'Group':
      return typeof name === 'string' && user.groups.includes(name);
    case 'ServiceAccount': {
      const ns = typeof subject['namespace'] === 'string' && subject['namespace'] !== '' ? subject['namespace'] : bindingNamespace;
      return user.username === `system:serviceaccount:${ns ?? ''}:${String(name)}`;
    }
    default:
      return false;
  }
}

function ruleAllows(rule: JsonValue, a: RequestAttributes): boolean {
  if (!isJsonObject(rule)) return false;
  const verbs = strings(rule['verbs']);
  if (!verbs.includes('*') && !verbs.includes(a.verb)) return false;
  if (a.resource === undefined) {
    return strings(rule['nonResourceURLs']).some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  const r = a.resource;
  const groups = strings(rule['apiGroups']);
  if (!groups.includes('*') && !groups.includes(r.group)) return false;
  const resources = strings(rule['resources']);
  const want = r.subresource === '' ? r.resource : `${r.resource}/${r.subresource}`;
  const resourceOk = resources.some((x) => x === '*' || x === want || (r.subresource !== '' && (x === `*/${r.subresource}` || x === `${r.resource}/*`)));
  if (!resourceOk) return false;
  const names = strings(rule['resourceNames']);
  return names.length === 0 || (r.name !== '' && names.includes(r.name));
}

function rulesOf(store: Store, roleRef: JsonValue | undefined, bindingNamespace: string | undefined): JsonValue[] {
  if (!isJsonObject(roleRef) || typeof roleRef['name'] !== 'string') return [];
  let role: KubeObject | undefined;
  if (roleRef['kind'] === 'ClusterRole') role = store.peek('rbac.authorization.k8s.io/clusterroles', undefined, roleRef['name']);
  else if (roleRef['kind'] === 'Role' && bindingNamespace !== undefined) role = store.peek('rbac.authorization.k8s.io/roles', bindingNamespace, roleRef['name']);
  const rules = role?.['rules'];
  return Array.isArray(rules) ? rules : [];
}

export function isAllowed(store: Store, user: UserInfo, a: RequestAttributes): boolean {
  if (user.groups.includes('system:masters')) return true;
  if (a.resource === undefined && a.verb === 'get' && DISCOVERY_PATHS.some((p) => p.test(a.path))) return true;
  if (a.resource !== undefined && a.verb === 'create' && SELF_REVIEWS.has(`${a.resource.group}/${a.resource.resource}`)) return true;
  for (const b of store.items('rbac.authorization.k8s.io/clusterrolebindings')) {
    const subjects = b['subjects'];
    if (!Array.isArray(subjects) || !subjects.some((s) => subjectMatches(s, user, undefined))) continue;
    if (rulesOf(store, b['roleRef'] as JsonValue | undefined, undefined).some((r) => ruleAllows(r, a))) return true;
  }
  const ns = a.resource?.namespace ?? '';
  if (ns === '') return false;
  for (const b of store.items('rbac.authorization.k8s.io/rolebindings', ns)) {
    const subjects = b['subjects'];
    if (!Array.isArray(subjects) || !subjects.some((s) => subjectMatches(s, user, ns))) continue;
    if (rulesOf(store, b['roleRef'] as JsonValue | undefined, ns).some((r) => ruleAllows(r, a))) return true;
  }
  return false;
}

/** The 403 Kubernetes answers, word for word. */
export function forbidden(user: UserInfo, a: RequestAttributes): StatusError {
  if (a.resource === undefined) return new StatusError(403, 'Forbidden', `forbidden: User "${user.username}" cannot ${a.verb} path "${a.path}"`, {});
  const r = a.resource;
  const what = r.subresource === '' ? r.resource : `${r.resource}/${r.subresource}`;
  const subject = r.name === '' ? `${qualified(r.group, r.resource)} is forbidden` : `${qualified(r.group, r.resource)} "${r.name}" is forbidden`;
  const scope = r.namespace === '' ? 'at the cluster scope' : `in the namespace "${r.namespace}"`;
  return new StatusError(403, 'Forbidden', `${subject}: User "${user.username}" cannot ${a.verb} resource "${what}" in API group "${r.group}" ${scope}`, {
    ...(r.name !== '' ? { name: r.name } : {}),
    ...(r.group !== '' ? { group: r.group } : {}),
    kind: r.resource,
  });
}
