import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  LOCATION_CAPABILITIES,
  LOCATION_TYPES,
  Location,
  LocationResource,
} from '../../model/schemas/location.js';
import { registerCollectionRoutes } from '../../platform/http/collection-routes.js';
import type { LocationsService } from './service.js';

export function locationRoutes(app: FastifyInstance, service: LocationsService): void {
  registerCollectionRoutes(app, {
    path: '/v1/locations',
    idField: 'id',
    tag: 'locations',
    item: Location,
    resource: LocationResource,
    filters: Type.Object({
      marketCode: Type.Optional(Type.String({ pattern: '^[A-Z]{2}(-[A-Z0-9]{1,8})?$' })),
      type: Type.Optional(Type.Union(LOCATION_TYPES.map((t) => Type.Literal(t)))),
      status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('inactive')])),
      capability: Type.Optional(Type.Union(LOCATION_CAPABILITIES.map((c) => Type.Literal(c)))),
    }),
    scopes: { read: 'locations:read', write: 'locations:write' },
    service,
    maxBulkItems: 5000,
    bulkBodyLimit: 16 * 1024 * 1024,
  });
}
