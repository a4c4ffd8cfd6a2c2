/**
 * Who may ask the CA for what. Authentication maps a bearer token to a node; authorization says
 * whether a node may hold an identity. The lab uses a tokens file and the discovery model; a
 * Kubernetes deployment will plug a TokenReview authenticator and a pod-lister authorizer into
 * the same interfaces.
 */
import { stat, readFile } from 'node:fs/promises';
import { WeftError } from '../errors.js';
import type { IdentityAuthorizer, NodeAuthenticator } from './ca-types.js';

/** Tokens held in memory: `{ token: nodeName }`. */
export class StaticTokenAuthenticator implements NodeAuthenticator {
  #tokens: Map<string, string>;
  constructor(tokens: Record<string, string> | Map<string, string>) {
    this.#tokens = tokens instanceof Map ? new Map(tokens) : new Map(Object.entries(tokens));
  }
  async authenticate(token: string): Promise<string | undefined> {
    return token === '' ? undefined : this.#tokens.get(token);
  }
}

/**
 * Tokens from a JSON file `{ "<token>": "<node name>" }` written by the lab. The file is re-read
 * when its size or mtime changes, so nodes added after the CA started authenticate without a
 * restart; a file that does not parse keeps the last good set (and the error is thrown to the
 * first caller, who logs it as a CA failure).
 */
export class TokenFileAuthenticator implements NodeAuthenticator {
  readonly #path: string;
  #signature = '';
  #tokens = new Map<string, string>();

  constructor(path: string) {
    this.#path = path;
  }

  async authenticate(token: string): Promise<string | undefined> {
    if (token === '') return undefined;
    await this.#refresh();
    return this.#tokens.get(token);
  }

  async #refresh(): Promise<void> {
    let signature: string;
    try {
      const st = await stat(this.#path);
      signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      throw new WeftError('WEFT_ERR_CONFIG', `cannot read the CA tokens file ${this.#path}`, { cause: err });
    }
    if (signature === this.#signature) return;
    const text = await readFile(this.#path, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new WeftError('WEFT_ERR_CONFIG', `CA tokens file ${this.#path} is not JSON`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new WeftError('WEFT_ERR_CONFIG', `CA tokens file ${this.#path} must be an object {token: nodeName}`);
    }
    const next = new Map<string, string>();
    for (const [token, node] of Object.entries(parsed)) {
      if (typeof node === 'string' && token !== '') next.set(token, node);
    }
    this.#tokens = next;
    this.#signature = signature;
  }
}

/** Answers "is a pod of `namespace`/`serviceAccount` scheduled on `node`?" (e.g. from discovery). */
export type PodPlacement = (node: string, namespace: string, serviceAccount: string) => boolean;

/** Allows an identity on a node exactly when a pod with that namespace and service account runs there. */
export class PlacementAuthorizer implements IdentityAuthorizer {
  readonly #placed: PodPlacement;
  constructor(placed: PodPlacement) {
    this.#placed = placed;
  }
  authorize(node: string, identity: { namespace: string; serviceAccount: string }): boolean {
    return this.#placed(node, identity.namespace, identity.serviceAccount);
  }
}
