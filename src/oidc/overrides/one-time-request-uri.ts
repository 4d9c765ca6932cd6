import type { Adapter, AdapterPayload } from 'oidc-provider';

/**
 * RFC 9126 §4: a pushed request_uri is one-time. oidc-provider only consumes it when the
 * authorization responds, so until then any number of /auth requests could start flows from
 * it. It reads the PushedAuthorizationRequest in two places only: loading the request_uri at
 * /auth (lib/actions/authorization/pushed_authorization_requests.js) and, when a flow resumes
 * after its interaction, in respond (lib/actions/authorization/respond.js), which skips the
 * consumption check when nothing is found. So here the first `find` claims the request with
 * the store's conditional write and every later `find` finds nothing: one /auth starts one
 * flow, concurrent ones included, and the flow it started still completes. `consume` (the
 * direct respond, without an interaction) has nothing left to do.
 */
export function oneTimeRequestUri(adapter: Adapter & { consumeOnce(id: string): Promise<boolean> }): Adapter {
  return {
    upsert: (id, payload, expiresIn) => adapter.upsert(id, payload, expiresIn),
    find: async (id): Promise<AdapterPayload | undefined> => {
      const payload = await adapter.find(id);
      if (!payload || payload.consumed !== undefined || !(await adapter.consumeOnce(id))) return undefined;
      return payload;
    },
    findByUid: (uid) => adapter.findByUid(uid),
    findByUserCode: (userCode) => adapter.findByUserCode(userCode),
    destroy: (id) => adapter.destroy(id),
    revokeByGrantId: (grantId) => adapter.revokeByGrantId(grantId),
    consume: async () => {},
  };
}
