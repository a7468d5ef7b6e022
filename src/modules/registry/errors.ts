/**
 * Errors of the registry API, in Confluent Schema Registry's shape ({error_code, message}) and
 * with its codes, so existing clients and serializers understand them.
 */
export class RegistryError extends Error {
  constructor(
    readonly errorCode: number,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export const registryErrors = {
  subjectNotFound: (subject: string) =>
    new RegistryError(40401, 404, `Subject '${subject}' not found.`),
  versionNotFound: (subject: string, version: string | number) =>
    new RegistryError(40402, 404, `Version ${version} not found for subject '${subject}'.`),
  schemaNotFound: (detail = 'Schema not found') => new RegistryError(40403, 404, detail),
  subjectNotSoftDeleted: (subject: string) =>
    new RegistryError(
      40405,
      404,
      `Subject '${subject}' was not deleted first before being permanently deleted`,
    ),
  versionNotSoftDeleted: (subject: string, version: number) =>
    new RegistryError(
      40407,
      404,
      `Subject '${subject}' Version ${version} was not deleted first before being permanently deleted`,
    ),
  subjectLevelCompatibilityNotConfigured: (subject: string) =>
    new RegistryError(
      40408,
      404,
      `Subject '${subject}' does not have subject-level compatibility configured`,
    ),
  incompatible: (subject: string, messages: readonly string[]) =>
    new RegistryError(
      409,
      409,
      `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: [${messages.join(', ')}]`,
    ),
  invalidSchema: (detail: string) => new RegistryError(42201, 422, `Invalid schema: ${detail}`),
  invalidVersion: (version: string) =>
    new RegistryError(
      42202,
      422,
      `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
    ),
  invalidCompatibility: (level: string) =>
    new RegistryError(
      42203,
      422,
      `Invalid compatibility level '${level}'. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive`,
    ),
  invalidMode: (mode: string) =>
    new RegistryError(
      42204,
      422,
      `Invalid mode '${mode}'. Valid values are READWRITE, READONLY and IMPORT`,
    ),
  operationNotPermitted: (detail: string) => new RegistryError(42205, 422, detail),
  unauthorized: (detail: string) => new RegistryError(40101, 401, detail),
  forbidden: (detail: string) => new RegistryError(40301, 403, detail),
  badRequest: (detail: string) => new RegistryError(400, 400, detail),
  routeNotFound: (detail: string) => new RegistryError(404, 404, detail),
  internal: (detail: string) => new RegistryError(50001, 500, detail),
  unavailable: (detail: string) => new RegistryError(50003, 503, detail),
};
