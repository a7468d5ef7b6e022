import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';

/**
 * Building blocks shared by the canonical schemas. Each canonical schema inlines them, so a
 * registered schema is self-contained (no cross-subject references needed to validate it).
 */

export const SCHEMA_BASE = 'https://schemas.nexus-hub.dev';
export const schemaId = (name: string, version: number): string =>
  `${SCHEMA_BASE}/${name}/v${version}.json`;

/** Retailer-chosen identifier: stable, URL-safe, case-sensitive. */
export const Identifier = (description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$', description });

export const MarketCode = Type.String({
  pattern: '^[A-Z]{2}(-[A-Z0-9]{1,8})?$',
  description: 'Market code: ISO 3166-1 alpha-2 country, optionally a suffix (DE, CH-FR).',
  examples: ['DE', 'SE', 'GB'],
});

export const CurrencyCode = Type.String({
  pattern: '^[A-Z]{3}$',
  description: 'ISO 4217 currency code',
  examples: ['EUR'],
});

export const Locale = Type.String({
  pattern: '^[a-z]{2,3}(-[A-Z]{2})?$',
  description: 'BCP 47 language tag (language and optional region)',
  examples: ['de-DE', 'sv-SE'],
});

export const TimeZone = Type.String({
  format: 'iana-time-zone',
  description: 'IANA time zone name',
  examples: ['Europe/Berlin'],
});

export const CountryCode = Type.String({
  pattern: '^[A-Z]{2}$',
  description: 'ISO 3166-1 alpha-2',
});

export const CHANNELS = ['web', 'app', 'pos', 'customer-service', 'marketplace'] as const;
export const Channel = Type.Union(
  CHANNELS.map((c) => Type.Literal(c)),
  { description: 'A touchpoint through which the retailer sells or serves customers' },
);
export type Channel = Static<typeof Channel>;

export const GeoPoint = Type.Object(
  {
    lat: Type.Number({ minimum: -90, maximum: 90 }),
    lon: Type.Number({ minimum: -180, maximum: 180 }),
  },
  { additionalProperties: false, description: 'WGS 84 coordinates' },
);
export type GeoPoint = Static<typeof GeoPoint>;

/** Text per locale, at least one entry: { "de-DE": "Laufschuh", "en-GB": "Running shoe" }. */
export const LocalizedText = Type.Record(Locale, Type.String({ minLength: 1, maxLength: 2000 }), {
  minProperties: 1,
  description: 'Text per BCP 47 locale',
});
export type LocalizedText = Static<typeof LocalizedText>;

export const Money = Type.Object(
  {
    currency: CurrencyCode,
    amount: Type.String({
      pattern: '^-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,4})?$',
      description: 'Decimal string in major units, never a float: "12.99"',
    }),
  },
  { additionalProperties: false },
);
export type Money = Static<typeof Money>;

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp' });

/** Free-form typed attributes (size, colour, material, ...). Values are scalars or lists of them. */
export const Attributes = Type.Record(
  Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$' }),
  Type.Union([
    Type.String({ maxLength: 2000 }),
    Type.Number(),
    Type.Boolean(),
    Type.Array(Type.Union([Type.String({ maxLength: 2000 }), Type.Number()]), { maxItems: 100 }),
  ]),
  { maxProperties: 200 },
);

/** Server-maintained fields of every stored resource. */
export const ResourceMeta = {
  version: Type.Integer({ minimum: 1, description: 'Increases by one with every change' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
};

/** A postal address; whether it is personal data depends on whose it is (see pii()). */
export const postalAddress = (description: string) =>
  Type.Object(
    {
      line1: Type.String({ minLength: 1, maxLength: 200 }),
      line2: Type.Optional(Type.String({ maxLength: 200 })),
      postalCode: Type.String({ minLength: 1, maxLength: 20 }),
      city: Type.String({ minLength: 1, maxLength: 100 }),
      region: Type.Optional(Type.String({ maxLength: 100 })),
      country: CountryCode,
    },
    { additionalProperties: false, description },
  );

/** The API's view of a stored entity: the entity plus version and timestamps, nothing else. */
export const resourceOf = <T extends TObject>(entity: T, name: string, title: string) =>
  Type.Composite([entity, Type.Object(ResourceMeta)], {
    $id: schemaId(`${name}-resource`, 1),
    title: `${title}Resource`,
    additionalProperties: false,
  });

/** Marks a JSON Schema property as personal data: tokenized at the edge (see x-pii). */
export const pii = <T extends TSchema>(schema: T, kind: string): T => ({
  ...schema,
  'x-pii': kind,
});
