import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { waitFor } from './support/targets.js';

const saleSchema = {
  type: 'object',
  properties: {
    store: { type: 'string' },
    terminal: { type: 'string' },
    transaction: { type: 'integer' },
    businessDate: { type: 'string', format: 'date' },
  },
  required: ['store', 'terminal', 'transaction', 'businessDate'],
  additionalProperties: false,
};

const sale = (id: string, data: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source: '//pos/DE-BER-001/till-3',
  type: 'legacy.sale.recorded.v1',
  subject: 'sale/DE-BER-001/3/1001',
  time: '2026-11-28T09:15:00Z',
  datacontenttype: 'application/json',
  dataschema: '/registry/subjects/legacy.sale.recorded.v1/versions/latest',
  partitionkey: 'DE-BER-001',
  market: 'DE',
  data: {
    store: 'DE-BER-001',
    terminal: '3',
    transaction: 1001,
    businessDate: '2026-11-28',
    ...data,
  },
});

describe.each(hubShapes)('ingesting events from channel adapters: %s', (shape) => {
  let t: TestHub;
  const seen: Delivery[] = [];
  let observer: Subscription;
  const pointers = (json: unknown) =>
    ((json as { errors?: Array<{ pointer: string }> }).errors ?? []).map((e) => e.pointer);

  beforeAll(async () => {
    t = await startTestHub(shape);
    const registered = await t.request(
      'POST',
      '/registry/subjects/legacy.sale.recorded.v1/versions',
      {
        body: { schema: JSON.stringify(saleSchema), schemaType: 'JSON' },
      },
    );
    expect(registered.status).toBe(200);
    observer = await t.hub.bus.subscribe(
      { name: 'ingest-observer', filter: 'nexus.evt.*.legacy.>' },
      (d) => {
        seen.push(d);
        return Promise.resolve();
      },
    );
  });
  afterAll(async () => {
    await observer.stop();
    await t.dispose();
  });

  it('commits a valid event once, with its own id, and publishes it', async () => {
    const first = await t.request('POST', '/v1/events', { body: sale('sale-1') });
    expect(first.status).toBe(202);
    expect(first.json).toEqual({ id: 'sale-1', duplicate: false });
    const again = await t.request('POST', '/v1/events', {
      raw: JSON.stringify(sale('sale-1')),
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expect(again.json).toEqual({ id: 'sale-1', duplicate: true });
    await waitFor(() => seen.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      eventId: 'sale-1',
      subject: 'nexus.evt.DE.legacy.sale.recorded.v1',
    });
    expect(seen[0]!.envelope.source).toBe('//pos/DE-BER-001/till-3');
  });

  it('refuses an invalid event with pointers and changes nothing', async () => {
    const bad = await t.request('POST', '/v1/events', {
      body: sale('sale-2', { terminal: 3, extra: true }),
    });
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ code: 'SCHEMA_VIOLATION' });
    expect(pointers(bad.json)).toEqual(expect.arrayContaining(['/data/terminal', '/data/extra']));
    const unknownType = await t.request('POST', '/v1/events', {
      body: {
        ...sale('sale-3'),
        type: 'pos.refund.recorded.v1',
        dataschema: '/registry/subjects/pos.refund.recorded.v1/versions/1',
      },
    });
    expect(pointers(unknownType.json)).toEqual(['/type']);
    const wrongSchema = await t.request('POST', '/v1/events', {
      body: { ...sale('sale-4'), dataschema: 'https://elsewhere' },
    });
    expect(pointers(wrongSchema.json)).toEqual(['/dataschema']);
    const notAnEnvelope = await t.request('POST', '/v1/events', { body: { hello: 'world' } });
    expect(pointers(notAnEnvelope.json)).toEqual(
      expect.arrayContaining(['/id', '/type', '/hello']),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toHaveLength(1);
  });

  it('keeps refused batch items as dead letters that can be inspected, fixed, replayed or discarded', async () => {
    const batch = await t.request('POST', '/v1/events/batch', {
      body: {
        items: [
          sale('sale-10'),
          sale('sale-11', { transaction: 'x' }),
          { id: 'junk' },
          sale('sale-10'),
        ],
      },
    });
    expect(batch.status).toBe(200);
    const report = batch.json as {
      accepted: number;
      duplicates: number;
      rejected: Array<{
        index: number;
        id: string;
        deadLetterId: string;
        errors: Array<{ pointer: string }>;
      }>;
    };
    expect(report.accepted).toBe(1);
    expect(report.duplicates).toBe(1);
    expect(report.rejected.map((r) => [r.index, r.id])).toEqual([
      [1, 'sale-11'],
      [2, 'junk'],
    ]);
    expect(report.rejected[0]!.errors.map((e) => e.pointer)).toEqual(['/items/1/data/transaction']);

    const list = await t.request('GET', '/v1/dead-letters?consumer=ingest&status=open');
    expect((list.json as { items: unknown[] }).items).toHaveLength(2);
    const letterId = report.rejected[0]!.deadLetterId;
    const letter = await t.request('GET', `/v1/dead-letters/${letterId}`);
    expect(letter.json).toMatchObject({
      consumer: 'ingest',
      eventId: 'sale-11',
      status: 'open',
      envelope: { data: { transaction: 'x' } },
    });

    const stillBad = await t.request('POST', `/v1/dead-letters/${letterId}/replay`);
    expect(stillBad.status).toBe(422);
    expect(
      (
        await t.request('PUT', `/v1/dead-letters/${letterId}`, {
          body: { envelope: sale('sale-11') },
        })
      ).status,
    ).toBe(200);
    const replayed = await t.request('POST', `/v1/dead-letters/${letterId}/replay`);
    expect(replayed.json).toMatchObject({ status: 'replayed', attempts: 3 });
    await waitFor(() => seen.some((d) => d.eventId === 'sale-11'));
    expect((await t.request('POST', `/v1/dead-letters/${letterId}/replay`)).status).toBe(409);

    const discarded = await t.request(
      'POST',
      `/v1/dead-letters/${report.rejected[1]!.deadLetterId}/discard`,
    );
    expect(discarded.json).toMatchObject({ status: 'discarded', eventId: 'junk' });
    expect((await t.request('GET', '/v1/dead-letters?status=open')).json).toMatchObject({
      items: [],
    });
  });

  it("hands a consumer group's dead letter back to that group on replay", async () => {
    const now = Date.now();
    await t.hub.storage.db
      .insertInto('dead_letters')
      .values({
        id: 'dl-group-1',
        consumer: 'stock-projector',
        event_id: 'e-1',
        subject: 'nexus.evt.DE.legacy.sale.recorded.v1',
        envelope: JSON.stringify(sale('e-1')),
        error: 'projector was down',
        attempts: 5,
        status: 'open',
        created_at: now,
        updated_at: now,
      })
      .execute();
    const r = await t.request('POST', '/v1/dead-letters/dl-group-1/replay');
    expect(r.json).toMatchObject({ consumer: 'stock-projector', status: 'replay-requested' });
    const listed = await t.request('GET', '/v1/dead-letters?status=replay-requested');
    expect((listed.json as { items: Array<{ id: string }> }).items.map((l) => l.id)).toEqual([
      'dl-group-1',
    ]);
  });

  it('needs the events scopes', async () => {
    const { secret } = await t.hub.services.access.create({
      name: 'pos reader',
      channel: 'pos',
      scopes: ['catalog:read'],
    });
    expect(
      (await t.request('POST', '/v1/events', { key: secret, body: sale('sale-99') })).status,
    ).toBe(403);
    expect((await t.request('GET', '/v1/dead-letters', { key: secret })).status).toBe(403);
  });

  it('checks single events against the latest version as soon as this hub changes it', async () => {
    // Latest is resolved from a short-lived cache; a registration or deletion here clears it.
    const subject = '/registry/subjects/legacy.tip.added.v1/versions';
    const v1 = {
      type: 'object',
      properties: { amount: { type: 'integer' } },
      required: ['amount'],
      additionalProperties: false,
    };
    const v2 = { ...v1, properties: { ...v1.properties, note: { type: 'string' } } };
    const register = (schema: unknown) =>
      t.request('POST', subject, { body: { schema: JSON.stringify(schema), schemaType: 'JSON' } });
    expect((await register(v1)).status).toBe(200);
    const tip = (id: string) => ({
      ...sale(id),
      type: 'legacy.tip.added.v1',
      dataschema: `${subject}/latest`,
      data: { amount: 2, note: 'thanks' },
    });
    expect((await t.request('POST', '/v1/events', { body: tip('tip-1') })).status).toBe(422);
    expect((await register(v2)).status).toBe(200);
    expect((await t.request('POST', '/v1/events', { body: tip('tip-2') })).status).toBe(202);
    expect((await t.request('DELETE', `${subject}/2`)).status).toBe(200);
    expect((await t.request('POST', '/v1/events', { body: tip('tip-3') })).status).toBe(422);
  });

  it('checks each event of a batch against the version its dataschema names', async () => {
    // v2 adds an optional field; v1 stays closed. The batch resolves each (type, version) once,
    // so mixing versions, unknown versions and unknown types in one batch must still tell them
    // apart per event.
    const v2 = {
      ...saleSchema,
      properties: { ...saleSchema.properties, channel: { type: 'string' } },
    };
    const registered = await t.request(
      'POST',
      '/registry/subjects/legacy.sale.recorded.v1/versions',
      { body: { schema: JSON.stringify(v2), schemaType: 'JSON' } },
    );
    expect(registered.status).toBe(200);
    const at = (version: string, id: string, data: Record<string, unknown> = {}) => ({
      ...sale(id, data),
      dataschema: `/registry/subjects/legacy.sale.recorded.v1/versions/${version}`,
    });
    const unknownType = (id: string) => ({
      ...sale(id),
      type: 'pos.refund.recorded.v1',
      dataschema: '/registry/subjects/pos.refund.recorded.v1/versions/1',
    });
    const batch = await t.request('POST', '/v1/events/batch', {
      body: {
        items: [
          at('1', 'mix-1', { channel: 'pos' }),
          at('2', 'mix-2', { channel: 'pos' }),
          at('latest', 'mix-3', { channel: 'pos' }),
          at('9', 'mix-4'),
          unknownType('mix-5'),
          at('1', 'mix-6'),
          unknownType('mix-7'),
        ],
      },
    });
    expect(batch.status).toBe(200);
    const report = batch.json as {
      accepted: number;
      rejected: Array<{ index: number; errors: Array<{ pointer: string }> }>;
    };
    expect(report.accepted).toBe(3);
    expect(report.rejected.map((r) => [r.index, r.errors.map((e) => e.pointer)])).toEqual([
      [0, ['/items/0/data/channel']],
      [3, ['/items/3/dataschema']],
      [4, ['/items/4/type']],
      [6, ['/items/6/type']],
    ]);
  });
});
