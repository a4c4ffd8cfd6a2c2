/**
 * The little OpenAPI v3 kubectl needs: /openapi/v3 lists one document per group-version, and
 * each document has a PATCH operation per kind that takes the `fieldValidation` query
 * parameter. kubectl 1.32 reads only that to decide that the server validates fields itself
 * (`--validate=strict`, its default), so it needs no schemas; without it, `kubectl apply`
 * fails with "failed to download openapi". No schemas are served (no `kubectl explain`), and
 * the PATCH operations do not list the strategic-merge content type, so kubectl computes
 * strategic patches from its built-in types, as it does against servers without OpenAPI.
 * /openapi/v2 stays 404.
 */
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceRegistry } from './resources.js';
import type { JsonObject } from './types.js';

function gvPath(groupVersion: string): string {
  return groupVersion.includes('/') ? `apis/${groupVersion}` : `api/${groupVersion}`;
}

function groupVersions(registry: ResourceRegistry): string[] {
  return [...new Set(registry.stored().map(apiVersionOf))].sort();
}

function fingerprint(registry: ResourceRegistry, gv: string): string {
  const kinds = registry.stored().filter((t) => apiVersionOf(t) === gv).map((t) => `${t.kind}/${t.plural}/${t.namespaced}`);
  return createHash('sha256').update(kinds.sort().join(',')).digest('hex').slice(0, 32).toUpperCase();
}

export function openApiV3Root(registry: ResourceRegistry): JsonObject {
  const paths: JsonObject = {};
  for (const gv of groupVersions(registry)) paths[gvPath(gv)] = { serverRelativeURL: `/openapi/v3/${gvPath(gv)}?hash=${fingerprint(registry, gv)}` };
  return { paths };
}

/** The document of `/openapi/v3/<path>` (e.g. `api/v1`, `apis/apps/v1`), or undefined. */
export function openApiV3Document(registry: ResourceRegistry, path: string): JsonObject | undefined {
  const gv = groupVersions(registry).find((g) => gvPath(g) === path);
  if (gv === undefined) return undefined;
  const paths: JsonObject = {};
  for (const t of registry.stored().filter((x) => apiVersionOf(x) === gv)) {
    const base = `/${gvPath(gv)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}/{name}`;
    paths[base] = {
      patch: {
        operationId: `patch${t.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
        parameters: [
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
        ],
        requestBody: {
          content: {
            'application/json-patch+json': { schema: { type: 'object' } },
            'application/merge-patch+json': { schema: { type: 'object' } },
            'application/apply-patch+yaml': { schema: { type: 'object' } },
          },
          required: true,
        },
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (weft lab test double)', version: 'v1.32.0' }, paths, components: { schemas: {} } };
}
