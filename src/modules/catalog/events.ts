/** Events of the catalog module; their data schemas are in model/events.ts. */
export const PRODUCT_EVENTS = {
  created: 'product.created.v1',
  updated: 'product.updated.v1',
  deleted: 'product.deleted.v1',
} as const;
