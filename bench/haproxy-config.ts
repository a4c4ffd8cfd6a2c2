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

function header(maxconn: number, mode: 'tcp' | 'http'): string[] {
  return [
    '# Written by weft bench (bench/haproxy-config.ts) for one run; removed afterwards.',
    'global',
    '  nbthread 1',
    `  maxconn ${maxconn}`,
    // Only failed connections are logged (dontlog-normal): no cost on the measured path.
    '  log stderr format raw local0',
    '  ssl-default-bind-options ssl-min-ver TLSv1.3',
    '  ssl-default-server-options ssl-min-ver TLSv1.3',
    '',
    'defaults',
    `  mode ${mode}`,
    '  log global',
    `  option ${mode === 'tcp' ? 'tcplog' : 'httplog'}`,
    '  option dontlog-normal',
    '  timeout connect 5s',
    // Idle connections must survive the whole idle scenario.
    '  timeout client 10m',
    '  timeout server 10m',
    ...(mode === 'http' ? ['  timeout http-keep-alive 10m', '  timeout http-request 10s', '  http-reuse always'] : []),
    '',
  ];
}

export function haproxyConfig(c: HaproxyClientSide | HaproxyServerSide): string {
  const lines = header(c.maxconn, 'tcp');
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

/**
 * The l7 scenario's pair in HTTP mode: the same two hops with mutual TLS between them, but each
 * HAProxy parses every request (keep-alive on both sides, server connections reused). `h1Port`
 * speaks HTTP/1.1 end to end; `h2Port` h2c from the client, HTTP/2 over TLS (ALPN h2) between the
 * hops and h2c to the pod, with trailers (gRPC).
 */
export interface HaproxyHttpPorts {
  h1Port: number;
  h2Port: number;
}

export function haproxyHttpConfig(c: (HaproxyClientSide | HaproxyServerSide) & HaproxyHttpPorts): string {
  const lines = header(c.maxconn, 'http');
  for (const [port, h2] of [[c.h1Port, false], [c.h2Port, true]] as const) {
    const tlsPort = port + TLS_PORT_OFFSET;
    const alpn = h2 ? 'h2' : 'http/1.1';
    if (c.role === 'client') {
      lines.push(
        `frontend plain_${port}`,
        `  bind ${c.listenIp}:${port}${h2 ? ' proto h2' : ''}`,
        `  maxconn ${c.maxconn}`,
        `  default_backend tls_${port}`,
        `backend tls_${port}`,
        `  server peer ${c.peerIp}:${tlsPort} ssl verify required ca-file ${c.caFile} crt ${c.certPem} alpn ${alpn}`,
        '',
      );
    } else {
      lines.push(
        `frontend tls_${port}`,
        `  bind ${c.listenIp}:${tlsPort} ssl crt ${c.certPem} ca-file ${c.caFile} verify required alpn ${alpn}`,
        `  maxconn ${c.maxconn}`,
        `  default_backend pod_${port}`,
        `backend pod_${port}`,
        `  server pod ${c.podIp}:${port}${h2 ? ' proto h2' : ''}`,
        '',
      );
    }
  }
  return lines.join('\n');
}

/** The ingress scenario's TLS-terminating reverse proxy: HTTPS in, plain HTTP/1.1 keep-alive to the pod. */
export interface HaproxyIngress {
  maxconn: number;
  listenIp: string;
  listenPort: number;
  /** Serving certificate + key PEM. */
  certPem: string;
  podIp: string;
  podPort: number;
}

export function haproxyIngressConfig(c: HaproxyIngress): string {
  return [
    ...header(c.maxconn, 'http'),
    'frontend https',
    `  bind ${c.listenIp}:${c.listenPort} ssl crt ${c.certPem} alpn http/1.1`,
    `  maxconn ${c.maxconn}`,
    '  default_backend pod',
    'backend pod',
    `  server pod ${c.podIp}:${c.podPort}`,
    '',
  ].join('\n');
}

/** The same reverse proxy as nginx (the peer), where /usr/sbin/nginx exists. */
export function nginxIngressConfig(c: Omit<HaproxyIngress, 'certPem'> & { crt: string; key: string; dir: string }): string {
  return [
    '# Written by weft bench (bench/haproxy-config.ts) for one run; removed afterwards.',
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${c.dir}/nginx.pid;`,
    `error_log ${c.dir}/nginx-error.log warn;`,
    `events { worker_connections ${Math.max(1024, c.maxconn)}; }`,
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${c.dir}/body;`,
    `  proxy_temp_path ${c.dir}/proxy;`,
    '  keepalive_timeout 600s;',
    '  keepalive_requests 1000000;',
    `  upstream pod { server ${c.podIp}:${c.podPort}; keepalive 64; keepalive_requests 1000000; }`,
    '  server {',
    `    listen ${c.listenIp}:${c.listenPort} ssl;`,
    `    ssl_certificate ${c.crt};`,
    `    ssl_certificate_key ${c.key};`,
    '    ssl_protocols TLSv1.3;',
    '    location / { proxy_pass http://pod; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    '  }',
    '}',
    '',
  ].join('\n');
}
