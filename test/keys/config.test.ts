import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env.ts';

test('KEYWARD_SIGNING_ALGS defaults to ES256 and RS256', () => {
  assert.deepEqual(loadConfig({}).signingAlgs, ['ES256', 'RS256']);
});

test('KEYWARD_SIGNING_ALGS adds EdDSA when configured', () => {
  assert.deepEqual(loadConfig({ KEYWARD_SIGNING_ALGS: 'ES256, RS256,EdDSA' }).signingAlgs, ['ES256', 'RS256', 'EdDSA']);
});

test('KEYWARD_SIGNING_ALGS refuses unknown algorithms and symmetric ones by name', () => {
  assert.throws(() => loadConfig({ KEYWARD_SIGNING_ALGS: 'RS256,HS256' }), (e: Error) => e instanceof ConfigError && /KEYWARD_SIGNING_ALGS.*HS256/.test(e.message));
});

test('OpenID Connect Core §15.1: KEYWARD_SIGNING_ALGS must include RS256', () => {
  assert.throws(() => loadConfig({ KEYWARD_SIGNING_ALGS: 'ES256' }), (e: Error) => e instanceof ConfigError && /KEYWARD_SIGNING_ALGS.*RS256/.test(e.message));
});

test('KEYWARD_KEY_ROTATION_INTERVAL accepts 90s, 15m, 12h and 30d', () => {
  for (const [text, ms] of [['90s', 90_000], ['15m', 900_000], ['12h', 43_200_000], ['30d', 2_592_000_000]] as const) {
    assert.equal(loadConfig({ KEYWARD_KEY_ROTATION_INTERVAL: text }).keyRotationIntervalMs, ms);
  }
});
