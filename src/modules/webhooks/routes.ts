import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Channel, Identifier, MarketCode } from '../../model/schemas/common.js';
import '../../platform/http/types.js';
import { AVAILABILITY_MAX_ITEMS, AVAILABILITY_TYPE } from './availability.js';
import { WEBHOOK_FORMATS } from './shaper.js';
import type { SubscriptionInput, WebhooksService } from './service.js';
import type { DeliveryStatus, SubscriptionStatus } from './store.js';

const Problem = Type.Ref('Problem');
const DateTime = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const SubscriptionStatusSchema = Type.Union([Type.Literal('active'), Type.Literal('paused')]);
const DeliveryStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('dead'),
]);
const Format = Type.Union(
  WEBHOOK_FORMATS.map((f) => Type.Literal(f)),
  { description: 'json: CloudEvents structured JSON; confluent-wire: when a shaper is configured' },
);
const EventTypes = Type.Array(Type.String({ pattern: '^[a-z0-9*][a-z0-9*.-]*$', maxLength: 200 }), {
  maxItems: 100,
  uniqueItems: true,
  description: "Event types; '*' matches any characters: product.*, *",
  example: ['inventory.level.changed.v1', 'product.*'],
});
const Markets = Type.Array(Type.String({ pattern: '^[A-Z]{2}(-[A-Z0-9]{1,8})?$' }), {
  maxItems: 500,
  uniqueItems: true,
  description: 'Only events of these markets; events without a market are delivered as well',
});
const Ids = (description: string) =>
  Type.Array(Identifier(description), {
    minItems: 1,
    maxItems: AVAILABILITY_MAX_ITEMS,
    uniqueItems: true,
  });
const Availability = Type.Object(
  {
    marketCode: MarketCode,
    channel: Channel,
    skus: Type.Optional(Ids('Only these SKUs (leave out for every SKU)')),
    locationIds: Type.Optional(
      Ids('Only these locations (leave out for every location serving the channel)'),
    ),
  },
  {
    additionalProperties: false,
    description:
      `Availability as this channel sees it in this market: one ${AVAILABILITY_TYPE} JSON ` +
      'delivery per stock change at a location the channel sells from (channel safety stock ' +
      'applied; the fields of the live stream). Not with eventTypes, subjectFilter, ' +
      'schemaVersions or another format; markets may only repeat marketCode.',
  },
);

const SubscriptionBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2000, description: 'http or https URL' }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    eventTypes: Type.Optional(Nullable(EventTypes)),
    subjectFilter: Type.Optional(
      Nullable(
        Type.String({
          maxLength: 300,
          description: 'Bus subject pattern, NATS wildcards: nexus.evt.DE.>',
        }),
      ),
    ),
    markets: Type.Optional(Nullable(Markets)),
    status: Type.Optional(SubscriptionStatusSchema),
    schemaVersions: Type.Optional(
      Nullable(
        Type.Record(Type.String(), Type.Integer({ minimum: 1 }), {
          maxProperties: 200,
          description: 'Event type -> registered schema version the subscriber understands',
        }),
      ),
    ),
    format: Type.Optional(Format),
    availability: Type.Optional(Nullable(Availability)),
  },
  { additionalProperties: false },
);

const SubscriptionSchema = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Type.String(),
  eventTypes: Nullable(Type.Array(Type.String())),
  subjectFilter: Nullable(Type.String()),
  markets: Nullable(Type.Array(Type.String())),
  status: SubscriptionStatusSchema,
  statusReason: Nullable(Type.String()),
  schemaVersions: Nullable(Type.Record(Type.String(), Type.Integer())),
  format: Format,
  availability: Nullable(Availability),
  previousSecretExpiresAt: Nullable(DateTime),
  createdAt: DateTime,
  updatedAt: DateTime,
});
const WithSecret = Type.Composite([
  SubscriptionSchema,
  Type.Object({
    secret: Type.String({ description: 'whsec_...: shown in this answer only' }),
  }),
]);

const DeliverySchema = Type.Object({
  id: Type.String(),
  subscriptionId: Type.String(),
  eventId: Type.String(),
  eventType: Type.String(),
  subject: Type.String(),
  status: DeliveryStatusSchema,
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(DateTime),
  lastStatusCode: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  createdAt: DateTime,
  updatedAt: DateTime,
});
const DeliveryDetailSchema = Type.Composite([
  DeliverySchema,
  Type.Object({
    envelope: Type.Unknown({ description: 'The hub event as matched' }),
    payload: Type.Unknown({
      description: 'The body made when the event was matched (availability), or null',
    }),
    attemptLog: Type.Array(
      Type.Object({
        attempt: Type.Integer(),
        at: DateTime,
        durationMs: Type.Integer(),
        statusCode: Nullable(Type.Integer()),
        error: Nullable(Type.String()),
        responseBody: Nullable(Type.String()),
      }),
    ),
  }),
]);

const Id = Type.String({ minLength: 1, maxLength: 64 });
const IdParams = Type.Object({ id: Id });
const DeliveryParams = Type.Object({ id: Id, deliveryId: Id });
const Paging = {
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};
const page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) });
const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };

export function webhookRoutes(app: FastifyInstance, service: WebhooksService): void {
  const tags = ['webhooks'];
  const read = { scope: 'webhooks:read' };
  const write = { scope: 'webhooks:write' };
  const id = (params: unknown) => (params as { id: string }).id;
  const ids = (params: unknown) => params as { id: string; deliveryId: string };

  app.get('/v1/webhooks', {
    config: read,
    schema: {
      tags,
      summary: 'List webhook subscriptions (never their secrets)',
      querystring: Type.Object({ ...Paging, status: Type.Optional(SubscriptionStatusSchema) }),
      response: { 200: page(SubscriptionSchema), ...errors },
    },
    handler: async (request) =>
      service.list(
        request.ctx,
        request.query as { limit: number; cursor?: string; status?: SubscriptionStatus },
      ),
  });

  app.post('/v1/webhooks', {
    config: write,
    schema: {
      tags,
      summary: 'Subscribe a URL to hub events; the signing secret is in this answer only',
      body: SubscriptionBody,
      response: { 201: WithSecret, ...errors },
    },
    handler: async (request, reply) => {
      const { subscription, secret } = await service.create(
        request.ctx,
        request.body as SubscriptionInput,
      );
      return reply
        .code(201)
        .header('location', `/v1/webhooks/${subscription.id}`)
        .send({ ...subscription, secret });
    },
  });

  app.get('/v1/webhooks/:id', {
    config: read,
    schema: {
      tags,
      summary: 'Get a webhook subscription',
      params: IdParams,
      response: { 200: SubscriptionSchema, ...errors },
    },
    handler: async (request) => service.get(request.ctx, id(request.params)),
  });

  app.put('/v1/webhooks/:id', {
    config: write,
    schema: {
      tags,
      summary: 'Replace a subscription (URL, filters, status, format); the secret stays',
      params: IdParams,
      body: SubscriptionBody,
      response: { 200: SubscriptionSchema, ...errors },
    },
    handler: async (request) =>
      service.update(request.ctx, id(request.params), request.body as SubscriptionInput),
  });

  app.delete('/v1/webhooks/:id', {
    config: write,
    schema: {
      tags,
      summary: 'Delete a subscription with its delivery log',
      params: IdParams,
      response: { 204: Type.Null({ description: 'Deleted' }), 404: Problem },
    },
    handler: async (request, reply) => {
      await service.remove(request.ctx, id(request.params));
      return reply.code(204).send();
    },
  });

  app.post('/v1/webhooks/:id/rotate-secret', {
    config: write,
    schema: {
      tags,
      summary:
        'New signing secret (in this answer only); for 24 h requests carry signatures by both',
      params: IdParams,
      response: { 200: WithSecret, ...errors },
    },
    handler: async (request) => {
      const { subscription, secret } = await service.rotateSecret(request.ctx, id(request.params));
      return { ...subscription, secret };
    },
  });

  app.post('/v1/webhooks/:id/test', {
    config: write,
    schema: {
      tags,
      summary: 'Send a synthetic webhook.ping event to the subscription',
      params: IdParams,
      response: { 202: DeliverySchema, 409: Problem, ...errors },
    },
    handler: async (request, reply) =>
      reply.code(202).send(await service.test(request.ctx, id(request.params))),
  });

  app.get('/v1/webhooks/:id/deliveries', {
    config: read,
    schema: {
      tags,
      summary: "A subscription's delivery log, newest first",
      params: IdParams,
      querystring: Type.Object({ ...Paging, status: Type.Optional(DeliveryStatusSchema) }),
      response: { 200: page(DeliverySchema), ...errors },
    },
    handler: async (request) =>
      service.deliveries(
        request.ctx,
        id(request.params),
        request.query as { limit: number; cursor?: string; status?: DeliveryStatus },
      ),
  });

  app.get('/v1/webhooks/:id/deliveries/:deliveryId', {
    config: read,
    schema: {
      tags,
      summary: 'One delivery: the event as stored and every attempt',
      params: DeliveryParams,
      response: { 200: DeliveryDetailSchema, ...errors },
    },
    handler: async (request) => {
      const { id: subscriptionId, deliveryId } = ids(request.params);
      return service.delivery(request.ctx, subscriptionId, deliveryId);
    },
  });

  app.post('/v1/webhooks/:id/deliveries/:deliveryId/redeliver', {
    config: write,
    schema: {
      tags,
      summary: 'Send a delivery again now (also a succeeded or dead one); its log is kept',
      params: DeliveryParams,
      response: { 202: DeliverySchema, ...errors },
    },
    handler: async (request, reply) => {
      const { id: subscriptionId, deliveryId } = ids(request.params);
      return reply.code(202).send(await service.redeliver(request.ctx, subscriptionId, deliveryId));
    },
  });
}
