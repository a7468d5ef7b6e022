/** Catalog: products and their SKUs (the unit stock is kept for), with GTINs and prices per market. */
export { CatalogService, type CatalogDeps, type SkuDirectory } from './service.js';
export { catalogRoutes } from './routes.js';
export { PRODUCT_EVENTS } from './events.js';
