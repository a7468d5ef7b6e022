/** Events of the locations module; their data schemas are in model/events.ts. */
export const LOCATION_EVENTS = {
  created: 'location.created.v1',
  updated: 'location.updated.v1',
  deleted: 'location.deleted.v1',
} as const;
