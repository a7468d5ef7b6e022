/** Access: API keys per channel client, stored hashed, each with scopes (and optionally markets). */
export {
  AccessService,
  SCOPES,
  hasScope,
  type ApiKey,
  type NewApiKey,
  type Scope,
} from './service.js';
export { accessRoutes } from './routes.js';
