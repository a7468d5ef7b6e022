import { Type, type Static } from '@sinclair/typebox';
import {
  postalAddress,
  GeoPoint,
  Identifier,
  MarketCode,
  resourceOf,
  TimeZone,
  schemaId,
} from './common.js';

export const LOCATION_TYPES = ['store', 'warehouse', 'dark-store'] as const;
export const LOCATION_CAPABILITIES = ['pickup', 'ship', 'same-day', 'returns'] as const;
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM' });

export const OpeningHours = Type.Array(
  Type.Object(
    {
      day: Type.Union(WEEKDAYS.map((d) => Type.Literal(d))),
      opens: LocalTime,
      closes: LocalTime,
    },
    { additionalProperties: false },
  ),
  { maxItems: 21, description: 'Regular opening hours in the location time zone' },
);

/** A business address of a store or warehouse (not personal data). */
export const BusinessAddress = postalAddress('Business address of a store or warehouse');

/** A store, warehouse or dark store that holds stock and may serve customers. */
export const Location = Type.Object(
  {
    id: Identifier('Location id chosen by the retailer, e.g. DE-BER-001'),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.Union(LOCATION_TYPES.map((t) => Type.Literal(t))),
    marketCode: MarketCode,
    geo: GeoPoint,
    address: Type.Optional(BusinessAddress),
    timeZone: TimeZone,
    openingHours: Type.Optional(OpeningHours),
    capabilities: Type.Array(Type.Union(LOCATION_CAPABILITIES.map((c) => Type.Literal(c))), {
      uniqueItems: true,
    }),
    capacity: Type.Object(
      { ordersPerHour: Type.Integer({ minimum: 0, maximum: 100000 }) },
      { additionalProperties: false, description: 'Fulfilment capacity' },
    ),
    allowNegativeStock: Type.Optional(
      Type.Boolean({ description: 'Whether stock may go below zero here (offline POS sales)' }),
    ),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive')], { default: 'active' }),
  },
  { $id: schemaId('location', 1), title: 'Location', additionalProperties: false },
);
export type Location = Static<typeof Location>;

export const LocationResource = resourceOf(Location, 'location', 'Location');
export type LocationResource = Static<typeof LocationResource>;
