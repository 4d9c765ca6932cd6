import { z } from 'zod';
import { Conflict } from '../../domain/errors.ts';
import { adminAudience } from '../../identity/admin-roles.ts';
import type { ResourceService } from '../../identity/resources.ts';
import type { RoleService } from '../../identity/roles.ts';
import type { UserService } from '../../identity/users.ts';
import { pageQuery, resourceCreate, resourcePatch, roleAssignment, roleCreate, rolePatch, userCreate, userPatch } from '../../identity/input.ts';
import { decodeCursor, pageBody } from '../pagination.ts';
import { defineRoute, type AdminRoute } from '../route.ts';
import { pageOf } from '../schemas/common.ts';
import { resourceView, roleParam, roleView, userView, uuidParam } from '../schemas/identity.ts';

const userId = z.strictObject({ id: uuidParam });
const roleName = z.strictObject({ name: roleParam });
const resourceId = z.strictObject({ id: uuidParam });

export function userRoutes(users: UserService): AdminRoute[] {
  return [
    defineRoute({
      method: 'post', path: '/users', operationId: 'createUser', tag: 'users', summary: 'Create a user (password hashed with argon2id)',
      body: userCreate, conflicts: true,
      response: { status: 201, description: 'The user', schema: userView },
      handler: ({ body }) => users.create(body),
      audit: (_input, result) => ({ subject: result.id }),
    }),
    defineRoute({
      method: 'get', path: '/users', operationId: 'listUsers', tag: 'users', summary: 'List users by id',
      query: pageQuery,
      response: { status: 200, description: 'A page of users', schema: pageOf(userView) },
      handler: async ({ query }) => pageBody('users', await users.list({ limit: query.limit, after: decodeCursor('users', query.cursor) })),
    }),
    defineRoute({
      method: 'get', path: '/users/{id}', operationId: 'getUser', tag: 'users', summary: 'Read a user',
      params: userId,
      response: { status: 200, description: 'The user', schema: userView },
      handler: ({ params }) => users.get(params.id),
    }),
    defineRoute({
      method: 'patch', path: '/users/{id}', operationId: 'updateUser', tag: 'users', summary: 'Change a user; null clears email or name',
      params: userId, body: userPatch, conflicts: true,
      response: { status: 200, description: 'The updated user', schema: userView },
      handler: ({ params, body }) => users.update(params.id, body),
    }),
    defineRoute({
      method: 'delete', path: '/users/{id}', operationId: 'deleteUser', tag: 'users', summary: 'Delete a user',
      params: userId,
      response: { status: 204, description: 'Deleted' },
      handler: ({ params }) => users.delete(params.id),
    }),
    defineRoute({
      method: 'put', path: '/users/{id}/roles', operationId: 'setUserRoles', tag: 'users', summary: 'Replace a user\'s roles',
      params: userId, body: roleAssignment,
      response: { status: 200, description: 'The updated user', schema: userView },
      handler: ({ params, body }) => users.setRoles(params.id, body.roles),
      audit: ({ params, body }) => ({ subject: params.id, details: { roles: body.roles } }),
    }),
  ];
}

export function roleRoutes(roles: RoleService): AdminRoute[] {
  return [
    defineRoute({
      method: 'post', path: '/roles', operationId: 'createRole', tag: 'roles', summary: 'Create a role with its permissions (scopes), global or scoped to one API (`resource`)',
      body: roleCreate, conflicts: true,
      response: { status: 201, description: 'The role', schema: roleView },
      handler: ({ body }) => roles.create(body),
      audit: (_input, result) => ({ subject: result.name }),
    }),
    defineRoute({
      method: 'get', path: '/roles', operationId: 'listRoles', tag: 'roles', summary: 'List roles by name',
      query: pageQuery,
      response: { status: 200, description: 'A page of roles', schema: pageOf(roleView) },
      handler: async ({ query }) => pageBody('roles', await roles.list({ limit: query.limit, after: decodeCursor('roles', query.cursor) })),
    }),
    defineRoute({
      method: 'get', path: '/roles/{name}', operationId: 'getRole', tag: 'roles', summary: 'Read a role',
      params: roleName,
      response: { status: 200, description: 'The role', schema: roleView },
      handler: ({ params }) => roles.get(params.name),
    }),
    defineRoute({
      method: 'patch', path: '/roles/{name}', operationId: 'updateRole', tag: 'roles', summary: 'Change a role\'s description or permissions',
      params: roleName, body: rolePatch,
      response: { status: 200, description: 'The updated role', schema: roleView },
      handler: ({ params, body }) => roles.update(params.name, body),
    }),
    defineRoute({
      method: 'delete', path: '/roles/{name}', operationId: 'deleteRole', tag: 'roles',
      summary: 'Delete a role and its assignments (the built-in admin roles cannot be deleted)',
      params: roleName, conflicts: true,
      response: { status: 204, description: 'Deleted' },
      handler: ({ params }) => roles.delete(params.name),
    }),
  ];
}

export function resourceRoutes(resources: ResourceService, issuer: string): AdminRoute[] {
  /** The admin API's own resource server: changing or deleting it would lock every admin out. */
  const guard = async (id: string) => {
    const current = await resources.get(id);
    if (current.identifier === adminAudience(issuer)) throw new Conflict('the admin API\'s own resource server cannot be changed or deleted');
  };
  return [
    defineRoute({
      method: 'post', path: '/resources', operationId: 'createResource', tag: 'resources',
      summary: 'Register an API: the audience of its access tokens, its scopes, token TTL and signing algorithm',
      body: resourceCreate, conflicts: true,
      response: { status: 201, description: 'The resource server', schema: resourceView },
      handler: ({ body }) => resources.create(body),
      audit: (_input, result) => ({ subject: result.id, details: { identifier: result.identifier } }),
    }),
    defineRoute({
      method: 'get', path: '/resources', operationId: 'listResources', tag: 'resources', summary: 'List resource servers',
      query: pageQuery,
      response: { status: 200, description: 'A page of resource servers', schema: pageOf(resourceView) },
      handler: async ({ query }) => pageBody('resources', await resources.list({ limit: query.limit, after: decodeCursor('resources', query.cursor) })),
    }),
    defineRoute({
      method: 'get', path: '/resources/{id}', operationId: 'getResource', tag: 'resources', summary: 'Read a resource server',
      params: resourceId,
      response: { status: 200, description: 'The resource server', schema: resourceView },
      handler: ({ params }) => resources.get(params.id),
    }),
    defineRoute({
      method: 'patch', path: '/resources/{id}', operationId: 'updateResource', tag: 'resources', summary: 'Change a resource server',
      params: resourceId, body: resourcePatch, conflicts: true,
      response: { status: 200, description: 'The updated resource server', schema: resourceView },
      async handler({ params, body }) {
        await guard(params.id);
        return resources.update(params.id, body);
      },
    }),
    defineRoute({
      method: 'delete', path: '/resources/{id}', operationId: 'deleteResource', tag: 'resources', summary: 'Delete a resource server',
      params: resourceId, conflicts: true,
      response: { status: 204, description: 'Deleted' },
      async handler({ params }) {
        await guard(params.id);
        await resources.delete(params.id);
      },
    }),
  ];
}
