import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Product, ProductResource } from '../../model/schemas/product.js';
import { registerCollectionRoutes } from '../../platform/http/collection-routes.js';
import type { CatalogService } from './service.js';

export function catalogRoutes(app: FastifyInstance, service: CatalogService): void {
  registerCollectionRoutes(app, {
    path: '/v1/products',
    idField: 'id',
    tag: 'products',
    item: Product,
    resource: ProductResource,
    filters: Type.Object({
      status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('archived')])),
      brand: Type.Optional(Type.String({ maxLength: 200 })),
      category: Type.Optional(
        Type.String({ maxLength: 200, description: 'This category and below' }),
      ),
      sku: Type.Optional(
        Type.String({ maxLength: 64, description: 'The product that has this SKU' }),
      ),
      gtin: Type.Optional(Type.String({ maxLength: 14 })),
    }),
    scopes: { read: 'catalog:read', write: 'catalog:write' },
    service,
    maxBulkItems: 5000,
    bulkBodyLimit: 32 * 1024 * 1024,
  });
}
