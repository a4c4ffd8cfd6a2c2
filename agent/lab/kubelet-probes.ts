/**
 * The lab's kubelet's probes: httpGet and tcpSocket, run from the kubelet's own process, which
 * lives in the node's network namespace, so a probe leaves from the node as the real kubelet's
 * do (its source address is the node's; a mesh must let it through, as finding 7 requires).
 * Semantics of the Kubernetes API: initialDelaySeconds, periodSeconds (10), timeoutSeconds (1),
 * successThreshold (1), failureThreshold (3); an HTTP status 200-399 is a success. exec and grpc
 * probes are not run by the lab (it has no container runtime to exec into): they are reported
 * and count as successes, so a pod using them is not restarted by the lab for what it cannot check.
 */
import http from 'node:http';
import net from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export function resolveProbePort(port: number | string, container: V1Container): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Runs one probe against the pod at `podIp`. */
export async function runProbe(probe: V1Probe, container: V1Container, podIp: string): Promise<ProbeResult> {
  const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet !== undefined) {
    const g = probe.httpGet;
    const port = resolveProbePort(g.port, container);
    if (port === undefined) return { ok: false, reason: `httpGet port ${String(g.port)} is not a port of container ${container.name}` };
    if ((g.scheme ?? 'HTTP').toUpperCase() !== 'HTTP') return { ok: false, reason: `httpGet scheme ${g.scheme} is not supported by the lab` };
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.32 (weft lab)', accept: '*/*' };
    for (const h of g.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    return new Promise((resolve) => {
      const req = http.get({ host: g.host ?? podIp, port, path: g.path ?? '/', headers, timeout: timeoutMs, agent: false }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, reason: `HTTP probe failed with statuscode: ${code}` });
      });
      req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (e) => resolve({ ok: false, reason: `Get "http://${g.host ?? podIp}:${port}${g.path ?? '/'}": ${e.message}` }));
    });
  }
  if (probe.tcpSocket !== undefined) {
    const port = resolveProbePort(probe.tcpSocket.port, container);
    if (port === undefined) return { ok: false, reason: `tcpSocket port ${String(probe.tcpSocket.port)} is not a port of container ${container.name}` };
    const host = probe.tcpSocket.host ?? podIp;
    return new Promise((resolve) => {
      const socket = net.connect({ host, port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true });
      });
      socket.once('timeout', () => socket.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      socket.once('error', (e) => resolve({ ok: false, reason: `dial tcp ${host}:${port}: ${e.message}` }));
    });
  }
  return { ok: true };
}

/** Whether the lab runs this probe (httpGet, tcpSocket) or only reports it (exec, grpc). */
export function probeSupported(probe: V1Probe): boolean {
  return probe.httpGet !== undefined || probe.tcpSocket !== undefined;
}

/** Consecutive results against the thresholds; `state` true once the success threshold is met. */
export class ProbeTracker {
  successes = 0;
  failures = 0;
  state: boolean;
  lastReason = '';

  constructor(
    readonly probe: V1Probe,
    initial: boolean,
  ) {
    this.state = initial;
  }

  /** Returns true when the state changed. */
  record(result: ProbeResult): boolean {
    const before = this.state;
    if (result.ok) {
      this.failures = 0;
      this.successes++;
      if (this.successes >= (this.probe.successThreshold ?? 1)) this.state = true;
    } else {
      this.successes = 0;
      this.failures++;
      this.lastReason = result.reason;
      if (this.failures >= (this.probe.failureThreshold ?? 3)) this.state = false;
    }
    return before !== this.state;
  }
}
