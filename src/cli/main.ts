import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { NexusError, isNexusError } from '../model/errors.js';
import { systemContext } from '../platform/context.js';
import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/logging.js';
import type { ApiKey, NewApiKey } from '../modules/access/index.js';
import { seedDemo, RETAILER_NAME, type SeedReport, type SeedTarget } from './demo.js';
import { importSnapshot, type SnapshotTarget } from './snapshot.js';

/** What the CLI needs of a hub; app.ts builds the real one. */
export interface CliHub extends SeedTarget {
  storage: { location: string; dialect: string };
  bus: { kind: string };
  services: SeedTarget['services'] & {
    access: {
      create(input: NewApiKey): Promise<{ key: ApiKey; secret: string }>;
      list(includeRevoked?: boolean): Promise<ApiKey[]>;
      revoke(id: string): Promise<void>;
    };
    registry: {
      testCompatibility(
        subject: string,
        version: string,
        input: SchemaProposal,
      ): Promise<{ compatible: boolean; messages: string[] }>;
      register(subject: string, input: SchemaProposal): Promise<{ id: number }>;
      getVersion(subject: string, version: string): Promise<{ version: number; id: number }>;
      compatibility(subject?: string): Promise<string>;
    };
    inventory: SeedTarget['services']['inventory'] & SnapshotTarget;
    tokenization: TokenKeysCli;
    markets: SeedTarget['services']['markets'] & {
      list(
        ctx: ReturnType<typeof systemContext>,
        query: { limit: number; filters: Record<string, string | undefined> },
      ): Promise<{ items: unknown[] }>;
    };
  };
  listen(): Promise<string>;
  close(): Promise<void>;
}

interface SchemaProposal {
  schema: string;
  schemaType?: string;
}

/** What `nexus tokens` needs of the tokenization service. */
export interface TokenKeysCli {
  rotate(ctx: ReturnType<typeof systemContext>): Promise<{ version: number; previous: number }>;
  reencrypt(
    ctx: ReturnType<typeof systemContext>,
    progress?: (done: number, total: number) => void,
  ): Promise<{ total: number; moved: number; skipped: number; failed: number; version: number }>;
  keyStatus(): Promise<{
    currentVersion: number;
    deterministicVersion: number;
    keyCheck: string;
    versions: Array<{ version: number; current: boolean; createdAt: string; ciphertexts: number }>;
  }>;
}

export type HubFactory = (
  config: Config,
  options?: { logger?: Logger; checkDedupRules?: boolean },
) => Promise<CliHub>;

const USAGE = `nexus — omnichannel retail integration hub

Usage:
  nexus start [--demo] [--config FILE] [--host HOST] [--port PORT]
      Run the hub. Embedded default: SQLite under ./data, in-process event bus.
      --demo seeds the demo retailer first if the database is empty.
  nexus demo [--config FILE] [--skus N]
      Seed the demo retailer (3 markets, ~60 stores, 2 warehouses, ~2,000 SKUs) and
      print its channel API keys once.
  nexus migrate [--config FILE]
      Apply pending database migrations.
  nexus keys create --name NAME --channel CHANNEL --scopes a,b [--markets DE,SE]
  nexus keys list [--all]
  nexus keys revoke ID
  nexus inventory import FILE.csv [--reference REF] [--rejected OUT.csv] [--full]
      Import a stock snapshot from a legacy system (columns sku, location_id, quantity).
      Rows are cycle counts: the book takes what was counted and the variance is kept.
      With --full the file lists everything its locations hold: items on the record there
      that it leaves out are counted as none. Rejected rows go to OUT.csv (default
      FILE.rejected.csv) with their reason.
  nexus tokens status
      Key versions of the tokenization vault and how many ciphertexts each still holds.
  nexus tokens rotate
      Add a key version and make it current: new vault ciphertexts use it, older ones stay
      readable. Running hubs pick it up within 10 s.
  nexus tokens reencrypt
      Move every vault ciphertext to the current key version, with a progress bar.
  nexus schema check --subject SUBJECT --file SCHEMA.json
      Test a proposed JSON Schema against the subject's registered versions under its
      compatibility level; prints the verdict and the reasons.
  nexus schema register --subject SUBJECT --file SCHEMA.json
      Register it (refused, with reasons, when incompatible).

Configuration: nexus.config.yaml (or --config / NEXUS_CONFIG), overridden by
NEXUS_DATABASE_URL, NEXUS_NATS_URL, NEXUS_HOST, NEXUS_PORT, NEXUS_LOG_LEVEL,
NEXUS_MASTER_KEY (base64 of 32 bytes; required with PostgreSQL; the embedded default keeps a
generated one in master.key beside the SQLite file), NEXUS_MASTER_KEY_FILE.`;

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  progress: (text: string) => void;
}

const defaultIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  progress: (text) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${text}`);
  },
};

/** Runs one CLI command; returns the process exit code. Errors print one line. */
export async function runCli(
  argv: string[],
  createHub: HubFactory,
  io: Io = defaultIo,
): Promise<number> {
  try {
    return await dispatch(argv, createHub, io);
  } catch (error) {
    if (isNexusError(error)) {
      io.err(`nexus: ${error.message}`);
      return error.code === 'CONFIG_INVALID' || error.code === 'VALIDATION_FAILED' ? 2 : 1;
    }
    io.err(`nexus: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;
interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

function parse(argv: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals };
  } catch (error) {
    throw new NexusError(
      'VALIDATION_FAILED',
      `${error instanceof Error ? error.message : String(error)} (see nexus --help)`,
    );
  }
}

async function dispatch(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return 0;
    case 'start':
      return start(rest, createHub, io);
    case 'demo':
      return demo(rest, createHub, io);
    case 'migrate':
      return migrate(rest, createHub, io);
    case 'keys':
      return keys(rest, createHub, io);
    case 'schema':
      return schema(rest, createHub, io);
    case 'inventory':
      return inventory(rest, createHub, io);
    case 'tokens':
      return tokens(rest, createHub, io);
    default:
      throw new NexusError('VALIDATION_FAILED', `unknown command '${command}' (see nexus --help)`);
  }
}

function configFrom(values: Record<string, unknown>): Config {
  return loadConfig({
    ...(typeof values.config === 'string' ? { file: values.config } : {}),
    overrides: (raw) => {
      if (values.host !== undefined || values.port !== undefined) {
        const http = (raw.http ??= {}) as Record<string, unknown>;
        if (typeof values.host === 'string') http.host = values.host;
        if (typeof values.port === 'string')
          http.port = /^\d+$/.test(values.port) ? Number(values.port) : values.port;
      }
    },
  });
}

const quietLogger = () => createLogger({ level: 'warn' });

async function start(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const { values } = parse(argv, {
    demo: { type: 'boolean' },
    host: { type: 'string' },
    port: { type: 'string' },
  });
  const config = configFrom(values);
  const hub = await createHub(config);
  try {
    if (values.demo) {
      const existing = await hub.services.markets.list(systemContext('cli'), {
        limit: 1,
        filters: {},
      });
      if (existing.items.length === 0) {
        printSeed(io, await seedWithProgress(hub, io));
      } else {
        io.out(
          'Demo data already present (its API keys were printed when it was seeded; `nexus keys create` makes more).',
        );
      }
    }
    const url = await hub.listen();
    io.out(`Nexus is running at ${url}`);
    io.out(`  API docs:   ${url}/v1/docs   (OpenAPI: ${url}/v1/openapi.json)`);
    io.out(`  data:       ${hub.storage.dialect} at ${hub.storage.location}`);
    io.out(`  event bus:  ${hub.bus.kind}`);
    io.out('Press Ctrl+C to stop.');
  } catch (error) {
    await hub.close();
    throw error;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  io.err('Stopping: finishing requests in flight and relaying committed events...');
  await hub.close();
  return 0;
}

async function demo(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const { values } = parse(argv, { skus: { type: 'string' } });
  const config = configFrom(values);
  const skuTarget = values.skus === undefined ? undefined : Number(values.skus);
  if (
    skuTarget !== undefined &&
    (!Number.isInteger(skuTarget) || skuTarget < 1 || skuTarget > 500_000)
  ) {
    throw new NexusError(
      'VALIDATION_FAILED',
      `--skus must be a whole number from 1 to 500000, not '${String(values.skus)}'`,
    );
  }
  const hub = await createHub(config, { logger: quietLogger() });
  try {
    printSeed(io, await seedWithProgress(hub, io, skuTarget));
    io.out(`Data: ${hub.storage.dialect} at ${hub.storage.location}`);
  } finally {
    await hub.close();
  }
  return 0;
}

async function seedWithProgress(hub: CliHub, io: Io, skuTarget?: number): Promise<SeedReport> {
  io.err(`Seeding the demo retailer "${RETAILER_NAME}"...`);
  let lastPercent = -1;
  const report = await seedDemo(
    hub,
    systemContext('cli:demo', { actor: { kind: 'cli', id: 'demo' } }),
    (done, total, label) => {
      const percent = Math.floor((done / total) * 100);
      const width = 30;
      const filled = Math.round((done / total) * width);
      io.progress(
        `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${label}      `,
      );
      if (!process.stderr.isTTY && percent >= lastPercent + 25) {
        lastPercent = percent;
        io.err(`  ${percent}% (${label})`);
      }
    },
    skuTarget === undefined ? {} : { skuTarget },
  );
  io.progress('\n');
  return report;
}

function printSeed(io: Io, report: SeedReport): void {
  io.out(
    `Seeded ${report.markets} markets, ${report.stores} stores, ${report.warehouses} warehouses, ` +
      `${report.products} products with ${report.skus} SKUs, ` +
      `opening stock on ${report.stockLines} SKU-locations; ` +
      `${report.events.accepted} customer, order and POS events ingested ` +
      `(${report.events.deduplicated} duplicates caught).`,
  );
  io.out('Channel API keys (shown once; store them now):');
  for (const key of report.keys) {
    io.out(`  ${key.name.padEnd(28)} ${key.channel.padEnd(17)} ${key.secret}`);
    io.out(`  ${''.padEnd(28)} scopes: ${key.scopes.join(' ')}`);
  }
}

async function migrate(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const { values } = parse(argv, {});
  const hub = await createHub(configFrom(values), { logger: quietLogger() });
  // createHub migrates on open; this command exists so deployments can do it as a step.
  io.out(`Database at ${hub.storage.location} is migrated to the latest version.`);
  await hub.close();
  return 0;
}

async function keys(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    name: { type: 'string' },
    channel: { type: 'string' },
    scopes: { type: 'string' },
    markets: { type: 'string' },
    all: { type: 'boolean' },
  });
  const list = (v: unknown) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') {
    throw new NexusError(
      'VALIDATION_FAILED',
      'use: nexus keys create|list|revoke (see nexus --help)',
    );
  }
  if (sub === 'create' && (!values.name || !values.channel || !values.scopes)) {
    throw new NexusError('VALIDATION_FAILED', 'keys create needs --name, --channel and --scopes');
  }
  if (sub === 'revoke' && positionals.length !== 1) {
    throw new NexusError('VALIDATION_FAILED', 'keys revoke needs the key id: nexus keys revoke ID');
  }
  const hub = await createHub(configFrom(values), { logger: quietLogger() });
  try {
    const access = hub.services.access;
    if (sub === 'create') {
      const markets = list(values.markets);
      const { key, secret } = await access.create({
        name: String(values.name),
        channel: String(values.channel) as NewApiKey['channel'],
        scopes: list(values.scopes),
        ...(markets.length > 0 ? { markets } : {}),
      });
      io.out(`Created key ${key.id} for ${key.channel} with scopes ${key.scopes.join(' ')}`);
      io.out(`Secret (shown once): ${secret}`);
    } else if (sub === 'list') {
      for (const key of await access.list(Boolean(values.all))) {
        const state = key.revokedAt
          ? `revoked ${key.revokedAt}`
          : `last used ${key.lastUsedAt ?? 'never'}`;
        io.out(
          `${key.id}  ${key.channel.padEnd(17)} ${key.name.padEnd(28)} ${key.scopes.join(',')}  ${state}`,
        );
      }
    } else {
      await access.revoke(positionals[0]!);
      io.out(`Revoked key ${positionals[0]!}.`);
    }
  } finally {
    await hub.close();
  }
  return 0;
}

async function schema(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { subject: { type: 'string' }, file: { type: 'string' } });
  if (sub !== 'check' && sub !== 'register') {
    throw new NexusError(
      'VALIDATION_FAILED',
      'use: nexus schema check|register --subject S --file F (see nexus --help)',
    );
  }
  if (typeof values.subject !== 'string' || typeof values.file !== 'string') {
    throw new NexusError('VALIDATION_FAILED', `schema ${sub} needs --subject and --file`);
  }
  let text: string;
  try {
    text = readFileSync(values.file, 'utf8');
  } catch (error) {
    throw new NexusError(
      'VALIDATION_FAILED',
      `cannot read ${values.file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const proposal = { schema: text, schemaType: 'JSON' };
  // Dedup rules are not checked here: a rule for a type not registered yet refuses every other
  // start, and registering the type's schema is how it is mended.
  const hub = await createHub(configFrom(values), {
    logger: quietLogger(),
    checkDedupRules: false,
  });
  try {
    const registry = hub.services.registry;
    const level = await registry.compatibility(values.subject);
    if (sub === 'check') {
      const verdict = await registry.testCompatibility(values.subject, 'latest', proposal);
      io.out(
        `${verdict.compatible ? 'compatible' : 'INCOMPATIBLE'} with subject ${values.subject} under ${level}`,
      );
      for (const message of verdict.messages) io.out(`  - ${message}`);
      return verdict.compatible ? 0 : 3;
    }
    const { id } = await registry.register(values.subject, proposal);
    const registered = await registry.getVersion(values.subject, 'latest');
    io.out(
      `Registered ${values.subject} version ${registered.version} (schema id ${id}) under ${level}.`,
    );
    return 0;
  } finally {
    await hub.close();
  }
}

async function inventory(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    reference: { type: 'string' },
    rejected: { type: 'string' },
    full: { type: 'boolean' },
  });
  if (sub !== 'import' || positionals.length !== 1) {
    throw new NexusError(
      'VALIDATION_FAILED',
      'use: nexus inventory import FILE.csv [--reference REF] [--full] (see nexus --help)',
    );
  }
  const file = positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new NexusError(
      'VALIDATION_FAILED',
      `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const hub = await createHub(configFrom(values), { logger: quietLogger() });
  try {
    const reference =
      typeof values.reference === 'string' ? values.reference : `snapshot:${basename(file)}`;
    let report;
    try {
      report = await importSnapshot(
        hub.services.inventory,
        systemContext('cli:inventory-import', { actor: { kind: 'cli', id: 'inventory-import' } }),
        text,
        {
          reference,
          full: values.full === true,
          progress: (done, total) => {
            const width = 30;
            const filled = total === 0 ? width : Math.round((done / total) * width);
            io.progress(
              `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} rows`,
            );
          },
        },
      );
    } catch (error) {
      if (error instanceof NexusError) throw error;
      throw new NexusError(
        'VALIDATION_FAILED',
        `${file}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    io.progress('\n');
    io.out(
      `Imported ${file}: ${report.rows} rows; ${report.matched} matched the book, ` +
        `${report.corrected} corrected (${report.unitsOff} units off in all), ${report.rejected.length} rejected` +
        (values.full === true
          ? `; ${report.zeroed} items on the record but not in the file counted as none.`
          : '.'),
    );
    if (report.rejected.length === 0) return 0;
    const out = typeof values.rejected === 'string' ? values.rejected : `${file}.rejected.csv`;
    const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
    writeFileSync(
      out,
      [
        'line,reason,row',
        ...report.rejected.map((r) => `${r.line},${quote(r.reason)},${quote(r.text)}`),
      ].join('\n') + '\n',
    );
    for (const r of report.rejected.slice(0, 10)) io.err(`  line ${r.line}: ${r.reason}`);
    if (report.rejected.length > 10) io.err(`  ... and ${report.rejected.length - 10} more`);
    io.err(`Rejected rows with their reasons: ${out}`);
    return 3;
  } finally {
    await hub.close();
  }
}

async function tokens(argv: string[], createHub: HubFactory, io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, {});
  if (sub !== 'rotate' && sub !== 'reencrypt' && sub !== 'status') {
    throw new NexusError(
      'VALIDATION_FAILED',
      'use: nexus tokens status | rotate | reencrypt (see nexus --help)',
    );
  }
  const hub = await createHub(configFrom(values), { logger: quietLogger() });
  const service = hub.services.tokenization;
  const ctx = systemContext(`cli:tokens-${sub}`, { actor: { kind: 'cli', id: `tokens-${sub}` } });
  try {
    if (sub === 'rotate') {
      const { version, previous } = await service.rotate(ctx);
      io.out(
        `Key version ${version} is current (was ${previous}). Run \`nexus tokens reencrypt\` to move the vault to it.`,
      );
      return 0;
    }
    if (sub === 'reencrypt') {
      const width = 30;
      const result = await service.reencrypt(ctx, (done, total) => {
        const filled = total === 0 ? width : Math.round((done / total) * width);
        io.progress(
          `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ciphertexts`,
        );
      });
      io.progress('\n');
      io.out(
        `Re-encrypted ${result.moved} of ${result.total} vault ciphertexts to key version ${result.version}` +
          `${result.skipped > 0 ? ` (${result.skipped} moved by another process)` : ''}.`,
      );
      if (result.failed === 0) return 0;
      io.err(`${result.failed} rows could not be read and were left as they are (see the log).`);
      return 1;
    }
    const status = await service.keyStatus();
    io.out(
      `Key check value ${status.keyCheck}; convergent and FF1 tokens use version ${status.deterministicVersion}.`,
    );
    for (const version of status.versions) {
      io.out(
        `  v${version.version}${version.current ? ' (current)' : ''}  created ${version.createdAt}  ${version.ciphertexts} vault ciphertexts`,
      );
    }
    return 0;
  } finally {
    await hub.close();
  }
}
