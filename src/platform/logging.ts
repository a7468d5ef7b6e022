import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Structured JSON logs (pino, also Fastify's logger). Personal data never reaches a log line:
 * payloads are tokenized before they are stored or published, and request bodies are not logged.
 */
export function createLogger(
  options: { level?: string; pretty?: boolean; destination?: DestinationStream } = {},
): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: { service: 'nexus' },
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '***' },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
