/**
 * Generators (fast-check arbitraries) shared by the fuzz targets: valid Kubernetes objects and
 * Weft policies (for round trips), text mutations (for "invalid but close to valid" input), and
 * /proc and iptables-save texts with a known answer.
 */
import fc from 'fast-check';
import { POLICY_API_VERSION } from '../../policy/schema.js';

/** fast-check may build objects without a prototype; a parser never returns those. */
function plain<T>(v: T): T {
  return structuredClone(v);
}

/** A DNS-1123 label, short. */
export const dnsLabel = fc.stringMatching(/^[a-z]([a-z0-9-]{0,8}[a-z0-9])?$/);

/**
 * Label keys and values: any text, including what YAML would read as something else
 * ("true", "0o7", "null", "- x", "a: b", "#") — the serializer must quote it and the loader
 * must give back the string.
 */
const yamlTricky = fc.constantFrom('true', 'False', 'null', '~', '0o17', '0x1F', '1e3', '.inf', '-.5', '- x', 'a: b', '#c', '&a', '*a', '!tag', '? q', '[x]', '{y}', '%YAML', "'", '"', '\\', '', ' lead', 'trail ', 'multi\nline', '\t', '0b101', '1_000', '+12', '012');
export const labelText = fc.oneof(fc.string({ maxLength: 12 }), yamlTricky, fc.string({ unit: 'grapheme', maxLength: 6 }));
export const labels = fc.dictionary(fc.oneof(dnsLabel, labelText), labelText, { maxKeys: 4, noNullPrototype: true });

const portName = (i: number): string => `port-${i}`;

export const validNamespace = fc.record(
  {
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Namespace'),
    metadata: fc.record({ name: dnsLabel, labels }, { requiredKeys: ['name'], noNullPrototype: true }),
  },
  { noNullPrototype: true },
);

const container = (index: number, portBase: number) =>
  fc.record(
    {
      name: fc.constant(`c${index}`),
      image: fc.string({ maxLength: 20 }),
      command: fc.array(labelText, { maxLength: 3 }),
      ports: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 }).map((ps) =>
        ps.map((containerPort, j) => ({ containerPort, name: portName(portBase + j), protocol: 'TCP' as const })),
      ),
    },
    { requiredKeys: ['name'], noNullPrototype: true },
  );

export const validPod = fc
  .record({
    name: dnsLabel,
    namespace: fc.option(dnsLabel, { nil: undefined }),
    labels,
    containers: fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => container(i, i * 10)))),
    nodeName: fc.option(dnsLabel, { nil: undefined }),
    podIP: fc.option(fc.oneof(fc.ipV4(), fc.ipV6()), { nil: undefined }),
    phase: fc.option(fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'), { nil: undefined }),
  })
  .map((p) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, ...(p.namespace === undefined ? {} : { namespace: p.namespace }), labels: p.labels },
    spec: { ...(p.nodeName === undefined ? {} : { nodeName: p.nodeName }), containers: p.containers },
    ...(p.podIP === undefined && p.phase === undefined ? {} : { status: { ...(p.podIP === undefined ? {} : { podIP: p.podIP }), ...(p.phase === undefined ? {} : { phase: p.phase }) } }),
  }));

export const validService = fc
  .record({
    name: dnsLabel,
    namespace: fc.option(dnsLabel, { nil: undefined }),
    clusterIP: fc.option(fc.oneof(fc.ipV4(), fc.constant('None'), fc.constant('')), { nil: undefined }),
    selector: labels,
    ports: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 4 }),
    targetIsName: fc.boolean(),
  })
  .map((s) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, ...(s.namespace === undefined ? {} : { namespace: s.namespace }) },
    spec: {
      ...(s.clusterIP === undefined ? {} : { clusterIP: s.clusterIP }),
      selector: s.selector,
      ports: s.ports.map((port, i) => ({ name: portName(i), port, targetPort: s.targetIsName ? portName(i) : port, protocol: 'TCP' })),
    },
  }));

/** Manifests with distinct identities (the loader refuses a file defining one object twice). */
export const validManifests = fc
  .array(fc.oneof(validNamespace, validPod, validService), { minLength: 1, maxLength: 4 })
  .map((objs) => objs.map((o, i) => plain({ ...o, metadata: { ...o.metadata, name: `${o.metadata.name}-${i}` } })));

// --- policies -------------------------------------------------------------------------------

const matchPattern = fc.oneof(fc.constant('*'), dnsLabel, dnsLabel.map((s) => `${s}*`), dnsLabel.map((s) => `*${s}`), dnsLabel.map((s) => `cluster.local/ns/${s}/sa/x`));
const ipOrCidr = fc.oneof(fc.ipV4(), fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, n]) => `${ip}/${n}`), fc.ipV6());
const portString = fc.integer({ min: 1, max: 65535 }).map(String);
const nonEmpty = <T>(a: fc.Arbitrary<T>) => fc.array(a, { minLength: 1, maxLength: 3 });

const source = fc
  .record({ principals: nonEmpty(matchPattern), namespaces: nonEmpty(matchPattern), ipBlocks: nonEmpty(ipOrCidr), notIpBlocks: nonEmpty(ipOrCidr), notPrincipals: nonEmpty(matchPattern) }, { requiredKeys: [], noNullPrototype: true })
  .filter((s) => Object.keys(s).length > 0);
const operation = fc.record({ ports: nonEmpty(portString), notPorts: nonEmpty(portString) }, { requiredKeys: [], noNullPrototype: true }).filter((o) => Object.keys(o).length > 0);
const condition = fc.oneof(
  fc.record({ key: fc.constant('source.ip'), values: nonEmpty(ipOrCidr) }),
  fc.record({ key: fc.constant('destination.port'), values: nonEmpty(portString) }),
  fc.record({ key: fc.constant('source.namespace'), notValues: nonEmpty(matchPattern) }),
  fc.record({ key: fc.constant('request.headers[x-user]'), values: nonEmpty(fc.string()) }),
);
const rule = fc.record(
  { from: nonEmpty(source.map((s) => ({ source: s }))), to: nonEmpty(operation.map((o) => ({ operation: o }))), when: fc.array(condition, { maxLength: 2 }) },
  { requiredKeys: [], noNullPrototype: true },
);

export const validAuthorizationPolicy = fc.record({
  apiVersion: fc.constant(POLICY_API_VERSION),
  kind: fc.constant('AuthorizationPolicy'),
  metadata: fc.record({ name: dnsLabel, namespace: dnsLabel }, { requiredKeys: ['name'], noNullPrototype: true }),
  spec: fc.record(
    { selector: fc.record({ matchLabels: fc.dictionary(dnsLabel, fc.string({ maxLength: 8 }), { maxKeys: 2, noNullPrototype: true }) }), action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT'), rules: fc.array(rule, { maxLength: 3 }) },
    { requiredKeys: [], noNullPrototype: true },
  ),
});

export const validPeerAuthentication = fc
  .record({
    name: dnsLabel,
    matchLabels: fc.dictionary(dnsLabel, fc.string({ maxLength: 8 }), { minKeys: 1, maxKeys: 2, noNullPrototype: true }),
    mode: fc.constantFrom('UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'),
    ports: fc.dictionary(portString, fc.constantFrom('DISABLE', 'PERMISSIVE', 'STRICT'), { maxKeys: 2, noNullPrototype: true }),
  })
  .map((p) => ({
    apiVersion: POLICY_API_VERSION,
    kind: 'PeerAuthentication',
    metadata: { name: p.name },
    spec: { selector: { matchLabels: p.matchLabels }, mtls: { mode: p.mode }, portLevelMtls: Object.fromEntries(Object.entries(p.ports).map(([k, mode]) => [k, { mode }])) },
  }));

export const validPolicy = fc.oneof(validAuthorizationPolicy, validPeerAuthentication).map(plain);

/**
 * A valid value with one part replaced by anything: a mistyped field, an unknown key, a null,
 * a deep object. The validators must answer every such object with reported errors.
 */
export function mutatedObject<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.tuple(valid, fc.nat(), fc.anything({ maxDepth: 3, withNullPrototype: true, withMap: false, withSet: false }), fc.constantFrom('replace', 'add', 'delete')).map(([v, pick, junk, op]) => {
    const copy: unknown = structuredClone(v);
    const paths: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach((c, i) => (paths.push({ parent: node, key: i }), walk(c)));
      else if (typeof node === 'object' && node !== null) for (const [k, c] of Object.entries(node)) (paths.push({ parent: node as Record<string, unknown>, key: k }), walk(c));
    };
    walk(copy);
    if (paths.length === 0) return junk;
    const { parent, key } = paths[pick % paths.length]!;
    const p = parent as Record<string | number, unknown>;
    if (op === 'replace') p[key] = junk;
    else if (op === 'delete') delete p[key];
    else if (!Array.isArray(parent)) p[`${String(key)}x`] = junk;
    else (parent as unknown[]).push(junk);
    return copy;
  });
}

// --- text mutations -------------------------------------------------------------------------

/** Characters that mean something to YAML, PEM, /proc or iptables-save, and some that do not. */
const significant = fc.constantFrom(...':-[]{}#&*!|>\'"%@`,? \n\t\r\\=+/0A|_.()'.split(''), '---', '...', '\u0000', '\ufeff', '\u2028', 'é', '😀');

type Edit = { kind: 'insert' | 'delete' | 'duplicate' | 'truncate'; at: number; len: number; text: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('insert', 'delete', 'duplicate', 'truncate'),
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 40 }),
  text: fc.oneof(fc.string({ unit: significant, maxLength: 6 }), fc.string({ maxLength: 6 })),
});

function applyEdit(text: string, e: Edit): string {
  const at = text.length === 0 ? 0 : e.at % (text.length + 1);
  switch (e.kind) {
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.len);
    case 'duplicate':
      return text.slice(0, at) + text.slice(at, at + e.len) + text.slice(at);
    case 'truncate':
      return text.slice(0, at);
  }
}

/** `base` with 1-4 random edits (insertions of significant characters, deletions, cuts). */
export function mutatedText(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => edits.reduce(applyEdit, text));
}

/** Random bytes with a bias to the values a parser branches on. */
export function mutatedBytes(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const byteEdit = fc.record({ kind: fc.constantFrom('flip', 'set', 'cut', 'insert'), at: fc.nat(), value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x80, 0x81, 0x82, 0x84, 0x85, 0xa0, 0xff)) });
  return fc.tuple(base, fc.array(byteEdit, { minLength: 1, maxLength: 6 })).map(([bytes, edits]) => {
    let b = Buffer.from(bytes);
    for (const e of edits) {
      if (b.length === 0) break;
      const at = e.at % b.length;
      if (e.kind === 'flip') b[at] = b[at]! ^ (1 << e.value % 8);
      else if (e.kind === 'set') b[at] = e.value;
      else if (e.kind === 'cut') b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), Buffer.from([e.value]), b.subarray(at)]);
    }
    return new Uint8Array(b);
  });
}

// --- /proc and iptables-save with a known answer --------------------------------------------

const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');
const TCP_STATES = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '0A', '0B', '0C'];

/** A /proc/net/tcp (or tcp6) text and the ports in LISTEN state in it. */
export const procNetTcp = fc
  .record({
    v6: fc.boolean(),
    rows: fc.array(fc.record({ addr: fc.nat(), port: fc.integer({ min: 0, max: 65535 }), state: fc.constantFrom(...TCP_STATES), remotePort: fc.integer({ min: 0, max: 65535 }), inode: fc.nat() }), { maxLength: 12 }),
  })
  .map(({ v6, rows }) => {
    const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
    const addr = (n: number): string => (v6 ? hex(n, 8).repeat(4) : hex(n % 2 ** 32, 8));
    const lines = rows.map((r, i) => `${String(i).padStart(4)}: ${addr(r.addr)}:${hex(r.port, 4)} ${addr(0)}:${hex(r.remotePort, 4)} ${r.state} 00000000:00000000 00:00000000 00000000     0        0 ${r.inode} 1 0000000000000000 100 0 0 10 0`);
    const listening = new Set(rows.filter((r) => r.state === '0A').map((r) => r.port));
    return { text: [header, ...lines, ''].join('\n'), listening };
  });

const ipv4 = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));

/** A /proc/net/fib_trie text (local table and main table) and the local /32 addresses in it. */
export const fibTrie = fc
  .record({ locals: fc.uniqueArray(ipv4, { maxLength: 6 }), others: fc.array(fc.tuple(ipv4, fc.constantFrom('/32 link BROADCAST', '/24 link UNICAST', '/8 host LOCAL', '/32 link UNICAST')), { maxLength: 6 }) })
  .map(({ locals, others }) => {
    const lines = ['Main:', '  +-- 0.0.0.0/0 3 0 5'];
    for (const [ip, what] of others) lines.push(`     |-- ${ip}`, `        ${what}`);
    lines.push('Local:', '  +-- 0.0.0.0/0 3 0 5');
    for (const ip of locals) lines.push(`     |-- ${ip}`, '        /32 host LOCAL');
    // A /32 LOCAL only counts under its own leaf, never under another prefix's.
    return { text: lines.join('\n') + '\n', locals: new Set(locals) };
  });

const CHAINS = ['WEFT_PRERT', 'WEFT_OUTPUT'];
const BUILTIN = ['PREROUTING', 'OUTPUT', 'INPUT', 'POSTROUTING'];

/** An iptables-save text of the mangle and nat tables, with which of Weft's jumps and chains it holds. */
export const iptablesSave = fc
  .array(
    fc.record({
      table: fc.constantFrom('mangle', 'nat', 'filter'),
      chains: fc.subarray(CHAINS),
      jumps: fc.subarray(BUILTIN.flatMap((from) => CHAINS.map((to) => ({ from, to })))),
      noise: fc.array(fc.constantFrom('-A PREROUTING -p tcp -j ACCEPT', '-A OUTPUT -d 10.0.0.0/8 -j RETURN', '-A WEFT_PRERT -j ACCEPT', '# comment', ':DOCKER - [0:0]'), { maxLength: 3 }),
    }),
    { maxLength: 3 },
  )
  .map((tables) => {
    let text = '# Generated by iptables-save v1.8.9 on Tue Dec  1 15:00:00 2026\n';
    const jumps = new Set<string>();
    const chains = new Set<string>();
    const matching: Record<string, string> = { PREROUTING: 'WEFT_PRERT', OUTPUT: 'WEFT_OUTPUT' };
    for (const t of tables) {
      text += `*${t.table}\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n`;
      for (const c of t.chains) {
        text += `:${c} - [0:0]\n`;
        chains.add(`${t.table}/${c}`);
      }
      for (const n of t.noise) text += `${n}\n`;
      for (const j of t.jumps) {
        text += `-A ${j.from} -j ${j.to}\n`;
        if (t.table !== 'filter' && matching[j.from] === j.to) jumps.add(`${t.table}/${j.from}`);
      }
      text += 'COMMIT\n';
    }
    return { text, jumps, chains };
  });
