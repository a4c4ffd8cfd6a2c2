/**
 * metav1.Status failures, as the real API server words them (clients match on `reason` and
 * `code`; kubectl prints `message`). Handlers throw StatusError; the HTTP layer writes it.
 */
import type { JsonObject } from './types.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Gone'
  | 'Expired'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'RequestEntityTooLarge';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  retryAfterSeconds?: number;
  causes?: { reason?: string; message: string; field?: string }[];
}

export class StatusError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: StatusDetails | undefined;
  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'StatusError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): JsonObject {
    return statusObject(this.code, this.reason, this.message, this.details);
  }
}

export function statusObject(code: number, reason: StatusReason | '', message: string, details?: StatusDetails): JsonObject {
  const s: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason !== '') s['reason'] = reason;
  if (details !== undefined) s['details'] = JSON.parse(JSON.stringify(details)) as JsonObject;
  s['code'] = code;
  return s;
}

export function successStatus(details: StatusDetails): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: JSON.parse(JSON.stringify(details)) as JsonObject };
}

/** `pods` or `deployments.apps`, as Kubernetes names a resource in messages. */
export function qualified(group: string, plural: string): string {
  return group === '' ? plural : `${plural}.${group}`;
}

export const errors = {
  notFound: (group: string, plural: string, name: string): StatusError =>
    new StatusError(404, 'NotFound', `${qualified(group, plural)} "${name}" not found`, { name, ...(group ? { group } : {}), kind: plural }),
  alreadyExists: (group: string, plural: string, name: string): StatusError =>
    new StatusError(409, 'AlreadyExists', `${qualified(group, plural)} "${name}" already exists`, { name, ...(group ? { group } : {}), kind: plural }),
  conflict: (group: string, plural: string, name: string, why: string): StatusError =>
    new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(group, plural)} "${name}": ${why}`, { name, ...(group ? { group } : {}), kind: plural }),
  invalid: (group: string, kind: string, name: string, causes: { field: string; message: string }[]): StatusError =>
    new StatusError(422, 'Invalid', `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
      name,
      ...(group ? { group } : {}),
      kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    }),
  badRequest: (message: string): StatusError => new StatusError(400, 'BadRequest', message),
  gone: (message: string): StatusError => new StatusError(410, 'Expired', message),
  methodNotAllowed: (message: string): StatusError => new StatusError(405, 'MethodNotAllowed', message),
  unsupportedMediaType: (type: string): StatusError => new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${type})`),
  pathNotFound: (): StatusError => new StatusError(404, 'NotFound', 'the server could not find the requested resource'),
};
