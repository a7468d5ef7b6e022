import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Channel } from '../../model/schemas/common.js';
import '../../platform/http/types.js';
import { SCOPES, type AccessService, type NewApiKey } from './service.js';

const ApiKeySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  channel: Channel,
  markets: Type.Union([Type.Array(Type.String()), Type.Null()]),
  scopes: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const NewKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    channel: Channel,
    scopes: Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), {
      minItems: 1,
      uniqueItems: true,
    }),
    markets: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Z]{2}(-[A-Z0-9]{1,8})?$' }), { uniqueItems: true }),
    ),
  },
  { additionalProperties: false },
);

export function accessRoutes(app: FastifyInstance, service: AccessService): void {
  app.get('/v1/api-keys', {
    config: { scope: 'keys:admin' },
    schema: {
      tags: ['api-keys'],
      summary: 'List API keys (never their secrets)',
      querystring: Type.Object({ includeRevoked: Type.Boolean({ default: false }) }),
      response: { 200: Type.Object({ items: Type.Array(ApiKeySchema) }) },
    },
    handler: async (request) => ({
      items: await service.list((request.query as { includeRevoked: boolean }).includeRevoked),
    }),
  });

  app.post('/v1/api-keys', {
    config: { scope: 'keys:admin' },
    schema: {
      tags: ['api-keys'],
      summary: 'Create a key for a channel client; the secret is in this response only',
      body: NewKeyBody,
      response: { 201: Type.Composite([ApiKeySchema, Type.Object({ secret: Type.String() })]) },
    },
    handler: async (request, reply) => {
      const { key, secret } = await service.create(request.body as NewApiKey);
      return reply.code(201).send({ ...key, secret });
    },
  });

  app.delete('/v1/api-keys/:id', {
    config: { scope: 'keys:admin' },
    schema: {
      tags: ['api-keys'],
      summary: 'Revoke a key',
      params: Type.Object({ id: Type.String() }),
    },
    handler: async (request, reply) => {
      await service.revoke((request.params as { id: string }).id);
      return reply.code(204).send();
    },
  });
}
