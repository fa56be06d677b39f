// ESM import and CommonJS require give the same module: one default engine per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import smartretry, { retry, wrap, Engine, defaultEngine, testing } from 'smartretry';

const require = createRequire(import.meta.url);

test('ESM import works and shares the CommonJS instance', async () => {
  const cjs = require('smartretry');
  assert.equal(Engine, cjs.Engine);
  assert.equal(retry, cjs.retry);
  assert.equal(smartretry.wrap, wrap);
  assert.equal(defaultEngine(), cjs.defaultEngine());
  const engine = new Engine({ seed: 1 });
  const clock = testing.virtualClock(1_700_000_000_000);
  let n = 0;
  const v = await retry(async () => {
    if (++n === 1) throw Object.assign(new Error('x'), { status: 429 });
    return 'esm';
  }, { engine, clock });
  assert.equal(v, 'esm');
});

test('CommonJS require works', () => {
  const { retry: r, Engine: E } = require('smartretry');
  assert.equal(typeof r, 'function');
  assert.equal(new E({ seed: 1 }).decide({ job_type: 'x', attempt_number: 1 }, 1).should_retry, true);
});
