/** Ingest: events from channel adapters, checked against the registry; the dead-letter store. */
export { IngestService, INGEST, type BatchReport, type DeadLetter } from './service.js';
export { ingestRoutes } from './routes.js';
