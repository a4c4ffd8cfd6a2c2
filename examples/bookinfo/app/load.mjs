// Bounded HTTP load: node app/load.mjs URL --count N [--concurrency C] [--timeout-ms T]
//   [--deadline-ms D] [--keepalive] [--header 'name: value']...
// Sends N GETs (a new TCP connection each unless --keepalive), C at a time, then prints a JSON
// summary: status codes, errors, latency, and for every pod named anywhere in the responses how
// often it answered and which client addresses it saw, and how often each `version` answered
// per service (bookinfo's answers name theirs). Exits 1 when any request failed, 2 when the
// overall deadline cut the run short.
import http from 'node:http';

function usage(msg) {
  process.stderr.write(`load: ${msg}\nusage: node app/load.mjs URL --count N [--concurrency C] [--timeout-ms T] [--deadline-ms D] [--keepalive] [--header 'name: value']...\n`);
  process.exit(64);
}

function parseArgs(argv) {
  const opts = { url: undefined, count: 10, concurrency: 1, timeoutMs: 5000, deadlineMs: 60000, keepalive: false, headers: {} };
  const num = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a positive whole number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') opts.count = num(a, argv[++i]);
    else if (a === '--concurrency') opts.concurrency = num(a, argv[++i]);
    else if (a === '--timeout-ms') opts.timeoutMs = num(a, argv[++i]);
    else if (a === '--deadline-ms') opts.deadlineMs = num(a, argv[++i]);
    else if (a === '--keepalive') opts.keepalive = true;
    else if (a === '--header') {
      const h = argv[++i] ?? '';
      const colon = h.indexOf(':');
      if (colon <= 0) usage(`--header wants 'name: value', not ${h}`);
      opts.headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (opts.url === undefined) opts.url = a;
    else usage(`unexpected argument ${a}`);
  }
  if (opts.url === undefined) usage('URL is required');
  try {
    new URL(opts.url);
  } catch {
    usage(`not a URL: ${opts.url}`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const agent = opts.keepalive ? new http.Agent({ keepAlive: true, maxSockets: opts.concurrency }) : false;
const summary = {
  url: opts.url,
  count: opts.count,
  concurrency: opts.concurrency,
  ok: 0,
  failed: 0,
  timedOut: false,
  statuses: {},
  errors: {},
  pods: {},
  clientAddresses: {},
  versions: {},
  durationMs: 0,
  latencyMs: {},
  sample: undefined,
  firstFailure: undefined,
};
const latencies = [];

/** Every `pod` named in a response, at any depth, with the client address it reported. */
function collect(value) {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collect(v);
    return;
  }
  if (typeof value.service === 'string' && typeof value.version === 'string') {
    const per = (summary.versions[value.service] ??= {});
    per[value.version] = (per[value.version] ?? 0) + 1;
  }
  if (typeof value.pod === 'string') {
    summary.pods[value.pod] = (summary.pods[value.pod] ?? 0) + 1;
    if (typeof value.clientAddress === 'string') {
      const seen = (summary.clientAddresses[value.pod] ??= []);
      if (!seen.includes(value.clientAddress)) seen.push(value.clientAddress);
    }
  }
  for (const v of Object.values(value)) collect(v);
}

function once() {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(opts.url, { agent, timeout: opts.timeoutMs, headers: opts.headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        latencies.push(performance.now() - started);
        const status = res.statusCode ?? 0;
        summary.statuses[status] = (summary.statuses[status] ?? 0) + 1;
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        collect(body);
        if (status >= 200 && status < 300) {
          summary.ok++;
          summary.sample ??= body;
        } else {
          summary.failed++;
          summary.firstFailure ??= { status, body };
        }
        resolve();
      });
      res.on('error', (err) => fail(err, resolve));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', (err) => fail(err, resolve));
  });
}

function fail(err, resolve) {
  const code = err.code ?? err.message;
  summary.errors[code] = (summary.errors[code] ?? 0) + 1;
  summary.failed++;
  summary.firstFailure ??= { error: `${err.code ?? ''} ${err.message}`.trim() };
  resolve();
}

function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  return Number(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(2));
}

let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  const sorted = [...latencies].sort((a, b) => a - b);
  summary.latencyMs = {
    min: percentile(sorted, 0),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? undefined : Number(sorted[sorted.length - 1].toFixed(2)),
  };
  summary.durationMs = Number((performance.now() - t0).toFixed(1));
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n', () => process.exit(code));
}

const t0 = performance.now();
// The hard limit: whatever hangs, the tool ends and says so.
setTimeout(() => {
  summary.timedOut = true;
  summary.failed += opts.count - summary.ok - summary.failed;
  finish(2);
}, opts.deadlineMs).unref();

let next = 0;
async function worker() {
  while (next < opts.count) {
    next++;
    await once();
  }
}
await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.count) }, worker));
finish(summary.failed > 0 ? 1 : 0);
