/**
 * HAProxy configurations for the node-level mTLS tunnel a user could build instead of a mesh:
 *   client pod -> client-node HAProxy (plaintext, port P) -> mutual TLS 1.3 -> server-node
 *   HAProxy (port TLS_PORT_OFFSET + P) -> server pod (plaintext, port P)
 * One thread each (`nbthread 1`), as the issue asks. Pure: text from inputs.
 */

/** The server-side TLS listener of service port P is P + this. */
export const TLS_PORT_OFFSET = 10_000;

export interface HaproxyCommon {
  /** Services carried, by pod port (7000, 7001, 5201). */
  ports: readonly number[];
  caFile: string;
  /** Certificate + key PEM this side presents. */
  certPem: string;
  /** Global and per-frontend connection limit (the idle scenario holds 10,000). */
  maxconn: number;
}

export interface HaproxyClientSide extends HaproxyCommon {
  role: 'client';
  /** Address the client pod connects to (an address of the client node). */
  listenIp: string;
  /** The server node's address (its HAProxy's TLS listeners). */
  peerIp: string;
}

export interface HaproxyServerSide extends HaproxyCommon {
  role: 'server';
  /** The server node's address, where the TLS listeners bind. */
  listenIp: string;
  /** The server pod's address. */
  podIp: string;
}

export function haproxyConfig(c: HaproxyClientSide | HaproxyServerSide): string {
  const lines = [
    '# Written by weft bench (bench/haproxy-config.ts) for one run; removed afterwards.',
    'global',
    '  nbthread 1',
    `  maxconn ${c.maxconn}`,
    // Only failed connections are logged (dontlog-normal): no cost on the measured path.
    '  log stderr format raw local0',
    '  ssl-default-bind-options ssl-min-ver TLSv1.3',
    '  ssl-default-server-options ssl-min-ver TLSv1.3',
    '',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  option dontlog-normal',
    '  timeout connect 5s',
    // Idle connections must survive the whole idle scenario.
    '  timeout client 10m',
    '  timeout server 10m',
    '',
  ];
  for (const port of c.ports) {
    const tlsPort = port + TLS_PORT_OFFSET;
    if (c.role === 'client') {
      lines.push(
        `frontend plain_${port}`,
        `  bind ${c.listenIp}:${port}`,
        `  maxconn ${c.maxconn}`,
        `  default_backend tls_${port}`,
        `backend tls_${port}`,
        `  server peer ${c.peerIp}:${tlsPort} ssl verify required ca-file ${c.caFile} crt ${c.certPem}`,
        '',
      );
    } else {
      lines.push(
        `frontend tls_${port}`,
        `  bind ${c.listenIp}:${tlsPort} ssl crt ${c.certPem} ca-file ${c.caFile} verify required`,
        `  maxconn ${c.maxconn}`,
        `  default_backend pod_${port}`,
        `backend pod_${port}`,
        `  server pod ${c.podIp}:${port}`,
        '',
      );
    }
  }
  return lines.join('\n');
}
