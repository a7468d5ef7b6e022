import { Type } from '@sinclair/typebox';
import type { RegistryService } from '../src/modules/registry/index.js';
import { createAjv, SchemaValidator } from '../src/platform/validation.js';
import { now } from './lib.js';

/** A 15-field order event, the shape the registry benchmark validates. */
export const OrderPlacedBench = Type.Object(
  {
    orderId: Type.String({ minLength: 1 }),
    marketCode: Type.String({ pattern: '^[A-Z]{2}$' }),
    channel: Type.Union([Type.Literal('web'), Type.Literal('app'), Type.Literal('pos')]),
    customerId: Type.String(),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    placedAt: Type.String({ format: 'date-time' }),
    status: Type.String(),
    lineCount: Type.Integer({ minimum: 1 }),
    units: Type.Integer({ minimum: 1 }),
    subtotal: Type.String({ pattern: '^[0-9]+\\.[0-9]{2}$' }),
    shipping: Type.String({ pattern: '^[0-9]+\\.[0-9]{2}$' }),
    tax: Type.String({ pattern: '^[0-9]+\\.[0-9]{2}$' }),
    grandTotal: Type.String({ pattern: '^[0-9]+\\.[0-9]{2}$' }),
    deliveryMode: Type.Union([
      Type.Literal('ship-to-address'),
      Type.Literal('pickup-in-store'),
      Type.Literal('same-day'),
    ]),
    locationId: Type.String(),
  },
  { $id: 'https://schemas.nexus-hub.dev/bench/order-placed/v1.json', additionalProperties: false },
);

const sample = {
  orderId: 'O-2026-000123',
  marketCode: 'DE',
  channel: 'web',
  customerId: 'C-99',
  currency: 'EUR',
  placedAt: '2026-11-28T10:00:00Z',
  status: 'placed',
  lineCount: 3,
  units: 4,
  subtotal: '119.80',
  shipping: '4.95',
  tax: '22.76',
  grandTotal: '147.51',
  deliveryMode: 'pickup-in-store',
  locationId: 'DE-BER-001',
};

export interface RegistryBench {
  bareValidationsPerSecond: number;
  hubValidationsPerSecond: number;
  ratio: number;
  lookupsPerSecond: number;
}

function rate(n: number, run: () => void): number {
  const start = now();
  for (let i = 0; i < n; i++) run();
  return n / ((now() - start) / 1000);
}

/**
 * Bare compiled Ajv against the hub's path (registered schema looked up by event type, then
 * the cached compiled validator), in alternating rounds; and schema lookups by id.
 */
export async function registryBench(
  registry: RegistryService,
  n = 300_000,
): Promise<RegistryBench> {
  const canonical = await registry.registerCanonical({ 'order.placed.bench.v1': OrderPlacedBench });
  const { id } = await registry.register('order.placed.bench.v1', {
    schema: JSON.stringify(OrderPlacedBench),
    schemaType: 'JSON',
  });
  const bare = createAjv().compile(OrderPlacedBench);
  const validator: SchemaValidator = new SchemaValidator();
  const hubPath = () => {
    const registered = canonical.lookup('order.placed.bench.v1')!;
    validator.assert(registered.schema, sample, 'SCHEMA_VIOLATION', '/data');
  };
  if (!bare(sample)) throw new Error('the bench sample does not match its schema');
  hubPath();
  const bareRates: number[] = [];
  const hubRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    bareRates.push(rate(n, () => void bare(sample)));
    hubRates.push(rate(n, hubPath));
  }
  await registry.schemaById(id);
  const lookupsStart = now();
  const lookups = 200_000;
  for (let i = 0; i < lookups; i++) await registry.schemaById(id);
  const best = (xs: number[]) => Math.max(...xs);
  return {
    bareValidationsPerSecond: best(bareRates),
    hubValidationsPerSecond: best(hubRates),
    ratio: best(bareRates) / best(hubRates),
    lookupsPerSecond: lookups / ((now() - lookupsStart) / 1000),
  };
}
