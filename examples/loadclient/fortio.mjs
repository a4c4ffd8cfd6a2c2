// A small fortio-like load client, for running Istio's tasks as their pages write them:
//   node fortio.mjs load [-c 8] [-qps 0] [-n 0] [-t 5s] [-timeout 3s] [-H 'name: value']...
//        [-keepalive=false] [-json -] [-loglevel Warning] URL
//   node fortio.mjs load -curl URL        (one request, the answer printed as fortio prints it)
// As fortio: -c connections ("threads"), each one keep-alive HTTP/1.1 connection sending its
// share of -n calls back to back (-qps 0: as fast as it answers; -qps Q: Q per second in all),
// or for -t when -n is 0; per call -timeout. It prints fortio's summary ("Code 200 : 19 (63.3 %)")
// and, with -json -, fortio's JSON result on stdout (RetCodes, DurationHistogram, ActualQPS...).
// Always bounded: at most MAX_CALLS calls and MAX_RUN_MS in all, whatever the flags say; exits
// 0 when it ran (as fortio does, whatever the codes), 1 when every call failed, 64 on bad flags.
import http from 'node:http';

const MAX_CALLS = 100_000;
const MAX_RUN_MS = 120_000;

function usage(msg) {
  process.stderr.write(`fortio: ${msg}\nusage: node fortio.mjs load [-c N] [-qps Q] [-n N] [-t DUR] [-timeout DUR] [-H 'name: value'] [-keepalive=false] [-json -] [-curl] URL\n`);
  process.exit(64);
}

/** Go durations as fortio takes them: 5s, 500ms, 1m, 1.5s; a bare number is seconds. */
function duration(flag, v) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v ?? '');
  if (m === null) usage(`${flag} wants a duration like 5s or 500ms, not ${v}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'];
}

function count(flag, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) usage(`${flag} wants a whole number, not ${v}`);
  return n;
}

function parse(argv) {
  if (argv[0] !== 'load') usage(`only the load command is here (got ${argv[0] ?? 'nothing'})`);
  const o = { c: 8, qps: 8, n: 0, t: 5000, timeout: 3000, headers: {}, keepalive: true, json: false, curl: false, url: undefined };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i].replace(/^--/, '-');
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '-c') o.c = Math.max(1, count(flag, value()));
    else if (flag === '-qps') o.qps = Number(value());
    else if (flag === '-n') o.n = count(flag, value());
    else if (flag === '-t') o.t = duration(flag, value());
    else if (flag === '-timeout') o.timeout = duration(flag, value());
    else if (flag === '-H') {
      const h = value() ?? '';
      const colon = h.indexOf(':');
      if (colon <= 0) usage(`-H wants 'name: value', not ${h}`);
      o.headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    } else if (flag === '-keepalive') o.keepalive = inline === undefined ? true : inline !== 'false';
    else if (flag === '-json') o.json = value() === '-';
    else if (flag === '-curl') o.curl = true;
    else if (flag === '-loglevel' || flag === '-allow-initial-errors' || flag === '-quiet') {
      if (flag === '-loglevel') value();
    } else if (flag.startsWith('-')) usage(`unknown flag ${flag}`);
    else if (o.url === undefined) o.url = argv[i];
    else usage(`unexpected argument ${argv[i]}`);
  }
  if (o.url === undefined) usage('URL is required');
  try {
    new URL(o.url);
  } catch {
    usage(`not a URL: ${o.url}`);
  }
  if (!(o.qps >= 0)) usage('-qps wants a number >= 0');
  return o;
}

const opts = parse(process.argv.slice(2));

/** One call on `agent`: resolves { code (-1: no answer), ms, head, body }. */
function call(agent) {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(opts.url, { agent, headers: { 'user-agent': 'fortio.org/fortio-weft', ...opts.headers }, timeout: opts.timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ code: res.statusCode ?? -1, ms: performance.now() - started, res, body: Buffer.concat(chunks) }));
      res.on('error', (err) => resolve({ code: -1, ms: performance.now() - started, error: err }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeout} ms`), { code: 'TIMEOUT' })));
    req.on('error', (err) => resolve({ code: -1, ms: performance.now() - started, error: err }));
  });
}

if (opts.curl) {
  const r = await call(false);
  if (r.code === -1) {
    process.stderr.write(`fortio: ${r.error?.message}\n`);
    process.exit(1);
  }
  const head = [`HTTP/${r.res.httpVersion} ${r.code} ${r.res.statusMessage}`];
  for (let i = 0; i < r.res.rawHeaders.length; i += 2) head.push(`${r.res.rawHeaders[i].toLowerCase()}: ${r.res.rawHeaders[i + 1]}`);
  process.stdout.write(`${head.join('\n')}\n\n${r.body.toString('utf8')}`);
  process.exit(0);
}

const total = opts.n > 0 ? Math.min(opts.n, MAX_CALLS) : MAX_CALLS;
const runMs = Math.min(opts.n > 0 ? MAX_RUN_MS : opts.t, MAX_RUN_MS);
const t0 = performance.now();
const deadline = t0 + runMs;
const codes = {};
const errors = {};
const latencies = [];
let started = 0;
let cutShort = false;
// -qps Q: calls start at Q per second in all (spread over the connections).
const interval = opts.qps > 0 ? 1000 / opts.qps : 0;

async function thread(index) {
  // One connection per thread, kept alive across its calls (fortio's default).
  const agent = opts.keepalive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  while (started < total) {
    if (performance.now() >= deadline) {
      cutShort = opts.n > 0;
      break;
    }
    // The slot is taken before waiting for it, so that threads never share one.
    const slot = started++;
    if (interval > 0) {
      const due = t0 + slot * interval;
      if (due >= deadline) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const r = await call(agent);
    latencies.push(r.ms);
    codes[r.code] = (codes[r.code] ?? 0) + 1;
    if (r.code === -1) {
      const k = r.error?.code ?? r.error?.message ?? 'error';
      errors[k] = (errors[k] ?? 0) + 1;
    } else if (r.code !== 200) process.stderr.write(`${new Date().toISOString().slice(11, 19)} W http_client> [${index}] Non ok http code ${r.code}\n`);
  }
  if (agent) agent.destroy();
}

(opts.json ? process.stderr : process.stdout).write(`Fortio (weft) running at ${opts.qps} queries per second, ${opts.c} connections, ${opts.n > 0 ? `for exactly ${total} calls` : `for ${runMs / 1000}s`}: ${opts.url}\n`);
await Promise.all(Array.from({ length: Math.min(opts.c, total) }, (_, i) => thread(i)));
const elapsed = performance.now() - t0;
const n = latencies.length;
const sorted = [...latencies].sort((a, b) => a - b);
const pct = (p) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor((p / 100) * n))] / 1000);
const sum = latencies.reduce((a, b) => a + b, 0) / 1000;
const lines = [`Ended after ${(elapsed / 1000).toFixed(3)}s : ${n} calls. qps=${(n / (elapsed / 1000)).toFixed(2)}${cutShort ? ' (cut short by the time bound)' : ''}`];
for (const [code, k] of Object.entries(codes).sort()) lines.push(`Code ${code} : ${k} (${((100 * k) / n).toFixed(1)} %)`);
lines.push(`All done ${n} calls (plus 0 warmup) ${n === 0 ? 0 : ((sum / n) * 1000).toFixed(3)} ms avg, ${(n / (elapsed / 1000)).toFixed(1)} qps`);
if (opts.json) {
  // The fields of fortio's JSON result that tasks and scripts read.
  const result = {
    RunType: 'HTTP',
    Labels: '',
    URL: opts.url,
    NumThreads: opts.c,
    RequestedQPS: String(opts.qps),
    ActualQPS: n / (elapsed / 1000),
    ActualDuration: Math.round(elapsed * 1e6),
    RetCodes: codes,
    Errors: errors,
    CutShort: cutShort,
    DurationHistogram: { Count: n, Min: pct(0), Max: n === 0 ? 0 : sorted[n - 1] / 1000, Sum: sum, Avg: n === 0 ? 0 : sum / n, Percentiles: [50, 75, 90, 99, 99.9].map((p) => ({ Percentile: p, Value: pct(p) })) },
  };
  process.stderr.write(lines.join('\n') + '\n');
  process.stdout.write(JSON.stringify(result, null, 2) + '\n', () => process.exit(codes[-1] === n ? 1 : 0));
} else {
  process.stdout.write(lines.join('\n') + '\n', () => process.exit(n > 0 && codes[-1] === n ? 1 : 0));
}
