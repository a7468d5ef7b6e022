// Micro benchmark of the tokenization crypto core: `npx tsx bench/tokenization-crypto.ts`.
// Single-threaded, in-process, no I/O: the numbers are the ceiling the crypto puts on a
// tokenization service, not the service's throughput.
import { randomBytes, randomInt } from 'node:crypto';
import { cpus } from 'node:os';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  ConvergentTokenizer,
  FF1_ALPHABETS,
  Ff1Text,
  KeyRing,
  mask,
  VaultCipher,
  type FieldClass,
  type VaultAad,
} from '../src/modules/tokenization/crypto/index.js';
import { now, rate, table } from './lib.js';

export interface TokenizationCryptoBenchLine {
  name: string;
  opsPerSec: number;
}

/** Best of three timed rounds of `seconds` each, after a warm-up; the best round is the least disturbed. */
function opsPerSecond(op: (i: number) => number, seconds = 0.4): number {
  let sink = 0;
  for (let i = 0; i < 2_000; i++) sink += op(i);
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let count = 0;
    const start = now();
    const stop = start + seconds * 1000;
    let elapsed = 0;
    do {
      for (let k = 0; k < 200; k++) sink += op(count++);
      elapsed = now() - start;
    } while (start + elapsed < stop);
    best = Math.max(best, count / (elapsed / 1000));
  }
  if (sink === -1) console.log('unreachable'); // keeps the results observable
  return best;
}

const digits = (n: number) => Array.from({ length: n }, () => String(randomInt(10))).join('');

/** Runs every line; returns ops/s per line for a bench runner to tabulate. */
export async function runTokenizationCryptoBench(): Promise<TokenizationCryptoBenchLine[]> {
  const lines: TokenizationCryptoBenchLine[] = [];
  const add = async (name: string, op: (i: number) => number) => {
    lines.push({ name, opsPerSec: opsPerSecond(op) });
    await yieldToLoop();
  };

  const fpe = new Ff1Text(randomBytes(32), FF1_ALPHABETS.decimal);
  const pans = Array.from({ length: 1_024 }, () => digits(16));
  const encrypted = pans.map((pan) => fpe.encrypt(pan));
  await add(
    'FF1 encrypt, 16 digits, radix 10, AES-256',
    (i) => fpe.encrypt(pans[i & 1023]!).length,
  );
  await add(
    'FF1 decrypt, 16 digits, radix 10, AES-256',
    (i) => fpe.decrypt(encrypted[i & 1023]!).length,
  );
  await add(
    'FF1 encrypt, 16 digits, radix 10, AES-256, 13-byte tweak',
    (i) => fpe.encrypt(pans[i & 1023]!, 'customer.card').length,
  );

  const ring = new KeyRing(randomBytes(32), [1, 2]);
  const convergent = new ConvergentTokenizer(ring);
  const emails = Array.from(
    { length: 1_024 },
    (_, i) => ` Customer.${i}.${digits(6)}@Example.com `,
  );
  await add(
    'convergent token, email (normalize + HMAC-SHA-256)',
    (i) => convergent.token(emails[i & 1023]!, 'email').length,
  );

  const vault = new VaultCipher(ring);
  const rows: VaultAad[] = Array.from({ length: 1_024 }, () => ({
    token: vault.newToken('email'),
    fieldClass: 'email',
  }));
  const blobs = rows.map((row, i) => vault.encrypt(emails[i]!, row));
  await add(
    'vault encrypt, ~30-byte email (AES-256-GCM)',
    (i) => vault.encrypt(emails[i & 1023]!, rows[i & 1023]!).length,
  );
  await add(
    'vault decrypt, ~30-byte email (AES-256-GCM)',
    (i) => vault.decrypt(blobs[i & 1023]!, rows[i & 1023]!).length,
  );
  await add('vault token (18 random bytes)', () => vault.newToken('email').length);

  const samples: Array<[string, FieldClass]> = [
    ['jane.doe@example.com', 'email'],
    ['+49 151 23456789', 'phone'],
    ['Jane Doe', 'name'],
    ['4111 1111 1111 1234', 'card'],
  ];
  await add('mask (email, phone, name, card in turn)', (i) => {
    const [value, fieldClass] = samples[i & 3]!;
    return mask(value, fieldClass).length;
  });
  return lines;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const lines = await runTokenizationCryptoBench();
  console.log(
    `tokenization crypto, node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'} x ${cpus().length}\n`,
  );
  console.log(
    table(
      ['operation', 'ops/s'],
      lines.map((line) => [line.name, rate(line.opsPerSec)]),
    ),
  );
}
