import type { Command } from 'commander';

/** Registers `weft lab ...`. (Being built: see agent/lab/.) */
export function registerLabCommands(program: Command): void {
  program.command('lab').description('build and run a local cluster out of network namespaces (root, Linux)');
}
