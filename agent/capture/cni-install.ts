/**
 * What the DaemonSet's init container does (`weft cni-install`), as istio-cni's installer: the
 * plugin script goes into the node's CNI bin dir and a `weft-cni` entry is appended to the
 * node's active network configuration (the first *.conf, *.conflist or *.json in the conf dir,
 * in name order, which is the one the runtime's libcni uses), so every new pod's sandbox runs it
 * after the plugin that gives the pod its address. A single-plugin `.conf` (or `.json`) is first
 * turned into a `.conflist` of that one plugin, as istio-cni's installer does: only a list can
 * chain. Idempotent; `removeCni` removes the entry (the list stays a list: same behaviour).
 */
import { copyFileSync, chmodSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../errors.js';

/** daemonset/cni/weft-cni in the repository or the image (this file is dist/agent/capture/). */
export const CNI_PLUGIN_SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'daemonset', 'cni', 'weft-cni');
export const CNI_PLUGIN_TYPE = 'weft-cni';

interface ConfList {
  cniVersion?: string;
  name?: string;
  plugins: { type?: string; [k: string]: unknown }[];
  [k: string]: unknown;
}

const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

/** The runtime's active configuration file: the first network configuration in name order. */
function activeConfFile(confDir: string): string {
  let names: string[];
  try {
    names = readdirSync(confDir).filter((n) => CONF_EXTENSIONS.some((e) => n.endsWith(e))).sort();
  } catch (err) {
    throw new WeftError('WEFT_ERR_CONFIG', `cannot read the CNI conf dir ${confDir}: ${(err as Error).message}`, { cause: err });
  }
  if (names.length === 0) throw new WeftError('WEFT_ERR_CONFIG', `no *.conflist (or *.conf) in ${confDir}: install the cluster's network plugin first (weft-cni is chained after it)`);
  return join(confDir, names[0]!);
}

/**
 * The active configuration as a list: a `.conflist` as it is; a single plugin's `.conf`/`.json`
 * rewritten as `<base>.conflist` holding that plugin (cniVersion and name moved to the list),
 * the original removed, so the runtime reads the list from now on.
 */
function activeConfList(confDir: string): string {
  const file = activeConfFile(confDir);
  if (file.endsWith('.conflist')) return file;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new WeftError('WEFT_ERR_CONFIG', `${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (Array.isArray(parsed['plugins'])) return file;
  if (typeof parsed['type'] !== 'string') throw new WeftError('WEFT_ERR_CONFIG', `${file} is neither a plugin configuration (no "type") nor a list ("plugins")`);
  const { cniVersion, name, ...plugin } = parsed;
  const list = { ...(cniVersion !== undefined ? { cniVersion } : {}), name: name ?? 'weft-chain', plugins: [plugin] };
  const target = file.replace(/\.(conf|json)$/, '.conflist');
  writeAtomic(target, JSON.stringify(list, null, 2) + '\n');
  rmSync(file, { force: true });
  return target;
}

function readConfList(file: string): ConfList {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ConfList;
  if (!Array.isArray(parsed.plugins)) throw new WeftError('WEFT_ERR_CONFIG', `${file} has no "plugins" list`);
  return parsed;
}

function writeAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.weft-tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

export function installCni(opts: { binDir: string; confDir: string; runDir: string; pluginSource?: string }): { plugin: string; conflist: string; added: boolean } {
  const plugin = join(opts.binDir, CNI_PLUGIN_TYPE);
  const tmp = `${plugin}.weft-tmp`;
  copyFileSync(opts.pluginSource ?? CNI_PLUGIN_SOURCE, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, plugin);
  const conflist = activeConfList(opts.confDir);
  const conf = readConfList(conflist);
  const entry = { type: CNI_PLUGIN_TYPE, runDir: opts.runDir };
  const at = conf.plugins.findIndex((p) => p.type === CNI_PLUGIN_TYPE);
  const added = at < 0;
  // Last in the chain: it needs the address the plugins before it assigned (prevResult).
  if (added) conf.plugins.push(entry);
  else conf.plugins[at] = entry;
  writeAtomic(conflist, JSON.stringify(conf, null, 2) + '\n');
  return { plugin, conflist, added };
}

export function removeCni(opts: { binDir: string; confDir: string }): void {
  const conflist = activeConfList(opts.confDir);
  const conf = readConfList(conflist);
  const kept = conf.plugins.filter((p) => p.type !== CNI_PLUGIN_TYPE);
  if (kept.length !== conf.plugins.length) writeAtomic(conflist, JSON.stringify({ ...conf, plugins: kept }, null, 2) + '\n');
  rmSync(join(opts.binDir, CNI_PLUGIN_TYPE), { force: true });
}
