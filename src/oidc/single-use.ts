import { errors, type Adapter, type Provider } from 'oidc-provider';

/** oidc-provider's Adapter plus the one write that makes consumption single-use under concurrency. */
export interface ArtifactAdapter extends Adapter {
  /**
   * Marks the artifact consumed unless it already is, atomically: of concurrent calls for one
   * id exactly one resolves true. False when it was already consumed or no longer exists.
   */
  consumeOnce(id: string): Promise<boolean>;
}

/** The error a request gets when it loses the race, per consumable model (as for a sequential replay). */
const LOST: Record<string, () => Error> = {
  AuthorizationCode: () => new errors.InvalidGrant('authorization code already consumed'),
  RefreshToken: () => new errors.InvalidGrant('refresh token already used'),
  DeviceCode: () => new errors.InvalidGrant('device code already consumed'),
  BackchannelAuthenticationRequest: () => new errors.InvalidGrant('backchannel authentication request already consumed'),
};

/**
 * oidc-provider checks `consumed` on the artifact it read, then calls `consume`: two requests
 * reading the same code before either consumes it would both pass (RFC 6749 §4.1.2: a code is
 * used once; RFC 9700 §4.14.2: refresh-token reuse revokes the grant). Through this adapter,
 * `consume` is the store's conditional write; the request that loses fails with the error
 * the sequential replay gets and, like it, revokes every token of the grant and the grant
 * itself, so the winner's tokens die too.
 */
export function singleUse(model: string, adapter: ArtifactAdapter, provider: () => Provider): Adapter {
  const lost = LOST[model];
  if (!lost) return adapter;
  return {
    upsert: (id, payload, expiresIn) => adapter.upsert(id, payload, expiresIn),
    find: (id) => adapter.find(id),
    findByUid: (uid) => adapter.findByUid(uid),
    findByUserCode: (userCode) => adapter.findByUserCode(userCode),
    destroy: (id) => adapter.destroy(id),
    revokeByGrantId: (grantId) => adapter.revokeByGrantId(grantId),
    consume: async (id) => {
      if (await adapter.consumeOnce(id)) return;
      const grantId = (await adapter.find(id))?.grantId;
      if (grantId) await revokeGrant(provider(), grantId);
      throw lost();
    },
  };
}

/** What oidc-provider's replay handling revokes: every artifact issued under the grant, then the grant. */
async function revokeGrant(provider: Provider, grantId: string): Promise<void> {
  await Promise.all([
    provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode,
    provider.BackchannelAuthenticationRequest,
  ].map((Model) => Model.revokeByGrantId(grantId)));
  await (await provider.Grant.find(grantId))?.destroy();
}
