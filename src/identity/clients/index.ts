export { ClientService, type ClientInput, type ClientPatch, type ClientServiceOptions } from './service.ts';
export type { ClientRecord, ClientView, StoredSecret } from './rows.ts';
export {
  AUTH_METHODS, GRANT_TYPES, TOKEN_EXCHANGE, clientShapeIssues, isConfidential, mayObtain, metadataOf, storedMetadata,
  type AuthMethod, type ClientIssue, type ClientMetadata, type GrantType,
} from './metadata.ts';
export { SUBJECT_PROPERTIES, certificateJwks, type SubjectProperty } from './binding.ts';
