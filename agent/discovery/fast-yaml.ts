/**
 * The fast path for reading manifests: plain Kubernetes YAML straight to JS values with js-yaml,
 * about 8 x faster than the `yaml` package's Lexer -> Parser -> Composer -> toJS pipeline (which
 * builds a Document with source ranges for every node: 1.0-1.5 s for the 6,550 files of the
 * 5,000-pod scale source on the bench machine, against 0.11-0.18 s here).
 *
 * It is only a fast path. The `yaml` package stays the reference: it gives the line of every
 * problem, so manifest.ts re-reads a file with it whenever this returns `undefined` or a document
 * does not validate. To give the same values as `yaml`'s YAML 1.2 core schema, the schema below
 * resolves plain scalars with `yaml`'s own core patterns (js-yaml's core schema also takes
 * `0b101`, `-0x1`, `+0o7`, `1_000`), and text using a feature where the two libraries' results
 * differ is left to `yaml`: anchors and aliases (`yaml` limits alias expansion), tags,
 * a carriage return not followed by a line feed (a line break to js-yaml, content to `yaml`),
 * directives, complex keys (`? `, flow collections as keys) and null keys (`~:`, `null:`).
 */
import { FAILSAFE_SCHEMA, loadAll, Type } from 'js-yaml';

// The patterns of `yaml`'s core schema (yaml/dist/schema/core/{int,float,bool}.js, common/null.js).
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT = /^[-+]?[0-9]+$/;
const INT_OCT = /^0o[0-7]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
const FLOAT_SPECIAL = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

const nullType = new Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (data: string | null) => data === null || NULL.test(data),
  construct: () => null,
});
const boolType = new Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && BOOL.test(data),
  construct: (data: string) => data === 'true' || data === 'True' || data === 'TRUE',
});
const intType = new Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && (INT.test(data) || INT_OCT.test(data) || INT_HEX.test(data)),
  construct: (data: string) => (data.startsWith('0o') ? parseInt(data.slice(2), 8) : data.startsWith('0x') ? parseInt(data.slice(2), 16) : parseInt(data, 10)),
});
const floatType = new Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && (FLOAT.test(data) || FLOAT_EXP.test(data) || FLOAT_SPECIAL.test(data)),
  construct: (data: string) => {
    if (!FLOAT_SPECIAL.test(data)) return parseFloat(data);
    if (data.endsWith('nan') || data.endsWith('NaN') || data.endsWith('NAN')) return NaN;
    return data.startsWith('-') ? -Infinity : Infinity;
  },
});

const CORE_1_2 = FAILSAFE_SCHEMA.extend({ implicit: [nullType, boolType, intType, floatType] });

/**
 * Text that may read differently in the two libraries (see the module comment). Over-matching
 * only costs speed (`&` in a URL, `!` in a string): such a file takes the `yaml` path.
 */
const LEAVE_TO_YAML = /[&!]|\r(?!\n)|^%|(?:^|[\s,[{])\?(?:\s|$)|[\]}]\s*:(?:\s|$)|(?:^|[\s,{])(?:~|[Nn]ull|NULL)?\s*:(?:\s|$)/m;

/**
 * A quoted scalar or a flow collection that does not close on the line where it opens: js-yaml
 * reads its continuation lines at any indentation, `yaml` (as the spec) refuses those indented
 * no deeper than the parent ("a:\n  b: [x,\n  y]" is ["x", "y"] to one, an error to the other;
 * found by the fuzz target fast-yaml). Over-matching only costs speed; a line with two openings
 * is left to `yaml` because "[a, [b]" ends with a bracket and is still open.
 */
const SPANS_LINES: readonly RegExp[] = [
  /(?:^|[\s:,[{-])"(?:[^"\\\n]|\\.)*\\?$/m,
  /(?:^|[\s:,[{-])'(?:[^'\n]|'')*$/m,
  /(?:^|[\s:,-])[[{](?![^\n]*[\]}][ \t]*(?:#[^\n]*)?$)/m,
  /[[{][^\n]*[[{]/,
  // Not a span, a js-yaml bug: a nested sequence ending in an empty entry ("- -", or an indented
  // "-" alone) takes the next entry of its parent ("- -\n- b" is [[null, "b"]] to js-yaml,
  // [[null], "b"] to yaml).
  /-[ \t]+-[ \t]*(?:#[^\n]*)?$/m,
  /^[ ]+-[ \t]*(?:#[^\n]*)?$/m,
  // Tabs: js-yaml takes a tab as indentation where yaml (and the spec) refuse it ('\t""').
  // Manifests rarely hold one; any tab sends the file to yaml.
  /\t/,
  // A document marker run into text ('---[]'): js-yaml starts a document, yaml reads a scalar;
  // and content after a document end ('... 0'), which yaml refuses.
  /^(?:---|\.\.\.)[^ \r\n]/m,
  /^\.\.\.[ \t]+[^#\s]/m,
  // A comment not separated by a space from a closing bracket or quote ('[]#'): js-yaml takes it.
  /[\]}"']#/,
];

/**
 * The documents of `text` as plain JS values (null for an empty document), or undefined when
 * the text is not plain YAML this path reads exactly like `yaml` does, or is not valid YAML:
 * the caller then parses it with `yaml`, which explains the problem.
 */
export function loadPlainDocuments(text: string): unknown[] | undefined {
  if (LEAVE_TO_YAML.test(text) || SPANS_LINES.some((re) => re.test(text))) return undefined;
  try {
    return loadAll(text, null, { schema: CORE_1_2 });
  } catch {
    // Invalid YAML (or a duplicate key): the `yaml` path reports it with its line.
    return undefined;
  }
}
