import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import type { InventoryLevelChanged, Reservation } from '../src/model/schemas/inventory.js';
import { localClock } from '../src/modules/inventory/availability.js';
import { InventoryService, type ReserveOutcome } from '../src/modules/inventory/service.js';
import { isNexusError } from '../src/model/errors.js';
import { listPosSales } from '../src/modules/inventory/store.js';
import { migrateTo, migrateToLatest } from '../src/platform/db/migrations.js';
import { openPostgres } from '../src/platform/db/postgres.js';
import { openSqlite } from '../src/platform/db/sqlite.js';
import type { Storage } from '../src/platform/db/storage.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { createPgDatabase, storageTargets, waitFor } from './support/targets.js';

interface Problem {
  code: string;
  status: number;
  detail: string;
  available?: number;
  errors?: Array<{ pointer: string; detail: string }>;
}
interface Level {
  sku: string;
  locationId: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
  available: number;
  version: number;
}
interface PosSaleRecord {
  saleId: string;
  locationId: string;
  terminal?: string;
  occurredAt: string;
  receivedAt: string;
  lines: Array<{ sku: string; quantity: number }>;
  status: 'applied' | 'rejected';
  code?: string;
  detail?: string;
  flagged: boolean;
  movementIds?: string[];
}
interface Bulk<R = unknown> {
  applied: number;
  failed: number;
  results: Array<{
    index: number;
    status: 'applied' | 'failed';
    code?: string;
    detail?: string;
    available?: number;
    result?: R;
  }>;
}

const SKUS = ['INV-A', 'INV-B', 'INV-C', 'INV-HOT', 'INV-SNAP', 'INV-ID', 'INV-ID2', 'INV-XFER'];

describe.each(hubShapes)('inventory: %s', (shape) => {
  let t: TestHub;
  let events: Delivery[];
  let observer: Subscription;

  const levelOf = async (sku: string, locationId: string): Promise<Level | undefined> => {
    const r = await t.request('GET', `/v1/inventory/items/${sku}`);
    expect(r.status).toBe(200);
    return (r.json as { levels: Level[] }).levels.find((l) => l.locationId === locationId);
  };
  const post = async <T>(url: string, body: unknown, status = 200) => {
    const r = await t.request('POST', url, { body });
    if (r.status !== status) throw new Error(`${url}: ${r.status} ${r.body}`);
    return r.json as T;
  };
  const levelEvents = (sku: string, locationId: string) =>
    events
      .filter((e) => e.envelope.type === 'inventory.level.changed.v1')
      .map((e) => e.envelope.data as InventoryLevelChanged)
      .filter((d) => d.sku === sku && d.locationId === locationId);

  beforeAll(async () => {
    t = await startTestHub(shape);
    events = [];
    observer = await t.hub.bus.subscribe({ name: 'inv-observer', filter: 'nexus.evt.>' }, (d) => {
      events.push(d);
      return Promise.resolve();
    });
    await post('/v1/markets', fixtures.market('DE'), 201);
    await post('/v1/locations/bulk', {
      items: [
        fixtures.location('S1', 'DE', { geo: { lat: 52.52, lon: 13.405 } }),
        fixtures.location('S2', 'DE', {
          allowNegativeStock: true,
          geo: { lat: 52.5, lon: 13.3 },
        }),
        fixtures.location('W1', 'DE', {
          type: 'warehouse',
          capabilities: ['ship'],
          geo: { lat: 51.34, lon: 12.37 },
        }),
      ],
    });
    await post(
      '/v1/products',
      fixtures.product(
        'P-INV',
        SKUS.map((sku) => ({ sku })),
      ),
      201,
    );
  });
  afterAll(async () => {
    await observer.stop();
    await t.dispose();
  });

  describe('the record and the ledger', () => {
    it('receives, adjusts and counts, with a ledger entry per movement and before/after events', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-A', locationId: 'S1', quantity: 10, reference: 'ASN-1' }],
      });
      await post('/v1/inventory/adjustments', {
        lines: [{ sku: 'INV-A', locationId: 'S1', delta: -2, reason: 'damage', note: 'crushed' }],
      });
      const counted = await post<Bulk<{ variance: number }>>('/v1/inventory/counts', {
        lines: [{ sku: 'INV-A', locationId: 'S1', counted: 7 }],
      });
      expect(counted.results[0]!.result!.variance).toBe(-1);
      expect(await levelOf('INV-A', 'S1')).toMatchObject({
        onHand: 7,
        reserved: 0,
        available: 7,
        version: 3,
      });

      const ledger = await t.request(
        'GET',
        '/v1/inventory/movements?sku=INV-A&locationId=S1&limit=10',
      );
      const moves = (ledger.json as { items: Array<Record<string, unknown>> }).items;
      expect(moves.map((m) => [m.reason, m.delta, m.onHandAfter])).toEqual([
        ['receipt', 10, 10],
        ['damage', -2, 8],
        ['cycle-count', -1, 7],
      ]);
      expect(moves[0]).toMatchObject({ reference: 'ASN-1' });
      expect(String(moves[0]!.actor)).toMatch(/^api-key:/);
      expect(moves[2]).toMatchObject({ counted: 7, variance: -1 });

      await waitFor(() => levelEvents('INV-A', 'S1').length === 3);
      const [received, damaged] = levelEvents('INV-A', 'S1');
      expect(received!.before).toEqual({ onHand: 0, reserved: 0, safetyStock: 0, available: 0 });
      expect(received!.after.onHand).toBe(10);
      expect(damaged!.causes).toEqual([
        expect.objectContaining({ kind: 'movement', reason: 'damage', quantity: -2 }),
      ]);
      const event = events.find((e) => e.envelope.type === 'inventory.level.changed.v1')!;
      expect(event.subject).toBe('nexus.evt.DE.inventory.level.changed.v1');
    });

    it('reports inventory accuracy from cycle counts', async () => {
      await post('/v1/inventory/counts', {
        lines: [
          { sku: 'INV-A', locationId: 'S1', counted: 7 },
          { sku: 'INV-B', locationId: 'S1', counted: 0 },
        ],
      });
      const r = await t.request('GET', '/v1/inventory/kpis/accuracy?marketCode=DE');
      expect(r.json).toMatchObject({ counts: 3, exactCounts: 2, absoluteVariance: 1 });
      expect((r.json as { recordAccuracy: number }).recordAccuracy).toBeCloseTo(2 / 3);
    });

    it('refuses bad input with stable codes and applies nothing', async () => {
      const before = await levelOf('INV-A', 'S1');
      const cases: Array<[unknown, string, number]> = [
        [
          { lines: [{ sku: 'NOPE', locationId: 'S1', delta: 1, reason: 'correction' }] },
          'UNKNOWN_REFERENCE',
          422,
        ],
        [
          { lines: [{ sku: 'INV-A', locationId: 'NOWHERE', delta: 1, reason: 'correction' }] },
          'UNKNOWN_REFERENCE',
          422,
        ],
        [
          { lines: [{ sku: 'INV-A', locationId: 'S1', delta: 1.5, reason: 'correction' }] },
          'VALIDATION_FAILED',
          400,
        ],
        [
          { lines: [{ sku: 'INV-A', locationId: 'S1', delta: 0, reason: 'correction' }] },
          'VALIDATION_FAILED',
          400,
        ],
        [
          { lines: [{ sku: 'INV-A', locationId: 'S1', delta: -100, reason: 'shrink' }] },
          'INSUFFICIENT_STOCK',
          409,
        ],
        // All or nothing: the good first line is not applied either.
        [
          {
            lines: [
              { sku: 'INV-A', locationId: 'S1', delta: 5, reason: 'correction' },
              { sku: 'INV-A', locationId: 'S1', delta: -100, reason: 'shrink' },
            ],
          },
          'INSUFFICIENT_STOCK',
          409,
        ],
      ];
      for (const [body, code, status] of cases) {
        const r = await t.request('POST', '/v1/inventory/adjustments', { body });
        expect(r.status, JSON.stringify(body)).toBe(status);
        expect(r.headers['content-type']).toContain('application/problem+json');
        expect((r.json as Problem).code).toBe(code);
      }
      const counted = await t.request('POST', '/v1/inventory/counts', {
        body: { lines: [{ sku: 'INV-A', locationId: 'S1', counted: -1 }] },
      });
      expect(counted.status).toBe(400);
      const same = await t.request('POST', '/v1/inventory/transfers', {
        body: { lines: [{ sku: 'INV-A', fromLocationId: 'S1', toLocationId: 'S1', quantity: 1 }] },
      });
      expect(same.status).toBe(400);
      expect((same.json as Problem).errors![0]!.pointer).toBe('/lines/0/toLocationId');
      expect(await levelOf('INV-A', 'S1')).toEqual(before);
    });

    it('fails only the same-location line of a per-line transfer', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-XFER', locationId: 'S1', quantity: 5 }],
      });
      const r = await post<Bulk>('/v1/inventory/transfers', {
        mode: 'per-line',
        lines: [
          { sku: 'INV-XFER', fromLocationId: 'S1', toLocationId: 'S1', quantity: 1 },
          { sku: 'INV-XFER', fromLocationId: 'S1', toLocationId: 'S2', quantity: 2 },
        ],
      });
      expect(r.applied).toBe(1);
      expect(r.results.map((x) => x.code ?? x.status)).toEqual(['VALIDATION_FAILED', 'applied']);
      expect(r.results[0]!.detail).toBe('toLocationId must differ from fromLocationId');
      expect((await levelOf('INV-XFER', 'S1'))!.onHand).toBe(3);
    });

    it('applies per line when asked, with a result for each line', async () => {
      const r = await post<Bulk>('/v1/inventory/adjustments', {
        mode: 'per-line',
        lines: [
          { sku: 'INV-B', locationId: 'S1', delta: 4, reason: 'receipt' },
          { sku: 'NOPE', locationId: 'S1', delta: 1, reason: 'receipt' },
          { sku: 'INV-B', locationId: 'S1', delta: -10, reason: 'sale' },
          { sku: 'INV-B', locationId: 'S1', delta: -1, reason: 'sale' },
        ],
      });
      expect(r.applied).toBe(2);
      expect(r.results.map((x) => x.code ?? x.status)).toEqual([
        'applied',
        'UNKNOWN_REFERENCE',
        'INSUFFICIENT_STOCK',
        'applied',
      ]);
      expect(r.results[2]!.available).toBe(4);
      expect((await levelOf('INV-B', 'S1'))!.onHand).toBe(3);
    });

    it('keeps reserved <= on hand in the database itself', async () => {
      await expect(
        sql`update inventory_levels set reserved = on_hand + 1
          where sku = 'INV-A' and location_id = 'S1'`.execute(t.hub.storage.db),
      ).rejects.toThrow();
    });
  });

  describe('reservations', () => {
    it('reserves, commits into a sale and releases; too much is 409 with what is available', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-C', locationId: 'S1', quantity: 5 }],
      });
      const a = await post<Reservation>(
        '/v1/inventory/reservations',
        { sku: 'INV-C', locationId: 'S1', quantity: 2, reference: { type: 'cart', id: 'c-1' } },
        201,
      );
      expect(a).toMatchObject({ status: 'active', channel: 'web', marketCode: 'DE' });
      expect(Date.parse(a.expiresAt!) - Date.parse(a.createdAt)).toBe(900_000);
      const b = await post<Reservation>(
        '/v1/inventory/reservations',
        { sku: 'INV-C', locationId: 'S1', quantity: 3, reference: { type: 'order', id: 'o-1' } },
        201,
      );
      expect(b.expiresAt).toBeUndefined();
      const tooMuch = await t.request('POST', '/v1/inventory/reservations', {
        body: { sku: 'INV-C', locationId: 'S1', quantity: 1 },
      });
      expect(tooMuch.status).toBe(409);
      expect(tooMuch.json).toMatchObject({ code: 'INSUFFICIENT_STOCK', available: 0 });

      const committed = await post<Reservation>(`/v1/inventory/reservations/${a.id}/commit`, {});
      expect(committed.status).toBe('committed');
      const released = await post<Reservation>(`/v1/inventory/reservations/${b.id}/release`, {
        reason: 'cancelled',
      });
      expect(released).toMatchObject({ status: 'released', statusReason: 'cancelled' });
      expect(await levelOf('INV-C', 'S1')).toMatchObject({ onHand: 3, reserved: 0 });

      const again = await t.request('POST', `/v1/inventory/reservations/${b.id}/commit`, {
        body: {},
      });
      expect(again.status).toBe(409);
      expect((again.json as Problem).code).toBe('RESERVATION_NOT_ACTIVE');
      const unknown = await t.request('POST', '/v1/inventory/reservations/nope/release', {
        body: {},
      });
      expect(unknown.status).toBe(404);
      const unknownSku = await t.request('POST', '/v1/inventory/reservations', {
        body: { sku: 'NOPE', locationId: 'S1', quantity: 1 },
      });
      expect((unknownSku.json as Problem).code).toBe('UNKNOWN_REFERENCE');

      const ledger = await t.request('GET', '/v1/inventory/movements?sku=INV-C&reason=sale');
      expect((ledger.json as { items: unknown[] }).items).toEqual([
        expect.objectContaining({ delta: -2, reference: `reservation:${a.id}`, channel: 'web' }),
      ]);
      await waitFor(() =>
        ['created', 'committed', 'released'].every((s) =>
          events.some((e) => e.envelope.type === `inventory.reservation.${s}.v1`),
        ),
      );
    });

    it('expires lapsed holds; a commit is RESERVATION_EXPIRED before and after the sweep', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-C', locationId: 'S2', quantity: 4 }],
      });
      const r = await post<Reservation>(
        '/v1/inventory/reservations',
        { sku: 'INV-C', locationId: 'S2', quantity: 4, ttlSeconds: 60 },
        201,
      );
      const inventory = t.hub.services.inventory;
      expect(await inventory.expireDue(Date.now())).toBe(0);
      const late = Date.parse(r.expiresAt!) + 1;
      // Between the lapse and the sweep, a commit is refused as expired.
      await sql`update inventory_reservations set expires_at = ${Date.now() - 1}
        where id = ${r.id}`.execute(t.hub.storage.db);
      const refused = await t.request('POST', `/v1/inventory/reservations/${r.id}/commit`, {
        body: {},
      });
      expect((refused.json as Problem).code).toBe('RESERVATION_EXPIRED');
      expect(await inventory.expireDue(late)).toBe(1);
      expect(await levelOf('INV-C', 'S2')).toMatchObject({ onHand: 4, reserved: 0 });
      expect((await inventory.getReservation(t.hub.services.access as never, r.id)).status).toBe(
        'expired',
      );
      // After the sweep the answer is the same, for a commit and for a release, single or bulk.
      for (const step of ['commit', 'release']) {
        const swept = await t.request('POST', `/v1/inventory/reservations/${r.id}/${step}`, {
          body: {},
        });
        expect(swept.status, step).toBe(409);
        expect((swept.json as Problem).code, step).toBe('RESERVATION_EXPIRED');
      }
      const bulk = await post<Bulk>('/v1/inventory/reservations/commit', {
        mode: 'per-line',
        lines: [{ reservationId: r.id }],
      });
      expect(bulk.results[0]).toMatchObject({ status: 'failed', code: 'RESERVATION_EXPIRED' });
      expect(await levelOf('INV-C', 'S2')).toMatchObject({ onHand: 4, reserved: 0 });
    });

    it('never oversells a hot SKU under hundreds of concurrent reservations', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-HOT', locationId: 'S1', quantity: 50 }],
      });
      const attempts = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          t.request('POST', '/v1/inventory/reservations', {
            body: { sku: 'INV-HOT', locationId: 'S1', quantity: 1 + (i % 2) },
          }),
        ),
      );
      const granted = attempts.filter((a) => a.status === 201);
      const units = granted.reduce((n, a) => n + (a.json as Reservation).quantity, 0);
      expect(attempts.every((a) => a.status === 201 || a.status === 409)).toBe(true);
      expect(units).toBeLessThanOrEqual(50);
      expect(units).toBeGreaterThanOrEqual(49); // only a 2 may be refused with 1 left
      expect(await levelOf('INV-HOT', 'S1')).toMatchObject({ onHand: 50, reserved: units });

      // Commits and expiries racing each other: each hold ends exactly one way.
      const ids = granted.map((a) => (a.json as Reservation).id);
      await sql`update inventory_reservations set expires_at = ${Date.now() - 1}
        where id in (${sql.join(ids)})`.execute(t.hub.storage.db);
      const inventory = t.hub.services.inventory;
      const ctx = {
        requestId: 'x',
        actor: { kind: 'system' as const, id: 't' },
        scopes: new Set(['*']),
      };
      await Promise.all([
        inventory.expireDue(Date.now() + 1000),
        ...ids
          .slice(0, 20)
          .map((id) => inventory.release(ctx, [{ reservationId: id }], 'per-line')),
      ]);
      const { rows } = await sql<{ status: string; n: number }>`select status, count(*) as n
        from inventory_reservations where id in (${sql.join(ids)}) group by status`.execute(
        t.hub.storage.db,
      );
      expect(rows.reduce((n, r) => n + Number(r.n), 0)).toBe(ids.length);
      expect(rows.every((r) => ['expired', 'released'].includes(r.status))).toBe(true);
      expect(await levelOf('INV-HOT', 'S1')).toMatchObject({ onHand: 50, reserved: 0 });
    });

    it('fails only the caller whose line fails a batched transaction', async () => {
      const before = (await levelOf('INV-C', 'W1')) ?? { onHand: 0, reserved: 0 };
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-C', locationId: 'W1', quantity: 40 }],
      });
      // A real failure inside the database for one line: a trigger refuses its reservation row.
      const db = t.hub.storage.db;
      if (t.hub.storage.dialect === 'postgres') {
        await sql`create function refuse_poison() returns trigger language plpgsql as $$
          begin raise exception 'poisoned reservation'; end $$`.execute(db);
        await sql`create trigger refuse_poison before insert on inventory_reservations
          for each row when (new.reference_id = 'POISON') execute function refuse_poison()`.execute(
          db,
        );
      } else {
        await sql`create trigger refuse_poison before insert on inventory_reservations
          when new.reference_id = 'POISON' begin select raise(abort, 'poisoned reservation'); end`.execute(
          db,
        );
      }
      try {
        const ctx = {
          requestId: 'x',
          actor: { kind: 'system' as const, id: 't' },
          scopes: new Set(['*']),
        };
        const inventory = t.hub.services.inventory;
        // Submitted together, so they share the queue's transactions.
        const outcomes = await Promise.allSettled(
          Array.from({ length: 24 }, (_, i) =>
            inventory.reserve(ctx, {
              sku: 'INV-C',
              locationId: 'W1',
              quantity: 1,
              reference: { type: 'cart', id: i === 9 ? 'POISON' : `cart-${i}` },
            }),
          ),
        );
        expect(outcomes.map((o) => o.status)).toEqual(
          Array.from({ length: 24 }, (_, i) => (i === 9 ? 'rejected' : 'fulfilled')),
        );
        expect(String((outcomes[9] as PromiseRejectedResult).reason)).toContain(
          'poisoned reservation',
        );
        expect(
          outcomes
            .filter((o) => o.status === 'fulfilled')
            .every((o) => o.value.status === 'reserved'),
        ).toBe(true);
        expect(await levelOf('INV-C', 'W1')).toMatchObject({
          onHand: before.onHand + 40,
          reserved: before.reserved + 23,
        });
      } finally {
        await sql`drop trigger refuse_poison ${
          t.hub.storage.dialect === 'postgres' ? sql`on inventory_reservations` : sql``
        }`.execute(db);
        if (t.hub.storage.dialect === 'postgres')
          await sql`drop function refuse_poison`.execute(db);
      }
    });

    it('decides a batch on the rows it wrote last, and takes the lock once they changed', async () => {
      const inventory = t.hub.services.inventory;
      const ctx = {
        requestId: 'x',
        actor: { kind: 'system' as const, id: 't' },
        scopes: new Set(['*']),
      };
      const batches = async () => {
        const r = await t.request('GET', '/metrics', { key: null });
        const count = (path: string) =>
          Number(
            new RegExp(`nexus_inventory_reservation_batches_total\\{path="${path}"\\} (\\d+)`).exec(
              r.body,
            )?.[1] ?? 0,
          );
        return { snapshot: count('snapshot'), lock: count('lock'), stale: count('stale') };
      };
      const activeHolds = async () => {
        const { rows } = await sql<{ n: number }>`select count(*) as n from inventory_reservations
          where sku = 'INV-SNAP' and location_id = 'W1' and status = 'active'`.execute(
          t.hub.storage.db,
        );
        return Number(rows[0]!.n);
      };
      const holdsAtStart = await activeHolds();
      const start = (await levelOf('INV-SNAP', 'W1')) ?? { onHand: 0, reserved: 0, version: 0 };
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-SNAP', locationId: 'W1', quantity: 30 }],
      });
      const counted = await batches();
      const first = await inventory.reserve(ctx, {
        sku: 'INV-SNAP',
        locationId: 'W1',
        quantity: 2,
      });
      expect(first.status).toBe('reserved');
      const afterFirst = await batches();
      if (t.hub.storage.dialect === 'sqlite') {
        // One writer: every batch is decided under the database's (only) lock.
        expect(afterFirst).toEqual({ ...counted, lock: counted.lock + 1 });
        return;
      }
      // The receipt left this process the row: the batch was one guarded statement.
      expect(afterFirst).toEqual({ ...counted, snapshot: counted.snapshot + 1 });
      const level = await levelOf('INV-SNAP', 'W1');
      expect(level).toMatchObject({ onHand: start.onHand + 30, reserved: start.reserved + 2 });
      await waitFor(() => levelEvents('INV-SNAP', 'W1').some((e) => e.version === level!.version));
      const change = levelEvents('INV-SNAP', 'W1').find((e) => e.version === level!.version)!;
      expect(change.before.reserved).toBe(start.reserved);
      expect(change.after).toMatchObject({ onHand: level!.onHand, reserved: level!.reserved });

      // Changed by hand behind the hub's back (no version given: the database moves it), so
      // only 3 are left. The snapshot still shows 28; its guarded write must find the change.
      await sql`update inventory_levels set on_hand = reserved + 3
        where sku = 'INV-SNAP' and location_id = 'W1'`.execute(t.hub.storage.db);
      const refused = await inventory.reserve(ctx, {
        sku: 'INV-SNAP',
        locationId: 'W1',
        quantity: 5,
      });
      expect(refused).toMatchObject({ status: 'insufficient', available: 3 });
      expect(await batches()).toEqual({
        snapshot: afterFirst.snapshot,
        lock: afterFirst.lock + 1,
        stale: afterFirst.stale + 1,
      });
      // A row another writer changes takes the lock for a while.
      const granted = await inventory.reserve(ctx, {
        sku: 'INV-SNAP',
        locationId: 'W1',
        quantity: 3,
      });
      expect(granted.status).toBe('reserved');
      expect(await batches()).toMatchObject({
        snapshot: afterFirst.snapshot,
        lock: afterFirst.lock + 2,
      });
      expect(await levelOf('INV-SNAP', 'W1')).toMatchObject({
        onHand: start.reserved + 2 + 3,
        reserved: start.reserved + 5,
        available: 0,
      });
      // The failed statement left nothing: two holds more than at the start, no third.
      expect(await activeHolds()).toBe(holdsAtStart + 2);
    });

    it('reserves in bulk, all or nothing or per line', async () => {
      const none = await t.request('POST', '/v1/inventory/reservations/bulk', {
        body: {
          lines: [
            { sku: 'INV-HOT', locationId: 'S1', quantity: 10 },
            { sku: 'INV-HOT', locationId: 'S1', quantity: 100 },
          ],
        },
      });
      expect(none.status).toBe(409);
      expect((await levelOf('INV-HOT', 'S1'))!.reserved).toBe(0);
      const some = await post<Bulk<Reservation>>('/v1/inventory/reservations/bulk', {
        mode: 'per-line',
        lines: [
          { sku: 'INV-HOT', locationId: 'S1', quantity: 10 },
          { sku: 'INV-HOT', locationId: 'S1', quantity: 100 },
          { sku: 'INV-HOT', locationId: 'S1', quantity: 40 },
        ],
      });
      expect(some.results.map((r) => r.status)).toEqual(['applied', 'failed', 'applied']);
      expect(some.results[1]!.available).toBe(40);
      const released = await post<Bulk>('/v1/inventory/reservations/release', {
        lines: some.results
          .filter((r) => r.status === 'applied')
          .map((r) => ({ reservationId: r.result!.id })),
      });
      expect(released.applied).toBe(2);
    });

    describe('with a client-chosen id', () => {
      const ctx = {
        requestId: 'x',
        actor: { kind: 'system' as const, id: 't' },
        scopes: new Set(['*']),
      };
      const reservationEvents = (id: string) =>
        events
          .filter((e) => e.envelope.subject === `reservation/${id}`)
          .map((e) => e.envelope.type.replace(/^inventory\.reservation\.|\.v1$/g, ''));
      const activeHolds = async (sku: string, locationId: string) => {
        const { rows } = await sql<{ n: number }>`select count(*) as n from inventory_reservations
          where sku = ${sku} and location_id = ${locationId} and status = 'active'`.execute(
          t.hub.storage.db,
        );
        return Number(rows[0]!.n);
      };
      /** Another hub process on the same database: its own queue and snapshots. */
      const anotherProcess = () =>
        new InventoryService({
          db: t.hub.storage.db,
          dialect: t.hub.storage.dialect,
          transactor: t.hub.transactor,
          queue: { maxBatch: 3, concurrency: 2 },
        });

      it('answers a retry with the same reservation, in its current status, holding stock once', async () => {
        await post('/v1/inventory/receipts', {
          lines: [{ sku: 'INV-ID', locationId: 'S1', quantity: 10 }],
        });
        const before = (await levelOf('INV-ID', 'S1'))!;
        await waitFor(() => levelEvents('INV-ID', 'S1').some((e) => e.version === before.version));
        const levelEventsBefore = levelEvents('INV-ID', 'S1').length;
        const id = randomUUID();
        const line = {
          id,
          sku: 'INV-ID',
          locationId: 'S1',
          quantity: 2,
          reference: { type: 'cart', id: 'c-idem' },
        };
        const first = await post<Reservation>('/v1/inventory/reservations', line, 201);
        expect(first).toMatchObject({ id, status: 'active', quantity: 2 });
        const retry = await post<Reservation>('/v1/inventory/reservations', line, 201);
        expect(retry).toEqual(first);
        expect(await levelOf('INV-ID', 'S1')).toMatchObject({
          onHand: before.onHand,
          reserved: before.reserved + 2,
          version: before.version + 1,
        });
        // Committed, then retried again: the answer is the reservation as it is now.
        await post(`/v1/inventory/reservations/${id}/commit`, {});
        const late = await post<Reservation>('/v1/inventory/reservations', line, 201);
        expect(late).toMatchObject({ id, status: 'committed', createdAt: first.createdAt });
        const after = await levelOf('INV-ID', 'S1');
        expect(after).toMatchObject({ onHand: before.onHand - 2, reserved: before.reserved });
        // Per item, events arrive in commit order: once the commit's are here, a retry's
        // would have been too.
        await waitFor(() => reservationEvents(id).includes('committed'));
        await waitFor(() => levelEvents('INV-ID', 'S1').some((e) => e.version === after!.version));
        expect(reservationEvents(id)).toEqual(['created', 'committed']);
        expect(levelEvents('INV-ID', 'S1').length).toBe(levelEventsBefore + 2);

        // A hold the sweep expired is not held again by a retry.
        const lapsing = { ...line, id: randomUUID(), ttlSeconds: 60 };
        const held = await post<Reservation>('/v1/inventory/reservations', lapsing, 201);
        await sql`update inventory_reservations set expires_at = ${Date.now() - 1}
          where id = ${held.id}`.execute(t.hub.storage.db);
        expect(await t.hub.services.inventory.expireDue(Date.now())).toBe(1);
        const expired = await post<Reservation>('/v1/inventory/reservations', lapsing, 201);
        expect(expired).toMatchObject({ id: held.id, status: 'expired' });
        expect(await levelOf('INV-ID', 'S1')).toMatchObject({ reserved: before.reserved });
      });

      it('refuses the same id for a different line with RESERVATION_ID_CONFLICT, changing nothing', async () => {
        await post('/v1/inventory/receipts', {
          lines: [{ sku: 'INV-ID', locationId: 'S1', quantity: 5 }],
        });
        const id = `web-DE:cart-${randomUUID()}`;
        const line = { id, sku: 'INV-ID', locationId: 'S1', quantity: 1 };
        await post<Reservation>('/v1/inventory/reservations', line, 201);
        const level = await levelOf('INV-ID', 'S1');
        for (const other of [
          { ...line, quantity: 2 },
          { ...line, sku: 'INV-ID2' },
          { ...line, locationId: 'W1' },
          { ...line, channel: 'pos' },
          { ...line, reference: { type: 'order', id: 'o-1' } },
        ]) {
          const r = await t.request('POST', '/v1/inventory/reservations', { body: other });
          expect(r.status, JSON.stringify(other)).toBe(409);
          expect(r.headers['content-type']).toContain('application/problem+json');
          expect((r.json as Problem).code).toBe('RESERVATION_ID_CONFLICT');
        }
        const bulk = await t.request('POST', '/v1/inventory/reservations/bulk', {
          body: {
            lines: [
              { sku: 'INV-ID', locationId: 'S1', quantity: 1 },
              { ...line, quantity: 3 },
            ],
          },
        });
        expect(bulk.status).toBe(409);
        expect(bulk.json).toMatchObject({
          code: 'RESERVATION_ID_CONFLICT',
          errors: [{ pointer: '/lines/1' }],
        });
        expect(await levelOf('INV-ID', 'S1')).toEqual(level);
        // The API documents the id, and refuses what is not a bounded token.
        const openapi = await t.request('GET', '/v1/openapi.json', { key: null });
        const reserve = (
          openapi.json as {
            paths: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }>;
          }
        ).paths['/v1/inventory/reservations']!.post.requestBody.content['application/json'];
        const idSchema = (
          reserve as { schema: { properties: Record<string, { pattern?: string }> } }
        ).schema.properties.id;
        expect(idSchema?.pattern).toBe('^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$');
        for (const bad of ['r-1', 'bad id!!', 'x'.repeat(65)]) {
          const r = await t.request('POST', '/v1/inventory/reservations', {
            body: { ...line, id: bad },
          });
          expect(r.status, bad).toBe(400);
        }
      });

      it('holds once when 20 reserves with one id arrive at once, also through two processes', async () => {
        await post('/v1/inventory/receipts', {
          lines: [
            { sku: 'INV-ID', locationId: 'W1', quantity: 100 },
            { sku: 'INV-ID2', locationId: 'W1', quantity: 100 },
          ],
        });
        const inventory = t.hub.services.inventory;
        const other = anotherProcess();
        const start = {
          a: (await levelOf('INV-ID', 'W1'))!,
          b: (await levelOf('INV-ID2', 'W1'))!,
          holds: await activeHolds('INV-ID', 'W1'),
        };
        const line = (id: string, sku = 'INV-ID') => ({ id, sku, locationId: 'W1', quantity: 3 });

        // One process: the callers share the queue's batches.
        const one = randomUUID();
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, () => inventory.reserve(ctx, line(one))),
        );
        // Two processes on one database: batches race each other for the row and the id.
        const two = randomUUID();
        const raced = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? inventory : other).reserve(ctx, line(two)),
          ),
        );
        for (const [id, all] of [
          [one, outcomes],
          [two, raced],
        ] as Array<[string, ReserveOutcome[]]>) {
          expect(all.every((o) => o.status === 'reserved')).toBe(true);
          const held = all.map((o) => (o.status === 'reserved' ? o.reservation : null));
          expect(new Set(held.map((r) => r?.id))).toEqual(new Set([id]));
          expect(new Set(held.map((r) => r?.createdAt)).size).toBe(1);
        }
        expect(await levelOf('INV-ID', 'W1')).toMatchObject({
          onHand: start.a.onHand,
          reserved: start.a.reserved + 6,
        });
        expect(await activeHolds('INV-ID', 'W1')).toBe(start.holds + 2);

        // The same id for two different lines at once, through two processes: one line wins,
        // everyone with the other line hears RESERVATION_ID_CONFLICT, and stock is held once.
        const contested = randomUUID();
        const settled = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            i % 2 === 0
              ? inventory.reserve(ctx, line(contested))
              : other.reserve(ctx, line(contested, 'INV-ID2')),
          ),
        );
        const won = settled.flatMap((o) =>
          o.status === 'fulfilled' && o.value.status === 'reserved' ? [o.value.reservation] : [],
        );
        const lost = settled.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
        expect(won.length + lost.length).toBe(20);
        expect(new Set(won.map((r) => `${r.id} ${r.sku}`)).size).toBe(1);
        expect(won.length).toBe(10);
        expect(lost.every((e) => isNexusError(e) && e.code === 'RESERVATION_ID_CONFLICT')).toBe(
          true,
        );
        const winner = won[0]!.sku;
        expect(await levelOf('INV-ID', 'W1')).toMatchObject({
          reserved: start.a.reserved + 6 + (winner === 'INV-ID' ? 3 : 0),
        });
        expect(await levelOf('INV-ID2', 'W1')).toMatchObject({
          reserved: start.b.reserved + (winner === 'INV-ID2' ? 3 : 0),
        });

        // Bulk calls (no queue) at once: the same line holds once, and the same id for
        // different items is a conflict for all but the first, never a database error.
        const middle = {
          a: (await levelOf('INV-ID', 'W1'))!.reserved,
          b: (await levelOf('INV-ID2', 'W1'))!.reserved,
        };
        const same = randomUUID();
        const bulks = await Promise.all(
          Array.from({ length: 10 }, () => inventory.reserveLines(ctx, [line(same, 'INV-ID2')])),
        );
        expect(new Set(bulks.map((r) => r[0]!.status === 'applied' && r[0]!.result.id))).toEqual(
          new Set([same]),
        );
        const split = randomUUID();
        const splitOutcomes = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) =>
            inventory.reserveLines(ctx, [line(split, i % 2 === 0 ? 'INV-ID' : 'INV-ID2')]),
          ),
        );
        const bulkWon = splitOutcomes.flatMap((o) =>
          o.status === 'fulfilled' && o.value[0]!.status === 'applied' ? [o.value[0]!.result] : [],
        );
        const bulkLost = splitOutcomes.flatMap((o) =>
          o.status === 'rejected' ? [o.reason as unknown] : [],
        );
        expect(bulkWon.length).toBe(5);
        expect(new Set(bulkWon.map((r) => r.sku)).size).toBe(1);
        expect(
          bulkLost
            .map((e) => (isNexusError(e) ? e.code : String(e)))
            .every((code) => code === 'RESERVATION_ID_CONFLICT'),
        ).toBe(true);
        const bulkWinner = bulkWon[0]!.sku;
        expect((await levelOf('INV-ID', 'W1'))!.reserved).toBe(
          middle.a + (bulkWinner === 'INV-ID' ? 3 : 0),
        );
        expect((await levelOf('INV-ID2', 'W1'))!.reserved).toBe(
          middle.b + 3 + (bulkWinner === 'INV-ID2' ? 3 : 0),
        );

        const ids = [one, two, contested, same, split];
        await waitFor(() => ids.every((id) => reservationEvents(id).length > 0));
        for (const sku of ['INV-ID', 'INV-ID2']) {
          const after = (await levelOf(sku, 'W1'))!;
          await waitFor(() => levelEvents(sku, 'W1').some((e) => e.version === after.version));
        }
        for (const id of ids) expect(reservationEvents(id)).toEqual(['created']);
      });

      it('makes bulk reserves retryable, all or nothing and per line', async () => {
        await post('/v1/inventory/receipts', {
          lines: [{ sku: 'INV-ID2', locationId: 'S2', quantity: 10 }],
        });
        const [a, b, c, d] = Array.from({ length: 4 }, () => randomUUID());
        const item = { sku: 'INV-ID2', locationId: 'S2' };
        const body = {
          lines: [
            { id: a, ...item, quantity: 1 },
            { id: b, ...item, quantity: 2 },
          ],
        };
        const first = await post<Bulk<Reservation>>('/v1/inventory/reservations/bulk', body);
        expect(first.applied).toBe(2);
        const level = await levelOf('INV-ID2', 'S2');
        expect(level).toMatchObject({ onHand: 10, reserved: 3 });
        const replay = await post<Bulk<Reservation>>('/v1/inventory/reservations/bulk', body);
        expect(replay).toEqual(first);
        expect(await levelOf('INV-ID2', 'S2')).toEqual(level);

        // Per line: a replayed line, a new one and a conflicting one.
        const mixed = await post<Bulk<Reservation>>('/v1/inventory/reservations/bulk', {
          mode: 'per-line',
          lines: [
            { id: a, ...item, quantity: 1 },
            { id: c, ...item, quantity: 4 },
            { id: b, ...item, quantity: 5 },
          ],
        });
        expect(mixed.results.map((r) => r.code ?? r.status)).toEqual([
          'applied',
          'applied',
          'RESERVATION_ID_CONFLICT',
        ]);
        expect(mixed.results[0]!.result).toEqual(first.results[0]!.result);
        expect(mixed.results[1]!.result).toMatchObject({ id: c, status: 'active', quantity: 4 });
        expect(await levelOf('INV-ID2', 'S2')).toMatchObject({ reserved: 7 });

        // All or nothing: the conflicting line fails the call, and the new line holds nothing.
        const refused = await t.request('POST', '/v1/inventory/reservations/bulk', {
          body: {
            lines: [
              { id: d, ...item, quantity: 1 },
              { id: c, ...item, quantity: 1 },
            ],
          },
        });
        expect(refused.status).toBe(409);
        expect((refused.json as Problem).code).toBe('RESERVATION_ID_CONFLICT');
        expect(await levelOf('INV-ID2', 'S2')).toMatchObject({ reserved: 7 });
        expect((await t.request('GET', `/v1/inventory/reservations/${d}`)).status).toBe(404);

        // One call names an id once.
        const repeated = await t.request('POST', '/v1/inventory/reservations/bulk', {
          body: {
            lines: [
              { id: d, ...item, quantity: 1 },
              { id: d, ...item, quantity: 1 },
            ],
          },
        });
        expect(repeated.status).toBe(400);
        expect((repeated.json as Problem).errors![0]!.pointer).toBe('/lines/1/id');
        await post('/v1/inventory/reservations/release', {
          lines: [a, b, c].map((reservationId) => ({ reservationId })),
        });
      });
    });

    it('keeps a channel safety stock back from the web but not from the store till', async () => {
      await t.request('PUT', '/v1/inventory/channel-policies/DE/web', {
        body: {
          marketCode: 'DE',
          channel: 'web',
          locationTypes: ['store', 'warehouse'],
          requiredCapabilities: [],
          excludeLocations: [],
          safetyStock: { default: 0, byLocationType: { store: 2 } },
        },
      });
      await post('/v1/inventory/counts', {
        lines: [{ sku: 'INV-B', locationId: 'S1', counted: 3 }],
      });
      const web = await t.request('POST', '/v1/inventory/reservations', {
        body: { sku: 'INV-B', locationId: 'S1', quantity: 2, channel: 'web' },
      });
      expect(web.status).toBe(409);
      expect((web.json as Problem).available).toBe(1);
      const q = await post<{ items: Array<{ total: number; locations: unknown[] }> }>(
        '/v1/inventory/availability/query',
        { skus: ['INV-B'], marketCode: 'DE', channel: 'web' },
      );
      expect(q.items[0]!.total).toBe(1);
      const pos = await t.request('POST', '/v1/inventory/reservations', {
        body: { sku: 'INV-B', locationId: 'S1', quantity: 3, channel: 'pos' },
      });
      expect(pos.status).toBe(201);
      await post('/v1/inventory/reservations/release', {
        lines: [{ reservationId: (pos.json as Reservation).id }],
      });
      expect((await t.request('DELETE', '/v1/inventory/channel-policies/DE/web')).status).toBe(204);
    });
  });

  describe('transfers, POS and availability', () => {
    it('transfers out, in transit, in at the destination with a shortfall booked as shrink', async () => {
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-A', locationId: 'W1', quantity: 20 }],
      });
      const out = await post<Bulk<{ id: string; status: string }>>('/v1/inventory/transfers', {
        lines: [{ sku: 'INV-A', fromLocationId: 'W1', toLocationId: 'S2', quantity: 6 }],
      });
      const transfer = out.results[0]!.result!;
      expect(transfer.status).toBe('in-transit');
      const item = await t.request('GET', '/v1/inventory/items/INV-A');
      const levels = (item.json as { levels: Array<Level & { inTransit: number }> }).levels;
      expect(levels.find((l) => l.locationId === 'W1')!.onHand).toBe(14);
      expect(levels.find((l) => l.locationId === 'S2')!.inTransit).toBe(6);
      const received = await post<{ status: string; receivedQuantity: number }>(
        `/v1/inventory/transfers/${transfer.id}/receive`,
        { receivedQuantity: 5 },
      );
      expect(received).toMatchObject({ status: 'received', receivedQuantity: 5 });
      expect((await levelOf('INV-A', 'S2'))!.onHand).toBe(5);
      const twice = await t.request('POST', `/v1/inventory/transfers/${transfer.id}/receive`, {
        body: {},
      });
      expect(twice.status).toBe(409);
      const shrink = await t.request('GET', '/v1/inventory/movements?locationId=S2&reason=shrink');
      expect((shrink.json as { items: Array<{ delta: number }> }).items[0]!.delta).toBe(-1);
    });

    it('applies offline POS sales once, in time order, flagging negative stock where allowed', async () => {
      const sale = (id: string, minutesAgo: number, qty: number, sku = 'INV-A') => ({
        saleId: id,
        occurredAt: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
        terminal: 'T1',
        lines: [{ sku, quantity: qty }],
      });
      // S2 allows negative stock and has 5 of INV-A.
      const batch = [sale('s-3', 1, 4), sale('s-1', 30, 1), sale('s-2', 20, 2)];
      const first = await post<{
        applied: number;
        flagged: number;
        results: Array<{ saleId: string; status: string; flagged?: boolean }>;
      }>('/v1/inventory/locations/S2/pos-sales', { sales: batch });
      expect(first.applied).toBe(3);
      expect(first.results.find((r) => r.saleId === 's-3')!.flagged).toBe(true);
      const replay = await post<{ duplicates: number; applied: number }>(
        '/v1/inventory/locations/S2/pos-sales',
        { sales: [...batch, sale('s-4', 0, -2)] },
      );
      expect(replay).toMatchObject({ duplicates: 3, applied: 1 });
      expect((await levelOf('INV-A', 'S2'))!.onHand).toBe(5 - 7 + 2);
      const ledger = await t.request(
        'GET',
        '/v1/inventory/movements?locationId=S2&sku=INV-A&limit=50',
      );
      const sales = (
        ledger.json as { items: Array<{ reference?: string; flagged?: string }> }
      ).items
        .filter((m) => m.reference?.startsWith('pos:'))
        .map((m) => [m.reference, m.flagged ?? null]);
      expect(sales).toEqual([
        ['pos:s-1', null],
        ['pos:s-2', null],
        ['pos:s-3', 'negative-stock'],
        ['pos:s-4', null],
      ]);
      // The sale log keeps the flag and the movement the sale produced.
      const flagged = await t.request('GET', '/v1/inventory/locations/S2/pos-sales?flagged=true');
      expect(flagged.status).toBe(200);
      const s3Move = (
        ledger.json as { items: Array<{ id: string; reference?: string }> }
      ).items.find((m) => m.reference === 'pos:s-3')!;
      expect((flagged.json as { items: PosSaleRecord[] }).items).toEqual([
        {
          saleId: 's-3',
          locationId: 'S2',
          terminal: 'T1',
          occurredAt: batch[0]!.occurredAt,
          receivedAt: expect.any(String) as string,
          lines: [{ sku: 'INV-A', quantity: 4 }],
          status: 'applied',
          flagged: true,
          movementIds: [s3Move.id],
        },
      ]);

      // A till return into stock below zero gives units back: only the sale that took the
      // stock below zero is flagged, not the returns after it.
      const more = await post<{ applied: number; flagged: number }>(
        '/v1/inventory/locations/S2/pos-sales',
        { sales: [sale('s-5', 0.03, 3), sale('s-6', 0.02, -1), sale('s-7', 0.01, -2)] },
      );
      expect(more).toMatchObject({ applied: 3, flagged: 1 });
      const after = await t.request(
        'GET',
        '/v1/inventory/movements?locationId=S2&sku=INV-A&limit=50',
      );
      expect(
        (after.json as { items: Array<{ reference?: string; flagged?: string }> }).items
          .filter((m) => ['pos:s-5', 'pos:s-6', 'pos:s-7'].includes(m.reference ?? ''))
          .map((m) => [m.reference, m.flagged ?? null]),
      ).toEqual([
        ['pos:s-5', 'negative-stock'],
        ['pos:s-6', null],
        ['pos:s-7', null],
      ]);
      expect((await levelOf('INV-A', 'S2'))!.onHand).toBe(0);

      // S1 does not allow negative stock: the sale is rejected, kept, and applies when resent.
      const s1 = (await levelOf('INV-C', 'S1'))!.onHand;
      const rejected = await post<{ rejected: number }>('/v1/inventory/locations/S1/pos-sales', {
        sales: [sale('s1-1', 5, s1 + 1, 'INV-C')],
      });
      expect(rejected.rejected).toBe(1);
      const kept = await t.request('GET', '/v1/inventory/locations/S1/pos-sales?status=rejected');
      expect(kept.status).toBe(200);
      const [keptSale] = (kept.json as { items: PosSaleRecord[] }).items;
      expect(keptSale).toMatchObject({
        saleId: 's1-1',
        locationId: 'S1',
        status: 'rejected',
        code: 'INSUFFICIENT_STOCK',
        flagged: false,
        lines: [{ sku: 'INV-C', quantity: s1 + 1 }],
      });
      expect(keptSale!.detail).toContain('does not allow negative stock');
      expect(keptSale!.movementIds).toBeUndefined();
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-C', locationId: 'S1', quantity: 1 }],
      });
      const resent = await post<{ applied: number }>('/v1/inventory/locations/S1/pos-sales', {
        sales: [sale('s1-1', 5, s1 + 1, 'INV-C')],
      });
      expect(resent.applied).toBe(1);
      expect((await levelOf('INV-C', 'S1'))!.onHand).toBe(0);
      const now = await t.request('GET', '/v1/inventory/locations/S1/pos-sales');
      const [appliedSale] = (now.json as { items: PosSaleRecord[] }).items;
      expect(appliedSale).toMatchObject({ saleId: 's1-1', status: 'applied', flagged: false });
      expect(appliedSale!.code).toBeUndefined();
      expect(appliedSale!.movementIds).toHaveLength(1);
    });

    describe('the POS sale log', () => {
      // S3 allows negative stock and starts with no INV-B; the sales happened an hour apart
      // from a fixed morning, two of them at the same instant.
      const base = Date.parse('2024-03-01T08:00:00.000Z');
      const at = (minutes: number) => new Date(base + minutes * 60_000).toISOString();
      const sale = (id: string, minutes: number, lines: unknown[], terminal?: string) => ({
        saleId: id,
        occurredAt: at(minutes),
        ...(terminal === undefined ? {} : { terminal }),
        lines,
      });
      const log = async (query = '') => {
        const r = await t.request('GET', `/v1/inventory/locations/S3/pos-sales${query}`);
        if (r.status !== 200) throw new Error(`${query}: ${r.status} ${r.body}`);
        return r.json as { items: PosSaleRecord[]; nextCursor: string | null };
      };
      const ids = async (query: string) => (await log(query)).items.map((i) => i.saleId);
      const NEWEST_FIRST = ['p-06', 'p-05b', 'p-05a', 'p-04', 'p-03', 'p-02', 'p-01'];

      beforeAll(async () => {
        await post(
          '/v1/locations',
          fixtures.location('S3', 'DE', { allowNegativeStock: true }),
          201,
        );
        const posted = await post<{ applied: number; rejected: number; flagged: number }>(
          '/v1/inventory/locations/S3/pos-sales',
          {
            sales: [
              sale('p-06', 300, [{ sku: 'INV-B', quantity: -5 }]),
              sale('p-01', 0, [{ sku: 'INV-B', quantity: 1 }], 'T1'),
              sale('p-02', 60, [{ sku: 'INV-B', quantity: -3 }], 'T2'),
              sale('p-03', 120, [{ sku: 'NO-SUCH-SKU', quantity: 1 }], 'T1'),
              sale('p-04', 180, [{ sku: 'INV-B', quantity: 1 }], 'T2'),
              sale('p-05a', 240, [{ sku: 'INV-B', quantity: 1 }], 'T1'),
              sale('p-05b', 240, [{ sku: 'INV-B', quantity: 1 }], 'T1'),
            ],
          },
        );
        // Stock of INV-B: -1 (flagged), 2, -, 1, 0, -1 (flagged), 4.
        expect(posted).toMatchObject({ applied: 6, rejected: 1, flagged: 2 });
      });

      it('lists sales newest first, page by page, with no sale twice or missed', async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const query: string =
            cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`;
          const page = await log(query);
          expect(page.items.length).toBeLessThanOrEqual(2);
          seen.push(...page.items.map((i) => i.saleId));
          cursor = page.nextCursor;
          pages += 1;
        } while (cursor !== null && pages < 10);
        expect(seen).toEqual(NEWEST_FIRST);
        expect(new Set(seen).size).toBe(seen.length);
        expect(pages).toBe(4);
        // A page boundary between two sales of the same instant (p-05b | p-05a) loses neither.
        const first = await log('?limit=2');
        expect(first.items.map((i) => i.saleId)).toEqual(['p-06', 'p-05b']);
        const second = await log(`?limit=2&cursor=${encodeURIComponent(first.nextCursor!)}`);
        expect(second.items.map((i) => i.saleId)).toEqual(['p-05a', 'p-04']);
        // Filters page too.
        const t1: string[] = [];
        let next: string | null = null;
        do {
          const page = await log(
            `?terminal=T1&limit=1${next === null ? '' : `&cursor=${encodeURIComponent(next)}`}`,
          );
          t1.push(...page.items.map((i) => i.saleId));
          next = page.nextCursor;
        } while (next !== null && t1.length < 10);
        expect(t1).toEqual(['p-05b', 'p-05a', 'p-03', 'p-01']);

        const openapi = await t.request('GET', '/v1/openapi.json');
        const paths = (
          openapi.json as {
            paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>>;
          }
        ).paths;
        const listed = paths['/v1/inventory/locations/{locationId}/pos-sales']!.get!;
        expect(listed.parameters!.map((p) => p.name).sort()).toEqual([
          'cursor',
          'flagged',
          'limit',
          'locationId',
          'since',
          'status',
          'terminal',
          'until',
        ]);
      });

      it('filters by status, flag, terminal and business time, and shows each sale as kept', async () => {
        const rejected = await log('?status=rejected');
        expect(rejected.items).toEqual([
          {
            saleId: 'p-03',
            locationId: 'S3',
            terminal: 'T1',
            occurredAt: at(120),
            receivedAt: expect.any(String) as string,
            lines: [{ sku: 'NO-SUCH-SKU', quantity: 1 }],
            status: 'rejected',
            code: 'UNKNOWN_REFERENCE',
            detail: "unknown SKU 'NO-SUCH-SKU'",
            flagged: false,
          },
        ]);
        expect(Date.parse(rejected.items[0]!.receivedAt)).toBeGreaterThan(base);
        expect(await ids('?status=applied')).toEqual(NEWEST_FIRST.filter((i) => i !== 'p-03'));
        expect(await ids('?flagged=true')).toEqual(['p-05b', 'p-01']);
        expect(await ids('?status=applied&flagged=false')).toEqual([
          'p-06',
          'p-05a',
          'p-04',
          'p-02',
        ]);
        expect(await ids('?terminal=T2')).toEqual(['p-04', 'p-02']);
        // since is inclusive, until exclusive.
        expect(
          await ids(`?since=${encodeURIComponent(at(60))}&until=${encodeURIComponent(at(240))}`),
        ).toEqual(['p-04', 'p-03', 'p-02']);
        expect(await ids(`?since=${encodeURIComponent(at(240))}&flagged=true`)).toEqual(['p-05b']);

        // Each applied sale names the movements it produced, as the ledger has them.
        const ledger = await t.request('GET', '/v1/inventory/movements?locationId=S3&limit=100');
        const moves = (ledger.json as { items: Array<{ id: string; reference?: string }> }).items;
        const p05b = (await log('?flagged=true')).items[0]!;
        expect(p05b.movementIds).toEqual(
          moves.filter((m) => m.reference === 'pos:p-05b').map((m) => m.id),
        );
        expect(p05b.movementIds).toHaveLength(1);
        expect((await log('?status=applied&limit=1')).items[0]!.terminal).toBeUndefined();

        // The rejected sale, corrected and sent again, is kept as it applied.
        const resent = await post<{ applied: number }>('/v1/inventory/locations/S3/pos-sales', {
          sales: [sale('p-03', 120, [{ sku: 'INV-B', quantity: 2 }], 'T1')],
        });
        expect(resent.applied).toBe(1);
        expect(await ids('?status=rejected')).toEqual([]);
        const window = `since=${encodeURIComponent(at(120))}&until=${encodeURIComponent(at(121))}`;
        const [p03] = (await log(`?${window}`)).items;
        expect(p03).toMatchObject({
          saleId: 'p-03',
          status: 'applied',
          lines: [{ sku: 'INV-B', quantity: 2 }],
          flagged: false,
        });
        expect(p03!.code).toBeUndefined();
        expect(p03!.movementIds).toHaveLength(1);
      });

      it('refuses an unknown location, a bad cursor or status, and keys that may not read it', async () => {
        const problem = async (url: string, status: number, code: string, key?: string) => {
          const r = await t.request('GET', url, key === undefined ? {} : { key });
          expect(r.status, url).toBe(status);
          expect(r.headers['content-type'], url).toContain('application/problem+json');
          expect((r.json as Problem).code, url).toBe(code);
          return r.json as Problem;
        };
        await problem('/v1/inventory/locations/NOWHERE/pos-sales', 404, 'NOT_FOUND');
        const forged = Buffer.from('not-a-time:p-01').toString('base64url');
        for (const cursor of ['%%%', forged, Buffer.from('1234:').toString('base64url')]) {
          const bad = await problem(
            `/v1/inventory/locations/S3/pos-sales?cursor=${cursor}`,
            400,
            'VALIDATION_FAILED',
          );
          expect(bad.errors![0]!.pointer).toBe('/cursor');
        }
        for (const query of [
          'status=flagged',
          'status=pending',
          'flagged=maybe',
          'since=today',
          'until=2016-12-31T23:59:60Z', // a leap second: a valid date-time that Date cannot read
        ]) {
          await problem(`/v1/inventory/locations/S3/pos-sales?${query}`, 400, 'VALIDATION_FAILED');
        }
        const { secret: sweden } = await t.hub.services.access.create({
          name: 'SE reader',
          channel: 'web',
          scopes: ['inventory:read'],
          markets: ['SE'],
        });
        await problem('/v1/inventory/locations/S3/pos-sales', 403, 'FORBIDDEN_SCOPE', sweden);
        const { secret: till } = await t.hub.services.access.create({
          name: 'S3 till',
          channel: 'pos',
          scopes: ['inventory:pos'],
          markets: ['DE'],
        });
        await problem('/v1/inventory/locations/S3/pos-sales', 403, 'FORBIDDEN_SCOPE', till);
        const { secret: germany } = await t.hub.services.access.create({
          name: 'DE reader',
          channel: 'web',
          scopes: ['inventory:read'],
          markets: ['DE'],
        });
        const ok = await t.request('GET', '/v1/inventory/locations/S3/pos-sales?limit=1', {
          key: germany,
        });
        expect(ok.status).toBe(200);
      });
    });

    it('answers availability for many SKUs and finds pickup stores nearby that are open', async () => {
      const many = await post<{ items: Array<{ sku: string; locations: Level[] }> }>(
        '/v1/inventory/availability/query',
        { skus: [...SKUS, 'UNSTOCKED'] },
      );
      expect(many.items.map((i) => i.sku)).toEqual([...SKUS, 'UNSTOCKED']);
      expect(many.items[0]!.locations.map((l) => l.locationId)).toEqual(['S1', 'S2', 'W1']);

      // S1 is open today; S2 only on another weekday; W1 has no pickup.
      const today = localClock(new Date(), 'Europe/Berlin').day;
      const other = today === 'mon' ? 'tue' : 'mon';
      const s2 = fixtures.location('S2', 'DE', {
        allowNegativeStock: true,
        geo: { lat: 52.5, lon: 13.3 },
        openingHours: [{ day: other, opens: '00:00', closes: '23:59' }],
      });
      expect((await t.request('PUT', '/v1/locations/S2', { body: s2 })).status).toBe(200);
      t.hub.services.inventory.sites.invalidate();
      await post('/v1/inventory/receipts', {
        lines: [{ sku: 'INV-C', locationId: 'S2', quantity: 9 }],
      });
      const pickup = await post<{ options: Array<{ locationId: string; distanceKm: number }> }>(
        '/v1/inventory/pickup-options',
        { near: { lat: 52.52, lon: 13.4 }, radiusKm: 50, items: [{ sku: 'INV-A', quantity: 1 }] },
      );
      expect(pickup.options.map((o) => o.locationId)).toEqual(['S1']);
      expect(pickup.options[0]!.distanceKm).toBeLessThan(1);
      const far = await post<{ options: unknown[] }>('/v1/inventory/pickup-options', {
        near: { lat: 48.13, lon: 11.58 },
        radiusKm: 50,
        items: [{ sku: 'INV-A', quantity: 1 }],
      });
      expect(far.options).toEqual([]);
    });
  });
});

describe.each(storageTargets.map((target) => target.name))(
  'POS sales kept before migration 0014: %s',
  (name) => {
    it('gets its terminal, negative-stock flag and movements from the doc and the ledger', async () => {
      let storage: Storage;
      let dispose: () => Promise<void>;
      if (name === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'nexus-upgrade-'));
        storage = openSqlite({ file: join(dir, 'nexus.db') });
        dispose = async () => {
          await storage.close();
          rmSync(dir, { recursive: true, force: true });
        };
      } else {
        const database = await createPgDatabase();
        storage = openPostgres({ url: database.url });
        dispose = async () => {
          await storage.close();
          await database.drop();
        };
      }
      try {
        expect((await migrateTo(storage, '0011_guarded_stock_writes')).error).toBeUndefined();
        const db = storage.db;
        const doc = (terminal?: string) =>
          JSON.stringify({
            saleId: 'x',
            occurredAt: '2024-03-01T08:00:00.000Z',
            terminal,
            lines: [],
          });
        for (const [sale, status, reason, terminal] of [
          ['u-1', 'applied', null, 'T9'],
          ['u-2', 'applied', null, undefined],
          ['u-3', 'rejected', 'INSUFFICIENT_STOCK: no', 'T9'],
        ] as const) {
          await sql`insert into inventory_pos_sales (location_id, sale_id, occurred_at, received_at,
            lines, status, reason, doc) values ('L1', ${sale}, 1, 2, 1, ${status}, ${reason},
            ${doc(terminal)})`.execute(db);
        }
        const move = (id: string, reference: string, flagged: string | null, channel = 'pos') =>
          sql`insert into inventory_movements (id, sku, location_id, reason, delta, on_hand_after,
            reserved_after, reference, flagged, actor, channel, occurred_at, recorded_at)
            values (${id}, 'A', 'L1', ${channel === 'pos' ? 'sale' : 'correction'}, -1, 0, 0,
            ${reference}, ${flagged}, 'api-key:k', ${channel}, 1, 2)`.execute(db);
        await move('m-1', 'pos:u-1', null);
        await move('m-2', 'pos:u-1', 'negative-stock');
        await move('m-3', 'pos:u-2', null);
        // Not a POS sale's movement, whatever its reference says.
        await move('m-4', 'pos:u-2', null, 'web');
        await move('m-5', 'pos:u-1', null, 'web');

        expect((await migrateToLatest(storage)).error).toBeUndefined();
        const rows = await listPosSales(db, { locationId: 'L1', limit: 10 });
        const byId = new Map(rows.map((r) => [r.sale_id, r]));
        expect(byId.get('u-1')).toMatchObject({ terminal: 'T9', flagged: 'negative-stock' });
        expect(JSON.parse(byId.get('u-1')!.movement_ids!)).toEqual(['m-1', 'm-2']);
        expect(byId.get('u-2')).toMatchObject({ terminal: null, flagged: null });
        expect(JSON.parse(byId.get('u-2')!.movement_ids!)).toEqual(['m-3']);
        expect(byId.get('u-3')).toMatchObject({
          terminal: 'T9',
          flagged: null,
          movement_ids: null,
        });
      } finally {
        await dispose();
      }
    });
  },
);
