/**
 * "The database did not answer": a lost or refused connection, a timeout, a server shutting
 * down. Requests that meet one answer 503 (the caller may retry), never 500; anything else a
 * query throws (a constraint, bad data) is a different failure and keeps its own meaning.
 */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
  constructor(options?: { cause?: unknown }) {
    super('the database is unreachable', options);
  }
}

/** Socket errors of the driver (node's errno codes). */
const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

/**
 * SQLSTATEs that describe the server or the connection, not the statement: class 08
 * (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now), 57014
 * (statement timeout), 53300 (too many connections).
 */
const SQLSTATE = /^(08[0-9A-Z]{3}|57P0[1-3]|57014|53300)$/;

/** Prisma's own codes for the same: P1001 unreachable, P1002/P1008 timed out, P1017 closed, P2024 pool timeout. */
const PRISMA = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

/** Driver-adapter error kinds (@prisma/adapter-pg) for the same. */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

/** Messages node-postgres uses for the same when it has no code to give. */
const DRIVER_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Cannot use a pool after calling end/;

/** True when `error` (or its cause, or the driver error Prisma wraps) means the store is unreachable. */
export function isStoreUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    if (current instanceof StoreUnavailable) return true;
    const e = current as { code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown; code?: unknown; originalCode?: unknown } } }; cause?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (code && (SOCKET.has(code) || SQLSTATE.test(code) || PRISMA.has(code))) return true;
    const adapter = e.meta?.driverAdapterError?.cause;
    if (adapter) {
      if (typeof adapter.kind === 'string' && ADAPTER_KINDS.has(adapter.kind)) return true;
      const sqlstate = adapter.originalCode ?? adapter.code;
      if (typeof sqlstate === 'string' && SQLSTATE.test(sqlstate)) return true;
    }
    if (typeof e.message === 'string' && DRIVER_MESSAGE.test(e.message)) return true;
    current = e.cause;
  }
  return false;
}
