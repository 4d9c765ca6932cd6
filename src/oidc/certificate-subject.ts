import { isIP } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import type { SubjectProperty } from '../identity/clients/index.ts';


const SAN_PREFIX: Record<Exclude<SubjectProperty, 'tls_client_auth_subject_dn'>, string> = {
  tls_client_auth_san_dns: 'DNS',
  tls_client_auth_san_uri: 'URI',
  tls_client_auth_san_ip: 'IP Address',
  tls_client_auth_san_email: 'email',
};

/**
 * RFC 8705 §2.1.2: the certificate's subject DN equals the registered one, or one of its SAN
 * entries of the registered type equals the registered value (exactly: a wildcard dNSName in
 * a certificate does not match a concrete registered name).
 */
export function matchesSubject(certificate: X509Certificate, property: SubjectProperty, expected: string): boolean {
  if (property === 'tls_client_auth_subject_dn') {
    const registered = parseDn(expected);
    const actual = certificateDn(certificate.subject);
    if (!registered || registered.length !== actual.length) return false;
    // RFC 4514 strings list the RDNs last-first; accept the certificate's order as well.
    const reversed = [...registered].reverse();
    return sameRdns(reversed, actual) || sameRdns(registered, actual);
  }
  const wanted = SAN_PREFIX[property];
  const entries = sanEntries(certificate.subjectAltName ?? '');
  return entries.some(([type, value]) => type === wanted && sameValue(property, value, expected));
}

function sameValue(property: SubjectProperty, actual: string, expected: string): boolean {
  if (property === 'tls_client_auth_san_dns') return actual.toLowerCase() === expected.toLowerCase();
  if (property === 'tls_client_auth_san_ip') return isIP(actual) > 0 && normalizeIp(actual) === normalizeIp(expected);
  return actual === expected;
}

function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  return new URL(`http://[${ip}]/`).hostname;
}

type Rdn = [type: string, value: string];

const sameRdns = (a: Rdn[], b: Rdn[]) => a.every(([t, v], i) => b[i]![0] === t && b[i]![1] === v);

/** Node's X509Certificate.subject: one `TYPE=value` per line, in certificate order. */
function certificateDn(subject: string): Rdn[] {
  return subject.split('\n').filter(Boolean).map((line) => {
    const at = line.indexOf('=');
    return [line.slice(0, at).trim().toUpperCase(), line.slice(at + 1).trim()];
  });
}

/** An RFC 4514 DN string (`CN=svc,O=Example,C=DE`), escapes resolved; undefined when malformed. */
export function parseDn(text: string): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  let current = '';
  const push = () => {
    const at = current.search(/(?<!\\)=/);
    if (at <= 0) return false;
    const type = current.slice(0, at).trim().toUpperCase();
    const value = current.slice(at + 1).trim().replace(/\\([0-9a-fA-F]{2}|.)/g, (_m, c: string) => (c.length === 2 ? String.fromCharCode(parseInt(c, 16)) : c));
    if (!/^[A-Z][A-Z0-9-]*$|^\d+(\.\d+)+$/.test(type)) return false;
    rdns.push([type, value]);
    current = '';
    return true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[++i]!;
    } else if (c === ',' || c === ';') {
      if (!push()) return undefined;
    } else {
      current += c;
    }
  }
  if (!push()) return undefined;
  return rdns;
}

/** Node's subjectAltName: `DNS:a, URI:b, IP Address:c, email:d`; values with a comma come JSON-quoted. */
function sanEntries(text: string): [string, string][] {
  const entries: [string, string][] = [];
  const pattern = /(DNS|URI|IP Address|email|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(pattern)) {
    const raw = match[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        continue;
      }
    }
    entries.push([match[1]!, value]);
  }
  return entries;
}
