/**
 * Confluent's wire format for schema-registry-framed messages, JSON flavour:
 *
 * | offset | size | content                                             |
 * | ------ | ---- | --------------------------------------------------- |
 * | 0      | 1    | magic byte, always 0                                |
 * | 1      | 4    | schema id, unsigned 32-bit big-endian (1..2^31-1)   |
 * | 5      | n    | the value as UTF-8 JSON text                        |
 *
 * Kafka clients that use a Confluent-compatible registry (Confluent's serializers,
 * `@kafkajs/confluent-schema-registry`) write and read exactly this layout, so a consumer can
 * look the schema up by id at `/registry/schemas/ids/<id>`. Pure: no I/O, no dependencies.
 */

export const MAGIC_BYTE = 0;
/** Magic byte plus schema id. */
export const WIRE_HEADER_BYTES = 5;
/** Registry ids are positive Java ints (Confluent writes them with `writeInt32BE`). */
export const MAX_SCHEMA_ID = 2 ** 31 - 1;

/** A buffer that is not a valid Confluent-framed JSON message, or a value that cannot be framed. */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

function assertSchemaId(schemaId: number): void {
  if (!Number.isInteger(schemaId) || schemaId < 1 || schemaId > MAX_SCHEMA_ID) {
    throw new WireFormatError(
      `wire format: schema id ${String(schemaId)} is outside 1..${MAX_SCHEMA_ID}`,
    );
  }
}

/** Frames `value` as magic byte 0, the 4-byte big-endian schema id and the UTF-8 JSON text. */
export function encodeWire(schemaId: number, value: unknown): Buffer {
  assertSchemaId(schemaId);
  const json: unknown = JSON.stringify(value);
  if (typeof json !== 'string') {
    throw new WireFormatError(`wire format: a value of type ${typeof value} has no JSON text`);
  }
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(WIRE_HEADER_BYTES + body.length);
  out[0] = MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, WIRE_HEADER_BYTES);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a Confluent-framed JSON message. Refuses, with a WireFormatError, a buffer shorter than
 * the 5-byte header, a magic byte other than 0, a schema id outside 1..2^31-1, a body that is
 * not UTF-8 and a body that is not JSON (an empty body included).
 */
export function decodeWire(buffer: Uint8Array): { schemaId: number; value: unknown } {
  if (buffer.byteLength < WIRE_HEADER_BYTES) {
    throw new WireFormatError(
      `wire format: ${buffer.byteLength} byte(s) is shorter than the ${WIRE_HEADER_BYTES}-byte header (magic byte + schema id)`,
    );
  }
  const magic = buffer[0] ?? -1;
  if (magic !== MAGIC_BYTE) {
    throw new WireFormatError(
      `wire format: magic byte is 0x${magic.toString(16).padStart(2, '0')}, expected 0x00 (not a schema-registry-framed message)`,
    );
  }
  // Byte by byte: `buffer` may be a view at any offset into a larger ArrayBuffer.
  const schemaId =
    (buffer[1] ?? 0) * 2 ** 24 +
    ((buffer[2] ?? 0) << 16) +
    ((buffer[3] ?? 0) << 8) +
    (buffer[4] ?? 0);
  if (schemaId < 1 || schemaId > MAX_SCHEMA_ID) {
    throw new WireFormatError(`wire format: schema id ${schemaId} is outside 1..${MAX_SCHEMA_ID}`);
  }
  let text: string;
  try {
    text = utf8.decode(buffer.subarray(WIRE_HEADER_BYTES));
  } catch {
    throw new WireFormatError(`wire format: the body after the header is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new WireFormatError(`wire format: the body is not valid JSON (${reason})`);
  }
  return { schemaId, value };
}
