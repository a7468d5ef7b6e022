/** Schema registry: Confluent-compatible REST API for JSON Schema, compatibility rules, the hub's canonical schemas. */
export {
  RegistryService,
  CanonicalSchemas,
  DEFAULT_COMPATIBILITY,
  type Mode,
  type SchemaInput,
} from './service.js';
export { eventCatalogRoute, registryRoutes } from './routes.js';
export { buildAsyncApi } from './asyncapi.js';
export { decodeWire, encodeWire, WireFormatError } from './wire-format.js';
export {
  RegistryEventShaper,
  ReshapeError,
  downcast,
  upcast,
  type ShapeRequest,
  type ShapedEvent,
} from './event-shaper.js';
export { RegistryError } from './errors.js';
