/**
 * Errors of the tokenization crypto core. Each kind of failure is its own Error subclass so a
 * caller can tell "the input was wrong" (FF1, token format) from "this ciphertext is not ours"
 * (vault) from "the hub is configured with the wrong master key" (key check) without parsing
 * messages; `code` is stable so a service above can map it to a problem document once.
 *
 * Messages never contain the plaintext, key material or a full ciphertext: errors end up in logs.
 */

export type TokenizationCryptoErrorCode =
  | 'FF1_KEY_SIZE'
  | 'FF1_RADIX'
  | 'FF1_LENGTH'
  | 'FF1_NUMERAL'
  | 'FF1_TWEAK'
  | 'FF1_ALPHABET'
  | 'TOKEN_FORMAT'
  | 'TOKEN_INPUT'
  | 'KEY_RING'
  | 'KEY_VERSION_UNKNOWN'
  | 'KEY_CHECK_MISMATCH'
  | 'VAULT_BLOB_MALFORMED'
  | 'VAULT_AUTH_FAILED';

/** Base class: every error thrown by this folder is one of these. */
export class TokenizationCryptoError extends Error {
  override readonly name: string = 'TokenizationCryptoError';

  constructor(
    readonly code: TokenizationCryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Bad FF1 parameters or input: key size, radix, length, numeral, tweak or alphabet. */
export class Ff1Error extends TokenizationCryptoError {
  override readonly name: string = 'Ff1Error';
}

/** A string that is not a well-formed token, or token parts that cannot be formatted. */
export class TokenFormatError extends TokenizationCryptoError {
  override readonly name: string = 'TokenFormatError';

  constructor(message: string) {
    super('TOKEN_FORMAT', message);
  }
}

/** A value that cannot be tokenized, e.g. nothing left after normalization. */
export class TokenInputError extends TokenizationCryptoError {
  override readonly name: string = 'TokenInputError';

  constructor(message: string) {
    super('TOKEN_INPUT', message);
  }
}

/** A key ring that cannot be built, or a key version the ring does not hold. */
export class KeyRingError extends TokenizationCryptoError {
  override readonly name: string = 'KeyRingError';
}

/** The configured master key does not produce the stored key check value. */
export class KeyCheckMismatchError extends TokenizationCryptoError {
  override readonly name: string = 'KeyCheckMismatchError';

  constructor(message: string) {
    super('KEY_CHECK_MISMATCH', message);
  }
}

/** A vault blob that is malformed, or fails authentication (wrong row, wrong key, tampered). */
export class VaultCipherError extends TokenizationCryptoError {
  override readonly name: string = 'VaultCipherError';
}
