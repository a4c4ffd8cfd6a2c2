/**
 * TypeBox schemas for the Kubernetes kinds the core model reads, compiled once, and the one place
 * that turns TypeBox errors into short, readable reasons (`spec.containers: required`).
 *
 * Schemas check only the fields Weft reads and leave every other field alone (real manifests
 * carry volumes, probes, resources...): additional properties are allowed everywhere.
 */
import { isIP } from 'node:net';
import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { NamespaceObject, PodObject, ServiceAccountObject, ServiceObject } from './types.js';

// Registered under a Weft-specific name: FormatRegistry is process-wide.
FormatRegistry.Set('weft-ip', (value) => isIP(value) !== 0);

/**
 * Schema option read by `describeErrors`: the reason shown when the schema fails, for schemas
 * whose TypeBox message would not help (unions say "Expected union value").
 */
const REASON = 'weftReason';

const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });
/** IANA service name as Kubernetes checks it for port names: lower case, at least one letter. */
const PortName = Type.String({
  pattern: '^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$',
  [REASON]: 'must be a port name (lower-case letters, digits and "-", at most 15 characters, at least one letter)',
});
const Labels = Type.Record(Type.String(), Type.String());
const Protocol = Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')], {
  [REASON]: 'must be TCP, UDP or SCTP',
});

export const ObjectMetaSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  namespace: Type.Optional(Type.String({ minLength: 1 })),
  labels: Type.Optional(Labels),
  annotations: Type.Optional(Labels),
  resourceVersion: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
});

/** What every document must have before its kind is even looked at. */
export const KubeObjectSchema = Type.Object({
  apiVersion: Type.String({ minLength: 1 }),
  kind: Type.String({ minLength: 1 }),
  metadata: ObjectMetaSchema,
});

export const NamespaceSchema = Type.Object({
  apiVersion: Type.Literal('v1'),
  kind: Type.Literal('Namespace'),
  metadata: ObjectMetaSchema,
});

export const ServiceAccountSchema = Type.Object({
  apiVersion: Type.Literal('v1'),
  kind: Type.Literal('ServiceAccount'),
  metadata: ObjectMetaSchema,
});

export const ContainerSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  image: Type.Optional(Type.String()),
  command: Type.Optional(Type.Array(Type.String())),
  args: Type.Optional(Type.Array(Type.String())),
  env: Type.Optional(Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), value: Type.Optional(Type.String()) }))),
  ports: Type.Optional(
    Type.Array(
      Type.Object({
        containerPort: PortNumber,
        name: Type.Optional(PortName),
        protocol: Type.Optional(Protocol),
      }),
    ),
  ),
});

export const PodSchema = Type.Object({
  apiVersion: Type.Literal('v1'),
  kind: Type.Literal('Pod'),
  metadata: ObjectMetaSchema,
  spec: Type.Object({
    nodeName: Type.Optional(Type.String({ minLength: 1 })),
    serviceAccountName: Type.Optional(Type.String({ minLength: 1 })),
    hostNetwork: Type.Optional(Type.Boolean()),
    containers: Type.Array(ContainerSchema, { minItems: 1, [REASON]: 'must list at least one container' }),
  }),
  status: Type.Optional(
    Type.Object({
      podIP: Type.Optional(Type.String({ format: 'weft-ip', [REASON]: 'must be an IP address' })),
      phase: Type.Optional(
        Type.Union(
          ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'].map((p) => Type.Literal(p)),
          { [REASON]: 'must be Pending, Running, Succeeded, Failed or Unknown' },
        ),
      ),
    }),
  ),
});

export const ServicePortSchema = Type.Object({
  name: Type.Optional(PortName),
  port: PortNumber,
  targetPort: Type.Optional(
    Type.Union([PortNumber, PortName], { [REASON]: 'must be a port number (1-65535) or a container port name' }),
  ),
  protocol: Type.Optional(Protocol),
});

export const ServiceSchema = Type.Object({
  apiVersion: Type.Literal('v1'),
  kind: Type.Literal('Service'),
  metadata: ObjectMetaSchema,
  spec: Type.Object({
    clusterIP: Type.Optional(
      Type.Union([Type.String({ format: 'weft-ip' }), Type.Literal('None'), Type.Literal('')], {
        [REASON]: 'must be an IP address or "None"',
      }),
    ),
    type: Type.Optional(
      Type.Union(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].map((t) => Type.Literal(t)), {
        [REASON]: 'must be ClusterIP, NodePort, LoadBalancer or ExternalName',
      }),
    ),
    selector: Type.Optional(Labels),
    // Absent on ExternalName services and some headless ones.
    ports: Type.Optional(Type.Array(ServicePortSchema)),
    externalName: Type.Optional(Type.String()),
  }),
});

// Compile-time proof that what the schemas accept is what types.ts promises downstream.
type Assignable<T extends U, U> = T;
export type CheckedPod = Assignable<Static<typeof PodSchema>, PodObject>;
export type CheckedService = Assignable<Static<typeof ServiceSchema>, ServiceObject>;
export type CheckedNamespace = Assignable<Static<typeof NamespaceSchema>, NamespaceObject>;
export type CheckedServiceAccount = Assignable<Static<typeof ServiceAccountSchema>, ServiceAccountObject>;

export const checkKubeObject: TypeCheck<typeof KubeObjectSchema> = TypeCompiler.Compile(KubeObjectSchema);

/** Core kinds (apiVersion `v1`) validated here; anything else passes through as OtherObject. */
export const coreKindChecks: ReadonlyMap<string, TypeCheck<TSchema>> = new Map<string, TypeCheck<TSchema>>([
  ['Namespace', TypeCompiler.Compile(NamespaceSchema)],
  ['ServiceAccount', TypeCompiler.Compile(ServiceAccountSchema)],
  ['Pod', TypeCompiler.Compile(PodSchema)],
  ['Service', TypeCompiler.Compile(ServiceSchema)],
]);

/** One failed field: its path as segments (for finding the YAML node) and a readable reason. */
export interface FieldProblem {
  path: string[];
  /** `spec.containers[0].name: required` */
  text: string;
}

/**
 * Readable problems for a value that failed `check`, at most `limit`, one per field path.
 * TypeBox reports several errors for one field (a missing property is also "not an array"),
 * so only the first error of each path is kept.
 */
export function describeErrors(check: TypeCheck<TSchema>, value: unknown, limit = 3): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(value)) {
    if (seen.has(error.path)) continue;
    // A failed union also reports its members' errors under deeper paths only when they are
    // objects; skip errors nested under a path already explained.
    let nested = false;
    for (const p of seen) {
      if (error.path.startsWith(p + '/')) {
        nested = true;
        break;
      }
    }
    if (nested) continue;
    seen.add(error.path);
    const path = pointerSegments(error.path);
    out.push({ path, text: `${formatPath(path)}: ${reasonOf(error)}` });
    if (out.length >= limit) break;
  }
  return out;
}

function reasonOf(error: ValueError): string {
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'required';
  const custom = (error.schema as Record<string, unknown>)[REASON];
  if (typeof custom === 'string') return custom;
  if (error.type === ValueErrorType.Literal) return `must be ${JSON.stringify((error.schema as unknown as { const: unknown }).const)}`;
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

/** JSON pointer (`/metadata/labels/weft.dev~1mesh`) to segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INDEX = /^(0|[1-9][0-9]*)$/;

/** Segments to `spec.containers[0].name` / `metadata.labels["weft.dev/mesh"]`. */
export function formatPath(segments: readonly string[]): string {
  if (segments.length === 0) return '(document)';
  let out = '';
  for (const s of segments) {
    if (INDEX.test(s)) out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}
