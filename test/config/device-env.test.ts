import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env.ts';

function rejected(env: Record<string, string>, variable: string): void {
  assert.throws(() => loadConfig(env), (error: unknown) => error instanceof ConfigError
    && error.message.startsWith(`invalid ${variable}: `) && !error.message.includes('\n'));
}

test('RFC 8628: device code lifetime 10 min and polling interval 5 s by default; out-of-range values name the variable', () => {
  const defaults = loadConfig({});
  assert.equal(defaults.deviceCodeTtlMs, 600_000);
  assert.equal(defaults.devicePollIntervalMs, 5_000);
  const set = loadConfig({ KEYWARD_DEVICE_CODE_TTL: '15m', KEYWARD_DEVICE_POLL_INTERVAL: '10s' });
  assert.equal(set.deviceCodeTtlMs, 900_000);
  assert.equal(set.devicePollIntervalMs, 10_000);
  rejected({ KEYWARD_DEVICE_CODE_TTL: '30s' }, 'KEYWARD_DEVICE_CODE_TTL');
  rejected({ KEYWARD_DEVICE_CODE_TTL: '2h' }, 'KEYWARD_DEVICE_CODE_TTL');
  rejected({ KEYWARD_DEVICE_CODE_TTL: 'soon' }, 'KEYWARD_DEVICE_CODE_TTL');
  rejected({ KEYWARD_DEVICE_POLL_INTERVAL: '0s' }, 'KEYWARD_DEVICE_POLL_INTERVAL');
  rejected({ KEYWARD_DEVICE_POLL_INTERVAL: '1500ms' }, 'KEYWARD_DEVICE_POLL_INTERVAL');
  rejected({ KEYWARD_DEVICE_POLL_INTERVAL: '2m' }, 'KEYWARD_DEVICE_POLL_INTERVAL');
});
