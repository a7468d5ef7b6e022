/**
 * Deduplication of business events: the same fact under different event ids, caught by rules
 * per event type (business key, window, action) inside the ingest transaction.
 */
export {
  DedupService,
  canonicalJson,
  reachesPersonalData,
  valueAt,
  windowMs,
  type DedupDeps,
  type DedupMetrics,
  type DedupOutcome,
} from './service.js';
export {
  checkDedupRules,
  type DataSchemaVersion,
  type RuleCheckDeps,
  type RuleRefusal,
} from './rules.js';
export { dedupRoutes } from './routes.js';
