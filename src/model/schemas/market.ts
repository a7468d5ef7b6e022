import { Type, type Static } from '@sinclair/typebox';
import {
  Channel,
  CountryCode,
  CurrencyCode,
  Locale,
  MarketCode,
  resourceOf,
  TimeZone,
  schemaId,
} from './common.js';

/** A market: where the retailer sells, with one currency, its locales and enabled channels. */
export const Market = Type.Object(
  {
    code: MarketCode,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    country: CountryCode,
    currency: CurrencyCode,
    defaultLocale: Locale,
    locales: Type.Array(Locale, { minItems: 1, uniqueItems: true }),
    timeZone: TimeZone,
    channels: Type.Array(Channel, { uniqueItems: true, description: 'Channels enabled here' }),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive')], { default: 'active' }),
  },
  { $id: schemaId('market', 1), title: 'Market', additionalProperties: false },
);
export type Market = Static<typeof Market>;

export const MarketResource = resourceOf(Market, 'market', 'Market');
export type MarketResource = Static<typeof MarketResource>;
