import https from 'node:https';

export interface TlsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export interface TlsRequest {
  method?: string;
  headers?: Record<string, string>;
  form?: Record<string, string>;
  /** The client certificate and key (PEM); omitted: no certificate is presented. */
  cert?: { cert: string; key: string } | undefined;
  /** Trust anchor for the server certificate. */
  ca: string;
}

/** One request over HTTPS with node:https, optionally presenting a client certificate (a fresh connection each time). */
export function tlsRequest(url: string, request: TlsRequest): Promise<TlsAnswer> {
  const body = request.form ? new URLSearchParams(request.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: request.method ?? (body ? 'POST' : 'GET'),
      ca: request.ca,
      ...(request.cert ? { cert: request.cert.cert, key: request.cert.key } : {}),
      agent: false,
      headers: {
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...request.headers,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
