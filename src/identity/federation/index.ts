export { FederatedAuthenticator, FederationRefused, type ClientLookup, type DryRun, type FederatedAuthentication } from './authenticator.ts';
export { credentialId, federatedCredentialCreate, federatedTokenTest, FEDERATION_ALGS, type FederatedCredentialInput } from './input.ts';
export { IssuerKeys, type IssuerKeysOptions } from './issuer-keys.ts';
export { subjectMatches, type FederatedCredential } from './rules.ts';
export { FederatedCredentialService, MAX_CREDENTIALS_PER_CLIENT, type FederatedCredentialView } from './service.ts';
export { FederatedTokenVerifier, type Failure, type FailureReason } from './verifier.ts';
