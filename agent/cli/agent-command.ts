import type { Command } from 'commander';

/** Registers `weft agent`. */
export function registerAgentCommand(program: Command): void {
  program.command('agent').description('run the node agent');
}
