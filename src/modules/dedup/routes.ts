import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import '../../platform/http/types.js';
import type { DedupService } from './service.js';

const tags = ['dedup'];
const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Decision = Type.Optional(
  Type.Object(
    { note: Type.Optional(Type.String({ maxLength: 500 })) },
    { additionalProperties: false },
  ),
);

export function dedupRoutes(app: FastifyInstance, service: DedupService): void {
  app.get('/v1/dedup/rules', {
    config: { scope: 'events:admin' },
    schema: { tags, summary: 'The business-duplicate rules in effect' },
    handler: () => service.rules,
  });

  app.get('/v1/dedup/log', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'What was dropped, merged, flagged or could not be keyed, and why',
      querystring: Type.Object({
        rule: Type.Optional(Type.String({ maxLength: 64 })),
        action: Type.Optional(
          Type.Union(['drop', 'merge', 'flag', 'unkeyed'].map((a) => Type.Literal(a))),
        ),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      }),
    },
    handler: (request) =>
      service.decisions(request.query as Parameters<DedupService['decisions']>[0]),
  });

  app.get('/v1/dedup/review', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'Flagged events waiting for a decision (or decided)',
      querystring: Type.Object({
        status: Type.Optional(
          Type.Union(['pending', 'released', 'rejected'].map((s) => Type.Literal(s))),
        ),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      }),
    },
    handler: (request) => service.reviews(request.query as Parameters<DedupService['reviews']>[0]),
  });

  app.get('/v1/dedup/review/:id', {
    config: { scope: 'events:admin' },
    schema: { tags, summary: 'A flagged event with the first one it repeats', params: Id },
    handler: (request) => service.review((request.params as { id: string }).id),
  });

  app.post('/v1/dedup/review/:id/release', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'Not a duplicate after all: publish it',
      params: Id,
      body: Decision,
    },
    handler: (request) =>
      service.release(
        request.ctx,
        (request.params as { id: string }).id,
        (request.body as { note?: string } | undefined)?.note,
      ),
  });

  app.post('/v1/dedup/review/:id/reject', {
    config: { scope: 'events:admin' },
    schema: {
      tags,
      summary: 'A duplicate indeed: keep it here, never published',
      params: Id,
      body: Decision,
    },
    handler: (request) =>
      service.reject(
        request.ctx,
        (request.params as { id: string }).id,
        (request.body as { note?: string } | undefined)?.note,
      ),
  });
}
