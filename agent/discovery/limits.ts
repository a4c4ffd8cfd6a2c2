/**
 * Size limits on what discovery reads, as Kubernetes has its own: the API server refuses an
 * object over 1.5 MiB (etcd's request limit) and a request body over 3 MiB. Anything bigger is
 * refused before it costs the agent's event loop more than reading it (WEFT_ERR_OBJECT_TOO_LARGE,
 * WEFT_ERR_MANIFEST_TOO_LARGE in docs/errors.md).
 */

/** One object (one YAML document, one watch event): Kubernetes' own limit. */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/**
 * One manifest file, which may hold several objects: about as much as `kubectl apply -f` of one
 * file sends in a few requests. A bigger file is refused from its size alone, without a read.
 */
export const MAX_MANIFEST_FILE_BYTES = 8 * 1024 * 1024;

/** `1.5 MiB`, `50.0 MiB`, `2.3 KiB` */
export function describeSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${bytes} bytes`;
}
