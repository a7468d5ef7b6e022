import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NexusError } from '../../model/errors.js';
import { Channel, GeoPoint, Identifier, MarketCode } from '../../model/schemas/common.js';
import {
  INVENTORY_MOVEMENT_REASONS,
  InventoryLevel,
  RESERVATION_STATUSES,
  Reservation,
} from '../../model/schemas/inventory.js';
import { mayActFor, type Context } from '../../platform/context.js';
import '../../platform/http/types.js';
import {
  AdjustLine,
  CountLine,
  LineResult,
  POS_SALE_STATUSES,
  PosSale,
  PosSaleRecord,
  ReceiveLine,
  ReceiveTransferBody,
  ReservationIdLine,
  ReserveLine,
  SafetyStockLine,
  TransferLine,
  bulkOf,
  type Mode,
} from './commands.js';
import type { AvailabilityFeed } from './live.js';
import { ChannelPolicy } from './policy.js';
import type { InventoryService, LineResult as Result } from './service.js';

const Problem = Type.Ref('Problem');
const MAX_LINES = 5000;
const tags = ['inventory'];
const SkuParam = Identifier('SKU code');
const LocationParam = Identifier('Location id');

const BulkResponse = Type.Object({
  applied: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(LineResult),
});

const summarise = <R>(results: Array<Result<R>>) => ({
  applied: results.filter((r) => r.status === 'applied').length,
  failed: results.filter((r) => r.status === 'failed').length,
  results,
});

type Bulk<L> = { mode?: Mode; lines: L[] };

/** A bulk command route: lines plus mode in, a result per line out. */
function bulkRoute<L>(
  app: FastifyInstance,
  path: string,
  scope: string,
  summary: string,
  line: TSchema,
  run: (ctx: Context, lines: L[], mode: Mode) => Promise<Array<Result<unknown>>>,
): void {
  app.post(path, {
    config: { scope },
    bodyLimit: 16 * 1024 * 1024,
    schema: {
      tags,
      summary,
      body: bulkOf(line, MAX_LINES),
      response: { 200: BulkResponse, 409: Problem, 422: Problem },
    },
    handler: async (request) => {
      const body = request.body as Bulk<L>;
      return summarise(await run(request.ctx, body.lines, body.mode ?? 'all-or-nothing'));
    },
  });
}

const arrayOf = (value: string | string[] | undefined): string[] | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value];

export function inventoryRoutes(
  app: FastifyInstance,
  service: InventoryService,
  feed: AvailabilityFeed,
): void {
  // ---- stock commands --------------------------------------------------------------------
  bulkRoute<AdjustLine>(
    app,
    '/v1/inventory/adjustments',
    'inventory:write',
    'Adjust on-hand stock by a delta with a reason (sale, receipt, return, damage, shrink, correction)',
    AdjustLine,
    (ctx, lines, mode) => service.adjust(ctx, lines, mode),
  );
  bulkRoute<CountLine>(
    app,
    '/v1/inventory/counts',
    'inventory:write',
    'Record cycle counts: on hand becomes what was counted, the variance is kept for accuracy',
    CountLine,
    (ctx, lines, mode) => service.count(ctx, lines, mode),
  );
  bulkRoute<ReceiveLine>(
    app,
    '/v1/inventory/receipts',
    'inventory:write',
    'Receive goods at a location',
    ReceiveLine,
    (ctx, lines, mode) => service.receive(ctx, lines, mode),
  );
  bulkRoute<SafetyStockLine>(
    app,
    '/v1/inventory/safety-stock',
    'inventory:write',
    'Set the safety stock of SKUs at locations (kept back from every channel)',
    SafetyStockLine,
    (ctx, lines, mode) => service.setSafetyStock(ctx, lines, mode),
  );
  bulkRoute<TransferLine>(
    app,
    '/v1/inventory/transfers',
    'inventory:write',
    'Ship units from one location to another: out now, in transit until received',
    TransferLine,
    (ctx, lines, mode) => service.transfer(ctx, lines, mode),
  );

  app.get('/v1/inventory/transfers/:id', {
    config: { scope: 'inventory:read' },
    schema: { tags, summary: 'A transfer', params: Type.Object({ id: Type.String() }) },
    handler: async (request) =>
      service.getTransfer(request.ctx, (request.params as { id: string }).id),
  });

  app.post('/v1/inventory/transfers/:id/receive', {
    config: { scope: 'inventory:write' },
    schema: {
      tags,
      summary: 'Book a transfer in at its destination (a shortfall is recorded as shrink)',
      params: Type.Object({ id: Type.String() }),
      body: ReceiveTransferBody,
    },
    handler: async (request) =>
      service.receiveTransfer(
        request.ctx,
        (request.params as { id: string }).id,
        (request.body ?? {}) as ReceiveTransferBody,
      ),
  });

  // ---- reservations ----------------------------------------------------------------------
  app.post('/v1/inventory/reservations', {
    config: { scope: 'inventory:reserve' },
    schema: {
      tags,
      summary:
        'Reserve units (a cart, an order, a pickup hold). Never oversells: when the units are ' +
        'not there the answer is 409 INSUFFICIENT_STOCK with how many are available.',
      description:
        'Give the reservation an `id` of your own to retry safely: the same line with an id ' +
        'that exists answers with that reservation as it is now (201, nothing held twice, no ' +
        'event), also when the first attempt is still running; a different line with it is ' +
        '409 RESERVATION_ID_CONFLICT.',
      body: ReserveLine,
      response: { 201: Reservation, 409: Problem, 422: Problem },
    },
    handler: async (request, reply) => {
      const outcome = await service.reserve(request.ctx, request.body as ReserveLine);
      if (outcome.status === 'insufficient') {
        throw new NexusError('INSUFFICIENT_STOCK', outcome.detail, {
          extensions: { available: outcome.available },
        });
      }
      return reply.code(201).send(outcome.reservation);
    },
  });

  bulkRoute<ReserveLine>(
    app,
    '/v1/inventory/reservations/bulk',
    'inventory:reserve',
    'Reserve many lines in one transaction, all or nothing or line by line (a line with the ' +
      'id of an existing reservation answers with it, as a single reserve does)',
    ReserveLine,
    (ctx, lines, mode) => service.reserveLines(ctx, lines, mode),
  );
  bulkRoute<ReservationIdLine>(
    app,
    '/v1/inventory/reservations/commit',
    'inventory:reserve',
    'Commit many reservations into sales',
    ReservationIdLine,
    (ctx, lines, mode) => service.commit(ctx, lines, mode),
  );
  bulkRoute<ReservationIdLine>(
    app,
    '/v1/inventory/reservations/release',
    'inventory:reserve',
    'Release many reservations',
    ReservationIdLine,
    (ctx, lines, mode) => service.release(ctx, lines, mode),
  );

  const single =
    (step: 'commit' | 'release') =>
    async (ctx: Context, id: string, reason: string | undefined) => {
      const line: ReservationIdLine =
        reason === undefined ? { reservationId: id } : { reservationId: id, reason };
      const [result] = await (step === 'commit'
        ? service.commit(ctx, [line], 'all-or-nothing', false)
        : service.release(ctx, [line], 'all-or-nothing', false));
      return result!.status === 'applied' ? result!.result : null;
    };
  for (const step of ['commit', 'release'] as const) {
    app.post(`/v1/inventory/reservations/:id/${step}`, {
      config: { scope: 'inventory:reserve' },
      schema: {
        tags,
        summary:
          step === 'commit'
            ? 'Commit a reservation into a sale (on hand and reserved both go down)'
            : 'Release a reservation: its units go back to stock',
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        body: Type.Optional(
          Type.Object(
            { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
            { additionalProperties: false },
          ),
        ),
        response: { 200: Reservation, 404: Problem, 409: Problem },
      },
      handler: async (request) =>
        single(step)(
          request.ctx,
          (request.params as { id: string }).id,
          (request.body as { reason?: string } | undefined)?.reason,
        ),
    });
  }

  app.get('/v1/inventory/reservations/:id', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'A reservation',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 200: Reservation, 404: Problem },
    },
    handler: async (request) =>
      service.getReservation(request.ctx, (request.params as { id: string }).id),
  });

  app.get('/v1/inventory/reservations', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'List reservations',
      querystring: Type.Object({
        sku: Type.Optional(SkuParam),
        locationId: Type.Optional(LocationParam),
        status: Type.Optional(Type.Union(RESERVATION_STATUSES.map((s) => Type.Literal(s)))),
        referenceId: Type.Optional(Type.String({ maxLength: 200 })),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      }),
    },
    handler: async (request) =>
      service.reservations(
        request.ctx,
        request.query as Parameters<InventoryService['reservations']>[1],
      ),
  });

  // ---- POS -------------------------------------------------------------------------------
  app.post('/v1/inventory/locations/:locationId/pos-sales', {
    config: { scope: 'inventory:pos' },
    bodyLimit: 16 * 1024 * 1024,
    schema: {
      tags,
      summary:
        'Post POS sales (also ones taken offline): each applies once by its sale id, in the ' +
        'order they happened; a rejected sale is kept and applies when sent again',
      params: Type.Object({ locationId: LocationParam }),
      body: Type.Object(
        { sales: Type.Array(PosSale, { minItems: 1, maxItems: MAX_LINES }) },
        { additionalProperties: false },
      ),
    },
    handler: async (request) => {
      const { locationId } = request.params as { locationId: string };
      const results = await service.posSales(
        request.ctx,
        locationId,
        (request.body as { sales: PosSale[] }).sales,
      );
      const count = (status: string) => results.filter((r) => r.status === status).length;
      return {
        applied: count('applied'),
        duplicates: count('duplicate'),
        rejected: count('rejected'),
        flagged: results.filter((r) => r.flagged).length,
        results,
      };
    },
  });

  app.get('/v1/inventory/locations/:locationId/pos-sales', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary:
        "A location's POS sales as kept, newest first by when they happened: applied ones " +
        '(flagged when they took stock below zero, with the movements they produced) and ' +
        'rejected ones with their reason',
      params: Type.Object({ locationId: LocationParam }),
      querystring: Type.Object({
        status: Type.Optional(Type.Union(POS_SALE_STATUSES.map((s) => Type.Literal(s)))),
        flagged: Type.Optional(
          Type.Boolean({ description: 'true: only sales that took stock below zero' }),
        ),
        terminal: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        since: Type.Optional(
          Type.String({ format: 'date-time', description: 'Happened at or after (inclusive)' }),
        ),
        until: Type.Optional(
          Type.String({ format: 'date-time', description: 'Happened before (exclusive)' }),
        ),
        cursor: Type.Optional(Type.String({ maxLength: 600 })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      }),
      response: {
        200: Type.Object({
          items: Type.Array(PosSaleRecord),
          nextCursor: Type.Union([Type.String(), Type.Null()]),
        }),
        400: Problem,
        403: Problem,
        404: Problem,
      },
    },
    handler: async (request) =>
      service.posSaleLog(
        request.ctx,
        (request.params as { locationId: string }).locationId,
        request.query as Parameters<InventoryService['posSaleLog']>[2],
      ),
  });

  // ---- queries ---------------------------------------------------------------------------
  app.get('/v1/inventory/items/:sku', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'One SKU at every location, with units in transit to each',
      params: Type.Object({ sku: SkuParam }),
    },
    handler: async (request) => service.item(request.ctx, (request.params as { sku: string }).sku),
  });

  app.get('/v1/inventory/locations/:locationId/levels', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'Every SKU held at a location',
      params: Type.Object({ locationId: LocationParam }),
      querystring: Type.Object({
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      }),
      response: {
        200: Type.Object({
          items: Type.Array(InventoryLevel),
          nextCursor: Type.Union([Type.String(), Type.Null()]),
        }),
      },
    },
    handler: async (request) => {
      const { locationId } = request.params as { locationId: string };
      const { limit, cursor } = request.query as { limit: number; cursor?: string };
      return service.levelsAt(request.ctx, locationId, limit, cursor);
    },
  });

  const AvailabilityQuery = Type.Object(
    {
      skus: Type.Array(SkuParam, { minItems: 1, maxItems: 1000 }),
      marketCode: Type.Optional(MarketCode),
      channel: Type.Optional(Channel),
      locationIds: Type.Optional(Type.Array(LocationParam, { maxItems: 10000 })),
    },
    { additionalProperties: false },
  );
  const availability = async (
    ctx: Context,
    q: { skus: string[]; marketCode?: string; channel?: Channel; locationIds?: string[] },
  ) => {
    if (q.channel !== undefined && q.marketCode === undefined) {
      throw new NexusError('VALIDATION_FAILED', 'marketCode is needed with channel', {
        errors: [{ pointer: '/marketCode', detail: 'is needed with channel' }],
      });
    }
    if (q.marketCode !== undefined && !mayActFor(ctx, q.marketCode)) {
      throw new NexusError('FORBIDDEN_SCOPE', `this key may not read market '${q.marketCode}'`);
    }
    return {
      items: await service.availability(ctx, q.skus, {
        marketCode: q.marketCode,
        channel: q.channel,
        locationIds: q.locationIds,
      }),
    };
  };

  app.post('/v1/inventory/availability/query', {
    config: { scope: 'inventory:read', idempotent: false },
    schema: {
      tags,
      summary:
        'Available to promise for up to 1,000 SKUs across all locations, per location and, ' +
        'with a market and channel, in total for that channel',
      body: AvailabilityQuery,
    },
    handler: async (request) =>
      availability(request.ctx, request.body as Parameters<typeof availability>[1]),
  });

  app.get('/v1/inventory/availability', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'Available to promise for a few SKUs (repeat sku=)',
      querystring: Type.Object({
        sku: Type.Union([SkuParam, Type.Array(SkuParam, { minItems: 1, maxItems: 50 })]),
        marketCode: Type.Optional(MarketCode),
        channel: Type.Optional(Channel),
        locationId: Type.Optional(
          Type.Union([LocationParam, Type.Array(LocationParam, { maxItems: 100 })]),
        ),
      }),
    },
    handler: async (request) => {
      const q = request.query as {
        sku: string | string[];
        marketCode?: string;
        channel?: Channel;
        locationId?: string | string[];
      };
      const locationIds = arrayOf(q.locationId);
      return availability(request.ctx, {
        skus: arrayOf(q.sku)!,
        ...(q.marketCode === undefined ? {} : { marketCode: q.marketCode }),
        ...(q.channel === undefined ? {} : { channel: q.channel }),
        ...(locationIds === undefined ? {} : { locationIds }),
      });
    },
  });

  app.post('/v1/inventory/pickup-options', {
    config: { scope: 'inventory:read', idempotent: false },
    schema: {
      tags,
      summary:
        'Stores within radiusKm of a point that can hand these items over today, nearest first',
      body: Type.Object(
        {
          near: GeoPoint,
          radiusKm: Type.Number({ exclusiveMinimum: 0, maximum: 1000 }),
          items: Type.Array(
            Type.Object(
              { sku: SkuParam, quantity: Type.Integer({ minimum: 1, maximum: 10000 }) },
              { additionalProperties: false },
            ),
            { minItems: 1, maxItems: 100 },
          ),
          channel: Type.Optional(Channel),
          leadMinutes: Type.Integer({
            minimum: 0,
            maximum: 1440,
            default: 60,
            description: 'Minutes a store needs to get an order ready before it closes',
          }),
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
        },
        { additionalProperties: false },
      ),
    },
    handler: async (request) => {
      const body = request.body as {
        near: { lat: number; lon: number };
        radiusKm: number;
        items: Array<{ sku: string; quantity: number }>;
        channel?: Channel;
        leadMinutes: number;
        limit: number;
      };
      return {
        options: await service.pickupOptions(request.ctx, {
          ...body,
          channel: body.channel ?? request.ctx.channel ?? 'web',
        }),
      };
    },
  });

  app.get('/v1/inventory/movements', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'The movement ledger, oldest first',
      querystring: Type.Object({
        sku: Type.Optional(SkuParam),
        locationId: Type.Optional(LocationParam),
        reason: Type.Optional(Type.Union(INVENTORY_MOVEMENT_REASONS.map((r) => Type.Literal(r)))),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      }),
    },
    handler: async (request) =>
      service.movements(request.ctx, request.query as Parameters<InventoryService['movements']>[1]),
  });

  app.get('/v1/inventory/kpis/accuracy', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'Inventory accuracy from cycle counts since a time (default: 30 days)',
      querystring: Type.Object({
        since: Type.Optional(Type.String({ format: 'date-time' })),
        marketCode: Type.Optional(MarketCode),
      }),
    },
    handler: async (request) => {
      const q = request.query as { since?: string; marketCode?: string };
      const since = q.since === undefined ? Date.now() - 30 * 86_400_000 : Date.parse(q.since);
      return service.accuracy(request.ctx, since, q.marketCode);
    },
  });

  // ---- channel policies --------------------------------------------------------------------
  const PolicyParams = Type.Object({ marketCode: MarketCode, channel: Channel });
  app.get('/v1/inventory/channel-policies', {
    config: { scope: 'inventory:read' },
    schema: { tags, summary: 'Channel policies that are set (others use the default)' },
    handler: async (request) => ({ items: await service.channelPolicies(request.ctx) }),
  });
  app.get('/v1/inventory/channel-policies/:marketCode/:channel', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary: 'The policy that applies to a channel in a market (the default when none is set)',
      params: PolicyParams,
      response: { 200: ChannelPolicy },
    },
    handler: async (request) => {
      const p = request.params as { marketCode: string; channel: Channel };
      return service.channelPolicy(request.ctx, p.marketCode, p.channel);
    },
  });
  app.put('/v1/inventory/channel-policies/:marketCode/:channel', {
    config: { scope: 'inventory:write' },
    schema: {
      tags,
      summary: 'Set which locations serve a channel in a market and what each keeps back from it',
      params: PolicyParams,
      body: ChannelPolicy,
      response: { 200: ChannelPolicy },
    },
    handler: async (request) => {
      const p = request.params as { marketCode: string; channel: Channel };
      const body = request.body as ChannelPolicy;
      if (body.marketCode !== p.marketCode || body.channel !== p.channel) {
        throw new NexusError('VALIDATION_FAILED', 'marketCode and channel must match the path', {
          errors: [{ pointer: '/marketCode', detail: 'must match the path' }],
        });
      }
      return service.putChannelPolicy(request.ctx, body);
    },
  });
  app.delete('/v1/inventory/channel-policies/:marketCode/:channel', {
    config: { scope: 'inventory:write' },
    schema: { tags, summary: 'Go back to the default policy', params: PolicyParams },
    handler: async (request, reply) => {
      const p = request.params as { marketCode: string; channel: Channel };
      await service.deleteChannelPolicy(request.ctx, p.marketCode, p.channel);
      return reply.code(204).send();
    },
  });

  // ---- live --------------------------------------------------------------------------------
  // Streams never end by themselves: closing the server ends them (clients reconnect).
  const open = new Set<{ destroy(): void }>();
  app.addHook('preClose', (done) => {
    open.forEach((res) => res.destroy());
    done();
  });
  app.get('/v1/inventory/stream', {
    config: { scope: 'inventory:read' },
    schema: {
      tags,
      summary:
        'Server-sent events: availability changes for a channel in a market (optionally only ' +
        'some SKUs or locations). Reconnect with Last-Event-ID to miss nothing.',
      querystring: Type.Object({
        marketCode: MarketCode,
        channel: Type.Optional(Channel),
        sku: Type.Optional(
          Type.Union([SkuParam, Type.Array(SkuParam, { minItems: 1, maxItems: 1000 })]),
        ),
        locationId: Type.Optional(
          Type.Union([LocationParam, Type.Array(LocationParam, { minItems: 1, maxItems: 1000 })]),
        ),
      }),
      headers: Type.Object({
        'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
      }),
    },
    handler: async (request, reply) => {
      const q = request.query as {
        marketCode: string;
        channel?: Channel;
        sku?: string | string[];
        locationId?: string | string[];
      };
      if (!mayActFor(request.ctx, q.marketCode)) {
        throw new NexusError('FORBIDDEN_SCOPE', `this key may not read market '${q.marketCode}'`);
      }
      const lastEventId = request.headers['last-event-id'];
      const skus = arrayOf(q.sku);
      const locations = arrayOf(q.locationId);
      open.add(reply.raw);
      reply.raw.on('close', () => open.delete(reply.raw));
      await stream(reply, feed, {
        filter: {
          marketCode: q.marketCode,
          channel: q.channel ?? request.ctx.channel ?? 'web',
          ...(skus ? { skus: new Set(skus) } : {}),
          ...(locations ? { locationIds: new Set(locations) } : {}),
        },
        lastSeq: typeof lastEventId === 'string' ? Number(lastEventId) : undefined,
      });
    },
  });
}

/** A slow client past this much unsent data is dropped; it reconnects with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

async function stream(
  reply: FastifyReply,
  feed: AvailabilityFeed,
  options: { filter: Parameters<AvailabilityFeed['subscribe']>[0]; lastSeq: number | undefined },
): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': reply.request.id,
  });
  res.write('retry: 2000\n\n');
  let closed = false;
  const stop = await feed.subscribe(options.filter, options.lastSeq, (seq, change) => {
    if (closed) return;
    res.write(`id: ${seq}\nevent: availability\ndata: ${JSON.stringify(change)}\n\n`);
    if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  heartbeat.unref();
  res.on('close', () => {
    closed = true;
    clearInterval(heartbeat);
    // The client is gone: a failure to stop its feed has no one to tell.
    stop().catch(() => undefined);
  });
}
