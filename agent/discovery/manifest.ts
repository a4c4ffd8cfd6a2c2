/**
 * Manifest files -> validated objects. A file holds one or more YAML documents; each document is
 * checked on its own (schema.ts) and reported with the file, the document index, the line and a
 * readable reason. Across files a directory is merged file by file: a file is all or nothing, so
 * a half-valid file never half-applies (the same rule the LocalSource watcher keeps at runtime).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { WeftError } from '../errors.js';
import { loadPlainDocuments } from './fast-yaml.js';
import { describeSize } from './limits.js';
import { MAX_MANIFEST_FILE_BYTES, MAX_OBJECT_BYTES } from '../config.js';
import { checkKubeObject, coreKindChecks, describeErrors, type FieldProblem } from './schema.js';
import type {
  ManifestError,
  ManifestObject,
  NamespaceObject,
  PodObject,
  ServiceAccountObject,
  ServiceObject,
} from './types.js';

export interface ParseResult {
  objects: ManifestObject[];
  errors: ManifestError[];
}

/** Where an object came from, parallel to `objects`. */
export interface ObjectLocation {
  document: number;
  line: number | undefined;
}

export interface FileParseResult extends ParseResult {
  file: string;
  /**
   * Parallel to `objects`; empty when `source` is set (the fast path keeps no positions):
   * `objectLocation` then finds them by parsing `source` again, which only a conflict needs.
   */
  locations: ObjectLocation[];
  source?: string;
  /** When objects were dropped after parsing (retainObjects): each object's index among those parsed. */
  origin?: number[];
}

/**
 * Kinds without a namespace. Every other kind is namespaced and defaults to `default`, which is
 * right for all kinds Weft reads (policies, routes, gateways are namespaced).
 */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'StorageClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'GatewayClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'PriorityClass',
  'IngressClass',
  'RuntimeClass',
]);

export const DEFAULT_NAMESPACE = 'default';

export function isNamespace(o: ManifestObject): o is NamespaceObject {
  return o.kind === 'Namespace' && o.apiVersion === 'v1';
}
export function isServiceAccount(o: ManifestObject): o is ServiceAccountObject {
  return o.kind === 'ServiceAccount' && o.apiVersion === 'v1';
}
export function isPod(o: ManifestObject): o is PodObject {
  return o.kind === 'Pod' && o.apiVersion === 'v1';
}
export function isService(o: ManifestObject): o is ServiceObject {
  return o.kind === 'Service' && o.apiVersion === 'v1';
}

/**
 * Identity of an object: API group (not version: the same object may be written as v1beta1 and
 * v1), kind, namespace, name. A Knative `Service` and a core `Service` do not collide.
 */
export function objectKey(o: ManifestObject): string {
  const slash = o.apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : o.apiVersion.slice(0, slash);
  return `${group}|${o.kind}|${o.metadata.namespace ?? ''}|${o.metadata.name}`;
}

/** `Pod default/details`, `Namespace bookinfo` */
export function describeObject(o: { kind: string; metadata: { name: string; namespace?: string } }): string {
  const ns = o.metadata.namespace;
  return ns === undefined ? `${o.kind} ${o.metadata.name}` : `${o.kind} ${ns}/${o.metadata.name}`;
}

/** `pods.yaml doc 2 (line 14): Pod default/details: spec.containers: required` */
export function formatManifestError(e: ManifestError): string {
  let where = e.file;
  if (e.document !== undefined) where += ` doc ${e.document + 1}`;
  if (e.line !== undefined) where += ` (line ${e.line})`;
  return `${where}: ${e.reason}`;
}

/** Manifest files are `*.yaml` / `*.yml`; dot files (editor swap files, `..data`) are not. */
export function isManifestFileName(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/**
 * Parses and validates every document of one file. Valid documents are returned even when
 * others fail; callers that apply files atomically look at `errors.length`.
 *
 * A file that is plain YAML and valid as a whole takes the fast path (fast-yaml.ts); any other
 * is read by the `yaml` package, which locates every problem, so errors are the same either way.
 */
export function parseManifestText(text: string, file: string): FileParseResult {
  return oversizeDocuments(text, file) ?? parsePlain(text, file) ?? parseWithPositions(text, file);
}

/**
 * A document over MAX_OBJECT_BYTES (Kubernetes' own object limit) refuses the file before any
 * parsing: a 100k-label pod costs a scan for `---`, not a parse and a validation.
 */
function oversizeDocuments(text: string, file: string): FileParseResult | undefined {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most files need no byte count at all.
  if (text.length <= MAX_OBJECT_BYTES / 3 || Buffer.byteLength(text) <= MAX_OBJECT_BYTES) return undefined;
  return oversizeDocumentsIn(Buffer.from(text, 'utf8'), file);
}

const NEWLINE = 0x0a;
const SEPARATOR = Buffer.from('---');

/**
 * The documents of a file's bytes that are over MAX_OBJECT_BYTES, as errors (undefined when
 * none is), from the bytes alone: the local source calls it before decoding a big file, so a
 * refused 3 MiB document costs a few native scans for `---` lines, not a decode and a parse.
 * A separator is a line `---`, maybe followed by blanks or a comment (as YAML has it).
 */
export function oversizeDocumentsIn(bytes: Buffer, file: string): FileParseResult | undefined {
  if (bytes.length <= MAX_OBJECT_BYTES) return undefined;
  const errors: ManifestError[] = [];
  let start = 0;
  let document = 0;
  // Lines are counted only up to a document that is refused (the count is for its message).
  let counted = 0;
  let line = 1;
  const check = (end: number): void => {
    const size = end - start;
    if (size <= MAX_OBJECT_BYTES) return;
    for (let i = bytes.indexOf(NEWLINE, counted); i >= 0 && i < start; i = bytes.indexOf(NEWLINE, i + 1)) line++;
    counted = start;
    errors.push({ file, document, line, code: 'WEFT_ERR_OBJECT_TOO_LARGE', reason: `document of ${describeSize(size)} is over the ${describeSize(MAX_OBJECT_BYTES)} an object may have (as in Kubernetes)` });
  };
  for (let at = bytes.indexOf(SEPARATOR); at >= 0; at = bytes.indexOf(SEPARATOR, at + 1)) {
    if (at > 0 && bytes[at - 1] !== NEWLINE) continue;
    const eol = bytes.indexOf(NEWLINE, at);
    const lineEnd = eol < 0 ? bytes.length : eol;
    if (!/^---[ \t]*(?:#.*)?\r?$/.test(bytes.toString('utf8', at, Math.min(lineEnd, at + 256)))) continue;
    if (at > 0) {
      check(at);
      document++;
    }
    start = lineEnd;
    if (eol < 0) break;
  }
  check(bytes.length);
  return errors.length === 0 ? undefined : { file, objects: [], locations: [], errors };
}

/**
 * The same parse result with only the objects `keep` accepts (the kinds a consumer uses), so
 * that nothing else is held. Locations still point at the right documents.
 */
export function retainObjects(result: FileParseResult, keep: (o: ManifestObject) => boolean): FileParseResult {
  if (result.objects.every(keep)) return result;
  const objects: ManifestObject[] = [];
  const locations: ObjectLocation[] = [];
  const origin: number[] = [];
  result.objects.forEach((o, i) => {
    if (!keep(o)) return;
    objects.push(o);
    const loc = result.locations[i];
    if (loc !== undefined) locations.push(loc);
    origin.push(result.origin?.[i] ?? i);
  });
  return { ...result, objects, locations, origin };
}

/** The fast path: the file's objects when every document validates, else undefined. */
function parsePlain(text: string, file: string): FileParseResult | undefined {
  const docs = loadPlainDocuments(text);
  if (docs === undefined) return undefined;
  const objects: ManifestObject[] = [];
  const keys = new Set<string>();
  for (const value of docs) {
    if (value === null || value === undefined) continue;
    const checked = validateDocument(value);
    if ('problem' in checked) return undefined;
    const key = objectKey(checked.object);
    if (keys.has(key)) return undefined;
    keys.add(key);
    objects.push(checked.object);
  }
  return { file, objects, errors: [], locations: [], source: text };
}

/** Where `result.objects[index]` came from (parses the source again after the fast path). */
export function objectLocation(result: FileParseResult, index: number): ObjectLocation | undefined {
  if (result.source !== undefined && result.locations.length === 0 && result.objects.length > 0) {
    const all = parseWithPositions(result.source, result.file).locations;
    result.locations = result.origin === undefined ? all : result.origin.map((i) => all[i]!);
  }
  return result.locations[index];
}

/** The reference path: the `yaml` package's Documents, with lines for every problem. */
function parseWithPositions(text: string, file: string): FileParseResult {
  const result: FileParseResult = { file, objects: [], errors: [], locations: [] };
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  const seen = new Map<string, number>();
  for (let index = 0; index < docs.length; index++) {
    const doc = docs[index] as Document.Parsed;
    const docLine = doc.contents === null ? undefined : lineAt(doc.contents.range[0]);
    const fail = (reason: string, line: number | undefined = docLine): void => {
      result.errors.push({ file, document: index, line, reason });
    };
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      fail(`invalid YAML: ${first.message}`, first.linePos?.[0].line ?? docLine);
      continue;
    }
    // `---` at the end or a comment-only document: nothing to read.
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      fail(`invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    if (value === null || value === undefined) continue;
    const checked = validateDocument(value);
    if ('problem' in checked) {
      fail(`${checked.label}: ${checked.problem.text}`, lineOfPath(doc, checked.problem.path, lineAt) ?? docLine);
      continue;
    }
    const object = checked.object;
    const key = objectKey(object);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      fail(`${describeObject(object)}: defined twice in this file (doc ${earlier + 1} and doc ${index + 1})`);
      continue;
    }
    seen.set(key, index);
    result.objects.push(object);
    result.locations.push({ document: index, line: docLine });
  }
  return result;
}

type Validated = { object: ManifestObject } | { label: string; problem: FieldProblem };

/** Checks one document and returns the object with its namespace defaulted. */
export function validateDocument(value: unknown): Validated {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { label: 'document', problem: { path: [], text: 'must be a mapping with apiVersion, kind and metadata' } };
  }
  const raw = value as Record<string, unknown>;
  const label = labelOf(raw);
  if (raw.kind === 'List' || (typeof raw.kind === 'string' && raw.kind.endsWith('List') && Array.isArray(raw.items))) {
    return { label, problem: { path: ['kind'], text: 'lists are not read; write one object per YAML document' } };
  }
  // `Pod` of `v2` is a typo, not another API: core kinds have no group. (`serving.knative.dev/v1`
  // `Service` is another API and passes through.)
  if (typeof raw.apiVersion === 'string' && !raw.apiVersion.includes('/') && raw.apiVersion !== 'v1' && coreKindChecks.has(raw.kind as string)) {
    return { label, problem: { path: ['apiVersion'], text: 'apiVersion: must be "v1"' } };
  }
  // Core kinds are checked by their full schema (which includes metadata), others by the common part.
  const core = raw.apiVersion === 'v1' && typeof raw.kind === 'string' ? coreKindChecks.get(raw.kind) : undefined;
  const check = core ?? checkKubeObject;
  if (!check.Check(raw)) return { label, problem: joinProblems(describeErrors(check, raw)) };
  const object = withNamespace(raw as unknown as ManifestObject);
  const semantic = core === undefined ? undefined : semanticProblem(object);
  if (semantic !== undefined) return { label: describeObject(object), problem: semantic };
  return { object };
}

/** A few problems of one document in one reason; the first one's path locates the line. */
function joinProblems(problems: FieldProblem[]): FieldProblem {
  return { path: problems[0]?.path ?? [], text: problems.map((p) => p.text).join('; ') };
}

/** `Pod default/details` as far as the raw document allows, for messages about it. */
function labelOf(raw: Record<string, unknown>): string {
  const kind = typeof raw.kind === 'string' && raw.kind !== '' ? raw.kind : 'object';
  const meta = typeof raw.metadata === 'object' && raw.metadata !== null ? (raw.metadata as Record<string, unknown>) : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : '<unnamed>';
  if (CLUSTER_SCOPED_KINDS.has(kind)) return `${kind} ${name}`;
  const ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : DEFAULT_NAMESPACE;
  return `${kind} ${ns}/${name}`;
}

function withNamespace(o: ManifestObject): ManifestObject {
  if (CLUSTER_SCOPED_KINDS.has(o.kind)) {
    if (o.metadata.namespace === undefined) return o;
    // The API server ignores a namespace on cluster-scoped objects; so does Weft.
    const { namespace: _ignored, ...metadata } = o.metadata;
    return { ...o, metadata };
  }
  if (o.metadata.namespace !== undefined) return o;
  return { ...o, metadata: { ...o.metadata, namespace: DEFAULT_NAMESPACE } };
}

/** The checks Kubernetes makes that a schema cannot express: uniqueness inside one object. */
function semanticProblem(o: ManifestObject): FieldProblem | undefined {
  if (isPod(o)) {
    const containers = new Set<string>();
    const portNames = new Set<string>();
    for (let c = 0; c < o.spec.containers.length; c++) {
      const container = o.spec.containers[c]!;
      if (containers.has(container.name)) {
        return { path: ['spec', 'containers', String(c), 'name'], text: `spec.containers[${c}].name: duplicate container name "${container.name}"` };
      }
      containers.add(container.name);
      const ports = container.ports ?? [];
      for (let p = 0; p < ports.length; p++) {
        const name = ports[p]!.name;
        if (name === undefined) continue;
        // Services resolve a named targetPort across the whole pod, so a name must be unique.
        if (portNames.has(name)) {
          const path = ['spec', 'containers', String(c), 'ports', String(p), 'name'];
          return { path, text: `spec.containers[${c}].ports[${p}].name: duplicate port name "${name}" in this pod` };
        }
        portNames.add(name);
      }
    }
  } else if (isService(o)) {
    // As the API server's validation: only ExternalName and headless services may go without.
    if (o.spec.ports === undefined && o.spec.type !== 'ExternalName' && o.spec.clusterIP !== 'None') {
      return { path: ['spec', 'ports'], text: 'spec.ports: required' };
    }
    const seen = new Set<string>();
    const names = new Set<string>();
    const ports = o.spec.ports ?? [];
    for (let p = 0; p < ports.length; p++) {
      const port = ports[p]!;
      const id = `${port.port}/${port.protocol ?? 'TCP'}`;
      if (seen.has(id)) {
        return { path: ['spec', 'ports', String(p), 'port'], text: `spec.ports[${p}].port: duplicate port ${id}` };
      }
      seen.add(id);
      if (ports.length > 1 && port.name === undefined) {
        return { path: ['spec', 'ports', String(p)], text: `spec.ports[${p}].name: required when a service has more than one port` };
      }
      if (port.name !== undefined) {
        if (names.has(port.name)) {
          return { path: ['spec', 'ports', String(p), 'name'], text: `spec.ports[${p}].name: duplicate port name "${port.name}"` };
        }
        names.add(port.name);
      }
    }
  }
  return undefined;
}

/** Line of the deepest YAML node that exists on `path` (a missing field points at its parent). */
function lineOfPath(doc: Document.Parsed, path: readonly string[], lineAt: (offset: number) => number): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return lineAt(node.range[0]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Merging files

export interface ReconcileResult {
  /** Last-good objects per file after this round (files not in `candidates` are unchanged). */
  accepted: Map<string, readonly ManifestObject[]>;
  /** Files whose new content was refused, with why; their previous content stays accepted. */
  rejected: Map<string, ManifestError[]>;
  /** Rejected only because an object is also defined in another file (worth retrying later). */
  conflicted: Set<string>;
}

/**
 * Applies new file contents on top of the last-good set. A candidate with any error is refused
 * as a whole. A candidate that defines an object another accepted file already defines is
 * refused too (naming both files): the file already in force keeps it. Candidates are tried in
 * the given order and retried while any progress is made, so an object that moves from one file
 * to another in one burst of writes is accepted whichever file is read first.
 *
 * `owners` (object key -> file, of `previous`) is an index the caller keeps from one round to
 * the next: it is updated in place to the returned `accepted`, so a round costs what its
 * candidates hold, not a pass over every object of every file (6,550 files: 10-20 ms).
 */
export function reconcileFiles(
  previous: ReadonlyMap<string, readonly ManifestObject[]>,
  candidates: readonly FileParseResult[],
  owners?: Map<string, string>,
): ReconcileResult {
  const accepted = new Map(previous);
  const rejected = new Map<string, ManifestError[]>();
  const conflicted = new Set<string>();
  const owner = owners ?? ownerIndex(previous);

  let pending: FileParseResult[] = [];
  for (const c of candidates) {
    if (c.errors.length > 0) rejected.set(c.file, c.errors);
    else pending.push(c);
  }
  let progress = true;
  while (pending.length > 0 && progress) {
    progress = false;
    const retry: FileParseResult[] = [];
    for (const c of pending) {
      const errors: ManifestError[] = [];
      for (let i = 0; i < c.objects.length; i++) {
        const o = c.objects[i]!;
        const other = owner.get(objectKey(o));
        if (other !== undefined && other !== c.file) {
          const loc = objectLocation(c, i);
          errors.push({
            file: c.file,
            document: loc?.document,
            line: loc?.line,
            reason: `${describeObject(o)}: also defined in ${other}`,
          });
        }
      }
      if (errors.length > 0) {
        rejected.set(c.file, errors);
        conflicted.add(c.file);
        retry.push(c);
        continue;
      }
      for (const o of accepted.get(c.file) ?? []) {
        const key = objectKey(o);
        if (owner.get(key) === c.file) owner.delete(key);
      }
      for (const o of c.objects) owner.set(objectKey(o), c.file);
      accepted.set(c.file, c.objects);
      rejected.delete(c.file);
      conflicted.delete(c.file);
      progress = true;
    }
    pending = retry;
  }
  return { accepted, rejected, conflicted };
}

/** Object key -> the file that defines it, over every file of `accepted`. */
export function ownerIndex(accepted: ReadonlyMap<string, readonly ManifestObject[]>): Map<string, string> {
  const owner = new Map<string, string>();
  for (const [file, objects] of accepted) for (const o of objects) owner.set(objectKey(o), file);
  return owner;
}

/** Names of the manifest files in `dir`, sorted (so merges are deterministic). */
export async function listManifestFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter(isManifestFileName).sort();
}

/**
 * Reads `*.yaml|*.yml` of `dir` (not recursive; symlinks followed, as in a ConfigMap mount).
 * Returns the objects of every file that is valid as a whole, in file-name order, and the errors
 * of the others. File names in errors are relative to `dir`.
 */
export async function loadManifestDir(dir: string): Promise<ParseResult> {
  let names: string[];
  try {
    names = await listManifestFiles(dir);
  } catch (err) {
    throw new WeftError('WEFT_ERR_CONFIG', `cannot read the manifest directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const candidates: FileParseResult[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      if (st.size > MAX_MANIFEST_FILE_BYTES) {
        candidates.push({ file: name, objects: [], locations: [], errors: [fileTooLarge(name, st.size)] });
        continue;
      }
      text = await readFile(path, 'utf8');
    } catch (err) {
      // Deleted between readdir and read: it is simply not there any more.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      const reason = `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
      candidates.push({ file: name, objects: [], locations: [], errors: [{ file: name, reason }] });
      continue;
    }
    candidates.push(parseManifestText(text, name));
  }
  const { accepted, rejected } = reconcileFiles(new Map(), candidates);
  const objects: ManifestObject[] = [];
  const errors: ManifestError[] = [];
  for (const c of candidates) {
    const refused = rejected.get(c.file);
    if (refused !== undefined) errors.push(...refused);
    else for (const o of accepted.get(c.file) ?? []) objects.push(o);
  }
  return { objects, errors };
}

/** The refusal of a file over MAX_MANIFEST_FILE_BYTES, made from its size alone. */
export function fileTooLarge(file: string, size: number): ManifestError {
  return { file, code: 'WEFT_ERR_MANIFEST_TOO_LARGE', reason: `file of ${describeSize(size)} is over the ${describeSize(MAX_MANIFEST_FILE_BYTES)} a manifest file may have; not read (split it, one object per file)` };
}
