/**
 * Tokenization of personal data at the edge: the vault, convergent and FF1 tokens, masks,
 * detokenization behind scopes with an audit log and a rate limit, right to erasure, key
 * rotation and re-encryption. The pure crypto core is in ./crypto.
 */
export {
  auditedErrors,
  MAX_DETOKENIZE,
  PII_SCOPES,
  TokenizationService,
  type AuditEntry,
  type DetokenizeResult,
  type ErasureResult,
  type InboundTokenizer,
  type KeyStatus,
  type TokenizationDeps,
  type TokenizationKind,
  type TokenizationMetrics,
  type TokenizationSettings,
} from './service.js';
export { tokenizationRoutes } from './routes.js';
export { defaultKeyFile } from './master-key.js';
export type { PersonalValue } from './values.js';
export { FIELD_CLASSES, type FieldClass } from './crypto/index.js';
