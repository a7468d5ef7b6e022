import type { TSchema } from '@sinclair/typebox';
import { EVENT_DATA_SCHEMAS } from './events.js';
import { SCHEMA_BASE } from './schemas/common.js';
import { Customer } from './schemas/customer.js';
import { EventEnvelope } from './schemas/event.js';
import { InventoryLevel, Reservation } from './schemas/inventory.js';
import { Location } from './schemas/location.js';
import { Market } from './schemas/market.js';
import { Order } from './schemas/order.js';
import { Product } from './schemas/product.js';

/** The canonical model v1: one schema per entity, as registered and as written to schemas/. */
export const CANONICAL_SCHEMAS: Record<string, TSchema> = {
  market: Market,
  location: Location,
  product: Product,
  customer: Customer,
  order: Order,
  'inventory-level': InventoryLevel,
  reservation: Reservation,
  'event-envelope': EventEnvelope,
};

/** Every schema file under schemas/: entities, then each event type's data schema. */
export function schemaFiles(): Array<{ file: string; schema: Record<string, unknown> }> {
  const withDialect = (schema: TSchema) => ({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    ...schema,
  });
  return [
    ...Object.entries(CANONICAL_SCHEMAS).map(([name, schema]) => ({
      file: `${name}.v1.json`,
      schema: withDialect(schema),
    })),
    ...Object.entries(EVENT_DATA_SCHEMAS).map(([type, schema]) => ({
      file: `events/${type}.json`,
      schema: withDialect({ ...schema, $id: `${SCHEMA_BASE}/events/${type}.json`, title: type }),
    })),
  ];
}
