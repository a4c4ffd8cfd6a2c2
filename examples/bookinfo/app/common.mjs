// What the bookinfo services share: a JSON HTTP server on PORT (default 9080) that says which
// pod and version answered and which client address it saw, and bounded JSON GETs to upstreams
// that carry the request's `end-user` and trace headers on (as Istio's Bookinfo apps do, so that
// routes and faults matching on them apply at every hop).
import http from 'node:http';

export const POD = process.env.POD_NAME ?? 'unknown';
export const PORT = Number(process.env.PORT ?? 9080);
/** The app's version (Istio's samples label pods `version: v1`; the Deployment says it in env). */
export const VERSION = process.env.SERVICE_VERSION ?? 'v1';
const DEFAULT_TIMEOUT_MS = Number(process.env.UPSTREAM_TIMEOUT_MS ?? 3000);

/**
 * The headers Istio's Bookinfo forwards (productpage.py's headers_to_propagate): the user for
 * routing, W3C trace context, B3 (multi and single header), and the other tracers' own.
 */
export const PROPAGATED_HEADERS = [
  'end-user',
  'user-agent',
  'x-request-id',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-ot-span-context',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
];

/** The propagated headers of an incoming request, to send on with every upstream call. */
export function forwardedHeaders(req) {
  const out = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Serves `handler(req, url)` -> { status?, body, headers? } as JSON; every body gets `service`,
 * `version`, `pod` and `clientAddress` (the peer address of the TCP connection as this server
 * saw it). A handler may answer itself (`{ raw: true }`), for redirects.
 */
export function serve(service, handler) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let status = 200;
    let body;
    let headers = {};
    try {
      const out = await handler(req, url, res);
      if (out.raw === true) return;
      status = out.status ?? 200;
      body = out.body;
      headers = out.headers ?? {};
    } catch (err) {
      status = 500;
      body = { error: err instanceof Error ? err.message : String(err) };
    }
    const json = JSON.stringify({ service, version: VERSION, pod: POD, clientAddress: req.socket.remoteAddress, ...body });
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  });
  server.keepAliveTimeout = 5000;
  // 0.0.0.0, not ::, so clientAddress is a plain IPv4 address.
  server.listen(PORT, process.env.HOST ?? '0.0.0.0', () => {
    process.stdout.write(`${service} ${VERSION} (${POD}) listening on ${server.address().port}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

/** GET url -> { status, body } (body parsed as JSON when it is). Never hangs past `timeoutMs`. */
export function getJson(url, headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = { raw: text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    // A deadline for the whole exchange (as Python's requests timeout= is, roughly), not idle time.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * An upstream call as part of a response: its body, or why it failed. `retries`: further attempts
 * after a failure (no answer, or a 5xx), as productpage retries reviews once.
 */
export async function upstream(url, { headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS, retries = 0 } = {}) {
  let last;
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const { status, body } = await getJson(url, headers, timeoutMs);
      last = { ok: status >= 200 && status < 300, status, body, attempts: attempt + 1 };
      if (status < 500) return last;
    } catch (err) {
      last = { ok: false, status: 0, error: `${err.code ?? ''} ${err.message}`.trim(), attempts: attempt + 1 };
    }
  }
  return last;
}
