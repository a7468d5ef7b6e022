import { Type, type Static } from '@sinclair/typebox';
import { Channel, Identifier, MarketCode } from '../../model/schemas/common.js';
import { LOCATION_CAPABILITIES, LOCATION_TYPES } from '../../model/schemas/location.js';
import type { Site } from './sites.js';

const Units = Type.Integer({ minimum: 0, maximum: 1_000_000 });

/**
 * Which locations sell to a channel in a market, and how many units of every SKU each keeps
 * back from that channel (for example: stores keep 2 of each for walk-in customers, so the
 * web shop never promises the last two).
 */
export const ChannelPolicy = Type.Object(
  {
    marketCode: MarketCode,
    channel: Channel,
    locationTypes: Type.Array(Type.Union(LOCATION_TYPES.map((t) => Type.Literal(t))), {
      uniqueItems: true,
      description: 'Location types that serve the channel (default: all)',
    }),
    requiredCapabilities: Type.Array(
      Type.Union(LOCATION_CAPABILITIES.map((c) => Type.Literal(c))),
      { uniqueItems: true, description: 'A location serves only with all of these' },
    ),
    excludeLocations: Type.Array(Identifier('Location id'), { uniqueItems: true, maxItems: 10000 }),
    safetyStock: Type.Object(
      {
        default: Units,
        byLocationType: Type.Optional(
          Type.Partial(
            Type.Object(Object.fromEntries(LOCATION_TYPES.map((t) => [t, Units])), {
              additionalProperties: false,
            }),
          ),
        ),
        byLocation: Type.Optional(
          Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' }), Units),
        ),
      },
      { additionalProperties: false, description: 'Units per SKU kept back from this channel' },
    ),
  },
  { $id: 'ChannelPolicy', title: 'ChannelPolicy', additionalProperties: false },
);
export type ChannelPolicy = Static<typeof ChannelPolicy>;

/** Without a policy, every active location of the market serves the channel, keeping nothing back. */
export function defaultPolicy(marketCode: string, channel: Channel): ChannelPolicy {
  return {
    marketCode,
    channel,
    locationTypes: [...LOCATION_TYPES],
    requiredCapabilities: [],
    excludeLocations: [],
    safetyStock: { default: 0 },
  };
}

export function serves(policy: ChannelPolicy, site: Site): boolean {
  return (
    site.active &&
    site.marketCode === policy.marketCode &&
    policy.locationTypes.includes(site.type) &&
    policy.requiredCapabilities.every((c) => site.capabilities.has(c)) &&
    !policy.excludeLocations.includes(site.id)
  );
}

/** Units of each SKU the site keeps back from the policy's channel. */
export function channelSafetyStock(policy: ChannelPolicy, site: Site): number {
  const s = policy.safetyStock;
  return s.byLocation?.[site.id] ?? s.byLocationType?.[site.type] ?? s.default;
}
