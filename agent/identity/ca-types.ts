/**
 * The contracts around the CA: who the caller is (NodeAuthenticator), whether that caller may
 * have an identity (IdentityAuthorizer), and how an agent reaches a CA (CaClient). Kept apart
 * from the implementations so the agent depends on interfaces only.
 */

/** A signed workload certificate as the CA returns it. */
export interface SignedCertificate {
  /** The leaf certificate (PEM). */
  certPem: string;
  /** Intermediates between the leaf and a root, leaf's issuer first; empty when a root signs. */
  chainPem: string[];
  /** Root certificates that verify workload certificates (PEM each). */
  trustBundle: string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Who presented a token: a node's agent (may ask for the identities of its node's pods), or one
 * workload (a waypoint's or a gateway's pod, with its own service account's token) running on
 * `node`, which may ask for its own identity only.
 */
export interface CaCaller {
  node: string;
  workload?: { namespace: string; serviceAccount: string };
}

/** Maps the bearer token of an agent to the name of its node; undefined when not accepted. */
export interface NodeAuthenticator {
  authenticate(token: string): Promise<string | undefined>;
  /** When present, used instead of `authenticate`: also accepts workloads' own tokens. */
  authenticateCaller?(token: string): Promise<CaCaller | undefined>;
}

/** Whether `node` may hold `identity` (a SPIFFE ID already known to be well-formed). */
export interface IdentityAuthorizer {
  authorize(node: string, identity: { namespace: string; serviceAccount: string; uri: string }): boolean | Promise<boolean>;
}

/** How an agent obtains certificates. One per agent (its node is implied by its credentials). */
export interface CaClient {
  /** Signs a PKCS#10 request for `identity` (a SPIFFE ID). Rejects with WEFT_ERR_CA_*. */
  sign(csrPem: string, identity: string): Promise<SignedCertificate>;
  /** The current roots (PEM each). */
  bundle(): Promise<string[]>;
}

/** Result label of `weft_ca_requests_total`. */
export type CaRequestResult = 'signed' | 'unauthenticated' | 'unauthorized' | 'bad_request' | 'error';
