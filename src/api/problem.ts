import { Type } from '@sinclair/typebox';
import { ERROR_CODES, NexusError, isNexusError, type FieldError } from '../model/errors.js';

/** RFC 9457 problem details, plus our stable `code` and the request id. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI reference naming the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    code: Type.String({ description: 'Stable error code to branch on' }),
    requestId: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.String({ description: 'JSON Pointer (RFC 6901) to the offending value' }),
          detail: Type.String(),
          in: Type.Optional(Type.String()),
        }),
      ),
    ),
    available: Type.Optional(
      Type.Integer({ description: 'INSUFFICIENT_STOCK: units that could be had' }),
    ),
  },
  { $id: 'Problem', title: 'Problem', additionalProperties: true },
);

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export const problemType = (code: string): string =>
  `/problems/${code.toLowerCase().replace(/_/g, '-')}`;

export function toProblem(error: NexusError, requestId: string, instance?: string): Problem {
  const problem: Problem = {
    ...error.extensions,
    type: problemType(error.code),
    title: ERROR_CODES[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    requestId,
  };
  if (instance !== undefined) problem.instance = instance;
  if (error.errors.length > 0) problem.errors = error.errors;
  return problem;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: Array<{
    instancePath: string;
    message?: string;
    keyword: string;
    params: Record<string, unknown>;
  }>;
  validationContext?: string;
}

const PART: Record<string, FieldError['in']> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** Maps Fastify's own errors (parsing, validation, limits) to ours; anything else is INTERNAL. */
export function fromFastifyError(error: unknown): NexusError {
  if (isNexusError(error)) return error;
  const e = error as FastifyLikeError;
  if (e.validation) {
    const where = PART[e.validationContext ?? 'body'] ?? 'body';
    const errors: FieldError[] = e.validation.map((v) => {
      let pointer = v.instancePath;
      let detail = v.message ?? 'is invalid';
      if (v.keyword === 'additionalProperties') {
        pointer = `${pointer}/${String(v.params.additionalProperty)}`;
        detail = 'is not a known field';
      } else if (v.keyword === 'required') {
        pointer = `${pointer}/${String(v.params.missingProperty)}`;
        detail = 'is required';
      }
      return where === 'body'
        ? { pointer: pointer || '/', detail }
        : { pointer: pointer || '/', detail, in: where };
    });
    const first = errors[0];
    return new NexusError(
      'VALIDATION_FAILED',
      first ? `${first.pointer} ${first.detail}` : e.message,
      { errors },
    );
  }
  switch (e.code ?? '') {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new NexusError('MALFORMED_JSON', e.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new NexusError('PAYLOAD_TOO_LARGE', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new NexusError('UNSUPPORTED_MEDIA_TYPE', e.message);
    default:
      break;
  }
  // JSON.parse errors from the body parser carry statusCode 400 without a code.
  if (e.statusCode === 400 && error instanceof SyntaxError)
    return new NexusError('MALFORMED_JSON', e.message);
  if (e.statusCode === 400 && e.code?.startsWith('FST_ERR_CTP'))
    return new NexusError('MALFORMED_JSON', e.message);
  return new NexusError('INTERNAL', 'unexpected error', { cause: error });
}
