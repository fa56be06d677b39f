'use strict';
// What gets retried (docs/errors.md) and p-retry/cockatiel-grade control: giveUpOn,
// stopIf, a call's own schedule, async predicates, statistics, close(), AbortSignal
// with the last failure as cause, and the diagnostics channel, with a real engine.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const diagnostics = require('node:diagnostics_channel');
const { getEventListeners } = require('node:events');
const { retry, wrap, Engine, SmartRetryError, testing } = require('smartretry');
const { setup, httpError, flaky } = require('./helpers.js');

/** A fresh engine whose shared guardrails stay out of the way. */
function quiet() {
  const { engine, clock } = setup();
  engine.updateGuardrails({ adaptive_throttle: false, min_retries_per_sec: 1000 });
  return { engine, clock };
}

test('a programming error is thrown after one attempt; a network error is retried', async () => {
  const { engine, clock } = quiet();
  for (const bug of [() => new TypeError('x is not a function'), () => new ReferenceError('y is not defined')]) {
    const fn = flaky([bug, bug, bug]);
    await assert.rejects(retry(fn, { engine, clock, jobType: 'bug' }), bug().constructor);
    assert.equal(fn.seen.length, 1);
  }
  // fetch reports a refused connection as a TypeError whose cause has the code.
  const fetchFailed = () => new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
  const fn = flaky([fetchFailed, () => Object.assign(new Error('reset'), { code: 'ECONNRESET' })]);
  assert.equal(await retry(fn, { engine, clock, jobType: 'net' }), 'ok');
  assert.equal(fn.seen.length, 3);
});

test('naming a programming error in retryOn retries it; giveUpOn never retries', async () => {
  const { engine, clock } = quiet();
  const bug = () => new TypeError('a flaky native module');
  const listed = flaky([bug, bug]);
  assert.equal(await retry(listed, { engine, clock, jobType: 'listed', retryOn: [TypeError, RangeError] }), 'ok');
  assert.equal(listed.seen.length, 3);
  const gone = flaky([httpError(503), httpError(503)]);
  class Gone extends Error {}
  const fn = flaky([() => new Gone('deleted')]);
  await assert.rejects(retry(fn, { engine, clock, giveUpOn: Gone }), Gone);
  assert.equal(fn.seen.length, 1);
  assert.equal(await retry(gone, { engine, clock, giveUpOn: [Gone] }), 'ok');
});

test("a call's own schedule sets the waits, within the guardrails", async () => {
  const { engine, clock } = quiet();
  const fn = flaky([httpError(503), httpError(503)]);
  await retry(fn, { engine, clock, jobType: 'sched', backoff: { strategy: 'exponential', base: 100, multiplier: 3 } });
  assert.deepEqual(clock.sleeps, [100, 300]);
  engine.updateGuardrails({ max_delay_ms: 1000 });
  const capped = testing.virtualClock();
  await retry(flaky([httpError(503)]), { engine, clock: capped, jobType: 'capped', backoff: { strategy: 'constant', base: 60_000 } });
  assert.deepEqual(capped.sleeps, [1000]);
});

test('stopIf and async predicates are awaited; stops combine', async () => {
  const { engine, clock } = quiet();
  const seen = [];
  const fn = flaky([httpError(503), httpError(503), httpError(503)]);
  await assert.rejects(
    retry(fn, {
      engine,
      clock,
      maxAttempts: 10,
      stopIf: async (info) => {
        seen.push([info.attempt, typeof info.elapsedMs]);
        return info.attempt >= 2;
      },
      onGiveUp: (info) => seen.push(info.reason),
    }),
    /HTTP 503/,
  );
  assert.deepEqual(seen, [[1, 'number'], [2, 'number'], 'stopped']);
  const results = ['busy', 'busy', 'done'];
  let i = 0;
  const polled = await retry(async () => results[i++], {
    engine,
    clock,
    jobType: 'poll',
    retryIf: async (value, { kind }) => kind === 'result' && value === 'busy',
  });
  assert.equal(polled, 'done');
  const refused = flaky([httpError(503)]);
  await assert.rejects(retry(refused, { engine, clock, retryIf: async () => false }), /503/);
  assert.equal(refused.seen.length, 1);
});

test('wrap() keeps statistics of its calls', async () => {
  const { engine, clock } = quiet();
  const failures = [httpError(503), httpError(503)];
  const fn = wrap(async () => {
    if (failures.length > 0) throw failures.shift();
    return 'ok';
  }, { engine, clock, jobType: 'stats' });
  for (let k = 0; k < 4; k++) await fn();
  const s = fn.statistics;
  assert.deepEqual([s.calls, s.attempts, s.retries, s.successes, s.gaveUp], [4, 6, 2, 4, 0]);
  assert.ok(s.idleMs > 0);
  assert.equal(s.lastDecision.should_retry, true);
  assert.equal(JSON.parse(JSON.stringify(s)).attempts, 6);
});

test('close() frees the engine; a closed engine refuses calls, a success still returns', async () => {
  const engine = new Engine({ seed: 1 });
  const clock = testing.virtualClock();
  assert.equal(await retry(async () => 'fine', { engine, clock }), 'fine');
  engine.close();
  engine.close(); // again: nothing
  assert.equal(engine.closed, true);
  assert.throws(() => engine.guardrails(), (e) => e instanceof SmartRetryError && e.code === 'closed');
  // Like Go: a successful first attempt never asks the engine, so it returns its value…
  assert.equal(await retry(async () => 'fine', { engine, clock }), 'fine');
  // …and a failure cannot be decided: the engine's error, caused by the failure.
  const failure = httpError(503);
  await assert.rejects(retry(flaky([failure]), { engine, clock }), (e) => e.code === 'closed' && e.cause === failure);
  // `using scoped = new Engine()` (TypeScript, Node 22+) calls this at the end of the block.
  const scoped = new Engine({ seed: 2 });
  scoped[Symbol.dispose]();
  assert.equal(scoped.closed, true);
});

test('an abort during a wait rejects with the reason, its cause the last failure', async () => {
  const { engine } = quiet();
  const controller = new AbortController();
  const failure = httpError(503);
  const run = retry(flaky([failure]), {
    engine,
    jobType: 'abort_cause',
    signal: controller.signal,
    onRetry: () => setImmediate(() => controller.abort(new Error('shutting down'))),
  });
  await assert.rejects(run, (e) => e.message === 'shutting down' && e.cause === failure);
});

test('one listener per signal, however many calls share it; success costs none', async () => {
  const { engine, clock } = quiet();
  const controller = new AbortController();
  const { signal } = controller;
  for (let k = 0; k < 100; k++) assert.equal(await retry(async () => k, { engine, clock, signal }), k);
  assert.ok(getEventListeners(signal, 'abort').length <= 1);
  const hanging = Array.from({ length: 5 }, () => retry(() => new Promise(() => {}), { engine, signal }));
  controller.abort('stop');
  for (const p of hanging) await assert.rejects(p, (e) => e === 'stop');
});

test('an abort rejects exactly the calls still waiting on the signal, in any order of settling', async () => {
  const { engine, clock } = quiet();
  const controller = new AbortController();
  const { signal } = controller;
  const gates = [];
  const gated = () => new Promise((resolve) => gates.push(resolve));
  // Six calls share the signal; three settle before the abort, out of their order of start.
  const calls = Array.from({ length: 6 }, (_, k) => retry(() => gated().then(() => k), { engine, clock, signal }));
  for (const k of [4, 0, 2]) gates[k]();
  for (const k of [4, 0, 2]) assert.equal(await calls[k], k);
  const failure = httpError(503);
  const waiting = retry(flaky([failure]), { engine, jobType: 'abort_list', signal, onRetry: () => setImmediate(() => controller.abort(new Error('stop'))) });
  await assert.rejects(waiting, (e) => e.message === 'stop' && e.cause === failure);
  for (const k of [1, 3, 5]) await assert.rejects(calls[k], (e) => e.message === 'stop');
  // After the abort a late settle changes nothing, and a new call is refused at once.
  for (const k of [1, 3, 5]) gates[k]();
  await assert.rejects(retry(async () => 'late', { engine, clock, signal }), (e) => e.message === 'stop');
});

test('one structured record per retry on the smartretry:retry channel', async () => {
  const { engine, clock } = quiet();
  const records = [];
  const listener = (message) => records.push(message);
  diagnostics.subscribe('smartretry:retry', listener);
  try {
    await retry(flaky([httpError(503)]), { engine, clock, jobType: 'logged' });
  } finally {
    diagnostics.unsubscribe('smartretry:retry', listener);
  }
  assert.equal(records.length, 1);
  const [r] = records;
  assert.equal(r.jobType, 'logged');
  assert.equal(r.attempt, 1);
  assert.equal(r.delayMs, clock.sleeps[0]);
  assert.equal(r.method, 'rules');
});
