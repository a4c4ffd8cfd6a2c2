/** No mesh: the client pod talks to the server pod's IP over the lab's veths and bridge. */
import type { Target } from '../loadgen.js';
import type { BenchLab } from '../lab-env.js';
import { H2_PORT, HTTP_PORT, IPERF_PORT, RR_PORT, SINK_PORT } from '../protocol.js';
import type { Service, System } from './system.js';

export const SERVICE_PORTS: Record<Service, number> = { rr: RR_PORT, sink: SINK_PORT, iperf: IPERF_PORT, http: HTTP_PORT, h2: H2_PORT };

export class DirectSystem implements System {
  readonly name = 'direct' as const;
  #serverIp = '';

  async start(lab: BenchLab): Promise<void> {
    this.#serverIp = lab.server.ip;
  }

  async stop(): Promise<void> {}

  target(service: Service): Target {
    return { host: this.#serverIp, port: SERVICE_PORTS[service] };
  }

  proxyPids(): number[] {
    return [];
  }
}
