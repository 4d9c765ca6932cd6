import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';

/** The HTTPS listener's material (KEYWARD_TLS_CERT_FILE, KEYWARD_TLS_KEY_FILE), read and checked at start. */
export interface TlsConfig {
  cert: Buffer;
  key: Buffer;
  /** The CA bundle the handshake checks client certificates against (see `clientCa`). */
  clientCa: Buffer | undefined;
}

export interface TlsVariables {
  KEYWARD_TLS_CERT_FILE?: string | undefined;
  KEYWARD_TLS_KEY_FILE?: string | undefined;
  KEYWARD_TLS_CLIENT_CA_FILE?: string | undefined;
}

function read(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`invalid ${variable}: cannot read ${file}${code ? ` (${code})` : ''}`);
  }
}

/** Every certificate of a PEM bundle, in file order. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function certificates(variable: string, file: string): Buffer {
  const pem = read(variable, file);
  let parsed: X509Certificate[];
  try {
    parsed = pemCertificates(pem.toString('utf8'));
  } catch {
    throw new ConfigError(`invalid ${variable}: ${file} holds a PEM block that is not an X.509 certificate`);
  }
  if (!parsed.length) throw new ConfigError(`invalid ${variable}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return pem;
}

/**
 * The TLS listener (undefined: plain HTTP) and the CA bundle tls_client_auth certificates must
 * chain to (KEYWARD_TLS_CLIENT_CA_FILE, PEM, one or more; also used for certificates a proxy
 * forwards in KEYWARD_CLIENT_CERT_HEADER). A ConfigError names the variable at fault.
 */
export function loadTls(env: TlsVariables): { tls: TlsConfig | undefined; clientCa: Buffer | undefined } {
  const { KEYWARD_TLS_CERT_FILE: certFile, KEYWARD_TLS_KEY_FILE: keyFile, KEYWARD_TLS_CLIENT_CA_FILE: caFile } = env;
  const clientCa = caFile ? certificates('KEYWARD_TLS_CLIENT_CA_FILE', caFile) : undefined;
  if (!certFile && !keyFile) return { tls: undefined, clientCa };
  if (!certFile) throw new ConfigError('invalid KEYWARD_TLS_CERT_FILE: set both KEYWARD_TLS_CERT_FILE and KEYWARD_TLS_KEY_FILE, or neither');
  if (!keyFile) throw new ConfigError('invalid KEYWARD_TLS_KEY_FILE: set both KEYWARD_TLS_CERT_FILE and KEYWARD_TLS_KEY_FILE, or neither');
  const cert = certificates('KEYWARD_TLS_CERT_FILE', certFile);
  const key = read('KEYWARD_TLS_KEY_FILE', keyFile);
  try {
    createPrivateKey(key);
  } catch {
    throw new ConfigError(`invalid KEYWARD_TLS_KEY_FILE: ${keyFile} holds no PEM private key`);
  }
  return { tls: { cert, key, clientCa }, clientCa };
}
