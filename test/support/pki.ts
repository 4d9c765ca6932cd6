import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A certificate and its key, as PEM text and as files (for curl and nginx). */
export interface Issued {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** RFC 8705 §3.1: base64url SHA-256 of the DER certificate. */
  thumbprint: string;
}

/**
 * A test PKI made with the real `openssl` at test time: a CA for clients, one for the server,
 * and whatever client certificates a test asks for. EC P-256 keys keep it fast.
 */
export class TestPki {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'keyward-pki-'));
  #serial = 0;

  /** A self-signed CA certificate. */
  ca(name: string): Issued {
    const base = path.join(this.dir, name);
    this.#openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`,
      '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return this.#read(base);
  }

  /** A certificate for `subject` (openssl form: /C=DE/O=Example/CN=svc) issued by `ca`, or self-signed without one. */
  issue(name: string, subject: string, options: { ca?: Issued; san?: string; server?: boolean; days?: number } = {}): Issued {
    const base = path.join(this.dir, name);
    const ext = `${base}.ext`;
    writeFileSync(ext, [
      'basicConstraints=CA:FALSE',
      `extendedKeyUsage=${options.server ? 'serverAuth' : 'clientAuth'}`,
      ...(options.san ? [`subjectAltName=${options.san}`] : []),
    ].join('\n'));
    const days = String(options.days ?? 1);
    if (!options.ca) {
      this.#openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`,
        '-days', days, '-subj', subject, '-extensions', 'v3', '-config', this.#config(ext)]);
      return this.#read(base);
    }
    this.#openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subject]);
    this.#openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', options.ca.certFile, '-CAkey', options.ca.keyFile, '-set_serial', String(++this.#serial + 1000),
      '-out', `${base}.pem`, '-days', days, '-extfile', ext]);
    return this.#read(base);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** An openssl config whose [v3] section is the extension file (for self-signed `req -x509`). */
  #config(ext: string): string {
    const file = `${ext}.cnf`;
    writeFileSync(file, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${readFileSync(ext, 'utf8')}\n`);
    return file;
  }

  #read(base: string): Issued {
    const cert = readFileSync(`${base}.pem`, 'utf8');
    return {
      cert, key: readFileSync(`${base}.key`, 'utf8'), certFile: `${base}.pem`, keyFile: `${base}.key`,
      thumbprint: thumbprintOf(cert),
    };
  }

  #openssl(args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

export function thumbprintOf(pem: string): string {
  return Buffer.from(new X509Certificate(pem).fingerprint256.replace(/:/g, ''), 'hex').toString('base64url');
}
