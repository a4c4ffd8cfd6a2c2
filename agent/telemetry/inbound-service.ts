/**
 * Which service an inbound connection was for, as the destination agent can tell: it sees the
 * pod address the source agent chose, not the VIP the client dialled. As ztunnel guesses it for
 * its destination reporter: a service whose ready endpoints include this pod on this target
 * port, the pod's own namespace first. Istio's dashboards filter the destination reporter's
 * series by destination_service, so without it they would show no service traffic.
 */
import type { MeshModel, Workload } from '../discovery/types.js';

export type InboundServiceGuess = (workload: Workload, port: number) => string | undefined;

export function inboundServiceGuesser(model: () => MeshModel): InboundServiceGuess {
  let generation = -1;
  /** `ip:port` -> service key (or null: none), for the model of `generation`. */
  let cache = new Map<string, string | null>();
  return (workload, port) => {
    const m = model();
    if (m.generation !== generation) {
      generation = m.generation;
      cache = new Map();
    }
    const key = `${workload.ip}:${port}`;
    let found = cache.get(key);
    if (found === undefined) {
      found = null;
      const candidates = [...m.services.values()].filter((s) => [...s.ports.values()].some((eps) => eps.some((e) => e.ip === workload.ip && e.port === port)));
      candidates.sort((a, b) => Number(b.namespace === workload.namespace) - Number(a.namespace === workload.namespace) || a.key.localeCompare(b.key));
      if (candidates[0]) found = candidates[0].key;
      // Bounded by the pods and ports of this node's model; emptied with every new model.
      cache.set(key, found);
    }
    return found ?? undefined;
  };
}
