import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { exportSPKI, importJWK } from 'jose';
import { z } from 'zod';
import { decodeCursor, encodeCursor, type ListKind } from '../admin/pagination.ts';
import type { Page } from '../domain/page.ts';
import { clientCreate, clientId, secretRotation } from '../identity/clients/input.ts';
import { credentialId, federatedCredentialCreate, federatedTokenTest } from '../identity/federation/index.ts';
import { boundClientOptions, boundClientValues } from './bound-clients.ts';
import { pageQuery, resourceCreate, roleAssignment, roleCreate, userCreate } from '../identity/input.ts';
import { keyRotate, signingAlg } from '../keys/input.ts';
import type { SigningKeyRecord } from '../keys/store.ts';
import { migrate, migrationStatus } from '../store/migrate.ts';
import type { Sql } from '../store/sql.ts';
import type { Services } from './services.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

export interface CommandInput {
  values: Values;
  positionals: string[];
  readStdin: () => Promise<string>;
}

/** What a command printed: `value` for --json, `text` for people. */
export interface Output {
  value: unknown;
  text: string;
}

export interface Command {
  name: string;
  args: string;
  summary: string;
  options: Options;
  /** Whether it needs the domain services (and so the KEK), or only the store. */
  needs: 'store' | 'services';
  /** Changes something: recorded as an `admin.change` audit event. */
  changes?: boolean;
  run(input: CommandInput, deps: { store: { sql: Sql }; services?: Services }): Promise<Output>;
}

/** Thrown for wrong usage: the message is printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Validates with the domain's input schemas, the admin API's too, so the CLI accepts exactly what the API does. */
function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const path = (p: readonly PropertyKey[]) => p.map(String).join('.') || 'input';
    throw new UsageError(result.error.issues.map((i) => `${path(i.path)}: ${i.message}`).join('\n'));
  }
  return result.data;
}

const list = (v: string | boolean | string[] | undefined): string[] | undefined => (Array.isArray(v) ? v : undefined);
const str = (v: string | boolean | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: string | boolean | string[] | undefined): number | undefined => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : typeof v === 'string' ? Number.NaN : undefined);
const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function services(deps: { services?: Services }): Services {
  return deps.services!;
}

const pageOptions: Options = { limit: { type: 'string' }, cursor: { type: 'string' } };

async function listing<T>(kind: ListKind, values: Values, load: (p: { limit: number; after: string | undefined }) => Promise<Page<T>>, line: (item: T) => string): Promise<Output> {
  const query = parse(pageQuery, defined({ limit: str(values.limit), cursor: str(values.cursor) }));
  let after: string | undefined;
  try {
    after = decodeCursor(kind, query.cursor);
  } catch {
    throw new UsageError('--cursor is not a cursor of this list');
  }
  const page = await load({ limit: query.limit, after });
  const next = page.next === null ? null : encodeCursor(kind, page.next);
  const lines = page.items.map(line);
  if (next) lines.push(`(more: --cursor ${next})`);
  return { value: { items: page.items, next_cursor: next }, text: lines.join('\n') || '(none)' };
}

const show = (value: object): string => Object.entries(value)
  .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n');

export const COMMANDS: Command[] = [
  {
    name: 'migrate', args: '', summary: 'Apply pending database migrations', options: {}, needs: 'store',
    async run(_input, { store }) {
      const applied = await migrate(store.sql);
      return { value: { applied }, text: applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date' };
    },
  },
  {
    name: 'migrate status', args: '', summary: 'Show applied and pending migrations', options: {}, needs: 'store',
    async run(_input, { store }) {
      const status = await migrationStatus(store.sql);
      return { value: status, text: [...status.applied.map((m) => `applied  ${m}`), ...status.pending.map((m) => `pending  ${m}`)].join('\n') || '(no migrations)' };
    },
  },
  {
    name: 'clients create', changes: true, args: '', needs: 'services',
    summary: 'Register a client; prints its secret once',
    options: {
      name: { type: 'string' }, grant: { type: 'string', multiple: true }, 'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true }, 'auth-method': { type: 'string' }, scope: { type: 'string' },
      role: { type: 'string', multiple: true }, 'first-party': { type: 'boolean' }, 'resource-server': { type: 'string' },
      'default-resource': { type: 'string' }, 'allowed-resource': { type: 'string', multiple: true }, 'admin-console': { type: 'boolean' },
      ...boundClientOptions,
      'exchange-audience': { type: 'string', multiple: true },
    },
    async run({ values }, deps) {
      const body = parse(clientCreate, { ...await boundClientValues(values), ...defined({
        client_name: str(values.name), grant_types: list(values.grant) ?? ['client_credentials'], redirect_uris: list(values['redirect-uri']),
        post_logout_redirect_uris: list(values['post-logout-redirect-uri']), token_endpoint_auth_method: str(values['auth-method']),
        scope: str(values.scope), roles: list(values.role), first_party: values['first-party'] === true ? true : undefined,
        resource_server: str(values['resource-server']), default_resource: str(values['default-resource']),
        allowed_resources: list(values['allowed-resource']), admin_console: values['admin-console'] === true ? true : undefined,
        token_exchange_audiences: list(values['exchange-audience']),
      }) });
      const { client, client_secret } = await services(deps).clients.create(body);
      const value = { ...client, ...(client_secret ? { client_secret } : {}) };
      const text = `client_id: ${client.client_id}${client_secret ? `\nclient_secret: ${client_secret}\n(store the secret now; it is not shown again)` : ''}`;
      return { value, text };
    },
  },
  {
    name: 'clients list', args: '', summary: 'List clients', options: pageOptions, needs: 'services',
    run: ({ values }, deps) => listing('clients', values, (p) => services(deps).clients.list(p),
      (c) => `${c.client_id}  ${c.client_name}  [${c.grant_types.join(',')}]  roles=${c.roles.join(',') || '-'}${c.disabled ? '  (disabled)' : ''}`),
  },
  {
    name: 'clients get', args: '<client_id>', summary: 'Show a client', options: {}, needs: 'services',
    async run({ positionals }, deps) {
      const client = await services(deps).clients.get(parse(clientId, positionals[0]));
      return { value: client, text: show(client) };
    },
  },
  {
    name: 'clients rotate-secret', changes: true, args: '<client_id>', needs: 'services',
    summary: 'Issue a new client secret; the previous one stays valid for --previous-expires-in seconds (default 3600)',
    options: { 'previous-expires-in': { type: 'string' } },
    async run({ values, positionals }, deps) {
      const body = parse(secretRotation, defined({ previous_secret_expires_in: int(values['previous-expires-in']) }));
      const result = await services(deps).clients.rotateSecret(parse(clientId, positionals[0]), body.previous_secret_expires_in);
      return { value: result, text: `client_secret: ${result.client_secret}\nprevious secret valid until: ${result.previous_secret_expires_at}` };
    },
  },
  {
    name: 'clients roles', changes: true, args: '<client_id>', summary: 'Set a client\'s roles (repeat --role; none clears them)',
    options: { role: { type: 'string', multiple: true } }, needs: 'services',
    async run({ values, positionals }, deps) {
      const { roles } = parse(roleAssignment, { roles: list(values.role) ?? [] });
      const client = await services(deps).clients.setRoles(parse(clientId, positionals[0]), roles);
      return { value: client, text: `${client.client_id} roles: ${client.roles.join(', ') || '(none)'}` };
    },
  },
  {
    name: 'users create', changes: true, args: '', needs: 'services',
    summary: 'Create a user; the password is read from stdin (--password-stdin), never from arguments',
    options: { username: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', multiple: true }, 'password-stdin': { type: 'boolean' } },
    async run({ values, readStdin }, deps) {
      if (values['password-stdin'] !== true) throw new UsageError('--password-stdin is required (pipe the password in, e.g. printf %s "$PW" | …)');
      const password = (await readStdin()).replace(/\r?\n$/, '');
      const body = parse(userCreate, defined({ username: str(values.username), email: str(values.email), name: str(values.name), password, roles: list(values.role) }));
      const user = await services(deps).users.create(body);
      return { value: user, text: `id: ${user.id}\nusername: ${user.username}` };
    },
  },
  {
    name: 'users list', args: '', summary: 'List users', options: pageOptions, needs: 'services',
    run: ({ values }, deps) => listing('users', values, (p) => services(deps).users.list(p),
      (u) => `${u.id}  ${u.username}  ${u.email ?? '-'}  roles=${u.roles.join(',') || '-'}${u.disabled ? '  (disabled)' : ''}`),
  },
  {
    name: 'users roles', changes: true, args: '<user_id>', summary: 'Set a user\'s roles (repeat --role; none clears them)',
    options: { role: { type: 'string', multiple: true } }, needs: 'services',
    async run({ values, positionals }, deps) {
      const { roles } = parse(roleAssignment, { roles: list(values.role) ?? [] });
      const user = await services(deps).users.setRoles(positionals[0]!, roles);
      return { value: user, text: `${user.username} roles: ${user.roles.join(', ') || '(none)'}` };
    },
  },
  {
    name: 'roles create', changes: true, args: '<name>', summary: 'Create a role (repeat --permission for each scope it grants)',
    options: { description: { type: 'string' }, permission: { type: 'string', multiple: true }, resource: { type: 'string' } }, needs: 'services',
    async run({ values, positionals }, deps) {
      const role = await services(deps).roles.create(parse(roleCreate, defined({
        name: positionals[0], description: str(values.description), permissions: list(values.permission), resource: str(values.resource),
      })));
      return { value: role, text: `role ${role.name}${role.resource ? ` (for ${role.resource})` : ''}: ${role.permissions.join(' ') || '(no permissions)'}` };
    },
  },
  {
    name: 'roles list', args: '', summary: 'List roles', options: pageOptions, needs: 'services',
    run: ({ values }, deps) => listing('roles', values, (p) => services(deps).roles.list(p),
      (r) => `${r.name}  ${r.resource ?? '(global)'}  ${r.permissions.join(' ') || '-'}  ${r.description}`),
  },
  {
    name: 'resources create', changes: true, args: '<identifier>', summary: 'Register an API (resource server)', needs: 'services',
    options: { name: { type: 'string' }, scope: { type: 'string', multiple: true }, ttl: { type: 'string' }, alg: { type: 'string' } },
    async run({ values, positionals }, deps) {
      const resource = await services(deps).resources.create(parse(resourceCreate, defined({
        identifier: positionals[0], name: str(values.name), scopes: list(values.scope), access_token_ttl: int(values.ttl), signing_alg: str(values.alg),
      })));
      return { value: resource, text: `id: ${resource.id}\nidentifier: ${resource.identifier}` };
    },
  },
  {
    name: 'resources list', args: '', summary: 'List resource servers', options: pageOptions, needs: 'services',
    run: ({ values }, deps) => listing('resources', values, (p) => services(deps).resources.list(p),
      (r) => `${r.id}  ${r.identifier}  scopes=${r.scopes.join(' ') || '-'}  ttl=${r.access_token_ttl}s  ${r.signing_alg}`),
  },
  {
    name: 'keys list', args: '', summary: 'List signing keys and their next transitions', options: {}, needs: 'services',
    async run(_input, deps) {
      const keys = await services(deps).keyService.list();
      return { value: { items: keys }, text: keys.map(keyLine).join('\n') || '(none)' };
    },
  },
  {
    name: 'keys rotate', changes: true, args: '', summary: 'Activate the next signing key now (refused until every cached JWKS holds it; --emergency also withdraws the current key at once)',
    options: { alg: { type: 'string' }, emergency: { type: 'boolean' } }, needs: 'services',
    async run({ values }, deps) {
      const body = parse(keyRotate, defined({ alg: str(values.alg), emergency: values.emergency === true ? true : undefined }));
      const s = services(deps);
      const keys = await s.keyService.rotate({ ...(body.alg ? { alg: body.alg } : {}), emergency: body.emergency ?? false, actor: s.actor });
      return { value: { items: keys }, text: keys.map(keyLine).join('\n') };
    },
  },
  {
    name: 'keys export', args: '', needs: 'services',
    summary: 'Write the public signing keys as PEM for gateways with static keys (HAProxy jwt_verify): <alg>-current.pem (signing now), '
      + '<alg>-next.pem (staged successor, else current) and <alg>-previous.pem (retiring, else current) into --out, or print them',
    options: { pem: { type: 'boolean' }, out: { type: 'string' }, alg: { type: 'string' } },
    async run({ values }, deps) {
      if (values.pem !== true) throw new UsageError('--pem is required (the JWKS itself is served at /jwks)');
      const alg = values.alg === undefined ? undefined : parse(signingAlg, str(values.alg));
      const exported = await exportKeys(await services(deps).keys.list(), alg);
      const out = str(values.out);
      if (out) {
        await mkdir(out, { recursive: true });
        for (const key of exported) {
          // Written aside and renamed: a gateway reloading meanwhile never reads half a file.
          const file = path.join(out, `${key.alg}-${key.role}.pem`);
          await writeFile(`${file}.tmp`, key.pem, { mode: 0o644 });
          await rename(`${file}.tmp`, file);
          key.file = file;
        }
      }
      const text = exported.map((k) => (out ? `${k.file}  ${k.kid}  ${k.state}` : `# ${k.alg} ${k.role}: kid ${k.kid} (${k.state})\n${k.pem}`)).join(out ? '\n' : '');
      return { value: { items: exported }, text: text || '(no keys)' };
    },
  },
  {
    name: 'keys rekey', changes: true, args: '', summary: 'Re-encrypt under KEYWARD_KEK every private key and instance secret that only KEYWARD_KEK_PREVIOUS opens (servers also do it at start)',
    options: {}, needs: 'services',
    async run(_input, deps) {
      const { signingKeys, instanceSecrets } = await services(deps).rekey();
      const value = {
        signing_keys: { rekeyed: signingKeys.rekeyed, already_current: signingKeys.current },
        instance_secrets: { rekeyed: instanceSecrets.rekeyed, already_current: instanceSecrets.current, created: instanceSecrets.created },
      };
      const text = [
        `signing keys:     ${signingKeys.rekeyed} re-encrypted, ${signingKeys.current} already under the current KEK`,
        `instance secrets: ${instanceSecrets.rekeyed} re-encrypted, ${instanceSecrets.current} already under the current KEK`,
        'Nothing is left under the previous KEK: KEYWARD_KEK_PREVIOUS may be removed once every instance runs with the current KEK.',
      ].join('\n');
      return { value, text };
    },
  },
  {
    name: 'federation create', changes: true, args: '<client_id>', needs: 'services',
    summary: 'Trust an external issuer\'s tokens as a federated_jwt client\'s credential (--claim name=value pins a string claim)',
    options: {
      name: { type: 'string' }, issuer: { type: 'string' }, 'jwks-uri': { type: 'string' }, jwks: { type: 'string' },
      subject: { type: 'string' }, 'subject-pattern': { type: 'string' }, audience: { type: 'string' }, claim: { type: 'string', multiple: true },
    },
    async run({ values, positionals }, deps) {
      const claims = list(values.claim)?.map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) throw new UsageError(`--claim ${pair}: expected name=value`);
        return [pair.slice(0, at), pair.slice(at + 1)] as const;
      });
      let jwks: unknown;
      try {
        jwks = str(values.jwks) === undefined ? undefined : JSON.parse(str(values.jwks)!) as unknown;
      } catch {
        throw new UsageError('--jwks: expected a JWKS as JSON ({"keys": [...]})');
      }
      const body = parse(federatedCredentialCreate, defined({
        name: str(values.name), issuer: str(values.issuer), jwks_uri: str(values['jwks-uri']), jwks,
        subject: str(values.subject), subject_pattern: str(values['subject-pattern']), audience: str(values.audience),
        claims: claims ? Object.fromEntries(claims) : undefined,
      }));
      const created = await services(deps).federation.credentials.create(parse(clientId, positionals[0]), body);
      return { value: created, text: show(created) };
    },
  },
  {
    name: 'federation list', args: '<client_id>', summary: 'List a client\'s federated credentials', options: {}, needs: 'services',
    async run({ positionals }, deps) {
      const items = await services(deps).federation.credentials.list(parse(clientId, positionals[0]));
      return { value: { items }, text: items.map((c) => `${c.id}  ${c.name}  ${c.issuer}  ${c.subject ?? c.subject_pattern}`).join('\n') || '(none)' };
    },
  },
  {
    name: 'federation delete', changes: true, args: '<client_id> <id>', summary: 'Delete a federated credential', options: {}, needs: 'services',
    async run({ positionals }, deps) {
      const deleted = await services(deps).federation.credentials.delete(parse(clientId, positionals[0]), parse(credentialId, positionals[1]));
      return { value: deleted, text: `deleted ${deleted.id}` };
    },
  },
  {
    name: 'federation test', args: '', needs: 'services',
    summary: 'Dry run: read an external token on stdin; print which credential accepts it, or why each does not',
    options: {},
    async run({ readStdin }, deps) {
      const { token } = parse(federatedTokenTest, { token: (await readStdin()).trim() });
      const result = await services(deps).federation.authenticator.dryRun(token);
      const lines = result.reasons.map((r) => `${r.client_id}/${r.credential_id}: ${r.reason} (${r.detail})`);
      lines.unshift(result.matched ? `matched: ${result.matched.client_id}/${result.matched.credential_id}` : 'matched: none');
      return { value: result, text: lines.join('\n') };
    },
  },
];

interface ExportedKey {
  alg: string;
  role: 'current' | 'next' | 'previous';
  kid: string;
  state: string;
  pem: string;
  file?: string;
}

/**
 * Per algorithm: the newest active key (current), the oldest staged one (next, the key that
 * signs after the next rotation) and the newest retiring one (previous, whose tokens are still
 * live). A missing next or previous is the current key again, so a gateway config naming all
 * three files always loads.
 */
async function exportKeys(keys: SigningKeyRecord[], only: string | undefined): Promise<ExportedKey[]> {
  const out: ExportedKey[] = [];
  const algs = [...new Set(keys.filter((k) => k.state === 'active').map((k) => k.alg))].filter((a) => !only || a === only).sort();
  for (const alg of algs) {
    const of = (state: string) => keys.filter((k) => k.alg === alg && k.state === state);
    const newest = (list: SigningKeyRecord[]) => list.sort((a, b) => (b.activatedAt ?? b.createdAt).getTime() - (a.activatedAt ?? a.createdAt).getTime())[0];
    const current = newest(of('active'))!;
    const next = of('staged').sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())[0] ?? current;
    const previous = newest(of('retiring')) ?? current;
    for (const [role, key] of [['current', current], ['next', next], ['previous', previous]] as const) {
      const pem = await exportSPKI(await importJWK({ ...key.publicJwk, alg }, alg, { extractable: true }) as CryptoKey);
      out.push({ alg, role, kid: key.kid, state: key.state, pem });
    }
  }
  return out;
}

function keyLine(k: { kid: string; alg: string; state: string; role?: string; rotatable_at?: string; next_state?: string; next_transition_at?: string }): string {
  return `${k.kid}  ${k.alg}  ${k.state}${k.role ? ` (${k.role})` : ''}${k.next_state ? `  → ${k.next_state} at ${k.next_transition_at}` : ''}`
    + (k.rotatable_at ? `  rotatable from ${k.rotatable_at}` : '');
}
