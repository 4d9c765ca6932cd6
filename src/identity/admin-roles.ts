/**
 * The admin API's own roles and audience. A leaf: bootstrap seeds them, roles.ts protects them
 * from deletion, the admin edge checks them — none of those may import another for it.
 */
export const ADMIN_ROLE = 'admin';
export const ADMIN_READ_ROLE = 'admin:read';

export function adminAudience(issuer: string): string {
  return `${issuer}/admin`;
}
