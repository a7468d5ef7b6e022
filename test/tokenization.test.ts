import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub } from '../src/app.js';
import { runCli } from '../src/cli/main.js';
import {
  FF1_ALPHABETS,
  Ff1Text,
  KeyRing,
  parseToken,
} from '../src/modules/tokenization/crypto/index.js';
import { systemContext } from '../src/platform/context.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logging.js';
import { startTestHub, type HubShape, type TestHub } from './support/hub.js';
import { createPgDatabase, PG_URL } from './support/targets.js';

const shapes: HubShape[] = ['sqlite', ...(PG_URL ? (['postgres'] as const) : [])];

/** The error a promise rejects with; fails when it resolves. */
const refusalOf = (promise: Promise<unknown>): Promise<Error & { code?: string }> =>
  promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => error as Error & { code?: string },
  );

const ALL_CLASSES = ['email', 'phone', 'name', 'address', 'birthdate', 'card', 'generic'];

const customer = (id: string, email: string) => ({
  id,
  channelIds: [],
  contactPoints: [
    { type: 'email', value: email, verified: true, primary: true },
    { type: 'phone', value: '+4915123456789', verified: false, primary: true },
    {
      type: 'address',
      address: { line1: 'Kastanienallee 12', postalCode: '10435', city: 'Berlin', country: 'DE' },
      verified: true,
      primary: true,
    },
  ],
  names: { given: 'Jane', family: 'Doe' },
  birthDate: '1987-04-23',
  consents: [],
});

interface Tokenized {
  contactPoints: Array<{ value?: string; address?: string }>;
  names: { given: string; family: string };
  birthDate: string;
}

describe.each(shapes)('tokenization: %s', (shape) => {
  let t: TestHub;
  const keys: Record<string, string> = {};
  const newKey = async (name: string, scopes: string[]) => {
    const { secret } = await t.hub.services.access.create({ name, channel: 'web', scopes });
    keys[name] = secret;
    return secret;
  };
  const detokenize = (key: string, tokens: string[], reason: string | null = 'test') =>
    t.request('POST', '/v1/tokens/detokenize', {
      key,
      body: reason === null ? { tokens } : { tokens, reason },
    });
  /** Detokenizes with a fresh key holding every class (each key has its own rate limit). */
  let readers = 0;
  const reveal = async (tokens: string[], reason: string) =>
    detokenize(
      await newKey(`reader-${readers++}`, [
        'pii:detokenize',
        ...ALL_CLASSES.map((c) => `pii:detokenize:${c}`),
      ]),
      tokens,
      reason,
    );
  const tokenize = async (
    items: Array<{ value: unknown; fieldClass: string; customerId?: string }>,
  ) => {
    const r = await t.request('POST', '/v1/tokens/tokenize', { body: { items } });
    expect(r.status, r.body).toBe(200);
    return (r.json as { tokens: string[] }).tokens;
  };
  /** Committed events whose envelope contains `text`: in the outbox, or on the stream (D29). */
  const committed = (text: string) =>
    t.hub.storage.db
      .selectFrom('outbox')
      .select('envelope')
      .where('envelope', 'like', `%${text}%`)
      .unionAll((db) =>
        db.selectFrom('bus_messages').select('envelope').where('envelope', 'like', `%${text}%`),
      )
      .execute();
  const audit = async (query: string) => {
    const r = await t.request('GET', `/v1/tokens/audit?${query}`);
    expect(r.status, r.body).toBe(200);
    return (r.json as { items: Array<Record<string, unknown>> }).items;
  };

  const masterKey = randomBytes(32).toString('base64');
  beforeAll(async () => {
    t = await startTestHub(shape, {
      tokenization: {
        masterKey,
        kinds: { generic: 'mask' },
        detokenizeRatePerMinute: 8,
      },
    });
    await newKey('support', ['pii:detokenize', 'pii:detokenize:email']);
    await newKey('nothing', ['catalog:read']);
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it('tokenizes per the configured kind of each field class', async () => {
    const [email, name, card, note, address] = await tokenize([
      { value: 'Jane.Doe@Example.com', fieldClass: 'email' },
      { value: 'Jane', fieldClass: 'name' },
      { value: '4111 1111 1111 1234', fieldClass: 'card' },
      { value: 'free text', fieldClass: 'generic' },
      {
        value: { line1: 'Main St 1', postalCode: '1', city: 'X', country: 'DE' },
        fieldClass: 'address',
      },
    ]);
    expect(email).toMatch(/^tok_c1_email_[A-Za-z0-9_-]{32}$/);
    expect(name).toMatch(/^tok_v1_name_[A-Za-z0-9_-]{24}$/);
    // FF1 keeps the format of the value in the body: 16 digits.
    expect(card).toMatch(/^tok_f1_card_[0-9]{16}$/);
    expect(card).not.toContain('4111111111111234');
    expect(note).toBe('***');
    expect(address).toMatch(/^tok_v1_address_/);
    // Convergent: the same email (any spelling) always gives the same token; vault never does.
    const [again, nameAgain] = await tokenize([
      { value: ' jane.doe@EXAMPLE.com', fieldClass: 'email' },
      { value: 'Jane', fieldClass: 'name' },
    ]);
    expect(again).toBe(email);
    expect(nameAgain).not.toBe(name);
    // Every clear value comes back through the vault or FF1.
    const all = await reveal([email!, name!, card!, address!], 'round trip');
    expect(all.status, all.body).toBe(200);
    expect(all.headers['cache-control']).toBe('no-store');
    expect(
      (all.json as { results: Array<{ value: unknown }> }).results.map((r) => r.value),
    ).toEqual([
      'jane.doe@example.com',
      'Jane',
      '4111111111111234',
      { line1: 'Main St 1', postalCode: '1', city: 'X', country: 'DE' },
    ]);
  });

  it('detokenizes only with the scope and the class, with a reason, audited; refusals reveal nothing', async () => {
    const [email, address] = await tokenize([
      { value: 'audit.me@example.com', fieldClass: 'email' },
      {
        value: { line1: 'Secret Way 9', postalCode: '99999', city: 'Y', country: 'DE' },
        fieldClass: 'address',
      },
    ]);

    // No pii:detokenize at all: refused at the route, audited with the key and the token.
    const none = await detokenize(keys.nothing!, [email!], 'curious');
    expect(none.status).toBe(403);
    expect(none.json).toMatchObject({ code: 'FORBIDDEN_SCOPE' });
    expect(none.body).not.toContain('audit.me');

    // Email yes, address no.
    const mixed = await detokenize(keys.support!, [email!, address!], 'ticket 4711');
    expect(mixed.status).toBe(200);
    expect(mixed.json).toEqual({
      results: [
        { token: email, ok: true, fieldClass: 'email', value: 'audit.me@example.com' },
        {
          token: address,
          ok: false,
          code: 'TOKEN_CLASS_FORBIDDEN',
          detail: expect.any(String) as string,
        },
      ],
    });
    expect(mixed.body).not.toContain('Secret Way');
    const onlyAddress = await detokenize(keys.support!, [address!], 'ticket 4711');
    expect(onlyAddress.status).toBe(403);
    expect(onlyAddress.json).toMatchObject({ code: 'TOKEN_CLASS_FORBIDDEN' });
    expect(onlyAddress.body).not.toContain('Secret Way');

    // A reason is required.
    const noReason = await detokenize(keys.support!, [email!], null);
    expect(noReason.status).toBe(400);
    const blank = await detokenize(keys.support!, [email!], '   ');
    expect(blank.status).toBe(400);
    expect(blank.json).toMatchObject({ code: 'VALIDATION_FAILED' });

    // Unknown and malformed tokens.
    const unknown = await reveal(['tok_v1_email_AAAAAAAAAAAAAAAAAAAAAAAA'], 'x');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'TOKEN_UNKNOWN' });
    // A token of another class, relabelled: the class is bound to the ciphertext, so the
    // vault does not recognise it as an email token, and says nothing more.
    const relabelled = address!.replace('_address_', '_email_');
    expect(relabelled).not.toBe(address);
    const other = await reveal([relabelled], 'x');
    expect(other.json).toMatchObject({ code: 'TOKEN_UNKNOWN' });
    expect(other.body).not.toContain('Secret Way');
    for (const token of ['tok_v1_email_AAAAAAAAAAAAAAAAAAAAAAAA', relabelled]) {
      expect(await audit(`token=${encodeURIComponent(token)}`)).toEqual([
        expect.objectContaining({
          action: 'detokenize',
          outcome: 'refused',
          code: 'TOKEN_UNKNOWN',
          reason: 'x',
        }),
      ]);
    }
    const malformed = await reveal(['jane@example.com'], 'x');
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ code: 'TOKEN_MALFORMED' });

    const rows = await audit(`token=${encodeURIComponent(email!)}&action=detokenize`);
    const supportId = keys.support!.slice(3, 11);
    const nothingId = keys.nothing!.slice(3, 11);
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          actor: `api-key:${supportId}`,
          outcome: 'ok',
          fieldClass: 'email',
          reason: 'ticket 4711',
        }),
        expect.objectContaining({
          actor: `api-key:${supportId}`,
          outcome: 'refused',
          code: 'VALIDATION_FAILED',
          reason: null,
        }),
      ]),
    );
    // Refused before the body was read (the key lacks the route's scope): who, when, outcome.
    expect(await audit(`actor=api-key:${nothingId}`)).toEqual([
      expect.objectContaining({
        action: 'detokenize',
        outcome: 'refused',
        code: 'FORBIDDEN_SCOPE',
        token: null,
      }),
    ]);
    const forAddress = await audit(`token=${encodeURIComponent(address!)}`);
    expect(
      forAddress.every((r) => r.outcome === 'refused' && r.code === 'TOKEN_CLASS_FORBIDDEN'),
    ).toBe(true);
    expect(forAddress).toHaveLength(2);
    // The malformed "token" (maybe personal data itself) is audited without it.
    const all = await audit('action=detokenize&limit=500');
    expect(all.some((r) => r.code === 'TOKEN_MALFORMED' && r.token === null)).toBe(true);
    expect(JSON.stringify(all)).not.toContain('jane@example.com');

    // And counted, without a token or a value in sight: by kind and class, by outcome and code.
    const metrics = (await t.request('GET', '/metrics', { key: null })).body;
    const count = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(
      count('nexus_tokenization_values_total{kind="convergent",field_class="email"}'),
    ).toBeGreaterThan(0);
    expect(
      count(
        'nexus_tokenization_audited_total{action="detokenize",outcome="refused",code="TOKEN_UNKNOWN"}',
      ),
    ).toBeGreaterThanOrEqual(2);
    expect(
      count('nexus_tokenization_audited_total{action="detokenize",outcome="ok",code="none"}'),
    ).toBeGreaterThan(0);
    expect(metrics).not.toContain('audit.me');
  });

  it('rate limits detokenization per key (429, Retry-After, audited)', async () => {
    const key = await newKey('limited', ['pii:detokenize', 'pii:detokenize:email']);
    const [email] = await tokenize([{ value: 'rate@example.com', fieldClass: 'email' }]);
    const allowed = await detokenize(
      key,
      Array.from({ length: 8 }, () => email!),
      'burst',
    );
    expect(allowed.status).toBe(200);
    const limited = await detokenize(key, [email!], 'one more');
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const rows = await audit(`actor=api-key:${key.slice(3, 11)}&limit=50`);
    expect(rows[0]).toMatchObject({ outcome: 'refused', code: 'RATE_LIMITED', reason: 'one more' });
  });

  it('erases a customer: tokens unresolvable everywhere, an event without personal data, the fact audited', async () => {
    const tokenization = t.hub.services.tokenization;
    const mine = (await tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-ERASE', 'erase.me@example.com'),
    )) as Tokenized;
    const other = (await tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-KEEP', 'keep.me@example.com'),
    )) as Tokenized;
    const order = await tokenization.prepareInbound('order.placed.v1', {
      id: 'O-ERASE',
      marketCode: 'DE',
      channel: 'web',
      customerId: 'C-ERASE',
      currency: 'EUR',
      placedAt: '2026-11-28T10:00:00.000Z',
      status: 'placed',
      lines: [
        {
          lineId: '1',
          sku: 'S-1',
          quantity: 1,
          unitPrice: { currency: 'EUR', amount: '1.00' },
          lineTotal: { currency: 'EUR', amount: '1.00' },
          delivery: {
            mode: 'ship-to-address',
            address: { line1: 'Erase Lane 1', postalCode: '1', city: 'Z', country: 'DE' },
          },
        },
      ],
      totals: {
        subtotal: { currency: 'EUR', amount: '1.00' },
        shipping: { currency: 'EUR', amount: '0.00' },
        tax: { currency: 'EUR', amount: '0.16' },
        grandTotal: { currency: 'EUR', amount: '1.00' },
      },
    });
    const orderAddress = (order as { lines: Array<{ delivery: { address: string } }> }).lines[0]!
      .delivery.address;
    const mineTokens = [
      mine.contactPoints[0]!.value!,
      mine.contactPoints[1]!.value!,
      mine.contactPoints[2]!.address!,
      mine.names.given,
      mine.birthDate,
      orderAddress,
    ];
    const before = await reveal(mineTokens, 'before erasure');
    expect((before.json as { results: Array<{ ok: boolean }> }).results.every((r) => r.ok)).toBe(
      true,
    );

    const eraser = await newKey('dpo', ['pii:erase']);
    const refused = await t.request('POST', '/v1/customers/C-ERASE/erasure', {
      key: keys.support!,
      body: { reason: 'GDPR request 17' },
    });
    expect(refused.status).toBe(403);
    const erased = await t.request('POST', '/v1/customers/C-ERASE/erasure', {
      key: eraser,
      body: { reason: 'GDPR request 17' },
    });
    expect(erased.status, erased.body).toBe(200);
    // 7 tokens: email, phone, address, given, family name, birth date, order address.
    expect(erased.json).toMatchObject({
      customerId: 'C-ERASE',
      tokenCount: 7,
      alreadyErased: false,
    });

    const after = await reveal(mineTokens, 'after erasure');
    expect(after.status).toBe(410);
    expect(after.json).toMatchObject({ code: 'TOKEN_ERASED' });
    for (const text of ['erase.me', 'Kastanienallee', 'Erase Lane'])
      expect(after.body).not.toContain(text);
    expect((after.json as { results: Array<{ code: string }> }).results.map((r) => r.code)).toEqual(
      mineTokens.map(() => 'TOKEN_ERASED'),
    );
    // Each refusal is audited against its token, with the reason given and no value.
    for (const token of mineTokens) {
      const rows = await audit(`token=${encodeURIComponent(token)}&action=detokenize`);
      expect(rows).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            outcome: 'refused',
            code: 'TOKEN_ERASED',
            reason: 'after erasure',
          }),
        ]),
      );
      expect(JSON.stringify(rows)).not.toContain('erase.me');
    }

    // The other customer's own tokens are untouched. The phone number both gave has one
    // convergent token: it was the erased person's data too, so it is tombstoned for everyone,
    // for good (the number gets a token of the next erasure epoch when it is given again).
    const others = await detokenize(
      t.adminKey,
      [
        other.contactPoints[0]!.value!,
        other.contactPoints[2]!.address!,
        other.names.given,
        other.contactPoints[1]!.value!,
      ],
      'still there',
    );
    expect(
      (others.json as { results: Array<{ ok: boolean; code?: string }> }).results.map(
        (r) => r.code ?? r.ok,
      ),
    ).toEqual([true, true, true, 'TOKEN_ERASED']);

    // The event: ids and counts only (in the outbox, or on the stream already: D29).
    const rows = await committed('customer.erased.v1');
    expect(rows).toHaveLength(1);
    const envelope = JSON.parse(rows[0]!.envelope) as { subject: string; data: unknown };
    expect(envelope.subject).toBe('customer/C-ERASE');
    expect(envelope.data).toEqual({
      customerId: 'C-ERASE',
      erasedAt: expect.stringMatching(/^\d{4}-/) as string,
      tokenCount: 7,
    });

    // The audit keeps the fact, not the data.
    const facts = await audit('action=erase&customerId=C-ERASE');
    expect(facts[0]).toMatchObject({
      outcome: 'ok',
      count: 7,
      reason: 'GDPR request 17',
      token: null,
    });

    // Again: the first erasure is answered, nothing happens.
    const again = await t.request('POST', '/v1/customers/C-ERASE/erasure', {
      key: eraser,
      body: { reason: 'duplicate request' },
    });
    expect(again.json).toMatchObject({ tokenCount: 7, alreadyErased: true });

    // Personal data arriving later for the erased customer is refused.
    await expect(
      tokenization.prepareInbound(
        'customer.updated.v1',
        customer('C-ERASE', 'erase.me@example.com'),
      ),
    ).rejects.toMatchObject({ code: 'SUBJECT_ERASED' });
    // The same email given by a new customer is that customer's data, under a new token: the
    // erased one stays unresolvable, so records that held it are not joined to the newcomer.
    const newcomer = (await tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-NEW', 'erase.me@example.com'),
    )) as Tokenized;
    const renewed = newcomer.contactPoints[0]!.value!;
    expect(parseToken(renewed)).toMatchObject({ kind: 'convergent', fieldClass: 'email' });
    expect(renewed).not.toBe(mineTokens[0]);
    const afterwards = await reveal([mineTokens[0]!, renewed], 'new customer');
    expect(
      (afterwards.json as { results: Array<{ code?: string; value?: unknown }> }).results.map(
        (r) => r.code ?? r.value,
      ),
    ).toEqual(['TOKEN_ERASED', 'erase.me@example.com']);
    // Identity matching goes on with the new token.
    const again2 = (await tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-NEW-2', 'Erase.Me@Example.com'),
    )) as Tokenized;
    expect(again2.contactPoints[0]!.value).toBe(renewed);
  });

  it('never issues an erased shared token again: the value moves to the next erasure epoch, on every path', async () => {
    const tokenization = t.hub.services.tokenization;
    const ctx = systemContext('test');
    const card = '4111 1111 1111 1111';
    const revealed = async (tokens: string[]) =>
      (
        (await reveal(tokens, 'epoch check')).json as {
          results: Array<{ code?: string; value?: unknown }>;
        }
      ).results.map((r) => r.code ?? r.value);

    // A card (FF1) and an email (convergent) of one customer, known to this process.
    const [card0, email0] = await tokenize([
      { value: card, fieldClass: 'card', customerId: 'C-EPOCH' },
      { value: 'epoch@example.com', fieldClass: 'email', customerId: 'C-EPOCH' },
    ]);
    expect(await tokenize([{ value: card, fieldClass: 'card' }])).toEqual([card0]);
    await tokenization.erase(ctx, 'C-EPOCH', 'GDPR request 19');

    // Over the API: new tokens (the writer finds the old ones tombstoned and the service
    // issues again), which resolve; the old ones stay erased.
    const [card1, email1] = await tokenize([
      { value: card, fieldClass: 'card', customerId: 'C-EPOCH-NEW' },
      { value: 'epoch@example.com', fieldClass: 'email', customerId: 'C-EPOCH-NEW' },
    ]);
    expect(parseToken(card1!)).toMatchObject({ kind: 'fpe', fieldClass: 'card' });
    expect(parseToken(card1!).body).toMatch(/^\d{16}$/);
    expect([card1, email1]).not.toContain(card0);
    expect([card1, email1]).not.toContain(email0);
    expect(await revealed([card0!, email0!, card1!, email1!])).toEqual([
      'TOKEN_ERASED',
      'TOKEN_ERASED',
      '4111111111111111',
      'epoch@example.com',
    ]);
    expect(await tokenize([{ value: card, fieldClass: 'card' }])).toEqual([card1]);

    // Through ingest, whose transaction rolls back and tokenizes again when it meets a retired
    // token: erase the newcomer too, and the email moves on to a third token.
    await tokenization.erase(ctx, 'C-EPOCH-NEW', 'GDPR request 20');
    const report = await t.hub.services.ingest.ingestBatch(ctx, [
      {
        specversion: '1.0',
        id: 'epoch-1',
        source: '//web/de',
        type: 'customer.registered.v1',
        subject: 'customer/C-EPOCH-3',
        time: '2026-11-28T10:00:00Z',
        datacontenttype: 'application/json',
        dataschema: '/registry/subjects/customer.registered.v1/versions/latest',
        partitionkey: 'customer/C-EPOCH-3',
        market: 'DE',
        data: customer('C-EPOCH-3', 'epoch@example.com'),
      },
    ]);
    expect(report).toMatchObject({ accepted: 1, rejected: [] });
    const rows = await committed('"epoch-1"');
    const email2 = (JSON.parse(rows[0]!.envelope) as { data: Tokenized }).data.contactPoints[0]!
      .value!;
    expect([email0, email1]).not.toContain(email2);
    expect(await revealed([email1!, email2])).toEqual(['TOKEN_ERASED', 'epoch@example.com']);

    // One call for two customers, one of whom meets a token erased meanwhile: only that
    // customer's values are issued again, and the other's vault row is written once.
    await tokenization.erase(ctx, 'C-EPOCH-3', 'GDPR request 23');
    const [email3, name] = await tokenize([
      { value: 'epoch@example.com', fieldClass: 'email', customerId: 'C-MIX-1' },
      { value: 'Mixed Name', fieldClass: 'name', customerId: 'C-MIX-2' },
    ]);
    expect([email0, email1, email2]).not.toContain(email3);
    expect(await revealed([email3!, name!])).toEqual(['epoch@example.com', 'Mixed Name']);
    const { rows: written } = await sql<{ n: number | string }>`select count(*) as n
      from token_vault where subject = 'C-MIX-2'`.execute(t.hub.storage.db);
    expect(Number(written[0]!.n)).toBe(1);
  });

  it('finds the current epoch of a value erased many times, in a process that never met it', async () => {
    // A shared value (a store's placeholder phone number, say) erased with customer after
    // customer: each erasure retires the token of the epoch then current.
    const tokenization = t.hub.services.tokenization;
    const ctx = systemContext('test');
    const erased: string[] = [];
    for (let i = 0; i < 12; i++) {
      const [token] = await tokenize([
        { value: '+49 30 0000000', fieldClass: 'phone', customerId: `C-SHARED-${i}` },
      ]);
      erased.push(token!);
      await tokenization.erase(ctx, `C-SHARED-${i}`, `GDPR request ${100 + i}`);
    }
    expect(new Set(erased).size).toBe(12);
    // Another hub process on the same database learns the retired epochs as it meets them.
    const other = await createHub(t.hub.config, { logger: createLogger({ level: 'silent' }) });
    try {
      const fresh = await other.services.tokenization.tokenize('+49 30 0000000', 'phone', 'C-NEXT');
      expect(erased).not.toContain(fresh);
      const again = (await other.services.tokenization.prepareInbound('customer.registered.v1', {
        ...customer('C-NEXT-2', 'next.two@example.com'),
        contactPoints: [{ type: 'phone', value: '+49300000000', verified: false, primary: true }],
      })) as Tokenized;
      expect(again.contactPoints[0]!.value).toBe(fresh);
    } finally {
      await other.close();
    }
  });

  it('gives an FF1 value another epoch when its digits are held by another value of a later epoch', async () => {
    // FF1 under two epochs' keys is two permutations of the same digits: the value whose epoch-0
    // digits are another value's epoch-1 digits exists. The row of the token says whose it is.
    const ring = new KeyRing(Buffer.from(masterKey, 'base64'), [1]);
    const ff1 = (epoch: number) =>
      new Ff1Text(ring.fpeKey(1, 'card', epoch), FF1_ALPHABETS.decimal);
    const first = '5500000000000004';
    // An erasure retires `first`'s epoch-0 token; given again, it gets its epoch-1 token.
    await tokenize([{ value: first, fieldClass: 'card', customerId: 'C-FF1' }]);
    await t.hub.services.tokenization.erase(systemContext('test'), 'C-FF1', 'GDPR request 21');
    const [epoch1] = await tokenize([{ value: first, fieldClass: 'card' }]);
    expect(parseToken(epoch1!).body).toBe(ff1(1).encrypt(first, 'nexus/card'));
    // The value whose epoch-0 token has exactly those digits.
    const twin = ff1(0).decrypt(parseToken(epoch1!).body, 'nexus/card');
    const [twinToken] = await tokenize([{ value: twin, fieldClass: 'card' }]);
    expect(twinToken).not.toBe(epoch1);
    expect(parseToken(twinToken!).body).toBe(ff1(1).encrypt(twin, 'nexus/card'));
    const results = (
      (await reveal([epoch1!, twinToken!], 'twins')).json as { results: Array<{ value?: unknown }> }
    ).results.map((r) => r.value);
    expect(results).toEqual([first, twin]);
    // Each keeps its own token: the twin's detour does not move `first`.
    expect(await tokenize([{ value: first, fieldClass: 'card' }])).toEqual([epoch1]);
    expect(await tokenize([{ value: twin, fieldClass: 'card' }])).toEqual([twinToken]);
  });

  it("ingest commits a batch's vault rows with its events; an erased customer's events become masked dead letters", async () => {
    const ctx = systemContext('test');
    const event = (id: string, customerId: string, email: string) => ({
      specversion: '1.0',
      id,
      source: '//web/de',
      type: 'customer.registered.v1',
      subject: `customer/${customerId}`,
      time: '2026-11-28T10:00:00Z',
      datacontenttype: 'application/json',
      dataschema: '/registry/subjects/customer.registered.v1/versions/latest',
      partitionkey: `customer/${customerId}`,
      market: 'DE',
      data: customer(customerId, email),
    });
    await t.hub.services.tokenization.erase(ctx, 'C-GONE', 'GDPR request 18');
    const report = await t.hub.services.ingest.ingestBatch(ctx, [
      event('edge-1', 'C-EDGE', 'edge.one@example.com'),
      event('edge-2', 'C-GONE', 'gone.person@example.com'),
    ]);
    expect(report).toMatchObject({
      accepted: 1,
      rejected: [
        {
          index: 1,
          id: 'edge-2',
          errors: [
            { pointer: '/items/1/data', detail: expect.stringContaining("'C-GONE'") as string },
          ],
        },
      ],
    });
    const letter = await t.hub.services.ingest.deadLetter(report.rejected[0]!.deadLetterId);
    for (const clear of ['gone.person', 'Kastanienallee', 'Jane', '1987-04-23'])
      expect(JSON.stringify(letter.envelope)).not.toContain(clear);

    // The accepted event's tokens resolve: their rows committed with it.
    const rows = await committed('"edge-1"');
    expect(rows).toHaveLength(1);
    const published = (JSON.parse(rows[0]!.envelope) as { data: Tokenized }).data;
    expect(JSON.stringify(published)).not.toContain('edge.one');
    const revealed = await reveal(
      [published.contactPoints[0]!.value!, published.names.given],
      'edge check',
    );
    expect(
      (revealed.json as { results: Array<{ value: unknown }> }).results.map((r) => r.value),
    ).toEqual(['edge.one@example.com', 'Jane']);
  });

  it('rotates keys: new vault data uses the new version, old tokens still resolve, re-encryption moves the vault', async () => {
    const tokenization = t.hub.services.tokenization;
    const ctx = systemContext('test');
    const [oldName, oldEmail, card] = await tokenize([
      { value: 'Before Rotation', fieldClass: 'name' },
      { value: 'rotate@example.com', fieldClass: 'email' },
      { value: '5500000000000004', fieldClass: 'card' },
    ]);
    const before = await tokenization.keyStatus();
    const { version } = await tokenization.rotate(ctx);
    expect(version).toBe(before.currentVersion + 1);

    const [newName, newEmail, newCard] = await tokenize([
      { value: 'After Rotation', fieldClass: 'name' },
      { value: 'rotate@example.com', fieldClass: 'email' },
      { value: '5500000000000004', fieldClass: 'card' },
    ]);
    expect(parseToken(newName!).keyVersion).toBe(version);
    // Deterministic tokens are identities: a rotation does not change them.
    expect(newEmail).toBe(oldEmail);
    expect(newCard).toBe(card);

    const status = await tokenization.keyStatus();
    expect(status.versions.find((v) => v.version === version)?.ciphertexts).toBeGreaterThan(0);
    const pending = status.versions
      .filter((v) => v.version !== version)
      .reduce((n, v) => n + v.ciphertexts, 0);
    expect(pending).toBeGreaterThan(0);

    const seen: Array<[number, number]> = [];
    const result = await tokenization.reencrypt(ctx, (done, total) => seen.push([done, total]), 7);
    expect(result).toMatchObject({ total: pending, moved: pending, failed: 0, version });
    expect(seen.at(-1)).toEqual([pending, pending]);
    const moved = await tokenization.keyStatus();
    expect(
      moved.versions.filter((v) => v.version !== version).every((v) => v.ciphertexts === 0),
    ).toBe(true);
    const rows = await t.hub.storage.db
      .withTables<{ token_vault: { token: string; key_version: number } }>()
      .selectFrom('token_vault')
      .select(['token', 'key_version'])
      .where('token', 'in', [oldName!, oldEmail!])
      .execute();
    expect(rows.map((r) => Number(r.key_version))).toEqual([version, version]);

    const back = await detokenize(
      t.adminKey,
      [oldName!, oldEmail!, newName!, card!],
      'after rotation',
    );
    expect(
      (back.json as { results: Array<{ value: unknown }> }).results.map((r) => r.value),
    ).toEqual(['Before Rotation', 'rotate@example.com', 'After Rotation', '5500000000000004']);
    expect((await audit('action=reencrypt'))[0]).toMatchObject({ outcome: 'ok', count: pending });
    expect((await audit('action=rotate'))[0]).toMatchObject({ outcome: 'ok' });
    const overHttp = await t.request('GET', '/v1/tokens/keys');
    expect(overHttp.json).toMatchObject({ currentVersion: version, deterministicVersion: 1 });
    const openapi = await t.request('GET', '/v1/openapi.json');
    expect(Object.keys((openapi.json as { paths: object }).paths)).toEqual(
      expect.arrayContaining(['/v1/tokens/detokenize', '/v1/customers/{customerId}/erasure']),
    );
  });

  it('keeps the audit log append-only', async () => {
    await expect(
      t.hub.storage.db
        .withTables<{ token_audit: { outcome: string } }>()
        .updateTable('token_audit')
        .set({ outcome: 'ok' })
        .execute(),
    ).rejects.toThrow(/append-only/);
    await expect(
      t.hub.storage.db
        .withTables<{ token_audit: { seq: number } }>()
        .deleteFrom('token_audit')
        .execute(),
    ).rejects.toThrow(/append-only/);
  });
});

describe('nexus tokens (CLI)', () => {
  it('shows key versions, rotates, and re-encrypts the vault with progress', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-cli-tok-'));
    const saved = { ...process.env };
    process.env.NEXUS_SQLITE_FILE = join(dir, 'nexus.db');
    process.env.NEXUS_LOG_LEVEL = 'silent';
    delete process.env.NEXUS_DATABASE_URL;
    delete process.env.NEXUS_NATS_URL;
    const out: string[] = [];
    const err: string[] = [];
    const progress: string[] = [];
    const cli = (argv: string[]) =>
      runCli(argv, createHub, {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        progress: (p) => progress.push(p),
      });
    try {
      const hub = await createHub(
        loadConfig({ overrides: (raw) => (raw.log = { level: 'silent' }) }),
        {
          logger: createLogger({ level: 'silent' }),
        },
      );
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          hub.services.tokenization.tokenize(`Name ${i}`, 'name'),
        ),
      );
      await hub.close();

      expect(await cli(['tokens', 'rotate'])).toBe(0);
      expect(out.at(-1)).toMatch(/^Key version 2 is current \(was 1\)/);
      expect(await cli(['tokens', 'reencrypt'])).toBe(0);
      expect(out.at(-1)).toBe('Re-encrypted 30 of 30 vault ciphertexts to key version 2.');
      expect(progress.some((p) => p.includes('30/30 ciphertexts'))).toBe(true);
      expect(await cli(['tokens', 'status'])).toBe(0);
      expect(out.slice(-2).join('\n')).toMatch(
        /v1 .* 0 vault ciphertexts\n {2}v2 \(current\) .* 30 vault ciphertexts/,
      );
      expect(await cli(['tokens', 'spin'])).toBe(2);
      expect(err.at(-1)).toMatch(/use: nexus tokens status \| rotate \| reencrypt/);
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the master key at start', () => {
  const quiet = () => createLogger({ level: 'silent' });
  const open = async (env: Record<string, string>, logger = quiet()) =>
    createHub(
      loadConfig({
        env,
        overrides: (raw) => {
          raw.http = { port: 0 };
          raw.log = { level: 'silent' };
        },
      }),
      { logger },
    );

  it('embedded: generates a key file (0600) once, says where, and reuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-key-'));
    try {
      const lines: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
      const env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') };
      const first = await open(env, logger);
      const file = join(dir, 'master.key');
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const generated = lines.filter((l) => l.includes('generated a master key at'));
      expect(generated).toHaveLength(1);
      expect(generated[0]).toContain(file);
      const content = readFileSync(file, 'utf8');
      const token = await first.services.tokenization.tokenize('Kept', 'name');
      await first.close();

      lines.length = 0;
      const second = await open(env, logger);
      expect(lines.some((l) => l.includes('generated a master key'))).toBe(false);
      expect(readFileSync(file, 'utf8')).toBe(content);
      const [result] = await second.services.tokenization.detokenize(
        systemContext('test'),
        [token],
        'restart',
      );
      expect(result).toMatchObject({ ok: true, value: 'Kept' });
      await second.close();

      // The data is there but the key file is gone: refused, not a new key.
      unlinkSync(file);
      const refusal = await refusalOf(open(env));
      expect(refusal).toMatchObject({ code: 'CONFIG_INVALID' });
      expect(refusal.message).toMatch(/master key file .* is missing/);
      expect(existsSync(file)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a wrong master key, in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-key-'));
    try {
      const env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') };
      const key = randomBytes(32).toString('base64');
      await (await open({ ...env, NEXUS_MASTER_KEY: key })).close();
      const wrong = randomBytes(32).toString('base64');
      const refusal = await refusalOf(open({ ...env, NEXUS_MASTER_KEY: wrong }));
      expect(refusal).toMatchObject({ code: 'CONFIG_INVALID' });
      expect(refusal.message).toMatch(/does not match the key check value stored in the database/);
      expect(refusal.message).not.toContain('\n');
      expect(refusal.message).not.toContain(wrong);
      // A key that is not 32 bytes: refused by the configuration, without echoing it.
      const short = await refusalOf(open({ ...env, NEXUS_MASTER_KEY: 'c2hvcnQ=' }));
      expect(short.message).not.toContain('c2hvcnQ');
      // The right key still opens it.
      await (await open({ ...env, NEXUS_MASTER_KEY: key })).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(PG_URL)('PostgreSQL: refuses to start without a configured key', async () => {
    const database = await createPgDatabase();
    try {
      const refusal = await refusalOf(open({ NEXUS_DATABASE_URL: database.url }));
      expect(refusal).toMatchObject({ code: 'CONFIG_INVALID' });
      expect(refusal.message).toMatch(/needs a master key with PostgreSQL/);
      expect(refusal.message).not.toContain('\n');
    } finally {
      await database.drop();
    }
  });
});
