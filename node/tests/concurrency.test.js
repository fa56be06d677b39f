'use strict';
// One engine shared by many concurrent tasks, and the package in worker threads.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { retry, Engine, testing } = require('smartretry');
const { T0, httpError } = require('./helpers.js');

test('one engine serves 200 interleaved retry() calls', async () => {
  const engine = new Engine({ seed: 4 });
  const clock = testing.virtualClock(T0);
  const attempts = new Map();
  let inFlight = 0;
  let maxInFlight = 0;
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      retry(
        async (attempt) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setImmediate(r));
          inFlight--;
          attempts.set(i, attempt);
          if (i % 2 === 0 && attempt === 1) throw httpError(503);
          return i;
        },
        { engine, clock, jobType: 'shared', tenant: `t${i % 4}` },
      ),
    ),
  );
  assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i));
  assert.ok(maxInFlight > 100, `calls interleaved (${maxInFlight} at once)`);
  assert.equal([...attempts.values()].filter((a) => a === 2).length, 100);
  const stats = engine.stats('shared', 'service_unavailable', undefined, clock.now());
  assert.equal(stats.total_attempts, 100);
  assert.equal(stats.successful_retries, 100);
});

test('the package works in worker_threads, each thread with its own engine', async () => {
  const file = path.join(__dirname, 'fixtures', 'worker.js');
  const run = (seed) =>
    new Promise((resolve, reject) => {
      const w = new Worker(file, { workerData: { seed, jobs: 20 } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([run(1), run(2)]);
  for (const r of [a, b]) {
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.threadSum, 190);
    assert.equal(r.stats.total_attempts, 20);
    assert.equal(r.stats.successful_retries, 20);
  }
});

test('successes are flushed at exit and no timer keeps the process alive', () => {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'fixtures', 'exit-flush.js')], {
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), [['exiting', null, 5]]);
});
