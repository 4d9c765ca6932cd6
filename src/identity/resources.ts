import type { PrismaClient } from '../store/store.ts';
import type { SigningAlg } from '../keys/store.ts';
import type { ChangeFeed } from './changes.ts';

/** An API: the audience of access tokens and the scopes it understands. */
export interface ResourceServerRecord {
  id: string;
  identifier: string;
  name: string;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: SigningAlg;
}

export interface ResourceInput {
  identifier: string;
  name?: string;
  scopes?: string[];
  access_token_ttl?: number;
  signing_alg?: SigningAlg;
}

export class ResourceService {
  #byIdentifier: Promise<Map<string, ResourceServerRecord>> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    changes.subscribe((change) => {
      if (change.kind === 'resource') this.#byIdentifier = undefined;
    });
  }

  /** Hot path: the resource server for an `aud`/`resource` value, from the cache. */
  async byIdentifier(identifier: string): Promise<ResourceServerRecord | undefined> {
    if (!this.#byIdentifier) {
      const loading = this.prisma.resourceServer.findMany().then((rows) => new Map(rows.map((r) => [r.identifier, {
        id: r.id,
        identifier: r.identifier,
        name: r.name,
        scopes: r.scopes,
        accessTokenTtl: r.accessTokenTtl,
        signingAlg: r.signingAlg as SigningAlg,
      }])));
      this.#byIdentifier = loading;
      loading.catch(() => { if (this.#byIdentifier === loading) this.#byIdentifier = undefined; });
    }
    return (await this.#byIdentifier).get(identifier);
  }

  /** Creates the resource server when missing. */
  async ensure(input: ResourceInput): Promise<void> {
    await this.prisma.resourceServer.upsert({
      where: { identifier: input.identifier },
      create: {
        identifier: input.identifier,
        name: input.name ?? '',
        scopes: input.scopes ?? [],
        accessTokenTtl: input.access_token_ttl ?? 3600,
        signingAlg: input.signing_alg ?? 'ES256',
      },
      update: {},
    });
    await this.changes.publish({ kind: 'resource', id: input.identifier });
  }
}
