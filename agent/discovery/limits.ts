/**
 * Size limits on what discovery reads, as Kubernetes has its own: the API server refuses an
 * object over 1.5 MiB (etcd's request limit) and a request body over 3 MiB. Anything bigger is
 * refused before it costs the agent's event loop more than reading it (WEFT_ERR_OBJECT_TOO_LARGE,
 * WEFT_ERR_MANIFEST_TOO_LARGE in docs/errors.md).
 */

// The limits themselves are in agent/config.ts (MAX_OBJECT_BYTES, MAX_MANIFEST_FILE_BYTES).

/** `1.5 MiB`, `50.0 MiB`, `2.3 KiB` */
export function describeSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${bytes} bytes`;
}
