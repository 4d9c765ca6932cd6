import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { binary } from '../support/binary.ts';

/**
 * docker-compose.yml as the README's "Run with Docker Compose" uses it, checked offline by the
 * real `docker-compose config` (Debian package, installed by .ci/run): no image is pulled or
 * built here, but the file must parse, interpolate, and refuse to start without the secrets.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

const compose = binary('docker-compose');
const skip = compose ? false : 'docker-compose is not installed (.ci/run installs it)';

function config(env: Record<string, string>) {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('KEYWARD_') && name !== 'ISSUER'),
  );
  return run(compose!, ['--project-directory', ROOT, '-f', path.join(ROOT, 'docker-compose.yml'), 'config'], {
    cwd: ROOT,
    env: { ...base, ...env },
  });
}

describe('docker-compose.yml', { skip }, () => {
  test('is valid and wires Keyward to PostgreSQL with the given secrets', async () => {
    const { stdout } = await config({
      KEYWARD_KEK: 'a-kek-for-the-test',
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: 'a-bootstrap-secret-for-the-test-0123456789',
      ISSUER: 'https://id.example.test',
    });
    assert.match(stdout, /image: postgres:/);
    assert.match(stdout, /DATABASE_URL: postgres:\/\/keyward:keyward@postgres:5432\/keyward/);
    assert.match(stdout, /KEYWARD_KEK: a-kek-for-the-test/);
    assert.match(stdout, /ISSUER: https:\/\/id\.example\.test/);
    assert.match(stdout, /condition: service_healthy/);
    assert.match(stdout, /\/readyz/);
  });

  test('refuses to render without KEYWARD_KEK, naming it', async () => {
    await assert.rejects(
      config({ KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: 'a-bootstrap-secret-for-the-test-0123456789' }),
      (error: Error & { stderr?: string }) => /KEYWARD_KEK/.test(error.stderr ?? ''),
    );
  });

  test('refuses to render without the bootstrap admin secret, naming it', async () => {
    await assert.rejects(
      config({ KEYWARD_KEK: 'a-kek-for-the-test' }),
      (error: Error & { stderr?: string }) => /KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET/.test(error.stderr ?? ''),
    );
  });
});
