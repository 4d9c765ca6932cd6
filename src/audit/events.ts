/** One audited fact: who did what to whom, from where, with what outcome. Never a secret. */
export interface AuditEvent {
  type: AuditEventType;
  actor?: string | undefined;
  subject?: string | undefined;
  outcome: 'success' | 'failure';
  ip?: string | undefined;
  details?: Record<string, unknown>;
  at?: Date;
  /** The id of the request it happened in: on the event's log line, not stored. */
  requestId?: string | undefined;
}

export type AuditEventType =
  | 'admin.change'
  | 'client.bootstrap'
  | 'login.success'
  | 'login.failure'
  | 'login.locked'
  | 'token.issued'
  | 'token.revoked'
  | 'token.exchanged'
  | 'key.transition'
  | 'device.requested'
  | 'device.code_entered'
  | 'device.approved'
  | 'device.denied';
