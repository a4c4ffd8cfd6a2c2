/**
 * setupTwoPods' cleanup leaves nothing that keeps the test process alive: a connection the
 * agent still relays to the app when the test ends is closed with the rest. Before, the app's
 * side stayed open (the agent's FIN was lost with the namespaces) and the attack suite's
 * process never exited: CI hung (seen 2026-12-02, an HBONE relay the agent cut only after the
 * namespaces were gone). Needs root.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { setupTwoPods } from './helpers/two-pods.js';
import { waitFor } from './helpers/wait.js';

const APP_PORT = 9080;

/** The test process's TCP sockets whose local port is the app's (node's own list of live handles). */
function appSideSockets(): net.Socket[] {
  // Undocumented but stable since Node 0.x; the documented getActiveResourcesInfo() gives type names only.
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is net.Socket => typeof h === 'object' && h !== null && (h as net.Socket).localPort === APP_PORT && !(h as net.Socket).destroyed);
}

// Plaintext between the agents: stopping an in-process agent closes its listeners but not the
// plain TCP relays (a real agent's exit does), so the held connection outlives agent.stop().
test('cleanup closes the app side of a connection the agent is still relaying', async () => {
  const t = await setupTwoPods('tpclean', 241, {}, false);
  let client: net.Socket | undefined;
  try {
    await waitFor(() => t.agent.ready, 'agent ready');
    await waitFor(async () => (await t.request(t.VIP, 80, 'ping').catch(() => '')) === `${t.IP_A}|ping`, 'first meshed request');
    client = t.open(t.VIP, 80);
    client.on('error', () => undefined);
    client.write('held open');
    await waitFor(() => appSideSockets().some((s) => s.remoteAddress === t.IP_A), 'the app accepted the held connection');
  } finally {
    await t.cleanup();
  }
  try {
    assert.deepEqual(appSideSockets().map((s) => `${s.remoteAddress}:${s.remotePort}`), [], 'app-side sockets left after cleanup');
  } finally {
    client?.destroy();
  }
});
