/** Thrown when the environment does not describe a valid configuration; `message` is one line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
