import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/env.ts';
import { DomainError } from '../domain/errors.ts';
import { createLogger } from '../log/logger.ts';
import { migrationStatus } from '../store/migrate.ts';
import { openStore, type Store } from '../store/store.ts';
import { COMMANDS, UsageError, type Command, type Output } from './commands.ts';
import { createServices } from './services.ts';

const GLOBAL_OPTIONS = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

function usage(command?: Command): string {
  if (command) {
    const options = Object.entries(command.options)
      .map(([name, o]) => `--${name}${o.type === 'string' ? ' <value>' : ''}${o.multiple ? ' (repeatable)' : ''}`);
    return `usage: npm run cli -- ${command.name}${command.args ? ` ${command.args}` : ''} [options] [--json]\n  ${command.summary}\n${options.length ? `options:\n  ${options.join('\n  ')}\n` : ''}`;
  }
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args}`.length));
  return [
    'usage: npm run cli -- <command> [options] [--json]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`),
    '',
    'The database and keys come from the same environment as the server (DATABASE_URL, KEYWARD_KEK, ...).',
    'With the embedded store (no DATABASE_URL), stop the server first: PGlite allows one process.',
    '--json prints machine-readable output; `<command> --help` shows its options.',
  ].join('\n');
}

function findCommand(positionals: string[]): { command: Command; rest: string[] } | undefined {
  const two = COMMANDS.find((c) => c.name === positionals.slice(0, 2).join(' '));
  if (two && two.name.includes(' ')) return { command: two, rest: positionals.slice(2) };
  const one = COMMANDS.find((c) => c.name === positionals[0]);
  return one ? { command: one, rest: positionals.slice(1) } : undefined;
}

/** Where a CLI invocation reads and writes; the process's own streams, or a test's. */
export interface Io {
  stdout: { write(text: string): unknown };
  stderr: NodeJS.WritableStream;
  stdin: AsyncIterable<Buffer | string>;
  env: NodeJS.ProcessEnv;
}

/** Runs one CLI invocation; returns the exit code (0 ok, 1 failed, 2 wrong usage). */
export async function run(argv: string[], io: Io, options: { store?: Store } = {}): Promise<number> {
  const readStdin = async () => {
    const chunks: string[] = [];
    for await (const chunk of io.stdin) chunks.push(chunk.toString());
    return chunks.join('');
  };
  const print = (output: Output, json: boolean) => {
    io.stdout.write(`${json ? JSON.stringify(output.value, null, 2) : output.text}\n`);
  };
  const loose = parseArgs({ args: argv, options: GLOBAL_OPTIONS, allowPositionals: true, strict: false });
  const found = findCommand(loose.positionals);
  if (!found) {
    const asked = loose.positionals.join(' ');
    io.stderr.write(`${asked ? `unknown command: ${asked}\n\n` : ''}${usage()}\n`);
    return loose.values.help && !asked ? 0 : 2;
  }
  const { command } = found;
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    values = parsed.values;
    positionals = findCommand(parsed.positionals)!.rest;
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n\n${usage(command)}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(usage(command));
    return 0;
  }
  const expected = command.args ? command.args.split(' ').length : 0;
  if (positionals.length !== expected) {
    io.stderr.write(`${command.name} takes ${expected ? command.args : 'no arguments'}\n\n${usage(command)}`);
    return 2;
  }

  let config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`keyward: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  // Logs go to stderr so that stdout holds only the command's output.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, io.stderr);
  // An open store may be handed in (tests share one); otherwise the environment names it.
  const store = options.store ?? await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, connectTimeoutMs: config.db.connectTimeoutMs, statementTimeoutMs: config.db.statementTimeoutMs, maxConnections: config.db.poolSize });
  let services;
  try {
    if (command.needs === 'services') {
      const { pending } = await migrationStatus(store.sql);
      if (pending.length) throw new DomainError(`the database has ${pending.length} pending migration(s); run \`npm run migrate\` first`);
      services = await createServices(config, store, logger);
    }
    const output = await command.run({ values, positionals, readStdin }, { store, ...(services ? { services } : {}) });
    if (command.changes && services) {
      const value = output.value as Record<string, unknown>;
      const subject = positionals[0] ?? [value.client_id, value.id, value.name].find((v): v is string => typeof v === 'string');
      services.audit.record({ type: 'admin.change', actor: services.actor, subject, outcome: 'success', details: { action: command.name, via: 'cli' } });
    }
    print(output, values.json === true);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${command.name}: ${error.message}\n\n${usage(command)}`);
      return 2;
    }
    if (error instanceof DomainError) {
      io.stderr.write(`${command.name}: ${error.message}\n`);
      return 1;
    }
    io.stderr.write(`${command.name} failed: ${((error as Error).message ?? String(error)).split('\n')[0]}\n`);
    return 1;
  } finally {
    await services?.close();
    if (!options.store) await store.close();
  }
}
