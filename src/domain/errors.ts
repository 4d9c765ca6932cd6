/** Domain errors; the HTTP edge maps them to problem+json, the CLI to a message and exit code. */
export class DomainError extends Error {
  constructor(message: string, readonly fields?: Record<string, string>) {
    super(message);
  }
}
export class NotFound extends DomainError {
  override name = 'NotFound';
}
export class Conflict extends DomainError {
  override name = 'Conflict';
  /** When the same request can succeed (a conflict that time resolves); answered as Retry-After. */
  readonly retryAt: Date | undefined = undefined;
}
export class Invalid extends DomainError {
  override name = 'Invalid';
}
