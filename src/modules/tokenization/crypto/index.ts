/**
 * The cryptographic core of tokenization: FF1 format-preserving encryption, convergent
 * (deterministic) tokens, vault envelope encryption, key derivation and rotation, the shared
 * token format and display masks. Pure: node:crypto only, no I/O, no configuration reads.
 */
export {
  Ff1,
  Ff1Alphabet,
  Ff1Text,
  FF1_ALPHABETS,
  FF1_DEFAULT_MAX_LENGTH,
  FF1_DEFAULT_MAX_TWEAK_BYTES,
  FF1_LENGTH_LIMIT,
  FF1_MAX_RADIX,
  FF1_MIN_DOMAIN_SIZE,
  FF1_MIN_RADIX,
  type Ff1Options,
  type Ff1Tweak,
} from './ff1.js';
export { ConvergentTokenizer, normalizeValue } from './convergent.js';
export {
  VaultCipher,
  VAULT_HEADER_BYTES,
  VAULT_IV_BYTES,
  VAULT_TAG_BYTES,
  type VaultAad,
} from './vault-cipher.js';
export { KeyRing, keyCheckValue, MASTER_KEY_BYTES, type KeyRingOptions } from './key-ring.js';
export {
  CONVERGENT_TOKEN_BODY_BYTES,
  formatToken,
  isToken,
  MAX_KEY_VERSION,
  MIN_KEY_VERSION,
  parseToken,
  TOKEN_PREFIX,
  VAULT_TOKEN_BODY_BYTES,
  type TokenKind,
  type TokenParts,
} from './token-format.js';
export { FIELD_CLASSES, isFieldClass, type FieldClass } from './field-class.js';
export { mask, maskCard, maskEmail, maskGeneric, maskName, maskPhone, MASK } from './masking.js';
export {
  Ff1Error,
  KeyCheckMismatchError,
  KeyRingError,
  TokenFormatError,
  TokenInputError,
  TokenizationCryptoError,
  VaultCipherError,
  type TokenizationCryptoErrorCode,
} from './errors.js';
