/**
 * Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and field selectors
 * (`spec.nodeName=n1,status.phase!=Failed`) with Kubernetes' grammar and error messages.
 */
import { StatusError, errors } from './status.js';
import type { ResourceType } from './resources.js';
import { pathValue, type KubeObject } from './types.js';

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: Set<string> }
  | { key: string; op: 'exists' | 'notexists' };

export type LabelSelector = readonly Requirement[];

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Splits at commas that are not inside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

function checkKey(key: string, selector: string): string {
  if (!KEY.test(key)) throw errors.badRequest(`unable to parse requirement: invalid label key "${key}": name part must consist of alphanumeric characters, '-', '_' or '.' (selector "${selector}")`);
  return key;
}

function checkValue(value: string, selector: string): string {
  if (!VALUE.test(value) || value.length > 63) throw errors.badRequest(`unable to parse requirement: invalid label value: "${value}" (selector "${selector}")`);
  return value;
}

export function parseLabelSelector(selector: string | undefined): LabelSelector {
  if (selector === undefined || selector.trim() === '') return [];
  const reqs: Requirement[] = [];
  for (const term of splitTerms(selector)) {
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
    if (set) {
      const values = new Set(set[3]!.split(',').map((v) => checkValue(v.trim(), selector)));
      reqs.push({ key: checkKey(set[1]!, selector), op: set[2] === 'in' ? 'in' : 'notin', values });
      continue;
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (cmp) {
      reqs.push({ key: checkKey(cmp[1]!, selector), op: cmp[2] === '!=' ? 'neq' : 'eq', value: checkValue(cmp[3]!.trim(), selector) });
      continue;
    }
    if (term.startsWith('!')) {
      reqs.push({ key: checkKey(term.slice(1).trim(), selector), op: 'notexists' });
      continue;
    }
    reqs.push({ key: checkKey(term, selector), op: 'exists' });
  }
  return reqs;
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        if (v !== r.value) return false;
        break;
      case 'neq':
        if (has && v === r.value) return false;
        break;
      case 'in':
        if (!has || !r.values.has(v!)) return false;
        break;
      case 'notin':
        if (has && r.values.has(v!)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case 'notexists':
        if (has) return false;
        break;
    }
  }
  return true;
}

interface FieldRequirement {
  field: string;
  negate: boolean;
  value: string;
}

export type FieldSelector = readonly FieldRequirement[];

const COMMON_FIELDS = ['metadata.name', 'metadata.namespace'];

/** Parses a field selector for `type`; a field the kind does not index is a 400, as in Kubernetes. */
export function parseFieldSelector(selector: string | undefined, type: ResourceType): FieldSelector {
  if (selector === undefined || selector.trim() === '') return [];
  const out: FieldRequirement[] = [];
  for (const term of splitTerms(selector)) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw errors.badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const field = m[1]!.trim();
    if (!COMMON_FIELDS.includes(field) && !type.fields.includes(field)) {
      const resource = `${type.group}/${type.version}, Resource=${type.plural}`;
      throw new StatusError(400, 'BadRequest', `Unable to find "${resource}" that match label selector "", field selector "${selector}": field label not supported: ${field}`);
    }
    out.push({ field, negate: m[2] === '!=', value: m[3]!.trim() });
  }
  return out;
}

/** Field values as Kubernetes' field-label conversion gives them (absent fields are ""). */
function fieldValue(obj: KubeObject, field: string): string {
  if (field === 'source') return String(pathValue(obj, 'source.component') ?? '');
  const v = pathValue(obj, field);
  if (v === undefined || v === null) return field === 'spec.hostNetwork' || field === 'spec.unschedulable' ? 'false' : '';
  return typeof v === 'string' ? v : String(v);
}

export function matchesFields(sel: FieldSelector, obj: KubeObject): boolean {
  for (const r of sel) {
    const equal = fieldValue(obj, r.field) === r.value;
    if (equal === r.negate) return false;
  }
  return true;
}

