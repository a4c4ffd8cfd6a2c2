import type { Command } from 'commander';

/** Registers `weft ca`. (Being built: see agent/identity/.) */
export function registerCaCommand(program: Command): void {
  program.command('ca').description('run the certificate authority that signs workload identities');
}
