import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { EventEnvelope } from '../../model/schemas/event.js';
import '../../platform/http/types.js';
import type { IngestService } from './service.js';

const MAX_BATCH = 5000;
const Problem = Type.Ref('Problem');
/** The service checks envelopes itself (against the registry); Fastify only parses them. */
const noValidation = () => () => true;

export function ingestRoutes(app: FastifyInstance, service: IngestService): void {
  // Channel adapters may send structured-mode CloudEvents with their own media type.
  app.addContentTypeParser(
    'application/cloudevents+json',
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'),
  );
  const tags = ['events'];
  const id = (params: unknown) => (params as { id: string }).id;

  app.post('/v1/events', {
    config: { scope: 'events:write' },
    validatorCompiler: noValidation,
    schema: {
      tags,
      summary:
        "Ingest one event from a channel adapter, checked against its type's registered schema",
      body: EventEnvelope,
      response: {
        202: Type.Object({
          id: Type.String(),
          duplicate: Type.Boolean({ description: 'This event id was ingested before' }),
          deduplicated: Type.Optional(
            Type.Object(
              {
                action: Type.Union([
                  Type.Literal('drop'),
                  Type.Literal('merge'),
                  Type.Literal('flag'),
                ]),
                rule: Type.String(),
                firstEventId: Type.String(),
                reviewId: Type.Optional(Type.String()),
              },
              { description: 'A business rule found the same fact: the event was not published' },
            ),
          ),
        }),
        422: Problem,
      },
    },
    handler: async (request, reply) =>
      reply.code(202).send(await service.ingest(request.ctx, request.body)),
  });

  app.post('/v1/events/batch', {
    config: { scope: 'events:write' },
    bodyLimit: 32 * 1024 * 1024,
    schema: {
      tags,
      summary: `Ingest up to ${MAX_BATCH} events; invalid ones go to the dead-letter store with their reasons`,
      body: Type.Object(
        { items: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }) },
        { additionalProperties: false },
      ),
    },
    handler: async (request) =>
      service.ingestBatch(request.ctx, (request.body as { items: unknown[] }).items),
  });

  app.get('/v1/dead-letters', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'List dead letters (events that could not be ingested or applied), oldest first',
      querystring: Type.Object({
        consumer: Type.Optional(Type.String({ maxLength: 200 })),
        status: Type.Optional(
          Type.Union([
            Type.Literal('open'),
            Type.Literal('replay-requested'),
            Type.Literal('replayed'),
            Type.Literal('discarded'),
          ]),
        ),
        cursor: Type.Optional(Type.String({ maxLength: 64 })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      }),
    },
    handler: async (request) =>
      service.deadLetters(
        request.query as { consumer?: string; status?: string; cursor?: string; limit: number },
      ),
  });

  app.get('/v1/dead-letters/:id', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'Inspect a dead letter: the event as received and why it was refused',
      params: Type.Object({ id: Type.String() }),
    },
    handler: async (request) => service.deadLetter(id(request.params)),
  });

  app.put('/v1/dead-letters/:id', {
    config: { scope: 'events:admin' },
    validatorCompiler: noValidation,
    schema: {
      tags,
      summary: 'Fix a dead letter: replace the stored event (checked when replayed)',
      params: Type.Object({ id: Type.String() }),
      body: Type.Object({ envelope: Type.Unknown() }),
    },
    handler: async (request) => {
      const body = request.body as { envelope?: unknown } | null;
      return service.fix(id(request.params), body?.envelope ?? null);
    },
  });

  app.post('/v1/dead-letters/:id/replay', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'Ingest a (fixed) dead letter again',
      params: Type.Object({ id: Type.String() }),
    },
    handler: async (request) => service.replay(request.ctx, id(request.params)),
  });

  app.post('/v1/dead-letters/:id/discard', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'Close a dead letter without replaying it (kept for the record)',
      params: Type.Object({ id: Type.String() }),
    },
    handler: async (request) => service.discard(id(request.params)),
  });
}
