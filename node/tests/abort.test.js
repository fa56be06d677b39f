'use strict';
// AbortSignal stops retry() at once, with real timers: the assertions are about the
// order of events, never about how long anything took.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { retry, Engine } = require('smartretry');
const { httpError, flaky } = require('./helpers.js');

test('aborting during a wait rejects at once with the abort reason', async () => {
  const engine = new Engine({ seed: 1 });
  const controller = new AbortController();
  const reason = new Error('shutting down');
  const events = [];
  let decided;
  const fn = flaky([httpError(503)]);
  const run = retry(fn, {
    engine,
    jobType: 'abort_wait',
    signal: controller.signal,
    onRetry: (info) => {
      decided = info.delayMs;
      // Abort once the wait has begun; the decided delay is ≥ 1.6 s, the marker 50 ms.
      setImmediate(() => controller.abort(reason));
      setTimeout(() => events.push('marker timer'), 50);
    },
  }).then(
    () => events.push('resolved'),
    (e) => events.push(e === reason ? 'rejected with the reason' : `rejected with ${e}`),
  );
  await run;
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(decided >= 1000, `the engine chose a real wait (${decided} ms)`);
  assert.deepEqual(events, ['rejected with the reason', 'marker timer']);
  assert.equal(fn.seen.length, 1, 'no retry after the abort');
});

test('aborting during an attempt rejects at once and aborts the attempt signal', async () => {
  const engine = new Engine({ seed: 1 });
  const controller = new AbortController();
  const events = [];
  let attemptSignal;
  const run = retry(
    (attempt, ctx) => {
      attemptSignal = ctx.signal;
      setImmediate(() => controller.abort('user cancelled'));
      setTimeout(() => events.push('marker timer'), 50);
      return new Promise(() => {}); // hangs: only the abort can end it
    },
    { engine, signal: controller.signal },
  ).catch((e) => events.push(`rejected: ${e}`));
  await run;
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(events, ['rejected: user cancelled', 'marker timer']);
  assert.equal(attemptSignal.aborted, true);
  assert.equal(attemptSignal.reason, 'user cancelled');
});

test('an already aborted signal rejects without calling the function', async () => {
  const controller = new AbortController();
  controller.abort(new Error('too late'));
  let called = false;
  await assert.rejects(
    retry(() => (called = true), { engine: new Engine(), signal: controller.signal }),
    /too late/,
  );
  assert.equal(called, false);
});

test('AbortSignal.timeout works as a hard deadline on the whole call', async () => {
  const engine = new Engine({ seed: 1 });
  const events = [];
  const fn = flaky([httpError(503), httpError(503)]);
  await retry(fn, { engine, signal: AbortSignal.timeout(30) }).catch((e) => events.push(e.name));
  assert.deepEqual(events, ['TimeoutError']);
  assert.equal(fn.seen.length, 1);
});
