/** Locations: stores, warehouses and dark stores, with where they are and what they can do. */
export { LocationsService, type LocationDirectory, type LocationsDeps } from './service.js';
export { locationRoutes } from './routes.js';
export { LOCATION_EVENTS } from './events.js';
