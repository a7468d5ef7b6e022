/** Markets: where the retailer sells, each with its currency, locales, time zone and channels. */
export { MarketsService, type MarketDirectory, type MarketsDeps } from './service.js';
export { marketRoutes } from './routes.js';
export { MARKET_EVENTS } from './events.js';
