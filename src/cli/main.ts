import { Command, InvalidArgumentError, Option } from 'commander';
import { isAppError } from '../core/errors.ts';
import { ApiError, EndpointUnreachableError } from './api-client.ts';
import { registerEventCommands } from './event-commands.ts';
import { registerAgentCommand } from './agent-command.ts';
import { registerFleetCommands } from './fleet-commands.ts';
import { registerReplicationCommands } from './replication-commands.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** The admin commands' database code, loaded on use: the drivers it pulls in are most of a client command's start-up time. */
const adminTools = () => import('./admin.ts');

const program = new Command('ferry')
  .description('Ferry: self-hosted compute migration speaking the Alibaba SMC/ENS and Huawei ECS APIs')
  .showHelpAfterError();

program
  .command('serve')
  .description('start a Ferry node: API front doors and a job worker (no web console yet)')
  .option('--listen <host:port>', 'address to listen on (port 0 picks a free port)', '127.0.0.1:8080')
  .option('--data <dir>', 'data directory (SQLite database, master key, storage pools)', './data')
  .option('--db <url>', 'database URL: postgres://... for several nodes, or sqlite:/path/file.db')
  .addOption(new Option('--lease-ms <ms>', 'job lease length; a crashed node\'s jobs are taken over after it').argParser(positiveInt))
  .addOption(new Option('--poll-ms <ms>', 'how often an idle worker looks for due jobs').argParser(positiveInt))
  .addOption(new Option('--worker-concurrency <n>', 'jobs this node runs at once').argParser(positiveInt))
  .addOption(new Option('--shutdown-grace-ms <ms>', 'how long running jobs may finish after SIGTERM').argParser(positiveInt).default(10_000))
  .option('--registry <url>', 'container registry (Docker Registry API v2) that ContainerImage jobs push to, e.g. http://127.0.0.1:5000 (default: FERRY_REGISTRY_URL)')
  .option('--demo', 'to try Ferry out: apply the fleet file of DESIGN.md (idempotent) and print an access key of the default account to use')
  .action(async (opts: { listen: string; data: string; db?: string; leaseMs?: number; pollMs?: number; workerConcurrency?: number; shutdownGraceMs: number; registry?: string; demo?: boolean }) => {
    // Loaded on use: the HTTP stack is most of the CLI's start-up time, and agents and clients never need it.
    const { serve } = await import('./serve.ts');
    await serve(opts);
  });

registerFleetCommands(program);
registerAgentCommand(program);
registerEventCommands(program);
registerReplicationCommands(program);

const admin = program.command('admin').description('administer accounts and access keys (talks to the database directly)');

admin
  .command('create-key')
  .description('create an account if needed and a new access key for it')
  .option('--data <dir>', 'data directory', './data')
  .option('--db <url>', 'database URL (default: SQLite in the data directory)')
  .option('--account <name>', 'account name', 'default')
  .option('--json', 'print one JSON object', false)
  .action(async (opts: { data: string; db?: string; account: string; json: boolean }) => {
    const key = await (await adminTools()).createKey(opts);
    if (opts.json) process.stdout.write(`${JSON.stringify(key)}\n`);
    else {
      process.stdout.write(
        `account ${key.accountId} (project ${key.projectId})\n` +
          `access key id:     ${key.accessKeyId}\naccess key secret: ${key.accessKeySecret}\n` +
          'The secret is shown once; Ferry stores it encrypted.\n',
      );
    }
  });

/** An admin command's result: one JSON object with --json, else a line for people. */
function printOutcome(json: boolean | undefined, outcome: Record<string, string>, line: string): void {
  process.stdout.write(json === true ? `${JSON.stringify(outcome)}\n` : `${line}\n`);
}

function withDatabaseOptions(command: Command): Command {
  return command.option('--data <dir>', 'data directory', './data').option('--db <url>', 'database URL (default: SQLite in the data directory)');
}

const policy = admin.command('policy').description('RAM-like access policies of access keys');
withDatabaseOptions(policy.command('attach <accessKeyId>').description('attach a policy (JSON: {"Statement":[{"Effect","Action","Resource"}]}) to a key, replacing its old one'))
  .requiredOption('-f, --file <policy.json>', 'policy document; - reads standard input')
  .option('--json', 'print {"accessKeyId","policy":"attached"}')
  .action(async (accessKeyId: string, opts: { data: string; db?: string; file: string; json?: boolean }) => {
    await (await adminTools()).attachPolicyFile(opts, accessKeyId, opts.file);
    printOutcome(opts.json, { accessKeyId, policy: 'attached' }, `policy attached to ${accessKeyId}`);
  });
withDatabaseOptions(policy.command('detach <accessKeyId>').description('remove a key\'s policy: the key gets its account\'s full access again'))
  .option('--json', 'print {"accessKeyId","policy":"detached"}')
  .action(async (accessKeyId: string, opts: { data: string; db?: string; json?: boolean }) => {
    await (await adminTools()).detachPolicyFromKey(opts, accessKeyId);
    printOutcome(opts.json, { accessKeyId, policy: 'detached' }, `policy detached from ${accessKeyId}`);
  });

const key = admin.command('key').description('enable or disable access keys');
for (const [verb, enabled] of [['disable', false], ['enable', true]] as const) {
  withDatabaseOptions(key.command(`${verb} <accessKeyId>`).description(`${verb} an access key`))
    .option('--json', 'print {"accessKeyId","status"} (status Active or Inactive)')
    .action(async (accessKeyId: string, opts: { data: string; db?: string; json?: boolean }) => {
      await (await adminTools()).setKeyEnabled(opts, accessKeyId, enabled);
      printOutcome(opts.json, { accessKeyId, status: enabled ? 'Active' : 'Inactive' }, `${accessKeyId} ${verb}d`);
    });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (isAppError(err)) {
    process.stderr.write(`ferry: ${err.alibabaCode}: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ApiError || err instanceof EndpointUnreachableError) {
    process.stderr.write(`ferry: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
