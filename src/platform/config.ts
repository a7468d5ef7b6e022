import { existsSync, readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { NexusError } from '../model/errors.js';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { createAjv, toFieldErrors } from './validation.js';

/** How personal data of one field class is tokenized (see modules/tokenization). */
const TokenKindSetting = (kind: 'vault' | 'convergent' | 'fpe' | 'mask') =>
  Type.Union(
    [Type.Literal('vault'), Type.Literal('convergent'), Type.Literal('fpe'), Type.Literal('mask')],
    { default: kind },
  );

/**
 * A business-duplicate rule: events of `eventType` whose values at the `key` JSON Pointers
 * equal those of an event seen within `window` are the same fact (see modules/dedup).
 */
export const DedupRule = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    eventType: Type.String({ pattern: '^[a-z0-9]+(\\.[a-z0-9-]+)+$' }),
    key: Type.Array(
      Type.String({
        // RFC 6901, and never the whole document: '/data/id', '/market', '/data/lines/0/sku'.
        pattern: '^(/([^~/]|~[01])*)+$',
        description: 'JSON Pointer into the event envelope',
      }),
      { minItems: 1, maxItems: 10 },
    ),
    window: Type.Union([
      Type.String({
        pattern: '^[1-9][0-9]{0,6}(ms|s|m|h|d)$',
        description: 'How long a fact stays known: 90s, 72h, 30d',
      }),
      // Or milliseconds (at most ten years).
      Type.Integer({ minimum: 1, maximum: 315_360_000_000 }),
    ]),
    action: Type.Union([Type.Literal('drop'), Type.Literal('merge'), Type.Literal('flag')]),
  },
  { additionalProperties: false },
);
export type DedupRule = Static<typeof DedupRule>;

/** Rules that ship for the canonical business events (see docs/decisions.md D28). */
export const DEFAULT_DEDUP_RULES: DedupRule[] = [
  {
    name: 'pos-sale',
    eventType: 'pos.sale.recorded.v1',
    key: ['/data/locationId', '/data/terminalId', '/data/transactionNumber', '/data/businessDate'],
    window: '7d',
    action: 'drop',
  },
  {
    name: 'web-order',
    eventType: 'order.placed.v1',
    key: ['/data/marketCode', '/data/externalReferences/0/system', '/data/externalReferences/0/id'],
    window: '30d',
    action: 'flag',
  },
];

/** The hub's configuration: a file (nexus.config.yaml) overlaid by NEXUS_* environment variables. */
export const ConfigSchema = Type.Object(
  {
    http: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        bodyLimitBytes: Type.Integer({
          minimum: 1024,
          maximum: 64 * 1024 * 1024,
          default: 1024 * 1024,
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Union(
      [
        Type.Object(
          {
            kind: Type.Literal('sqlite'),
            // Defaults inside a union are not applied by the validator: see withDefaults().
            file: Type.Optional(Type.String({ minLength: 1 })),
            synchronous: Type.Optional(Type.Union([Type.Literal('NORMAL'), Type.Literal('FULL')])),
          },
          { additionalProperties: false },
        ),
        Type.Object(
          {
            kind: Type.Literal('postgres'),
            url: Type.String({ pattern: '^postgres(ql)?://' }),
            poolSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          },
          { additionalProperties: false },
        ),
      ],
      { default: { kind: 'sqlite' } },
    ),
    bus: Type.Union(
      [
        Type.Object({ kind: Type.Literal('embedded') }, { additionalProperties: false }),
        Type.Object(
          {
            kind: Type.Literal('nats'),
            url: Type.String({ pattern: '^(nats|tls)://' }),
            stream: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]+$' })),
            // Hubs (environments, tenants) sharing one NATS server each need their own.
            subjectPrefix: Type.Optional(
              Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' }),
            ),
          },
          { additionalProperties: false },
        ),
      ],
      { default: { kind: 'embedded' } },
    ),
    outbox: Type.Object(
      {
        /** Writes answer 503 while more events than this wait for the bus (backpressure). */
        maxBacklog: Type.Integer({ minimum: 1, default: 100_000 }),
        batchSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
        /** The relay's pause after catching up, so busy commits travel in fewer batches. */
        relayLingerMs: Type.Integer({ minimum: 0, maximum: 100, default: 2 }),
      },
      { additionalProperties: false, default: {} },
    ),
    inventory: Type.Object(
      {
        /** Most reservations decided in one transaction (group commit). */
        reservationBatch: Type.Integer({ minimum: 1, maximum: 5000, default: 256 }),
        /** Reservation transactions in flight at once per process; 0 = by database (1 SQLite, 2 PostgreSQL). */
        reservationConcurrency: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
        /**
         * PostgreSQL: stock rows this process keeps from its last commits, so a reservation
         * batch on them is decided without a lock and written in one guarded statement (D31).
         * About 300 bytes a row; 0 sends every batch through the lock.
         */
        snapshotRows: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 200_000 }),
        /** How often lapsed reservations are looked for. */
        expiryIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
        /** Availability changes kept in memory for reconnecting live clients. */
        liveReplayCapacity: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    dedup: Type.Object(
      {
        /** Off: only transport duplicates (the same event id) are dropped. */
        enabled: Type.Boolean({ default: true }),
        rules: Type.Array(DedupRule, { maxItems: 200, default: DEFAULT_DEDUP_RULES }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) =>
            Type.Literal(l),
          ),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    tokenization: Type.Object(
      {
        /** Base64 of 32 random bytes; never stored in the database. Env NEXUS_MASTER_KEY. */
        masterKey: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/_-]{43}=?$' })),
        /** A file holding the base64 master key. Env NEXUS_MASTER_KEY_FILE. */
        masterKeyFile: Type.Optional(Type.String({ minLength: 1 })),
        /** The kind of token per field class (vault, convergent, fpe or mask). */
        kinds: Type.Object(
          {
            email: TokenKindSetting('convergent'),
            phone: TokenKindSetting('convergent'),
            name: TokenKindSetting('vault'),
            address: TokenKindSetting('vault'),
            birthdate: TokenKindSetting('vault'),
            card: TokenKindSetting('fpe'),
            generic: TokenKindSetting('vault'),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Tokens one API key may detokenize per minute in one hub process (token bucket). */
        detokenizeRatePerMinute: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60 }),
      },
      { additionalProperties: false, default: {} },
    ),
    source: Type.String({ default: '//nexus/hub', description: 'CloudEvents source of this hub' }),
  },
  { additionalProperties: false },
);
type RawConfig = Static<typeof ConfigSchema>;

/** The validated configuration with every default filled in. */
export type Config = Omit<RawConfig, 'storage' | 'bus'> & {
  storage:
    | { kind: 'sqlite'; file: string; synchronous: 'NORMAL' | 'FULL' }
    | { kind: 'postgres'; url: string; poolSize: number };
  bus: { kind: 'embedded' } | { kind: 'nats'; url: string; stream: string; subjectPrefix: string };
};

function withDefaults(raw: RawConfig): Config {
  const storage =
    raw.storage.kind === 'sqlite'
      ? {
          kind: 'sqlite' as const,
          file: raw.storage.file ?? './data/nexus.db',
          synchronous: raw.storage.synchronous ?? 'NORMAL',
        }
      : { kind: 'postgres' as const, url: raw.storage.url, poolSize: raw.storage.poolSize ?? 10 };
  const bus =
    raw.bus.kind === 'nats'
      ? {
          kind: 'nats' as const,
          url: raw.bus.url,
          stream: raw.bus.stream ?? 'NEXUS_EVENTS',
          subjectPrefix: raw.bus.subjectPrefix ?? 'nexus.evt',
        }
      : { kind: 'embedded' as const };
  return { ...raw, storage, bus };
}

/** Environment variable -> where it lands in the configuration, and how to read it. */
const ENV: Array<[string, (config: Record<string, unknown>, value: string) => void]> = [
  ['NEXUS_DATABASE_URL', (c, v) => (c.storage = { kind: 'postgres', url: v })],
  ['NEXUS_SQLITE_FILE', (c, v) => (c.storage = { kind: 'sqlite', file: v })],
  ['NEXUS_NATS_URL', (c, v) => (c.bus = { kind: 'nats', url: v })],
  ['NEXUS_HOST', (c, v) => (section(c, 'http').host = v)],
  ['NEXUS_PORT', (c, v) => (section(c, 'http').port = numberOrText(v))],
  ['NEXUS_LOG_LEVEL', (c, v) => (section(c, 'log').level = v)],
  ['NEXUS_OUTBOX_MAX_BACKLOG', (c, v) => (section(c, 'outbox').maxBacklog = numberOrText(v))],
  ['NEXUS_MASTER_KEY', (c, v) => (section(c, 'tokenization').masterKey = v)],
  ['NEXUS_MASTER_KEY_FILE', (c, v) => (section(c, 'tokenization').masterKeyFile = v)],
];

/** Never repeated in an error message. */
const SECRET_ENV = new Set(['NEXUS_MASTER_KEY']);

function section(config: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = config[key];
  if (existing && typeof existing === 'object' && !Array.isArray(existing))
    return existing as Record<string, unknown>;
  const created: Record<string, unknown> = {};
  config[key] = created;
  return created;
}

/** Keeps a bad number visible as text so the error names it instead of silently coercing. */
const numberOrText = (v: string): number | string => (/^-?\d+$/.test(v) ? Number(v) : v);

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: (config: Record<string, unknown>) => void;
}

/**
 * Reads, merges and validates the configuration. Any problem is a CONFIG_INVALID error whose
 * message is one line naming the setting, its source and what is wrong.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file =
    options.file ??
    env.NEXUS_CONFIG ??
    (existsSync('nexus.config.yaml') ? 'nexus.config.yaml' : undefined);
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    if (!existsSync(file))
      throw new NexusError('CONFIG_INVALID', `configuration file ${file} does not exist`);
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (
        parsed !== null &&
        parsed !== undefined &&
        (typeof parsed !== 'object' || Array.isArray(parsed))
      ) {
        throw new Error('the top level must be a mapping');
      }
      raw = (parsed ?? {}) as Record<string, unknown>;
    } catch (error) {
      const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      throw new NexusError(
        'CONFIG_INVALID',
        `configuration file ${file} is not valid YAML: ${reason}`,
      );
    }
  }
  const fromEnv = new Map<string, string>();
  for (const [name, apply] of ENV) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      apply(raw, value);
      fromEnv.set(name, value);
    }
  }
  options.overrides?.(raw);
  const validate = createAjv().compile(ConfigSchema);
  if (!validate(raw)) {
    const [first] = toFieldErrors(relevantErrors(validate.errors ?? []));
    const setting = (first?.pointer ?? '/').slice(1).replace(/\//g, '.') || '(top level)';
    const envName = [...fromEnv.keys()].find((name) => setting.startsWith(envTarget(name)));
    const origin = envName
      ? SECRET_ENV.has(envName)
        ? ` (from ${envName})`
        : ` (from ${envName}=${fromEnv.get(envName)})`
      : file
        ? ` (in ${file})`
        : '';
    throw new NexusError(
      'CONFIG_INVALID',
      `invalid configuration: ${setting} ${first?.detail ?? 'is invalid'}${origin}`,
    );
  }
  const config = withDefaults(raw);
  const names = new Set<string>();
  config.dedup.rules.forEach((rule, i) => {
    if (names.has(rule.name)) {
      throw new NexusError(
        'CONFIG_INVALID',
        `invalid configuration: dedup.rules.${i}.name '${rule.name}' is used by another rule${file ? ` (in ${file})` : ''}`,
      );
    }
    names.add(rule.name);
  });
  return config;
}

/**
 * storage and bus are unions told apart by `kind`: report what is wrong in the branch the
 * `kind` chose, not that the value fails some other branch.
 */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const otherBranches = errors
    .filter((e) => e.keyword === 'const' && e.instancePath.endsWith('/kind'))
    .map((e) => e.schemaPath.replace(/properties\/kind\/const$/, ''));
  const relevant = errors.filter(
    (e) =>
      e.keyword !== 'anyOf' && !otherBranches.some((branch) => e.schemaPath.startsWith(branch)),
  );
  // A value that fits one branch's type (a window as text or as milliseconds): report what is
  // wrong with it there, not that it has not the other branch's type.
  const fitting = relevant.filter(
    (e) =>
      e.keyword !== 'type' ||
      !relevant.some((o) => o.keyword !== 'type' && o.instancePath === e.instancePath),
  );
  return fitting.length > 0 ? fitting : relevant.length > 0 ? relevant : [...errors];
}

function envTarget(name: string): string {
  switch (name) {
    case 'NEXUS_DATABASE_URL':
    case 'NEXUS_SQLITE_FILE':
      return 'storage';
    case 'NEXUS_NATS_URL':
      return 'bus';
    case 'NEXUS_LOG_LEVEL':
      return 'log';
    case 'NEXUS_OUTBOX_MAX_BACKLOG':
      return 'outbox';
    case 'NEXUS_MASTER_KEY':
    case 'NEXUS_MASTER_KEY_FILE':
      return 'tokenization';
    default:
      return 'http';
  }
}
