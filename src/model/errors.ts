/**
 * Every failure the hub reports has a stable code. The code is what clients branch on; the
 * message is for people. `status` is the HTTP status the API maps the error to (RFC 9457).
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, title: 'Request body or parameters are invalid' },
  MALFORMED_JSON: { status: 400, title: 'Request body is not valid JSON' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body is too large' },
  UNAUTHENTICATED: { status: 401, title: 'Missing or invalid API key' },
  FORBIDDEN_SCOPE: { status: 403, title: 'API key lacks the required scope' },
  NOT_FOUND: { status: 404, title: 'Resource not found' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  CONFLICT: { status: 409, title: 'Conflict with the current state' },
  UNKNOWN_REFERENCE: { status: 422, title: 'A referenced resource does not exist' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key reused with a different request' },
  IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    title: 'A request with this Idempotency-Key is in progress',
  },
  IDEMPOTENCY_KEY_INVALID: { status: 400, title: 'Idempotency-Key header is invalid' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'A dependency of the hub is unavailable' },
  SCHEMA_VIOLATION: { status: 422, title: 'Payload does not match its registered schema' },
  INSUFFICIENT_STOCK: { status: 409, title: 'Not enough stock available' },
  RESERVATION_EXPIRED: { status: 409, title: 'The reservation has expired' },
  RESERVATION_NOT_ACTIVE: {
    status: 409,
    title: 'The reservation was already committed or released',
  },
  RESERVATION_ID_CONFLICT: {
    status: 409,
    title: 'The reservation id is taken by a reservation of a different line',
  },
  TOKEN_MALFORMED: { status: 400, title: 'Not a token' },
  TOKEN_CLASS_FORBIDDEN: {
    status: 403,
    title: 'API key may not detokenize this field class',
  },
  TOKEN_UNKNOWN: { status: 404, title: 'Token unknown to the vault' },
  TOKEN_ERASED: { status: 410, title: 'Token of erased personal data' },
  SUBJECT_ERASED: { status: 409, title: 'The customer was erased' },
  RATE_LIMITED: { status: 429, title: 'Rate limit exceeded' },
  CONFIG_INVALID: { status: 500, title: 'Configuration is invalid' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One offending field or value: `pointer` is a JSON Pointer (RFC 6901) into the request. */
export interface FieldError {
  pointer: string;
  detail: string;
  /** Which part of an HTTP request the pointer is into; body when absent. */
  in?: 'body' | 'query' | 'path' | 'header';
}

export class NexusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[];
  /** Extra members of the problem document, e.g. `available` on INSUFFICIENT_STOCK. */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      errors?: FieldError[];
      cause?: unknown;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NexusError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = options.errors ?? [];
    this.extensions = options.extensions ?? {};
  }
}

export const isNexusError = (value: unknown): value is NexusError => value instanceof NexusError;

export function notFound(kind: string, id: string): NexusError {
  return new NexusError('NOT_FOUND', `${kind} '${id}' does not exist`);
}

export function unknownReference(pointer: string, kind: string, id: string): NexusError {
  return new NexusError('UNKNOWN_REFERENCE', `${kind} '${id}' does not exist`, {
    errors: [{ pointer, detail: `unknown ${kind} '${id}'` }],
  });
}
