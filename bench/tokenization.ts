// Tokenization through the service (vault writes included): `npx tsx bench/tokenization.ts`.
// Embedded SQLite (a file in a temporary directory, WAL, synchronous=NORMAL), one process, the
// vault writer group-committing concurrent calls; then the crypto-only micro benchmark
// (bench/tokenization-crypto.ts) for the ceiling the crypto puts on each line.
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Customer } from '../src/model/schemas/customer.js';
import {
  TokenizationService,
  type FieldClass,
  type PersonalValue,
} from '../src/modules/tokenization/index.js';
import { systemContext } from '../src/platform/context.js';
import { migrateToLatest } from '../src/platform/db/migrations.js';
import { openSqlite } from '../src/platform/db/sqlite.js';
import { Transactor } from '../src/platform/events/unit-of-work.js';
import { createLogger } from '../src/platform/logging.js';
import { SchemaValidator } from '../src/platform/validation.js';
import { runTokenizationCryptoBench } from './tokenization-crypto.js';
import { now, rate, table } from './lib.js';

export interface TokenizationBenchRow {
  name: string;
  opsPerSec: number;
  /** The figure the issue asks for, when it names one. */
  target?: number;
  note: string;
}

const digits = (n: number) => Array.from({ length: n }, () => String(randomInt(10))).join('');

/** `count` calls, `inFlight` at a time (as ingest batches and concurrent requests make them). */
async function throughput(
  count: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  const start = now();
  for (let i = 0; i < count; i += inFlight) {
    const batch: Array<Promise<unknown>> = [];
    for (let k = i; k < Math.min(count, i + inFlight); k++) batch.push(op(k));
    await Promise.all(batch);
  }
  return count / ((now() - start) / 1000);
}

const customer = (i: number) => ({
  id: `C-${i}`,
  channelIds: [],
  contactPoints: [
    { type: 'email', value: `customer.${i}@example.com`, verified: true, primary: true },
    { type: 'phone', value: `+4915${digits(9)}`, verified: false, primary: true },
    {
      type: 'address',
      address: { line1: `Street ${i}`, postalCode: '10435', city: 'Berlin', country: 'DE' },
      verified: true,
      primary: true,
    },
  ],
  names: { given: `Given${i}`, family: `Family${i}` },
  birthDate: '1987-04-23',
  consents: [],
});

/** Runs every line on a fresh embedded database; returns ops/s per line. */
export async function runTokenizationBench(scale = 1): Promise<TokenizationBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-tokbench-'));
  const storage = openSqlite({ file: join(dir, 'nexus.db') });
  const rows: TokenizationBenchRow[] = [];
  try {
    const migrated = await migrateToLatest(storage);
    if (migrated.error) throw migrated.error as Error;
    const transactor = new Transactor(
      storage,
      { lookup: () => undefined },
      new SchemaValidator(),
      '//bench',
    );
    const service = await TokenizationService.open({
      storage,
      transactor,
      logger: createLogger({ level: 'warn' }),
      settings: {
        masterKey: randomBytes(32).toString('base64'),
        kinds: {
          email: 'convergent',
          phone: 'convergent',
          name: 'vault',
          address: 'vault',
          birthdate: 'vault',
          card: 'fpe',
          generic: 'mask',
        },
        detokenizeRatePerMinute: 1_000_000_000,
      },
    });
    const n = Math.round(100_000 * scale);
    const one = (value: PersonalValue, fieldClass: FieldClass) => () =>
      service.tokenize(value, fieldClass);

    const names = Array.from({ length: n }, (_, i) => `Name ${i} ${digits(4)}`);
    const vaultTokens: string[] = new Array<string>(n);
    rows.push({
      name: 'vault token (random; AES-256-GCM; row insert), 1,000 calls in flight',
      opsPerSec: await throughput(n, 1_000, async (i) => {
        vaultTokens[i] = await one(names[i]!, 'name')();
      }),
      target: 20_000,
      note: 'one transaction per group of concurrent calls',
    });
    rows.push({
      name: 'vault token, one call at a time',
      opsPerSec: await throughput(Math.round(n / 5), 1, (i) =>
        service.tokenize(`Single ${i}`, 'name'),
      ),
      note: 'a transaction per call',
    });

    const emails = Array.from({ length: n }, (_, i) => `Customer.${i}.${digits(6)}@Example.com`);
    rows.push({
      name: 'convergent token, first sight (HMAC; encrypted copy inserted)',
      opsPerSec: await throughput(n, 1_000, (i) => service.tokenize(emails[i]!, 'email')),
      note: 'the vault keeps the value so it can be detokenized',
    });
    rows.push({
      name: 'convergent token, value seen before (identity matching)',
      opsPerSec: await throughput(n * 3, 1_000, (i) => service.tokenize(emails[i % n]!, 'email')),
      target: 200_000,
      note: 'HMAC only: the row exists, no write',
    });

    const cards = Array.from({ length: n }, () => digits(16));
    rows.push({
      name: 'FF1 token, 16-digit card, first sight (issued-token row inserted)',
      opsPerSec: await throughput(n, 1_000, (i) => service.tokenize(cards[i]!, 'card')),
      target: 20_000,
      note: 'format kept: tok_f1_card_<16 digits>',
    });
    rows.push({
      name: 'FF1 token, card seen before',
      opsPerSec: await throughput(n, 1_000, (i) => service.tokenize(cards[i]!, 'card')),
      note: 'FF1 only, no write',
    });
    rows.push({
      name: 'mask (display only, nothing stored)',
      opsPerSec: await throughput(n, 1_000, (i) => service.tokenize(names[i]!, 'generic')),
      note: '',
    });

    const docs = Math.round(20_000 * scale);
    rows.push({
      name: 'customer document: 6 personal fields (2 convergent, 4 vault), 200 in flight',
      opsPerSec: await throughput(docs, 200, (i) =>
        service.tokenizeDocument(Customer, customer(i), `C-${i}`),
      ),
      note: 'documents/s; linked to the customer',
    });

    const ctx = systemContext('bench');
    const calls = Math.round(1_000 * scale);
    const perCall = 100;
    const detokenizations = await throughput(calls, 8, (i) =>
      service.detokenize(
        ctx,
        vaultTokens.slice((i * perCall) % (n - perCall), ((i * perCall) % (n - perCall)) + perCall),
        'benchmark',
      ),
    );
    rows.push({
      name: `detokenize, vault tokens, ${perCall} per call (lookup, decrypt, audit rows)`,
      opsPerSec: detokenizations * perCall,
      note: 'tokens/s; every token audited',
    });
    rows.push({
      name: 'detokenize, one token per call',
      opsPerSec: await throughput(Math.round(5_000 * scale), 8, (i) =>
        service.detokenize(ctx, [vaultTokens[i]!], 'benchmark'),
      ),
      note: 'calls/s',
    });
    await service.drain();
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const rows = await runTokenizationBench(Number(process.env.NEXUS_BENCH_SCALE ?? 1));
  console.log(
    `tokenization service, embedded SQLite, node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'} x ${cpus().length}\n`,
  );
  console.log(
    table(
      ['operation', 'ops/s', 'target', 'note'],
      rows.map((row) => [
        row.name,
        rate(row.opsPerSec),
        row.target === undefined
          ? ''
          : `>= ${rate(row.target)} ${row.opsPerSec >= row.target ? '(met)' : '(MISSED)'}`,
        row.note,
      ]),
    ),
  );
  const crypto = await runTokenizationCryptoBench();
  console.log('\ncrypto only (bench/tokenization-crypto.ts), the ceiling of each line above:\n');
  console.log(
    table(
      ['operation', 'ops/s'],
      crypto.map((line) => [line.name, rate(line.opsPerSec)]),
    ),
  );
}
