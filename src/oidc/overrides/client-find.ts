import type { Client, Provider } from 'oidc-provider';
import type { ProviderClients } from '../client-instances.ts';

/**
 * Serves `provider.Client.find(id)` from Keyward's cache of Client objects (client-instances.ts).
 * oidc-provider's own `find` (lib/models/client.js) asks the adapter for the metadata on every
 * call, `JSON.stringify`s and SHA-256-hashes it to find its cached Client, and keeps only 100:
 * per token that is a metadata object, a serialisation and a hash, and past 100 active clients
 * a full client validation. `find` is the one way oidc-provider looks a client up (every caller
 * awaits it) and its own result is a Client it reuses across requests too, so a Client kept
 * here until the change feed names its client answers exactly what the original would. A miss
 * goes through the original `find` (adapter, validation, static clients), unchanged.
 */
export function installClientFind(provider: Provider, cache: ProviderClients): void {
  const Client = provider.Client;
  const original = Client.find.bind(Client) as (id: string) => Promise<Client | undefined>;
  Client.find = async function find(id: string): Promise<Client | undefined> {
    if (typeof id !== 'string' || !id.length) return original(id);
    return cache.find(id, original);
  };
}
