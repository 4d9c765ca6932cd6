import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/**
 * For servers whose URL must be known before they start (the issuer is baked into the
 * Provider, so it carries the port). A port found free can be taken by anyone before the server
 * binds it, so a start that fails with EADDRINUSE is repeated on a fresh port, a bounded number
 * of times, and every repetition is counted and reported rather than hidden. Servers whose URL
 * need not be known beforehand listen on port 0 instead.
 */
export const portRetries = { count: 0 };

const ATTEMPTS = 5;

/** Starts `start` on a port that was free a moment ago; again on another when it was taken meanwhile. */
export async function onFreshPort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await unusedPort();
    try {
      return await start(port);
    } catch (error) {
      if (!isAddressInUse(error) || attempt === ATTEMPTS) throw error;
      portRetries.count++;
      process.stderr.write(`# port ${port} was taken before the server bound it; starting again on a fresh port (retry ${portRetries.count})\n`);
    }
  }
}

export function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/** The error a child process start reports when its port was taken (it prints EADDRINUSE and exits). */
export function addressInUse(port: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`port ${port} is in use`), { code: 'EADDRINUSE' });
}

async function unusedPort(): Promise<number> {
  const srv = createServer();
  srv.unref();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
