/**
 * Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
 * which kubectl's typed clients send for `create configmap|secret|serviceaccount|namespace|
 * clusterrole|clusterrolebinding|role|rolebinding|token` and `auth can-i`. The envelope is the
 * magic `k8s\0` and a runtime.Unknown {typeMeta, raw}; `raw` is decoded here with the field
 * numbers of those kinds' generated.proto, into the JSON form. Other kinds are refused with
 * 415 (kubectl apply, which sends JSON, works for every kind). Answers are always JSON, which
 * kubectl accepts.
 */
import { StatusError } from './status.js';
import type { JsonObject, JsonValue } from './types.js';

type Scalar = 'string' | 'bytes' | 'int' | 'bool';
interface FieldSpec {
  name: string;
  type: Scalar | 'map' | 'bytesmap' | 'message';
  repeated?: boolean;
  message?: string;
}
type MessageSpec = Record<number, FieldSpec>;

const s = (name: string, repeated = false): FieldSpec => ({ name, type: 'string', repeated });
const m = (name: string, message: string, repeated = false): FieldSpec => ({ name, type: 'message', message, repeated });

const MESSAGES: Record<string, MessageSpec> = {
  TypeMeta: { 1: s('apiVersion'), 2: s('kind') },
  Unknown: { 1: m('typeMeta', 'TypeMeta'), 2: { name: 'raw', type: 'bytes' }, 3: s('contentEncoding'), 4: s('contentType') },
  ObjectMeta: {
    1: s('name'), 2: s('generateName'), 3: s('namespace'), 5: s('uid'), 6: s('resourceVersion'),
    11: { name: 'labels', type: 'map' }, 12: { name: 'annotations', type: 'map' }, 14: s('finalizers', true),
  },
  ConfigMap: { 1: m('metadata', 'ObjectMeta'), 2: { name: 'data', type: 'map' }, 3: { name: 'binaryData', type: 'bytesmap' }, 4: { name: 'immutable', type: 'bool' } },
  Secret: { 1: m('metadata', 'ObjectMeta'), 2: { name: 'data', type: 'bytesmap' }, 3: s('type'), 4: { name: 'stringData', type: 'map' }, 5: { name: 'immutable', type: 'bool' } },
  ServiceAccount: { 1: m('metadata', 'ObjectMeta'), 4: { name: 'automountServiceAccountToken', type: 'bool' } },
  Namespace: { 1: m('metadata', 'ObjectMeta') },
  PolicyRule: { 1: s('verbs', true), 2: s('apiGroups', true), 3: s('resources', true), 4: s('resourceNames', true), 5: s('nonResourceURLs', true) },
  ClusterRole: { 1: m('metadata', 'ObjectMeta'), 2: m('rules', 'PolicyRule', true) },
  Role: { 1: m('metadata', 'ObjectMeta'), 2: m('rules', 'PolicyRule', true) },
  Subject: { 1: s('kind'), 2: s('apiGroup'), 3: s('name'), 4: s('namespace') },
  RoleRef: { 1: s('apiGroup'), 2: s('kind'), 3: s('name') },
  ClusterRoleBinding: { 1: m('metadata', 'ObjectMeta'), 2: m('subjects', 'Subject', true), 3: m('roleRef', 'RoleRef') },
  RoleBinding: { 1: m('metadata', 'ObjectMeta'), 2: m('subjects', 'Subject', true), 3: m('roleRef', 'RoleRef') },
  BoundObjectReference: { 1: s('kind'), 2: s('apiVersion'), 3: s('name'), 4: s('uid') },
  TokenRequestSpec: { 1: s('audiences', true), 3: m('boundObjectRef', 'BoundObjectReference'), 4: { name: 'expirationSeconds', type: 'int' } },
  TokenRequest: { 1: m('metadata', 'ObjectMeta'), 2: m('spec', 'TokenRequestSpec') },
  ResourceAttributes: { 1: s('namespace'), 2: s('verb'), 3: s('group'), 4: s('version'), 5: s('resource'), 6: s('subresource'), 7: s('name') },
  NonResourceAttributes: { 1: s('path'), 2: s('verb') },
  SelfSubjectAccessReviewSpec: { 1: m('resourceAttributes', 'ResourceAttributes'), 2: m('nonResourceAttributes', 'NonResourceAttributes') },
  SelfSubjectAccessReview: { 1: m('metadata', 'ObjectMeta'), 2: m('spec', 'SelfSubjectAccessReviewSpec') },
  MapEntry: { 1: s('key'), 2: { name: 'value', type: 'bytes' } },
};

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new StatusError(400, 'BadRequest', 'protobuf body ends inside a varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new StatusError(400, 'BadRequest', 'protobuf field runs past the end of the body');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new StatusError(400, 'BadRequest', `unsupported protobuf wire type ${wire}`);
  }
}

function decodeMessage(buf: Buffer, spec: MessageSpec): JsonObject {
  const r = new Reader(buf);
  const out: JsonObject = {};
  while (r.pos < buf.length) {
    const tag = r.varint();
    const field = spec[Math.floor(tag / 8)];
    const wire = tag & 7;
    if (field === undefined) {
      r.skip(wire);
      continue;
    }
    let value: JsonValue;
    switch (field.type) {
      case 'string':
        value = r.bytes().toString('utf8');
        break;
      case 'bytes':
        value = r.bytes().toString('base64');
        break;
      case 'int':
        value = r.varint();
        break;
      case 'bool':
        value = r.varint() !== 0;
        break;
      case 'map':
      case 'bytesmap': {
        const entry = decodeMessage(r.bytes(), MESSAGES['MapEntry']!);
        const map = (out[field.name] ?? {}) as JsonObject;
        const raw = Buffer.from(String(entry['value'] ?? ''), 'base64');
        map[String(entry['key'] ?? '')] = field.type === 'map' ? raw.toString('utf8') : raw.toString('base64');
        out[field.name] = map;
        continue;
      }
      case 'message':
        value = decodeMessage(r.bytes(), MESSAGES[field.message!]!);
        break;
    }
    if (field.repeated) out[field.name] = [...((out[field.name] as JsonValue[] | undefined) ?? []), value];
    else out[field.name] = value;
  }
  return out;
}

/** Decodes a protobuf request body into the object's JSON form (415 for kinds not listed above). */
export function decodeProtobufObject(body: Buffer): JsonObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new StatusError(400, 'BadRequest', 'protobuf body does not start with the k8s\\0 magic');
  const unknown = decodeMessage(body.subarray(4), MESSAGES['Unknown']!);
  const typeMeta = (unknown['typeMeta'] ?? {}) as JsonObject;
  const kind = String(typeMeta['kind'] ?? '');
  const spec = MESSAGES[kind];
  if (spec === undefined || ['TypeMeta', 'Unknown', 'ObjectMeta', 'MapEntry'].includes(kind)) {
    throw new StatusError(415, 'UnsupportedMediaType', `the lab's API server (a test double) decodes protobuf only for ConfigMap, Secret, ServiceAccount, Namespace, (Cluster)Role(Binding), TokenRequest and SelfSubjectAccessReview, not ${kind}: send JSON (kubectl apply -f does)`);
  }
  const obj = decodeMessage(Buffer.from(String(unknown['raw'] ?? ''), 'base64'), spec);
  return { apiVersion: String(typeMeta['apiVersion'] ?? ''), kind, ...obj };
}
