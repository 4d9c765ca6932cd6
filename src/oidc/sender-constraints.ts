import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { SubjectProperty } from '../identity/clients/index.ts';
import { matchesSubject } from './certificate-subject.ts';

/** The client certificate of a request, and whether it chains to the tls_client_auth CA bundle. */
export interface PresentedCertificate {
  certificate: X509Certificate;
  chained: boolean;
}

export interface SenderConstraintOptions {
  /** The request's client certificate (TLS handshake or trusted proxy header; see http/client-certificate.ts). */
  clientCertificate: (req: IncomingMessage) => PresentedCertificate | undefined;
  /** RFC 9449 §8 nonces: HMAC secret shared by every instance (instance-secrets `dpop-nonce`). */
  dpopNonceSecret: Buffer;
  /** Every DPoP proof must carry a nonce (KEYWARD_DPOP_REQUIRE_NONCE). */
  dpopRequireNonce: boolean;
}

/**
 * Sender-constrained tokens: mutual-TLS client authentication and certificate-bound tokens
 * (RFC 8705), DPoP (RFC 9449). oidc-provider does the protocol; Keyward tells it where the
 * certificate is, whether it is trusted, and how a subject is matched. The same token
 * endpoint serves both kinds of client: the listener asks for a certificate without
 * requiring one, so no `mtls_endpoint_aliases` are needed (RFC 8705 §5).
 */
export function senderConstraintConfiguration(options: SenderConstraintOptions): Partial<Configuration> {
  const presented = (ctx: KoaContextWithOIDC) => options.clientCertificate(ctx.req);
  return {
    features: {
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: (ctx) => presented(ctx)?.certificate,
        certificateAuthorized: (ctx) => presented(ctx)?.chained === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const certificate = presented(ctx)?.certificate;
          return !!certificate && matchesSubject(certificate, property as SubjectProperty, expected);
        },
      },
      dPoP: {
        enabled: true,
        // RFC 9449 §8: a nonce issued by one instance must be accepted by every other.
        nonceSecret: options.dpopNonceSecret,
        requireNonce: () => options.dpopRequireNonce,
        allowReplay: false,
      },
    },
  };
}
