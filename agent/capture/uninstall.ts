/**
 * The explicit uninstall: Weft's rules are removed from every network namespace on this node
 * that has them. The only way, besides a pod leaving the mesh, that rules go (fail closed: an
 * agent's stop or crash leaves them, so pods are refused rather than sent in plaintext).
 */
import type { Logger } from '../log.js';
import { NetnsLocator } from './netns-locator.js';
import { hasCaptureRules, removeCaptureRules } from './rules.js';

export async function uninstallCapture(opts: { podNetnsPrefix?: string; logger: Logger }): Promise<{ removed: string[]; failed: string[] }> {
  const locator = new NetnsLocator(opts.podNetnsPrefix !== undefined ? { namePrefix: opts.podNetnsPrefix } : {});
  const removed: string[] = [];
  const failed: string[] = [];
  for (const ns of locator.namespaces()) {
    try {
      if (!(await hasCaptureRules(ns.path))) continue;
      await removeCaptureRules(ns.path);
      removed.push(ns.path);
      opts.logger.info({ netns: ns.path }, 'capture rules removed');
    } catch (err) {
      // A process that exited while we looked: its namespace went with it.
      failed.push(ns.path);
      opts.logger.warn({ err, netns: ns.path }, 'removing capture rules failed');
    }
  }
  return { removed, failed };
}
