import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { pemCertificates } from '../config/tls.ts';
import type { PresentedCertificate } from '../oidc/sender-constraints.ts';

/**
 * Where a request's client certificate comes from (RFC 8705 §2): the TLS handshake of Keyward's
 * own HTTPS listener, or, behind a TLS-terminating proxy, a header the proxy sets. The header
 * is trusted only when KEYWARD_PROXY_HOPS says a proxy is there to overwrite it; otherwise any
 * client could name someone else's certificate.
 */
export interface ClientCertificateOptions {
  /** Lower-case header name (KEYWARD_CLIENT_CERT_HEADER). */
  header: string | undefined;
  proxyHops: number;
  /** PEM bundle of the CAs tls_client_auth certificates must chain to (KEYWARD_TLS_CLIENT_CA_FILE). */
  clientCa: Buffer | undefined;
  now: () => Date;
}

/** A PEM certificate is ~1-2 KiB; a header much larger is not one certificate (and is not parsed). */
export const MAX_CERTIFICATE_HEADER = 16 * 1024;

export class ClientCertificates {
  readonly #cache = new WeakMap<IncomingMessage, PresentedCertificate | null>();
  readonly #anchors: X509Certificate[];
  readonly #header: string | undefined;

  constructor(private readonly options: ClientCertificateOptions) {
    this.#anchors = options.clientCa ? pemCertificates(options.clientCa.toString('utf8')) : [];
    this.#header = options.proxyHops > 0 ? options.header : undefined;
  }

  /** The header is configured but cannot be trusted (no proxy hops): start-up warns. */
  get headerIgnored(): boolean {
    return !!this.options.header && this.options.proxyHops === 0;
  }

  /** The request's client certificate, once per request; undefined when none was presented. */
  readonly of = (req: IncomingMessage): PresentedCertificate | undefined => {
    let found = this.#cache.get(req);
    if (found === undefined) {
      found = this.#read(req) ?? null;
      this.#cache.set(req, found);
    }
    return found ?? undefined;
  };

  #read(req: IncomingMessage): PresentedCertificate | undefined {
    const socket = req.socket;
    if (socket instanceof TLSSocket) {
      const peer = socket.getPeerX509Certificate();
      // The listener asked for a certificate against the CA bundle: Node verified the chain.
      if (peer) return { certificate: peer, chained: socket.authorized && this.#anchors.length > 0 };
    }
    if (!this.#header) return undefined;
    const value = req.headers[this.#header];
    if (typeof value !== 'string' || !value || value.length > MAX_CERTIFICATE_HEADER) return undefined;
    const pem = this.#header === 'x-forwarded-client-cert' || /^\s*(By|Hash|Cert|Chain|Subject|URI|DNS)=/i.test(value)
      ? xfccCertificate(value)
      : decodePem(value);
    if (!pem) return undefined;
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pem);
    } catch {
      return undefined;
    }
    return { certificate, chained: chainsTo(certificate, this.#anchors, this.options.now()) };
  }
}

/** nginx's `$ssl_client_escaped_cert`: the PEM, URL-encoded. */
export function decodePem(value: string): string | undefined {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  return /^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*$/.test(text.trim() + '\n') ? text.trim() : undefined;
}

/**
 * Envoy's `x-forwarded-client-cert`: comma-separated elements of `;`-separated `Key=value`
 * pairs (values may be double-quoted). Envoy appends an element per proxy, so the first one
 * was written by the proxy the client's TLS connection reached; its `Cert` pair holds the
 * URL-encoded PEM of the client certificate.
 */
export function xfccCertificate(value: string): string | undefined {
  const element = splitOutsideQuotes(value, ',')[0];
  if (!element) return undefined;
  for (const pair of splitOutsideQuotes(element, ';')) {
    const at = pair.indexOf('=');
    if (at < 0 || pair.slice(0, at).trim().toLowerCase() !== 'cert') continue;
    let cert = pair.slice(at + 1).trim();
    if (cert.startsWith('"') && cert.endsWith('"') && cert.length >= 2) cert = cert.slice(1, -1).replace(/\\(.)/g, '$1');
    return decodePem(cert);
  }
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && quoted && i + 1 < text.length) {
      current += c + text[++i]!;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Whether `certificate` is valid now and was issued by one of `anchors` (issuer name and
 * signature, validity dates of both). Every certificate in the bundle is trusted, so an
 * intermediate CA is listed there when clients' certificates come from it.
 */
export function chainsTo(certificate: X509Certificate, anchors: readonly X509Certificate[], now: Date): boolean {
  const valid = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  if (!valid(certificate)) return false;
  return anchors.some((anchor) => anchor.ca && valid(anchor) && certificate.checkIssued(anchor) && certificate.verify(anchor.publicKey));
}
