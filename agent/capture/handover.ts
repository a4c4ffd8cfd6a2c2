/**
 * Which agent on a node is the newest: during a handover two agents run at once and both
 * listen on the node-level ports (SO_REUSEPORT), so a kubelet probe meant for the new agent may
 * reach the old one. Each agent claims `<runDir>/agent.newest` when it starts; an agent whose
 * claim was overwritten answers readiness with 503, so only the new agent's own readiness
 * counts, and the DaemonSet deletes the old pod only once the new agent captured every pod.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class HandoverMarker {
  readonly #file: string;
  readonly #token = `${process.pid} ${randomUUID()}`;

  constructor(runDir: string) {
    this.#file = join(runDir, 'agent.newest');
  }

  claim(): void {
    mkdirSync(join(this.#file, '..'), { recursive: true });
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, this.#token);
    renameSync(tmp, this.#file);
  }

  /** No marker (removed, unreadable): this agent is the only one that can say. */
  isNewest(): boolean {
    try {
      return readFileSync(this.#file, 'utf8') === this.#token;
    } catch {
      return true;
    }
  }

  /** On exit: the marker goes only when it is still ours (a newer agent's stays). */
  release(): void {
    if (this.isNewest()) rmSync(this.#file, { force: true });
  }
}
