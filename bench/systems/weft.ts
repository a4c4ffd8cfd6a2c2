/**
 * Weft: both agents of the lab capture the bench pods once the namespace carries
 * `weft.dev/mesh=enabled`. The client still dials the server pod's IP; the agents carry it
 * (whatever their data path is at the time: the harness measures, it does not care how).
 */
import type { Target } from '../loadgen.js';
import { benchLabStatus, setMesh, waitCaptured, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import { SERVICE_PORTS } from './direct.js';
import type { Service, System } from './system.js';

export class WeftSystem implements System {
  readonly name = 'weft' as const;
  #lab: BenchLab | undefined;
  #pids: number[] = [];

  async start(lab: BenchLab): Promise<void> {
    await setMesh(true);
    await waitCaptured(lab, true);
    // Read after capture: the pids are those of the agents that did the capturing.
    this.#lab = await benchLabStatus();
    const pids = [this.#lab.clientNode.agentPid, this.#lab.serverNode.agentPid];
    if (pids.some((p) => p === undefined)) throw new BenchError('an agent of the bench lab is not running');
    this.#pids = pids as number[];
  }

  async stop(): Promise<void> {
    if (this.#lab === undefined) return;
    const lab = this.#lab;
    this.#lab = undefined;
    await setMesh(false);
    await waitCaptured(lab, false);
  }

  target(service: Service): Target {
    if (this.#lab === undefined) throw new BenchError('weft is not started');
    return { host: this.#lab.server.ip, port: SERVICE_PORTS[service] };
  }

  proxyPids(): number[] {
    return this.#pids;
  }
}
