import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * The current oidc-provider instance. oidc-provider takes its keys at construction, so a new
 * key set means a new Provider; swapping the reference is atomic and requests already inside
 * the old instance finish there (all state lives in the store).
 */
export class ProviderHolder {
  #provider: Provider;
  #handler: Handler;
  readonly #listeners = new Set<(provider: Provider) => void>();

  constructor(provider: Provider) {
    this.#provider = provider;
    this.#handler = provider.callback();
  }

  get current(): Provider {
    return this.#provider;
  }

  get handler(): Handler {
    return this.#handler;
  }

  swap(provider: Provider): void {
    this.#provider = provider;
    this.#handler = provider.callback();
    for (const listener of this.#listeners) listener(provider);
  }

  /** Called with each new instance (e.g. to attach event listeners). */
  onSwap(listener: (provider: Provider) => void): void {
    this.#listeners.add(listener);
  }
}
