import { z } from 'zod';
import { ProblemSchema } from './problem.ts';
import type { AdminRoute } from './route.ts';

type JsonSchema = Record<string, unknown>;

/** JSON Schema 2020-12 for a zod schema; OpenAPI 3.1 uses that dialect as is. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

function parameters(schema: z.ZodType | undefined, location: 'path' | 'query'): object[] {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => ({
    name,
    in: location,
    required: location === 'path' || (object.required ?? []).includes(name),
    schema: property,
  }));
}

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/**
 * The OpenAPI 3.1 document, generated from the route table: the same zod schemas that
 * validate requests describe them here, so the document cannot drift from the server.
 * `named` lists schemas published as components (referenced instead of inlined).
 */
export function openApiDocument(issuer: string, routes: AdminRoute[], named: [z.ZodType, string][]): object {
  const names = new Map(named);
  const components: Record<string, JsonSchema> = { Problem: jsonSchema(ProblemSchema, 'output') };
  for (const [schema, name] of named) components[name] = jsonSchema(schema, 'output');
  const ref = (schema: z.ZodType, io: 'input' | 'output') => {
    const name = io === 'output' ? names.get(schema) : undefined;
    return name ? { $ref: `#/components/schemas/${name}` } : jsonSchema(schema, io);
  };

  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const responses: Record<string, object> = {
      [route.response.status]: {
        description: route.response.description,
        ...(route.response.schema ? { content: { 'application/json': { schema: ref(route.response.schema, 'output') } } } : {}),
      },
      401: problem('No access token, or an invalid, expired or revoked one (WWW-Authenticate: Bearer)'),
      403: problem(route.method === 'get' ? 'The token has neither role admin nor admin:read' : 'The token lacks role admin'),
    };
    if (route.body || route.query) responses[400] = problem('Validation failed; `errors` names each failing field');
    if (route.params) responses[404] = problem('No entity with this id');
    if (route.conflicts) responses[409] = problem('Conflicts with an existing entity');
    if (route.body) {
      responses[413] = problem('Body larger than 64 KiB');
      responses[415] = problem('Body is not application/json');
    }
    (paths[route.path] ??= {})[route.method] = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
      ...(route.body ? {
        requestBody: { required: !route.bodyOptional, content: { 'application/json': { schema: ref(route.body, 'input') } } },
      } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Keyward admin API',
      version: '1',
      description: 'Bearer access token issued by this issuer for the audience `<issuer>/admin`, with role `admin` (or `admin:read` for GET).',
    },
    servers: [{ url: `${issuer}/admin/v1` }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
  };
}
