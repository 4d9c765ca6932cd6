import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prettyTarget } from '../../src/log/logger.ts';

const installed = () => '/opt/node_modules/pino-pretty/index.js';
const absent = () => {
  throw Object.assign(new Error("Cannot find package 'pino-pretty'"), { code: 'ERR_MODULE_NOT_FOUND' });
};

test('issue 13 §1: pretty log lines only on a terminal, outside production, when pino-pretty is installed', () => {
  assert.equal(prettyTarget({}, true, installed), installed());
  assert.equal(prettyTarget({ NODE_ENV: 'development' }, true, installed), installed());
  assert.equal(prettyTarget({ NODE_ENV: 'production' }, true, installed), undefined, 'production: JSON lines');
  assert.equal(prettyTarget({}, false, installed), undefined, 'piped or redirected: JSON lines');
  assert.equal(prettyTarget({}, true, absent), undefined, 'not installed: JSON lines, no failure');
});
