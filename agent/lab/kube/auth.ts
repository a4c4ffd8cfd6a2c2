/**
 * Authentication: a static admin bearer token (user `weft-lab-admin`, group system:masters, for
 * kubectl and the lab itself) and service-account tokens. Service-account tokens are JWTs
 * signed ES256 with the server's key, with the claims of Kubernetes' bound tokens (`iss`,
 * `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, and `kubernetes.io` with namespace, serviceaccount,
 * pod and node), so a consumer that decodes them sees what a real cluster issues.
 */
import { DEFAULT_CLUSTER_DOMAIN } from '../../config.js';
import { createPublicKey, randomUUID, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { Store } from './store.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';

export const API_AUDIENCE = `https://kubernetes.default.svc.${DEFAULT_CLUSTER_DOMAIN}`;
export const TOKEN_ISSUER = `https://kubernetes.default.svc.${DEFAULT_CLUSTER_DOMAIN}`;
export const ADMIN_USER = 'weft-lab-admin';

export interface UserInfo {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export interface ServiceAccountClaims {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  node?: { name: string; uid: string };
  audiences: string[];
  expiresAt: number;
  issuedAt: number;
  id: string;
}

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export class TokenAuthority {
  readonly #key: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #keyId: string;
  readonly #adminToken: string;
  readonly #store: Store;
  readonly #now: () => number;

  constructor(key: KeyObject, adminToken: string, store: Store, now: () => number) {
    this.#key = key;
    this.#publicKey = createPublicKey(key);
    this.#keyId = b64(this.#publicKey.export({ type: 'spki', format: 'der' }).subarray(-16));
    this.#adminToken = adminToken;
    this.#store = store;
    this.#now = now;
  }

  get adminToken(): string {
    return this.#adminToken;
  }

  issue(c: Omit<ServiceAccountClaims, 'id' | 'issuedAt'>): { token: string; id: string } {
    const id = randomUUID();
    const iat = Math.floor(this.#now() / 1000);
    const k8s: JsonObject = { namespace: c.namespace, serviceaccount: { name: c.serviceAccount.name, uid: c.serviceAccount.uid } };
    if (c.pod) k8s['pod'] = { name: c.pod.name, uid: c.pod.uid };
    if (c.node) k8s['node'] = { name: c.node.name, uid: c.node.uid };
    const payload = {
      aud: c.audiences,
      exp: Math.floor(c.expiresAt / 1000),
      iat,
      nbf: iat,
      iss: TOKEN_ISSUER,
      jti: id,
      'kubernetes.io': k8s,
      sub: `system:serviceaccount:${c.namespace}:${c.serviceAccount.name}`,
    };
    const signingInput = `${b64(JSON.stringify({ alg: 'ES256', kid: this.#keyId }))}.${b64(JSON.stringify(payload))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${b64(signature)}`, id };
  }

  /**
   * Validates a token for `audiences` (any one must match; the API's own audience when
   * omitted). Returns the user, or the reason it is refused, worded like the real
   * authenticator's errors.
   */
  authenticate(token: string, audiences: readonly string[] = [API_AUDIENCE]): { user: UserInfo; audiences: string[] } | { error: string } {
    if (token === '') return { error: 'empty token' };
    if (token.length === this.#adminToken.length && timingSafeEqual(Buffer.from(token), Buffer.from(this.#adminToken))) {
      return { user: { username: ADMIN_USER, uid: '', groups: ['system:masters', 'system:authenticated'], extra: {} }, audiences: [...audiences] };
    }
    const claims = this.#verify(token);
    if ('error' in claims) return claims;
    const matched = claims.audiences.filter((a) => audiences.includes(a));
    if (matched.length === 0) return { error: '[invalid bearer token, token audiences ' + JSON.stringify(claims.audiences) + ' is invalid for the target audiences ' + JSON.stringify(audiences) + ', unknown]' };
    if (claims.expiresAt <= this.#now()) return { error: '[invalid bearer token, service account token has expired, unknown]' };
    const sa = this.#store.peek('/serviceaccounts', claims.namespace, claims.serviceAccount.name);
    if (sa === undefined) return { error: `[invalid bearer token, serviceaccounts "${claims.serviceAccount.name}" not found, unknown]` };
    if (sa.metadata.uid !== claims.serviceAccount.uid) return { error: `[invalid bearer token, service account UID (${claims.serviceAccount.uid}) does not match claim (${sa.metadata.uid ?? ''}), unknown]` };
    const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.id}`] };
    if (claims.pod) {
      const pod: KubeObject | undefined = this.#store.peek('/pods', claims.namespace, claims.pod.name);
      if (pod === undefined) return { error: `[invalid bearer token, pods "${claims.pod.name}" not found, unknown]` };
      if (pod.metadata.uid !== claims.pod.uid) return { error: `[invalid bearer token, pod UID (${pod.metadata.uid ?? ''}) does not match claim (${claims.pod.uid}), unknown]` };
      extra['authentication.kubernetes.io/pod-name'] = [claims.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [claims.pod.uid];
    }
    if (claims.node) {
      extra['authentication.kubernetes.io/node-name'] = [claims.node.name];
      extra['authentication.kubernetes.io/node-uid'] = [claims.node.uid];
    }
    return {
      user: {
        username: `system:serviceaccount:${claims.namespace}:${claims.serviceAccount.name}`,
        uid: claims.serviceAccount.uid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${claims.namespace}`, 'system:authenticated'],
        extra,
      },
      audiences: matched,
    };
  }

  #verify(token: string): ServiceAccountClaims | { error: string } {
    const parts = token.split('.');
    const invalid = { error: '[invalid bearer token, square/go-jose: error in cryptographic primitive, unknown]' };
    if (parts.length !== 3) return { error: 'invalid bearer token' };
    let payload: unknown;
    try {
      const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: this.#publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2]!, 'base64url'));
      if (!ok) return invalid;
      payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    } catch {
      return invalid;
    }
    if (!isJsonObject(payload) || payload['iss'] !== TOKEN_ISSUER) return invalid;
    const k8s = payload['kubernetes.io'];
    if (!isJsonObject(k8s) || typeof k8s['namespace'] !== 'string' || !isJsonObject(k8s['serviceaccount'])) return invalid;
    const ref = (v: unknown): { name: string; uid: string } | undefined =>
      isJsonObject(v) && typeof v['name'] === 'string' && typeof v['uid'] === 'string' ? { name: v['name'], uid: v['uid'] } : undefined;
    const sa = ref(k8s['serviceaccount']);
    if (sa === undefined) return invalid;
    const aud = payload['aud'];
    const pod = ref(k8s['pod']);
    const node = ref(k8s['node']);
    return {
      namespace: k8s['namespace'],
      serviceAccount: sa,
      ...(pod ? { pod } : {}),
      ...(node ? { node } : {}),
      audiences: Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : typeof aud === 'string' ? [aud] : [],
      expiresAt: Number(payload['exp']) * 1000,
      issuedAt: Number(payload['iat']) * 1000,
      id: typeof payload['jti'] === 'string' ? payload['jti'] : '',
    };
  }
}
