/**
 * A Python 3 interpreter that can import the given modules, for interop tests against
 * independent protocol implementations (h2, grpcio). Debian's python3 first (python3-h2 from
 * apt), then the python3 on PATH (scripts/setup.sh installs the modules with pip from the
 * machine's configured index when apt cannot). Undefined when none has them: the test skips and
 * says so.
 */
import { execFileSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'];

export function pythonWith(...modules: string[]): string | undefined {
  const probe = modules.map((m) => `import ${m}`).join('; ');
  for (const python of CANDIDATES) {
    try {
      execFileSync(python, ['-c', probe], { stdio: 'ignore' });
      return python;
    } catch {
      // not this one
    }
  }
  return undefined;
}
