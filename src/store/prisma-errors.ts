/** Prisma's error codes (https://www.prisma.io/docs/orm/reference/error-reference), read by the services that catch them. */

/** True when Prisma reports a unique-constraint violation. */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === 'P2002';
}

/** True when Prisma reports that the row to update or delete does not exist. */
export function isMissingRow(error: unknown): boolean {
  return (error as { code?: string }).code === 'P2025';
}

/** True when Prisma reports a foreign-key violation (a referenced row does not exist). */
export function isForeignKeyViolation(error: unknown): boolean {
  return (error as { code?: string }).code === 'P2003';
}
