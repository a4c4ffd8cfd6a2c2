/**
 * CustomResourceDefinitions for the policy kinds, derived from the TypeBox schemas in schema.ts so
 * that the API server and the agent accept the same shapes. Pure: returns file names and YAML text;
 * policy/gen-crds.ts writes them to daemonset/crds/.
 *
 * TypeBox emits JSON Schema; a CRD needs a *structural* OpenAPI v3 schema. The conversion: unions
 * of literals become `enum`, records (`patternProperties`) become `additionalProperties`,
 * `additionalProperties: false` is dropped (the API server prunes unknown fields instead), and
 * Weft's own formats are dropped (the API server ignores unknown formats; the agent checks them).
 */
import { stringify } from 'yaml';
import { AuthorizationPolicySpec, PeerAuthenticationSpec, POLICY_GROUP, POLICY_VERSION } from './schema.js';
import { WEFT_TRAFFIC_CRD_KINDS } from '../agent/l7/weft/crds.js';

type Json = { [key: string]: unknown };

const KEPT = ['type', 'description', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems', 'minimum', 'maximum', 'required'] as const;

/** TypeBox (JSON Schema) -> Kubernetes structural OpenAPI v3 schema. */
export function toStructural(schema: Json): Json {
  const literals = literalUnion(schema);
  if (literals !== undefined) {
    const out: Json = { type: 'string', enum: literals };
    if (typeof schema['description'] === 'string') out['description'] = schema['description'];
    return out;
  }
  if (Array.isArray(schema['anyOf'])) throw new Error('toStructural: only unions of string literals can be expressed in a CRD');
  const out: Json = {};
  for (const k of KEPT) if (schema[k] !== undefined) out[k] = schema[k];
  if (typeof schema['format'] === 'string' && !schema['format'].startsWith('weft-')) out['format'] = schema['format'];
  if (schema['const'] !== undefined) out['enum'] = [schema['const']];
  const props = schema['properties'] as Record<string, Json> | undefined;
  if (props !== undefined) {
    const p: Json = {};
    for (const [name, sub] of Object.entries(props)) p[name] = toStructural(sub);
    out['properties'] = p;
  }
  const pattern = schema['patternProperties'] as Record<string, Json> | undefined;
  if (pattern !== undefined) {
    const values = Object.values(pattern);
    if (values.length !== 1) throw new Error('toStructural: a record needs exactly one value schema');
    out['additionalProperties'] = toStructural(values[0]!);
  }
  if (schema['items'] !== undefined) out['items'] = toStructural(schema['items'] as Json);
  if (Array.isArray(out['required']) && out['required'].length === 0) delete out['required'];
  return out;
}

function literalUnion(schema: Json): string[] | undefined {
  const anyOf = schema['anyOf'];
  if (!Array.isArray(anyOf)) return undefined;
  const values: string[] = [];
  for (const s of anyOf as Json[]) {
    if (typeof s['const'] !== 'string') return undefined;
    values.push(s['const']);
  }
  return values;
}

interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  description: string;
  spec: Json;
  columns: { name: string; type: string; jsonPath: string; description?: string }[];
}

const KINDS: KindInfo[] = [
  {
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    singular: 'authorizationpolicy',
    description:
      'Access control for mesh workloads, with Istio semantics: DENY policies first, then if any ALLOW policy applies a request or connection must match one. Policies with targetRefs (a Service, a waypoint Gateway or the weft-waypoint GatewayClass) are enforced by the waypoint, with HTTP fields; the others by node agents at L4, failing closed on HTTP fields.',
    spec: AuthorizationPolicySpec as unknown as Json,
    columns: [
      { name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'ALLOW (default), DENY or AUDIT' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    singular: 'peerauthentication',
    description: 'Whether workloads accept plaintext: mTLS mode STRICT, PERMISSIVE or DISABLE, mesh-wide (root namespace), per namespace, per workload and per workload port.',
    spec: PeerAuthenticationSpec as unknown as Json,
    columns: [
      { name: 'Mode', type: 'string', jsonPath: '.spec.mtls.mode' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  // Weft's traffic kinds (agent/l7/weft, issue 12): HTTPFault, LocalRateLimitPolicy.
  ...WEFT_TRAFFIC_CRD_KINDS,
];

function crd(k: KindInfo): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${k.plural}.${POLICY_GROUP}`, labels: { 'app.kubernetes.io/part-of': 'weft' } },
    spec: {
      group: POLICY_GROUP,
      names: { kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.singular, categories: ['weft'] },
      scope: 'Namespaced',
      versions: [
        {
          name: POLICY_VERSION,
          served: true,
          storage: true,
          additionalPrinterColumns: k.columns,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: k.description,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: toStructural(k.spec),
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER = '# Generated by policy/gen-crds.ts from the TypeBox schemas in policy/schema.ts and agent/l7/weft/schema.ts. Do not edit.\n';

export interface GeneratedFile {
  /** Path relative to the repository root. */
  readonly path: string;
  readonly content: string;
}

/** Every file under daemonset/crds/, as the generator writes it. */
export function renderCrds(): GeneratedFile[] {
  const files = KINDS.map((k) => ({
    path: `daemonset/crds/${POLICY_GROUP}_${k.plural}.yaml`,
    content: HEADER + stringify(crd(k), { lineWidth: 0 }),
  }));
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: files.map((f) => f.path.slice('daemonset/crds/'.length)),
  };
  files.push({ path: 'daemonset/crds/kustomization.yaml', content: HEADER + stringify(kustomization, { lineWidth: 0 }) });
  return files;
}
