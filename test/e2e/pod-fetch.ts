/**
 * Scripts the end-to-end tests run with `node -e` inside lab pods, as an app of that pod would.
 *
 * Node 20's fetch (its bundled undici) can drop a request whose connection the peer resets right
 * after accepting it: the promise never settles and nothing holds the event loop, so node exits
 * with code 0 and prints nothing. That is exactly what a mesh that refuses a connection does
 * (an agent resetting a tunnel it cannot open), so every script here holds the loop with a
 * referenced timer until it has written its answers; AbortSignal.timeout's timer is unreferenced
 * and then ends a dropped request as a TimeoutError. test/e2e/pod-fetch.test.ts proves it against
 * a loopback server that resets every connection at once.
 */

/** `body` (statements, may await) in an async function that keeps the event loop alive until it returns. */
export function podAsyncScript(body: string): string {
  return `(async () => {
const keepLoopAlive = setInterval(() => {}, 60_000);
try {
${body}
} finally {
  clearInterval(keepLoopAlive);
}
})();`;
}

/**
 * Node's fetch, one request after the other, the answers as one JSON array on stdout.
 * argv[1]: the requests ({ url, method?, headers?, body?, timeoutMs? }[]); argv[2] === 'versions':
 * each answer is only the JSON body's `version` ('status N' / 'error CODE: message' otherwise).
 */
export const FETCH_SCRIPT = podAsyncScript(`
const reqs = JSON.parse(process.argv[1]);
const versionsOnly = process.argv[2] === 'versions';
const out = [];
for (const r of reqs) {
  try {
    const res = await fetch(r.url, { method: r.method ?? 'GET', headers: r.headers ?? {}, body: r.body, redirect: 'manual', signal: AbortSignal.timeout(r.timeoutMs ?? 8000) });
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    out.push(versionsOnly ? (res.status === 200 ? body.version : 'status ' + res.status) : { status: res.status, headers: Object.fromEntries(res.headers), body });
  } catch (e) {
    const reason = String(e.cause?.code ?? e.name) + ': ' + String(e.cause?.message ?? e.message);
    out.push(versionsOnly ? 'error ' + reason : { error: reason });
  }
}
process.stdout.write(JSON.stringify(out));`);
