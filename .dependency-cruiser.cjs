/**
 * Keyward's layer rules (docs/architecture.md): imports run one way,
 *   edge (http, admin, interaction, cli) → oidc / domain (identity, keys, audit) → store,
 * with config, log and domain (errors, paging) as leaves everyone may import.
 * app.ts, domain.ts and main.ts are the composition roots: they alone wire every layer.
 * Run with `npm run lint:deps`.
 */
const EDGE = '^src/(http|admin|interaction|cli)/';
const DOMAIN = '^src/(identity|keys|audit)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle makes load order matter and the layers meaningless.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'store-is-the-bottom',
      severity: 'error',
      comment: 'The store knows tables, not the domain or the protocol built on them.',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: ['^src/(store|config|log)/'] },
    },
    {
      name: 'domain-below-the-protocol-and-edges',
      severity: 'error',
      comment: 'identity, keys and audit serve the provider, the admin API and the CLI; they never reach up into them.',
      from: { path: DOMAIN },
      to: { path: '^src/(oidc|interaction|admin|cli|http)/' },
    },
    {
      name: 'oidc-below-the-edges',
      severity: 'error',
      comment: 'The provider assembly takes edge parts (pages, routes) as configuration from app.ts, never by import.',
      from: { path: '^src/oidc/' },
      to: { path: '^src/(interaction|admin|cli|http)/' },
    },
    {
      name: 'edges-do-not-import-each-other',
      severity: 'error',
      comment: 'Each edge is wired by app.ts; sharing between edges goes through the layers below.',
      from: { path: '^src/(admin|interaction|cli)/' },
      // Known remainder: the CLI pages with the admin API's opaque cursors (admin/pagination.ts);
      // the codec belongs below both edges once the vocabulary for its key forms has settled.
      to: { path: EDGE, pathNot: ['^src/$1/', '^src/admin/pagination\\.ts$'] },
    },
    {
      name: 'no-prisma-above-the-domain',
      severity: 'error',
      comment: 'Only the store and the domain services touch Prisma; protocol and edges get repositories injected. '
        + 'cli/run.ts and cli/services.ts are the CLI\'s composition root (they open the store like app.ts).',
      from: { path: '^src/(oidc|interaction|admin|http|cli)/', pathNot: ['^src/cli/(run|services)\\.ts$'] },
      to: { path: '^src/store/(generated/|store\\.ts$)' },
    },
    {
      name: 'leaves-stay-leaves',
      severity: 'error',
      comment: 'config, log and the shared domain vocabulary (errors, paging) import no Keyward module but each other, '
        + 'and the pure vocabularies the environment schema validates against (keys/algorithms.ts, identity/ids.ts).',
      from: { path: '^src/(config|log|domain)/' },
      to: { path: '^src/', pathNot: ['^src/(config|log|domain)/', '^src/keys/algorithms\\.ts$', '^src/identity/ids\\.ts$'] },
    },
    {
      name: 'vocabularies-stay-pure',
      severity: 'error',
      comment: 'The vocabularies config may import must not pull the domain in behind them.',
      from: { path: '^src/(keys/algorithms|identity/ids)\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'composition-roots-are-not-imported',
      severity: 'error',
      comment: 'app.ts, domain.ts and main.ts wire everything; nothing below may depend on the wiring.',
      from: { path: '^src/', pathNot: ['^src/(main|app)\\.ts$', '^src/cli/services\\.ts$'] },
      to: { path: '^src/(main|app|domain)\\.ts$' },
    },
    {
      name: 'verify-stands-alone',
      severity: 'error',
      comment: 'keyward/verify (package.json exports) runs in other services and gateways: it imports nothing of Keyward and no package but jose. '
        + 'Its forward-auth server (src/verify/server/) may add prom-client and pino, still nothing of Keyward.',
      from: { path: '^src/verify/' },
      to: {
        path: ['^src/', '(^|/)node_modules/'],
        pathNot: ['^src/verify/', '(^|/)node_modules/jose/', '(^|/)node_modules/(prom-client|pino)/'],
      },
    },
    {
      name: 'verify-library-is-jose-only',
      severity: 'error',
      comment: 'The library part of keyward/verify (everything but server/) depends on jose alone.',
      from: { path: '^src/verify/', pathNot: '^src/verify/server/' },
      to: { path: ['(^|/)node_modules/', '^src/verify/server/'], pathNot: '(^|/)node_modules/jose/' },
    },
  ],
  options: {
    // The generated Prisma client is a dependency target (the prisma rule needs the edge), not a graph to walk.
    doNotFollow: { path: ['node_modules', '^src/store/generated/'] },
    // node_modules is included (never followed) so that the keyward/verify rules see which packages it imports.
    includeOnly: ['^src/', '(^|/)node_modules/'],
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
    reporterOptions: {
      mermaid: { minify: false },
      dot: { collapsePattern: '^src/[^/]+' },
    },
  },
};
