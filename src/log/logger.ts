import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may carry credentials. Redaction is the safety net; the code's rule is still
 * never to hand a secret, hash or private key to the logger in the first place.
 */
const REDACT = [
  'password', '*.password', 'client_secret', '*.client_secret', 'clientSecret', '*.clientSecret',
  'secret', '*.secret', 'hash', '*.hash', 'passwordHash', '*.passwordHash', 'authorization', '*.authorization',
  'req.headers.authorization', 'req.headers.cookie', 'd', '*.d', 'privateJwk', '*.privateJwk',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token', 'token', '*.token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'keyward' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
