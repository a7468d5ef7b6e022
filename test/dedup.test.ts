import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub } from '../src/app.js';
import { checkDedupRules } from '../src/modules/dedup/index.js';
import { DEFAULT_DEDUP_RULES, loadConfig } from '../src/platform/config.js';
import { systemContext } from '../src/platform/context.js';
import { createLogger } from '../src/platform/logging.js';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { createPgDatabase, PG_URL, waitFor } from './support/targets.js';

const sale = (id: string, source: string, transactionNumber = '1001') => ({
  specversion: '1.0',
  id,
  source,
  type: 'pos.sale.recorded.v1',
  subject: `pos-sale/DE-BER-001/T3/${transactionNumber}`,
  time: '2026-11-28T09:15:00Z',
  datacontenttype: 'application/json',
  dataschema: '/registry/subjects/pos.sale.recorded.v1/versions/latest',
  partitionkey: 'DE-BER-001',
  market: 'DE',
  data: {
    locationId: 'DE-BER-001',
    terminalId: 'T3',
    transactionNumber,
    businessDate: '2026-11-28',
    occurredAt: '2026-11-28T09:15:00Z',
    currency: 'EUR',
    lines: [{ sku: 'P-1', quantity: 1, unitPrice: { currency: 'EUR', amount: '9.95' } }],
    total: { currency: 'EUR', amount: '9.95' },
  },
});

const order = (id: string, webOrder: string) => ({
  ...sale(id, '//shop/de-stack-1'),
  type: 'order.placed.v1',
  subject: `order/${id}`,
  dataschema: '/registry/subjects/order.placed.v1/versions/latest',
  data: {
    id: `O-${id}`,
    marketCode: 'DE',
    channel: 'web',
    currency: 'EUR',
    placedAt: '2026-11-28T09:00:00Z',
    status: 'placed',
    lines: [
      {
        lineId: '1',
        sku: 'P-1',
        quantity: 1,
        unitPrice: { currency: 'EUR', amount: '9.95' },
        lineTotal: { currency: 'EUR', amount: '9.95' },
        delivery: { mode: 'pickup-in-store', locationId: 'DE-BER-001' },
      },
    ],
    totals: {
      subtotal: { currency: 'EUR', amount: '9.95' },
      shipping: { currency: 'EUR', amount: '0.00' },
      tax: { currency: 'EUR', amount: '0.00' },
      grandTotal: { currency: 'EUR', amount: '9.95' },
    },
    externalReferences: [{ system: 'shop-de', id: webOrder }],
  },
});

const customer = (id: string, email: string) => ({
  ...sale(id, '//web/de'),
  type: 'customer.registered.v1',
  subject: `customer/C-${id}`,
  dataschema: '/registry/subjects/customer.registered.v1/versions/latest',
  partitionkey: `customer/C-${id}`,
  data: {
    id: `C-${id}`,
    channelIds: [],
    contactPoints: [{ type: 'email', value: email, verified: true, primary: true }],
    names: { given: 'Dora', family: 'Duplicate' },
    consents: [],
  },
});

describe.each(hubShapes)('business deduplication: %s', (shape) => {
  let t: TestHub;
  const seen: Delivery[] = [];
  let observer: Subscription;
  const published = (id: string) => seen.some((d) => d.eventId === id);

  beforeAll(async () => {
    t = await startTestHub(shape, {
      dedup: {
        rules: [
          {
            name: 'pos-sale',
            eventType: 'pos.sale.recorded.v1',
            key: [
              '/data/locationId',
              '/data/terminalId',
              '/data/transactionNumber',
              '/data/businessDate',
            ],
            window: '7d',
            action: 'drop',
          },
          {
            // A key the schema declares but these sales lack (they have one line): unkeyed.
            name: 'pos-sale-merge',
            eventType: 'pos.sale.recorded.v1',
            key: ['/data/total/amount', '/data/lines/1/sku'],
            window: '1h',
            action: 'merge',
          },
          {
            // Before web-order: the same order id from a second market stack is merged.
            name: 'order-merge',
            eventType: 'order.placed.v1',
            key: ['/market', '/data/id'],
            window: 86_400_000,
            action: 'merge',
          },
          {
            // Keyed on personal data (a convergent token of the email): logged as a hash.
            name: 'customer-email',
            eventType: 'customer.registered.v1',
            key: ['/data/contactPoints/0/value', '/market'],
            window: '1d',
            action: 'drop',
          },
          {
            name: 'web-order',
            eventType: 'order.placed.v1',
            key: [
              '/data/marketCode',
              '/data/externalReferences/0/system',
              '/data/externalReferences/0/id',
            ],
            window: '30d',
            action: 'flag',
          },
        ],
      },
    });
    observer = await t.hub.bus.subscribe({ name: 'dedup-observer', filter: 'nexus.evt.>' }, (d) => {
      seen.push(d);
      return Promise.resolve();
    });
  });
  afterAll(async () => {
    await observer.stop();
    await t.dispose();
  });

  it('drops the same sale from the nightly file, logs why and counts it per source', async () => {
    const first = await t.request('POST', '/v1/events', {
      body: sale('till-1001', '//pos/DE-BER-001'),
    });
    expect(first.json).toEqual({ id: 'till-1001', duplicate: false });
    const again = await t.request('POST', '/v1/events', {
      body: sale('nightly-77', '//legacy/nightly-file'),
    });
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({
      id: 'nightly-77',
      duplicate: false,
      deduplicated: { action: 'drop', rule: 'pos-sale', firstEventId: 'till-1001' },
    });
    await waitFor(() => published('till-1001'));
    await new Promise((r) => setTimeout(r, 100));
    expect(published('nightly-77')).toBe(false);

    const log = await t.request('GET', '/v1/dedup/log?rule=pos-sale');
    const items = (log.json as { items: Array<Record<string, unknown>> }).items;
    expect(items).toEqual([
      expect.objectContaining({
        action: 'drop',
        eventId: 'nightly-77',
        firstEventId: 'till-1001',
        source: '//legacy/nightly-file',
        key: {
          '/data/locationId': 'DE-BER-001',
          '/data/terminalId': 'T3',
          '/data/transactionNumber': '1001',
          '/data/businessDate': '2026-11-28',
        },
      }),
    ]);
    const metrics = await t.request('GET', '/metrics', { key: null });
    expect(metrics.body).toContain(
      'nexus_dedup_decisions_total{rule="pos-sale",action="drop",source="//legacy/nightly-file"} 1',
    );
    // The rule whose key is missing in the data does not refuse anything: unkeyed, counted.
    expect(metrics.body).toContain('rule="pos-sale-merge",action="unkeyed"');
  });

  it('takes the fact again once its window has passed', async () => {
    await t.request('POST', '/v1/events', { body: sale('till-2001', '//pos/DE-BER-001', '2001') });
    await sql`update dedup_keys set expires_at = ${Date.now() - 1}`.execute(t.hub.storage.db);
    const later = await t.request('POST', '/v1/events', {
      body: sale('nightly-2001', '//legacy/nightly-file', '2001'),
    });
    expect(later.json).toEqual({ id: 'nightly-2001', duplicate: false });

    // Housekeeping deletes facts whose window is over: storage follows the windows.
    const facts = async () =>
      Number(
        (await sql<{ n: number }>`select count(*) as n from dedup_keys`.execute(t.hub.storage.db))
          .rows[0]!.n,
      );
    expect(await facts()).toBeGreaterThan(0);
    await sql`update dedup_keys set expires_at = ${Date.now() - 1}`.execute(t.hub.storage.db);
    await t.hub.services.dedup.purge();
    expect(await facts()).toBe(0);
  });

  it('merges the same order from a second stack: one published, the fact lists every source', async () => {
    const from = (id: string, source: string) => {
      const event = order(id, `W-${id}`);
      return { ...event, source, data: { ...event.data, id: 'O-SAME' } };
    };
    const first = await t.request('POST', '/v1/events', {
      body: from('m-1', '//shop/de-stack-1'),
    });
    expect(first.json).toEqual({ id: 'm-1', duplicate: false });
    const second = await t.request('POST', '/v1/events', {
      body: from('m-2', '//shop/de-stack-2'),
    });
    expect(second.json).toEqual({
      id: 'm-2',
      duplicate: false,
      deduplicated: { action: 'merge', rule: 'order-merge', firstEventId: 'm-1' },
    });
    await t.request('POST', '/v1/events', { body: from('m-3', '//shop/de-stack-1') });
    await waitFor(() => published('m-1'));
    await new Promise((r) => setTimeout(r, 100));
    expect(published('m-2') || published('m-3')).toBe(false);

    const { rows } = await sql<{
      first_event_id: string;
      first_source: string;
      duplicates: number;
      sources: string;
    }>`select first_event_id, first_source, duplicates, sources from dedup_keys
      where rule = 'order-merge'`.execute(t.hub.storage.db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ first_event_id: 'm-1', first_source: '//shop/de-stack-1' });
    expect(Number(rows[0]!.duplicates)).toBe(2);
    expect(JSON.parse(rows[0]!.sources)).toEqual(['//shop/de-stack-1', '//shop/de-stack-2']);

    const log = await t.request('GET', '/v1/dedup/log?rule=order-merge&action=merge');
    expect(
      (
        log.json as { items: Array<{ eventId: string; source: string; firstEventId: string }> }
      ).items.map((e) => [e.eventId, e.source, e.firstEventId]),
    ).toEqual([
      ['m-2', '//shop/de-stack-2', 'm-1'],
      ['m-3', '//shop/de-stack-1', 'm-1'],
    ]);
    const metrics = await t.request('GET', '/metrics', { key: null });
    expect(metrics.body).toContain(
      'nexus_dedup_decisions_total{rule="order-merge",action="merge",source="//shop/de-stack-2"} 1',
    );
  });

  it('logs a key that reaches personal data as a hash only', async () => {
    const email = 'dora.duplicate@example.org';
    await t.request('POST', '/v1/events', { body: customer('c-1', email) });
    const again = await t.request('POST', '/v1/events', { body: customer('c-2', email) });
    expect(again.json).toMatchObject({
      deduplicated: { action: 'drop', rule: 'customer-email', firstEventId: 'c-1' },
    });
    const log = await t.request('GET', '/v1/dedup/log?rule=customer-email');
    const [entry] = (log.json as { items: Array<{ key: Record<string, unknown> }> }).items;
    expect(Object.keys(entry!.key)).toEqual(['/data/contactPoints/0/value', '/market']);
    expect(entry!.key['/data/contactPoints/0/value']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(entry!.key['/market']).toBe('DE');
    expect(log.body).not.toContain(email);
    expect(log.body).not.toContain('tok_');
  });

  it('shows the rules in effect', async () => {
    const rules = await t.request('GET', '/v1/dedup/rules');
    expect(rules.json).toMatchObject({ enabled: true });
    expect((rules.json as { rules: Array<{ name: string }> }).rules.map((r) => r.name)).toEqual([
      'pos-sale',
      'pos-sale-merge',
      'order-merge',
      'customer-email',
      'web-order',
    ]);
  });

  it('reports business duplicates per item in a batch', async () => {
    const r = await t.request('POST', '/v1/events/batch', {
      body: {
        items: [
          sale('b-1', '//pos/DE-BER-001', '3001'),
          sale('b-2', '//legacy/nightly-file', '3001'),
          sale('b-1', '//pos/DE-BER-001', '3001'),
          sale('b-3', '//pos/DE-BER-001', '3002'),
        ],
      },
    });
    expect(r.json).toMatchObject({
      accepted: 2,
      duplicates: 1,
      deduplicated: [{ index: 1, id: 'b-2', action: 'drop', firstEventId: 'b-1' }],
      rejected: [],
    });
  });

  it('decides a batch as one event after another: repeats of a fact within the batch, every rule', async () => {
    const sameOrder = (id: string, source: string, orderId: string) => {
      const event = order(id, 'W-900');
      return { ...event, source, data: { ...event.data, id: orderId } };
    };
    const r = await t.request('POST', '/v1/events/batch', {
      body: {
        items: [
          sale('bb-10', '//pos/DE-BER-001', '5001'),
          sale('bb-11', '//legacy/nightly-file', '5001'),
          sale('bb-12', '//pos/backup', '5001'),
          sameOrder('bb-o1', '//shop/de-stack-1', 'O-BB'),
          sameOrder('bb-o2', '//shop/de-stack-2', 'O-BB'),
          sameOrder('bb-o3', '//shop/de-stack-1', 'O-BB-OTHER'),
        ],
      },
    });
    expect(r.json).toMatchObject({
      accepted: 2,
      duplicates: 0,
      deduplicated: [
        { index: 1, id: 'bb-11', action: 'drop', rule: 'pos-sale', firstEventId: 'bb-10' },
        { index: 2, id: 'bb-12', action: 'drop', rule: 'pos-sale', firstEventId: 'bb-10' },
        { index: 4, id: 'bb-o2', action: 'merge', rule: 'order-merge', firstEventId: 'bb-o1' },
        { index: 5, id: 'bb-o3', action: 'flag', rule: 'web-order', firstEventId: 'bb-o1' },
      ],
      rejected: [],
    });
    const flagged = (r.json as { deduplicated: Array<{ reviewId?: string }> }).deduplicated[3]!;
    const review = await t.request('GET', `/v1/dedup/review/${flagged.reviewId!}`);
    expect(review.json).toMatchObject({
      status: 'pending',
      eventId: 'bb-o3',
      firstEventId: 'bb-o1',
    });

    const { rows } = await sql<{
      first_event_id: string;
      duplicates: number;
      sources: string;
    }>`select first_event_id, duplicates, sources from dedup_keys
      where rule = 'pos-sale' and first_event_id = 'bb-10'`.execute(t.hub.storage.db);
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.duplicates)).toBe(2);
    expect(JSON.parse(rows[0]!.sources)).toEqual([
      '//pos/DE-BER-001',
      '//legacy/nightly-file',
      '//pos/backup',
    ]);
    const log = await t.request('GET', '/v1/dedup/log?rule=pos-sale&action=drop&limit=100');
    expect(
      (log.json as { items: Array<{ eventId: string; firstEventId: string }> }).items
        .filter((e) => e.eventId.startsWith('bb-'))
        .map((e) => [e.eventId, e.firstEventId]),
    ).toEqual([
      ['bb-11', 'bb-10'],
      ['bb-12', 'bb-10'],
    ]);
    // Leaves the review queue as it found it.
    const rejected = await t.request('POST', `/v1/dedup/review/${flagged.reviewId!}/reject`, {
      body: {},
    });
    expect(rejected.json).toMatchObject({ status: 'rejected' });
  });

  it('flags an order seen twice for review; release publishes it, reject keeps it back', async () => {
    await t.request('POST', '/v1/events', { body: order('o-1', 'W-1') });
    const flagged = await t.request('POST', '/v1/events', { body: order('o-2', 'W-1') });
    const held = (flagged.json as { deduplicated: { action: string; reviewId: string } })
      .deduplicated;
    expect(held.action).toBe('flag');
    const review = await t.request('GET', `/v1/dedup/review/${held.reviewId}`);
    expect(review.json).toMatchObject({ status: 'pending', eventId: 'o-2', firstEventId: 'o-1' });
    const pending = await t.request('GET', '/v1/dedup/review?status=pending');
    expect((pending.json as { items: unknown[] }).items).toHaveLength(1);

    const released = await t.request('POST', `/v1/dedup/review/${held.reviewId}/release`, {
      body: { note: 'two real orders' },
    });
    expect(released.json).toMatchObject({ status: 'released', note: 'two real orders' });
    await waitFor(() => published('o-2'));
    const twice = await t.request('POST', `/v1/dedup/review/${held.reviewId}/reject`, { body: {} });
    expect(twice.status).toBe(409);

    const third = await t.request('POST', '/v1/events', { body: order('o-3', 'W-1') });
    const reviewId = (third.json as { deduplicated: { reviewId: string } }).deduplicated.reviewId;
    expect(
      (await t.request('POST', `/v1/dedup/review/${reviewId}/reject`, { body: {} })).json,
    ).toMatchObject({ status: 'rejected' });
    await new Promise((r) => setTimeout(r, 100));
    expect(published('o-3')).toBe(false);
    expect((await t.request('GET', '/v1/dedup/review/nope')).status).toBe(404);
  });
});

describe('deduplication rules in configuration', () => {
  const rule = (overrides: Record<string, unknown>) => ({
    dedup: {
      rules: [
        {
          name: 'r',
          eventType: 'pos.sale.recorded.v1',
          key: ['/data/id'],
          window: '1d',
          action: 'drop',
          ...overrides,
        },
      ],
    },
  });
  const load = (raw: Record<string, unknown>) =>
    loadConfig({ env: {}, overrides: (r) => Object.assign(r, raw) });

  it('refuses a malformed business key with one line naming it', () => {
    expect(() => load(rule({ key: ['data/id'] }))).toThrow(
      /^invalid configuration: dedup\.rules\.0\.key\.0 must match pattern/,
    );
    expect(() => load(rule({ key: [] }))).toThrow(
      /dedup\.rules\.0\.key must NOT have fewer than 1 items/,
    );
    expect(() => load(rule({ key: ['/data/~2'] }))).toThrow(/dedup\.rules\.0\.key\.0/);
    expect(() => load(rule({ window: 'a week' }))).toThrow(
      /^invalid configuration: dedup\.rules\.0\.window must match pattern/,
    );
    expect(() => load(rule({ window: 0 }))).toThrow(
      /^invalid configuration: dedup\.rules\.0\.window must be >= 1$/,
    );
    expect(() => load(rule({ eventType: 'pos.sale.recorded.v1', key: ['/data/a~'] }))).toThrow(
      /dedup\.rules\.0\.key\.0/,
    );
    // One line, like every configuration error.
    try {
      load(rule({ key: ['data/id'] }));
    } catch (error) {
      expect((error as Error & { code?: string }).message).not.toContain('\n');
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    }
    expect(() => load(rule({ action: 'ignore' }))).toThrow(/dedup\.rules\.0\.action/);
    expect(() =>
      load({
        dedup: {
          rules: [rule({}).dedup.rules[0], rule({}).dedup.rules[0]],
        },
      }),
    ).toThrow(/dedup\.rules\.1\.name 'r' is used by another rule/);
  });

  it('takes a window in milliseconds too, and can be switched off', () => {
    expect(load(rule({ window: 3_600_000 })).dedup.rules[0]!.window).toBe(3_600_000);
    expect(load({ dedup: { enabled: false } }).dedup).toMatchObject({ enabled: false });
  });

  it('ships rules for the canonical business events', () => {
    const config = load({});
    expect(config.dedup.rules.map((r) => [r.name, r.eventType, r.action])).toEqual([
      ['pos-sale', 'pos.sale.recorded.v1', 'drop'],
      ['web-order', 'order.placed.v1', 'flag'],
    ]);
  });
});

describe.runIf(process.env.NEXUS_TEST_DATABASE_URL)('deduplication across hub processes', () => {
  it('keeps exactly one of the same fact ingested by two hubs at once, and survives a restart', async () => {
    const first = await startTestHub('postgres');
    const url = (first.hub.config.storage as { url: string }).url;
    // Every hub process on one database shares its master key.
    const masterKey = first.hub.config.tokenization.masterKey!;
    const second = await createHub(
      loadConfig({
        env: { NEXUS_DATABASE_URL: url, NEXUS_MASTER_KEY: masterKey },
        overrides: (r) => (r.log = { level: 'silent' }),
      }),
      { logger: createLogger({ level: 'silent' }) },
    );
    try {
      const ctx = {
        requestId: 'x',
        actor: { kind: 'system' as const, id: 't' },
        scopes: new Set(['*']),
      };
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? first.hub : second).services.ingest.ingest(
            ctx,
            sale(`race-${i}`, i % 2 === 0 ? '//pos/DE-BER-001' : '//legacy/nightly-file', '9001'),
          ),
        ),
      );
      expect(results.filter((r) => r.deduplicated === undefined)).toHaveLength(1);
      expect(results.filter((r) => r.deduplicated?.action === 'drop')).toHaveLength(9);
      const { rows } = await sql<{ duplicates: number; sources: string }>`select duplicates, sources
        from dedup_keys where rule = 'pos-sale'`.execute(first.hub.storage.db);
      expect(rows).toHaveLength(1);
      expect(Number(rows[0]!.duplicates)).toBe(9);
      expect(JSON.parse(rows[0]!.sources)).toHaveLength(2);

      // A hub that starts later knows the fact too: the state is the database's.
      await second.close();
      const third = await createHub(
        loadConfig({
          env: { NEXUS_DATABASE_URL: url, NEXUS_MASTER_KEY: masterKey },
          overrides: (r) => (r.log = { level: 'silent' }),
        }),
        { logger: createLogger({ level: 'silent' }) },
      );
      const late = await third.services.ingest.ingest(ctx, sale('race-late', '//legacy/x', '9001'));
      expect(late.deduplicated?.action).toBe('drop');
      await third.close();
    } finally {
      await first.dispose();
    }
  });
});

describe('deduplication state on an embedded hub', () => {
  it('survives a restart (the SQLite file reopened), and is off with dedup.enabled false', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-dedup-'));
    const open = (enabled = true) =>
      createHub(
        loadConfig({
          env: { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') },
          overrides: (r) => {
            r.log = { level: 'silent' };
            r.dedup = { enabled };
          },
        }),
        { logger: createLogger({ level: 'silent' }) },
      );
    const ctx = systemContext('dedup-test');
    try {
      const first = await open();
      expect(
        await first.services.ingest.ingest(ctx, sale('till-r1', '//pos/DE-BER-001', '7001')),
      ).toEqual({ id: 'till-r1', duplicate: false });
      await first.close();

      const second = await open();
      expect(
        await second.services.ingest.ingest(ctx, sale('nightly-r1', '//legacy/nightly', '7001')),
      ).toEqual({
        id: 'nightly-r1',
        duplicate: false,
        deduplicated: { action: 'drop', rule: 'pos-sale', firstEventId: 'till-r1' },
      });
      await second.close();

      // What a benchmark compares against: only transport duplicates are caught.
      const off = await open(false);
      expect(
        await off.services.ingest.ingest(ctx, sale('nightly-r2', '//legacy/nightly', '7001')),
      ).toEqual({ id: 'nightly-r2', duplicate: false });
      expect(
        await off.services.ingest.ingest(ctx, sale('nightly-r2', '//legacy/x', '7001')),
      ).toEqual({ id: 'nightly-r2', duplicate: true });
      await off.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(['sqlite', ...(PG_URL ? ['postgres'] : [])])(
  'deduplication rules checked against the event schemas at start: %s',
  (shape) => {
    let env: Record<string, string>;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      if (shape === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'nexus-dedup-rules-'));
        env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') };
        cleanup = () => Promise.resolve(rmSync(dir, { recursive: true, force: true }));
      } else {
        const database = await createPgDatabase();
        env = {
          NEXUS_DATABASE_URL: database.url,
          NEXUS_MASTER_KEY: randomBytes(32).toString('base64'),
        };
        cleanup = () => database.drop();
      }
    });
    afterAll(() => cleanup());

    const rule = (eventType: string, key: string[], name = 'r') => ({
      name,
      eventType,
      key,
      window: '1d',
      action: 'drop',
    });
    /** A hub on the suite's database with these rules (the shipped ones when none given). */
    const open = (rules?: unknown[], kinds: Record<string, string> = {}) =>
      createHub(
        loadConfig({
          env,
          overrides: (r) => {
            r.log = { level: 'silent' };
            if (rules) r.dedup = { rules };
            r.tokenization = { ...(r.tokenization as object | undefined), kinds };
          },
        }),
        { logger: createLogger({ level: 'silent' }) },
      );
    const refusal = async (rules: unknown[], kinds?: Record<string, string>) => {
      let hub;
      try {
        hub = await open(rules, kinds);
      } catch (error) {
        const refused = error as Error & {
          code?: string;
          extensions?: Record<string, unknown>;
        };
        // One line, like every configuration error, and the CLI's exit code 2.
        expect(refused.code).toBe('CONFIG_INVALID');
        expect(refused.message).not.toContain('\n');
        return { message: refused.message, ...refused.extensions };
      }
      await hub.close();
      throw new Error(`the hub started with ${JSON.stringify(rules)}`);
    };

    it('refuses a rule for an event type that is neither canonical nor registered', async () => {
      expect(
        await refusal([
          rule('pos.sale.recorded.v1', ['/data/locationId'], 'fine'),
          rule('pos.sale.recordd.v1', ['/data/locationId'], 'typo'),
        ]),
      ).toEqual({
        reason: 'DEDUP_UNKNOWN_EVENT_TYPE',
        rule: 'typo',
        message:
          "invalid configuration: dedup.rules.1.eventType: rule 'typo' is for 'pos.sale.recordd.v1', " +
          'which is neither a canonical event type nor registered in the schema registry, so it ' +
          "would never apply (register the type's schema first)",
      });
    });

    it('refuses a key no event of the type carries, in the data or in the envelope', async () => {
      expect(
        await refusal([rule('pos.sale.recorded.v1', ['/data/total/amount', '/data/nothingHere'])]),
      ).toEqual({
        reason: 'DEDUP_KEY_UNKNOWN_FIELD',
        rule: 'r',
        pointer: '/data/nothingHere',
        message:
          "invalid configuration: dedup.rules.0.key.1: rule 'r' keys on '/data/nothingHere', but no " +
          "registered version of the pos.sale.recorded.v1 data schema declares 'nothingHere' under " +
          '/data, so no event would ever carry the key',
      });
      const missing = async (key: string, eventType = 'pos.sale.recorded.v1') =>
        (await refusal([rule(eventType, [key])])).message;
      // Deeper down, into array items, past a scalar, and the envelope's own fields.
      expect(await missing('/data/lines/0/skuu')).toContain("declares 'skuu' under /data/lines/0,");
      expect(await missing('/data/lines/first/sku')).toContain("'first' under /data/lines,");
      expect(await missing('/data/lines/-')).toContain("'-' under /data/lines,");
      expect(await missing('/data/total/amount/cents')).toContain(
        "'cents' under /data/total/amount,",
      );
      expect(await missing('/sourcee')).toContain(
        "keys on '/sourcee', but the CloudEvents envelope has no 'sourcee' under /,",
      );
      expect(await missing('/source/host')).toContain("envelope has no 'host' under /source,");
      // Through a union: a field of no branch.
      expect(await missing('/data/lines/0/delivery/storeId', 'order.placed.v1')).toContain(
        "'storeId' under /data/lines/0/delivery,",
      );
    });

    it('refuses a key on personal data tokenized as random vault tokens (or as masks)', async () => {
      expect(
        await refusal([rule('customer.registered.v1', ['/market', '/data/names/family'])]),
      ).toEqual({
        reason: 'DEDUP_KEY_RANDOM_TOKEN',
        rule: 'r',
        pointer: '/data/names/family',
        message:
          "invalid configuration: dedup.rules.0.key.1: rule 'r' keys on '/data/names/family', " +
          'personal data (name) tokenized as vault (tokenization.kinds.name): random tokens never ' +
          'repeat, so the key would never match',
      });
      const refused = async (eventType: string, key: string, kinds?: Record<string, string>) =>
        await refusal([rule(eventType, [key])], kinds);
      // An address inside a union branch of an array item; a part that contains personal data.
      expect(await refused('order.placed.v1', '/data/lines/0/delivery/address')).toMatchObject({
        reason: 'DEDUP_KEY_RANDOM_TOKEN',
        message: expect.stringContaining('personal data (address) tokenized as vault') as string,
      });
      expect(await refused('customer.registered.v1', '/data/names')).toMatchObject({
        reason: 'DEDUP_KEY_RANDOM_TOKEN',
      });
      expect(await refused('customer.updated.v1', '/data/birthDate')).toMatchObject({
        reason: 'DEDUP_KEY_RANDOM_TOKEN',
        message: expect.stringContaining('(birthdate)') as string,
      });
      // Email keys are fine while email is convergent (below); not when it is vault or masked.
      const email = '/data/contactPoints/0/value';
      expect(await refused('customer.registered.v1', email, { email: 'vault' })).toMatchObject({
        reason: 'DEDUP_KEY_RANDOM_TOKEN',
        pointer: email,
      });
      expect(await refused('customer.registered.v1', email, { phone: 'mask' })).toMatchObject({
        reason: 'DEDUP_KEY_MASKED',
        message: expect.stringContaining(
          'masks of different values look alike, so different facts would be taken for one',
        ) as string,
      });
      // Deterministic tokens repeat: a name key is fine once names are convergent.
      const hub = await open([rule('customer.registered.v1', ['/data/names/family'])], {
        name: 'convergent',
      });
      await hub.close();
    });

    it('accepts nested keys the schema declares, and tells a near miss from them', async () => {
      const order = [
        '/data/lines/0/delivery/locationId',
        '/data/totals/grandTotal/amount',
        '/data/externalReferences/2/system',
        '/market',
        '/subject',
        '/time',
      ];
      const hub = await open([
        rule('order.placed.v1', order, 'order-pickup'),
        rule('customer.registered.v1', ['/data/contactPoints/0/value'], 'customer-email'),
        rule('pos.sale.recorded.v1', ['/data/lines/0/unitPrice/amount'], 'pos-price'),
      ]);
      await hub.close();
      for (const [i, near] of [
        '/data/lines/0/delivery/locationid',
        '/data/totals/grandTotal/amount/0',
        '/data/externalReferences/two/system',
        '/markets',
      ].entries()) {
        expect(
          await refusal([rule('order.placed.v1', [...order.slice(0, i), near], 'order-pickup')]),
        ).toMatchObject({ reason: 'DEDUP_KEY_UNKNOWN_FIELD', rule: 'order-pickup', pointer: near });
      }
    });

    it('accepts the shipped rules', async () => {
      const hub = await open();
      try {
        expect(hub.config.dedup.rules).toEqual(DEFAULT_DEDUP_RULES);
        await expect(
          checkDedupRules(DEFAULT_DEDUP_RULES, {
            dataSchemas: (type) => hub.services.registry.schemaVersions(type),
            tokenKinds: hub.config.tokenization.kinds,
          }),
        ).resolves.toBeUndefined();
      } finally {
        await hub.close();
      }
      // They pass the check the start runs: one key a letter off does not.
      const [sale, web] = DEFAULT_DEDUP_RULES;
      const typo = ['/data/marketCode', '/data/externalReferences/0/ids'];
      expect(await refusal([sale, { ...web, key: typo }])).toMatchObject({
        reason: 'DEDUP_KEY_UNKNOWN_FIELD',
        rule: 'web-order',
        pointer: '/data/externalReferences/0/ids',
      });
    });

    it('takes a type registered in the schema registry, in any registered version', async () => {
      const legacy = (key: string[]) => [rule('legacy.till.sale.v1', key, 'legacy-sale')];
      expect(await refusal(legacy(['/data/at/store']))).toMatchObject({
        reason: 'DEDUP_UNKNOWN_EVENT_TYPE',
        rule: 'legacy-sale',
      });
      const v1 = {
        type: 'object',
        $defs: {
          place: {
            type: 'object',
            properties: { store: { type: 'string' }, till: { type: 'string' } },
          },
        },
        properties: { at: { $ref: '#/$defs/place' }, receipt: { type: 'integer' } },
        required: ['at', 'receipt'],
        additionalProperties: false,
      };
      const v2 = { ...v1, properties: { ...v1.properties, channel: { type: 'string' } } };
      const hub = await open();
      try {
        for (const schema of [v1, v2]) {
          await hub.services.registry.register('legacy.till.sale.v1', {
            schema: JSON.stringify(schema),
            schemaType: 'JSON',
          });
        }
      } finally {
        await hub.close();
      }
      // Through a $ref; a field only version 2 declares.
      await (await open(legacy(['/data/at/store', '/data/at/till', '/data/channel']))).close();
      expect(await refusal(legacy(['/data/at/store', '/data/at/terminal']))).toMatchObject({
        reason: 'DEDUP_KEY_UNKNOWN_FIELD',
        pointer: '/data/at/terminal',
        message: expect.stringContaining(
          "no registered version of the legacy.till.sale.v1 data schema declares 'terminal' under /data/at,",
        ) as string,
      });
    });
  },
);
