import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TlsConfig } from '../config/tls.ts';

/**
 * Plain HTTP, or HTTPS when KEYWARD_TLS_* are set. A client certificate is requested, never
 * required (RFC 8705 §5: the same endpoints serve clients without one); the handshake checks
 * it against KEYWARD_TLS_CLIENT_CA_FILE and `socket.authorized` says whether it chained, which
 * only tls_client_auth looks at. self_signed_tls_client_auth and certificate-bound tokens use
 * any certificate the client proves it holds.
 */
export function createListener(handle: (req: IncomingMessage, res: ServerResponse) => void, tls: TlsConfig | undefined): Server {
  if (!tls) return createHttpServer(handle);
  return createHttpsServer({
    cert: tls.cert,
    key: tls.key,
    requestCert: true,
    rejectUnauthorized: false,
    // Without a bundle Node would check against the public roots, which must not vouch for clients.
    ca: tls.clientCa ?? [],
  }, handle);
}
