import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * The service's logger. Secrets must never reach it; redaction is the second line of defence
 * for a field that slips through: credentials, passwords, tokens, the Authorization header and
 * webhook secrets are replaced wherever they appear in these shapes.
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'credentials',
  '*.credentials',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'clientSecret',
  '*.clientSecret',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'req.headers.authorization',
  'req.headers.cookie',
  'webhook.secret',
];

export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination as pino.DestinationStream | undefined);
}
