/** Events of the markets module; their data schemas are in model/events.ts. */
export const MARKET_EVENTS = {
  created: 'market.created.v1',
  updated: 'market.updated.v1',
  deleted: 'market.deleted.v1',
} as const;
