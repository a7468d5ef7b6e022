import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANONICAL_SCHEMAS } from '../../model/catalog.js';
import { EVENT_DATA_SCHEMAS } from '../../model/events.js';
import { Customer } from '../../model/schemas/customer.js';
import { systemContext } from '../../platform/context.js';
import { migrateToLatest } from '../../platform/db/migrations.js';
import { openSqlite } from '../../platform/db/sqlite.js';
import type { Storage } from '../../platform/db/storage.js';
import { Transactor } from '../../platform/events/unit-of-work.js';
import { createLogger } from '../../platform/logging.js';
import { SchemaValidator } from '../../platform/validation.js';
import { RegistryService } from '../registry/index.js';
import { parseToken } from './crypto/index.js';
import { TokenizationService, type TokenizationSettings } from './service.js';

const SETTINGS: TokenizationSettings = {
  kinds: {
    email: 'convergent',
    phone: 'convergent',
    name: 'vault',
    address: 'vault',
    birthdate: 'vault',
    card: 'fpe',
    generic: 'vault',
  },
  detokenizeRatePerMinute: 1_000,
  masterKey: Buffer.alloc(32, 3).toString('base64'),
};

const CUSTOMER = {
  id: 'C-1001',
  channelIds: [{ channel: 'web', externalId: 'shop-4711' }],
  contactPoints: [
    { type: 'email', value: 'Jane.Doe@Example.com', verified: true, primary: true },
    { type: 'phone', value: '+4915123456789', verified: false, primary: true },
    {
      type: 'address',
      address: {
        line1: 'Kastanienallee 12',
        postalCode: '10435',
        city: 'Berlin',
        country: 'DE',
      },
      verified: true,
      primary: true,
    },
  ],
  names: { given: 'Jane', family: 'Doe-Müller' },
  birthDate: '1987-04-23',
  preferredLocale: 'de-DE',
  marketCode: 'DE',
  consents: [
    { purpose: 'marketing-email', granted: true, at: '2026-01-02T10:00:00.000Z', channel: 'web' },
  ],
};
const CLEAR_STRINGS = [
  'Jane.Doe@Example.com',
  'jane.doe@example.com',
  '+4915123456789',
  '4915123456789',
  'Kastanienallee',
  '10435',
  'Jane',
  'Doe-Müller',
  '1987-04-23',
];

describe('TokenizationService on SQLite', () => {
  let dir: string;
  let storage: Storage;
  let service: TokenizationService;
  let registry: RegistryService;
  const ctx = systemContext('test');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-tok-'));
    storage = openSqlite({ file: join(dir, 'nexus.db') });
    const migrated = await migrateToLatest(storage);
    if (migrated.error) throw migrated.error as Error;
    registry = new RegistryService(storage);
    const canonical = await registry.registerCanonical({
      ...CANONICAL_SCHEMAS,
      ...EVENT_DATA_SCHEMAS,
    });
    const transactor = new Transactor(storage, canonical, new SchemaValidator(), '//test');
    service = await TokenizationService.open({
      storage,
      transactor,
      logger: createLogger({ level: 'silent' }),
      settings: SETTINGS,
    });
  });
  afterAll(async () => {
    await service.drain();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prepareInbound: clear customer in, registered token form out, clear values back by detokenize', async () => {
    const clear = structuredClone(CUSTOMER);
    const tokenized = (await service.prepareInbound('customer.registered.v1', clear)) as {
      contactPoints: Array<{ value?: string; address?: string }>;
      names: { given: string; family: string };
      birthDate: string;
      id: string;
    };
    // Nothing clear left anywhere in the document.
    const json = JSON.stringify(tokenized);
    for (const text of CLEAR_STRINGS) expect(json).not.toContain(text);
    // Non-personal fields untouched.
    expect(tokenized.id).toBe('C-1001');
    expect(tokenized).toMatchObject({ preferredLocale: 'de-DE', consents: CUSTOMER.consents });

    const { validate } = await registry.validatorFor('customer.registered.v1');
    expect(validate(tokenized), JSON.stringify(validate.errors)).toBe(true);

    const [email, phone, address] = tokenized.contactPoints;
    expect(parseToken(email!.value!)).toMatchObject({ kind: 'convergent', fieldClass: 'email' });
    expect(parseToken(phone!.value!)).toMatchObject({ kind: 'convergent', fieldClass: 'phone' });
    expect(parseToken(address!.address!)).toMatchObject({ kind: 'vault', fieldClass: 'address' });
    expect(parseToken(tokenized.names.given)).toMatchObject({ kind: 'vault', fieldClass: 'name' });
    expect(parseToken(tokenized.birthDate)).toMatchObject({
      kind: 'vault',
      fieldClass: 'birthdate',
    });

    const results = await service.detokenize(
      ctx,
      [
        email!.value!,
        phone!.value!,
        address!.address!,
        tokenized.names.given,
        tokenized.names.family,
        tokenized.birthDate,
      ],
      'unit test round trip',
    );
    expect(results.map((r) => (r.ok ? r.value : r.code))).toEqual([
      'jane.doe@example.com', // convergent tokens keep the normalized spelling
      '+4915123456789',
      CUSTOMER.contactPoints[2]!.address,
      'Jane',
      'Doe-Müller',
      '1987-04-23',
    ]);
  });

  it('prepareInbound keeps tokens it finds and refuses clear values that break the schema', async () => {
    const first = (await service.prepareInbound(
      'customer.updated.v1',
      structuredClone(CUSTOMER),
    )) as typeof CUSTOMER;
    const again = (await service.prepareInbound(
      'customer.updated.v1',
      structuredClone(first),
    )) as typeof CUSTOMER;
    expect(again).toEqual(first);

    const bad = structuredClone(CUSTOMER);
    bad.contactPoints[0]!.value = 'not an email';
    const refusal = await service
      .prepareInbound('customer.updated.v1', bad)
      .catch((e: unknown) => e);
    expect(refusal).toMatchObject({ code: 'SCHEMA_VIOLATION' });
    expect(JSON.stringify(refusal)).not.toContain('not an email');
    expect((refusal as Error).message).not.toContain('not an email');
    expect(
      (refusal as { errors: Array<{ pointer: string }> }).errors.map((e) => e.pointer),
    ).toContain('/data/contactPoints/0/value');
  });

  it('passes events without personal data through unchanged', async () => {
    const data = { anything: 1 };
    expect(await service.prepareInbound('pos.sale.recorded.v1', data)).toBe(data);
  });

  it('tokenizeDocument works on any schema with x-pii (the clear Customer)', async () => {
    const out = await service.tokenizeDocument(Customer, structuredClone(CUSTOMER), 'C-1001');
    expect(JSON.stringify(out)).not.toContain('Kastanienallee');
  });

  it('refuses FF1 for classes that are not digit strings, and does FF1 on E.164 phones', async () => {
    const open = (kinds: Partial<TokenizationSettings['kinds']>) =>
      TokenizationService.open({
        storage,
        transactor: new Transactor(
          storage,
          { lookup: () => undefined },
          new SchemaValidator(),
          '//t',
        ),
        logger: createLogger({ level: 'silent' }),
        settings: { ...SETTINGS, kinds: { ...SETTINGS.kinds, ...kinds } },
      });
    await expect(open({ name: 'fpe' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/tokenization\.kinds\.name cannot be fpe/) as string,
    });
    const fpe = await open({ phone: 'fpe' });
    const token = await fpe.tokenize('+49 151 2345 6789', 'phone');
    expect(token).toMatch(/^tok_f1_phone_[0-9]{13}$/);
    expect(await fpe.tokenize('+4915123456789', 'phone')).toBe(token);
    await expect(fpe.tokenize('0151 2345 6789', 'phone')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    const [back] = await fpe.detokenize(ctx, [token], 'FF1 phone');
    expect(back).toMatchObject({ ok: true, value: '+4915123456789' });
    // An FF1 body the hub never issued is unknown, not decrypted on demand.
    const forged = `tok_f1_phone_${'1'.repeat(13)}`;
    const [unknown] = await fpe.detokenize(ctx, [forged], 'forged');
    expect(unknown).toMatchObject({ ok: false, code: 'TOKEN_UNKNOWN' });
  });

  it('redactInbound leaves nothing personal in clear, even in an invalid payload', async () => {
    const invalid = {
      ...structuredClone(CUSTOMER),
      contactPoints: [
        { type: 'email', value: 'Jane.Doe@Example.com', verified: 'yes' },
        { type: 'fax', value: '+4930111111' },
      ],
      note: 'call Jane on +4915123456789',
    };
    const redacted = await service.redactInbound('customer.registered.v1', invalid);
    const json = JSON.stringify(redacted);
    for (const text of [...CLEAR_STRINGS, '+4930111111']) expect(json).not.toContain(text);
    expect(redacted).toMatchObject({ id: 'C-1001', note: '***' });
    // A corrected replay goes through: the tokens stand where the values were.
    const fixed = structuredClone(redacted) as typeof CUSTOMER;
    fixed.contactPoints = [fixed.contactPoints[0]!];
    (fixed.contactPoints[0] as { verified: boolean }).verified = true;
    (fixed.contactPoints[0] as { primary: boolean }).primary = true;
    delete (fixed as { note?: string }).note;
    const replayed = await service.prepareInbound('customer.registered.v1', fixed);
    const { validate } = await registry.validatorFor('customer.registered.v1');
    expect(validate(replayed), JSON.stringify(validate.errors)).toBe(true);
  });
});
