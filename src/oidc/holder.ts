import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { JWKS } from 'oidc-provider';

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * The current oidc-provider instance. oidc-provider takes its keys at construction, so a new
 * key set means a new Provider; swapping the reference is atomic and requests already inside
 * the old instance finish there (all state lives in the store).
 */
export class ProviderHolder {
  #provider: Provider;
  #handler: Handler;
  #signingAlgs: ReadonlySet<string>;
  readonly #listeners = new Set<(provider: Provider) => void>();

  /** `jwks`: the key set `provider` was built with (oidc-provider keeps its own copy out of reach). */
  constructor(provider: Provider, jwks: JWKS) {
    this.#provider = provider;
    this.#handler = provider.callback();
    this.#signingAlgs = signingAlgsOf(jwks);
  }

  /**
   * Algorithms the running provider can sign with: those of its keys not restricted to
   * verification (keys/keyset.ts marks staged and retiring keys `key_ops: ["verify"]`).
   */
  get signingAlgs(): ReadonlySet<string> {
    return this.#signingAlgs;
  }

  get current(): Provider {
    return this.#provider;
  }

  get handler(): Handler {
    return this.#handler;
  }

  swap(provider: Provider, jwks: JWKS): void {
    this.#provider = provider;
    this.#handler = provider.callback();
    this.#signingAlgs = signingAlgsOf(jwks);
    for (const listener of this.#listeners) listener(provider);
  }

  /** Called with each new instance (e.g. to attach event listeners). */
  onSwap(listener: (provider: Provider) => void): void {
    this.#listeners.add(listener);
  }
}

function signingAlgsOf(jwks: JWKS): ReadonlySet<string> {
  return new Set(jwks.keys
    .filter((key) => typeof key.alg === 'string' && (!key.key_ops || key.key_ops.includes('sign')))
    .map((key) => key.alg!));
}
