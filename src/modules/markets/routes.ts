import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Market, MarketResource } from '../../model/schemas/market.js';
import { registerCollectionRoutes } from '../../platform/http/collection-routes.js';
import type { MarketsService } from './service.js';

export function marketRoutes(app: FastifyInstance, service: MarketsService): void {
  registerCollectionRoutes(app, {
    path: '/v1/markets',
    idField: 'code',
    tag: 'markets',
    item: Market,
    resource: MarketResource,
    filters: Type.Object({
      status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('inactive')])),
      currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
    }),
    scopes: { read: 'markets:read', write: 'markets:write' },
    service,
    maxBulkItems: 500,
    bulkBodyLimit: 2 * 1024 * 1024,
  });
}
