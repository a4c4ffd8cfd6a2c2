#!/usr/bin/env node
import { Command } from 'commander';
import { registerAgentCommand, registerCniInstallCommand, registerUninstallCommand } from './agent-command.js';
import { registerLabCommands } from '../lab/cli.js';
import { registerCaCommand } from '../identity/ca-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerCheckCommand } from './check-command.js';
import { registerWaypointGenerate } from './waypoint-generate.js';
import { registerDashboardCommand } from './dashboard-command.js';
import { registerWaypointCommand } from './waypoint-command.js';
import { registerGatewayCommand } from './gateway-command.js';

const program = new Command();
program
  .name('weft')
  .description(
    'Weft: a sidecar-less service mesh for Kubernetes. ' +
      'The node agent captures the TCP traffic of opted-in pods inside their network namespaces, ' +
      'carries it between nodes over mutual TLS (HBONE) and enforces L4 policy. The lab builds a ' +
      'small cluster out of network namespaces on one machine so the whole mesh runs for real.',
  )
  .showHelpAfterError('(run with --help for usage)');

registerAgentCommand(program);
registerUninstallCommand(program);
registerCniInstallCommand(program);
registerCaCommand(program);
registerLabCommands(program);
registerStatusCommand(program);
registerCheckCommand(program);
registerWaypointCommand(program);
registerGatewayCommand(program);
// After `weft waypoint` (wp's), which it adds `generate` to.
registerWaypointGenerate(program);
registerDashboardCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  process.stderr.write(`weft: ${err instanceof Error ? err.message : String(err)}${code ? ` [${code}]` : ''}\n`);
  process.exitCode = 1;
});
