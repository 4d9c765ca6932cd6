import { z } from 'zod';
import { clientId } from '../../identity/clients/input.ts';
import { credentialId, federatedCredentialCreate, federatedTokenTest, type DryRun, type FederatedCredentialInput, type FederatedCredentialView } from '../../identity/federation/index.ts';
import { defineRoute, type AdminRoute } from '../route.ts';
import { federatedCredentialList, federatedCredentialView, federationDryRun } from '../schemas/federation.ts';

/** What the admin API needs of workload identity federation (identity/federation/). */
export interface AdminFederation {
  credentials: {
    create(clientId: string, input: FederatedCredentialInput): Promise<FederatedCredentialView>;
    list(clientId: string): Promise<FederatedCredentialView[]>;
    delete(clientId: string, id: string): Promise<FederatedCredentialView>;
  };
  authenticator: { dryRun(token: string): Promise<DryRun> };
}

const byClient = z.strictObject({ client_id: clientId });
const byCredential = z.strictObject({ client_id: clientId, id: credentialId });

/** DESIGN.md "Workloads without secrets": federated credentials and their dry run. */
export function federationRoutes(federation: AdminFederation): AdminRoute[] {
  return [
    defineRoute({
      method: 'post', path: '/clients/{client_id}/federated-credentials', operationId: 'createFederatedCredential', tag: 'federation',
      summary: 'Trust tokens of an external issuer (Kubernetes, GitHub Actions, GitLab CI, SPIFFE, another Keyward) as this federated_jwt client\'s credential',
      params: byClient, body: federatedCredentialCreate, conflicts: true,
      response: { status: 201, description: 'The credential', schema: federatedCredentialView },
      handler: ({ params, body }) => federation.credentials.create(params.client_id, body),
      audit: ({ params }, result) => ({
        subject: params.client_id,
        details: { federated_credential_id: result.id, issuer: result.issuer, subject: result.subject ?? result.subject_pattern },
      }),
    }),
    defineRoute({
      method: 'get', path: '/clients/{client_id}/federated-credentials', operationId: 'listFederatedCredentials', tag: 'federation',
      summary: 'List a client\'s federated credentials in the order they are tried',
      params: byClient,
      response: { status: 200, description: 'The client\'s credentials (at most 20)', schema: federatedCredentialList },
      handler: async ({ params }) => ({ items: await federation.credentials.list(params.client_id) }),
    }),
    defineRoute({
      method: 'delete', path: '/clients/{client_id}/federated-credentials/{id}', operationId: 'deleteFederatedCredential', tag: 'federation',
      summary: 'Stop trusting an external identity; tokens already issued with it live until they expire',
      params: byCredential,
      response: { status: 204, description: 'Deleted' },
      handler: ({ params }) => federation.credentials.delete(params.client_id, params.id),
      audit: ({ params }, result) => ({ subject: params.client_id, details: { federated_credential_id: params.id, issuer: result.issuer } }),
    }),
    defineRoute({
      method: 'post', path: '/federated-credentials/test', operationId: 'testFederatedToken', tag: 'federation',
      summary: 'Dry run: which federated credential would accept this external token, or why each does not (signature, lifetime, rules); consumes nothing and never logs the token',
      body: federatedTokenTest,
      response: { status: 200, description: 'The matching credential or null, and every candidate\'s reason', schema: federationDryRun },
      handler: ({ body }) => federation.authenticator.dryRun(body.token),
      // A dry run changes nothing; its audit event names no token.
      audit: (_input, result) => ({ subject: result.matched?.client_id ?? '', details: { matched: result.matched?.credential_id ?? null } }),
    }),
  ];
}
