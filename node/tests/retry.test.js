'use strict';
// retry() and wrap() against the real engine. Waiting uses a virtual clock unless a
// test is about real timers; no test depends on wall-clock durations.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { retry, wrap, historyOf, AttemptTimeoutError, Engine, SmartRetryError, testing } = require('smartretry');
const { T0, setup, httpError, flaky } = require('./helpers.js');

test('a first-attempt success returns the value and makes no native call', async () => {
  const { engine, clock, calls } = setup();
  let reads = 0;
  const now = clock.now.bind(clock);
  clock.now = () => (reads++, now());
  for (let i = 0; i < 100; i++) {
    assert.equal(await retry(async () => i, { engine, clock, jobType: 'fast', tenant: i % 2 ? 'a' : undefined }), i);
  }
  assert.deepEqual(calls, {}, 'successes are only counted in JS');
  assert.equal(reads, 0, 'nor is the clock read');
  engine.flushSuccesses();
  const flushed = calls.recordSuccesses.map(([job, tenant, n, now]) => [job, tenant, n, now]);
  flushed.sort((x, y) => String(x[1]).localeCompare(String(y[1])));
  assert.deepEqual(flushed, [['fast', 'a', 50, T0], ['fast', undefined, 50, T0]]);
  engine.flushSuccesses();
  assert.equal(calls.recordSuccesses.length, 2, 'nothing left to flush');
});

test('counted successes reach the engine before the next failure is decided', async () => {
  const { engine, clock, calls } = setup();
  const order = [];
  const spyOrder = new Proxy(engine.native, {
    get: (t, k) => (typeof t[k] === 'function' ? (...a) => (order.push(k), t[k](...a)) : t[k]),
  });
  engine.native = spyOrder;
  await retry(async () => 1, { engine, clock, jobType: 'job' });
  await retry(async () => 2, { engine, clock, jobType: 'job' });
  await retry(flaky([httpError(503)]), { engine, clock, jobType: 'job' });
  assert.deepEqual(order, ['recordSuccesses', 'decideFailure', 'recordAttempt']);
  assert.equal(calls.recordSuccesses[0][2], 2);
});

test('successes are flushed in batches of 1024', async () => {
  const { engine, clock, calls } = setup();
  for (let i = 0; i < 2100; i++) await retry(async () => i, { engine, clock, jobType: 'bulk' });
  assert.deepEqual(calls.recordSuccesses.map((c) => c[2]), [1024, 1024]);
  engine.flushSuccesses();
  assert.deepEqual(calls.recordSuccesses.map((c) => c[2]), [1024, 1024, 52]);
});

test('a failure is decided, waited for, retried and recorded', async () => {
  const { engine, clock, calls } = setup();
  const fn = flaky([httpError(503)]);
  const retries = [];
  const value = await retry(fn, { engine, clock, jobType: 'pay', tenant: 'acme', onRetry: (i) => retries.push(i) });
  assert.equal(value, 'ok');
  assert.deepEqual(fn.seen.map((s) => s.attempt), [1, 2]);
  assert.equal(retries.length, 1);
  const { decision, delayMs, attempt, error } = retries[0];
  assert.equal(attempt, 1);
  assert.equal(error.status, 503);
  assert.equal(decision.should_retry, true);
  assert.equal(decision.policy, 'service_unavailable');
  assert.equal(delayMs, decision.delay_ms);
  assert.deepEqual(clock.sleeps, [decision.delay_ms], 'waited exactly the decided delay');
  // decide(job, attempt 1, …) then record(attempt 2 succeeded after that delay)
  const [, jobType, attemptNumber, jobId, tenant, status] = calls.decideFailure[0];
  assert.deepEqual([jobType, attemptNumber, tenant, status], ['pay', 1, 'acme', 503]);
  const rec = calls.recordAttempt[0];
  assert.deepEqual(rec.slice(0, 7), [jobId, 'pay', 2, true, decision.delay_ms, 'acme', 503]);
  const stats = engine.stats('pay', 'service_unavailable', undefined, clock.now());
  assert.equal(stats.total_attempts, 1);
  assert.equal(stats.successful_retries, 1);
});

test('the engine learns: retries that keep failing show in stats and history', async () => {
  const { engine, clock } = setup(9);
  const fn = flaky(Array.from({ length: 7 }, () => httpError(503)));
  let caught;
  try {
    await retry(fn, { engine, clock, jobType: 'sync' });
  } catch (e) {
    caught = e;
  }
  assert.equal(caught.status, 503, 'the original error object is thrown');
  assert.ok(caught instanceof Error);
  const history = historyOf(caught);
  assert.equal(history, caught.retryHistory);
  assert.equal(caught.attemptNumber, history.length);
  assert.equal(history.length, 6, 'the service_unavailable policy allows 6 attempts');
  assert.deepEqual(history.map((h) => h.attempt), [1, 2, 3, 4, 5, 6]);
  assert.equal(history[5].decision.should_retry, false);
  assert.match(history[5].decision.rationale, /no attempts left/);
  assert.equal(history[1].waitedMs, history[0].decision.delay_ms);
  const serialised = JSON.parse(JSON.stringify(history));
  assert.deepEqual(serialised[5].decision, history[5].decision, 'the history serialises with its decisions');
  assert.ok(history.every((h) => h.error.status === 503));
  const stats = engine.stats('sync', 'service_unavailable', undefined, clock.now());
  assert.equal(stats.failed_retries, 5);
});

test('permanent failures are thrown at once, with onGiveUp called once', async () => {
  const { engine, clock } = setup();
  const gaveUp = [];
  const fn = flaky([httpError(404)]);
  await assert.rejects(retry(fn, { engine, clock, onGiveUp: (i) => gaveUp.push(i) }), (e) => e.status === 404);
  assert.equal(fn.seen.length, 1);
  assert.equal(gaveUp.length, 1);
  assert.equal(gaveUp[0].reason, 'engine');
  assert.equal(gaveUp[0].decision.should_retry, false);
  assert.equal(gaveUp[0].history.length, 1);
  assert.deepEqual(clock.sleeps, []);
});

test('retryOn: other error classes are thrown without asking the engine', async () => {
  class Busy extends Error {}
  const { engine, clock, calls } = setup();
  const gaveUp = [];
  await assert.rejects(
    retry(flaky([new TypeError('bug')]), { engine, clock, retryOn: Busy, onGiveUp: (i) => gaveUp.push(i) }),
    TypeError,
  );
  assert.equal(calls.decideFailure, undefined);
  assert.equal(gaveUp[0].reason, 'not_retryable');
  assert.equal(gaveUp[0].history[0].decision, undefined);
  const value = await retry(flaky([new Busy('later')]), { engine, clock, retryOn: [RangeError, Busy] });
  assert.equal(value, 'ok');
});

test('retryIf on errors: false throws at once', async () => {
  const { engine, clock } = setup();
  const fn = flaky([httpError(503, { permanent: true })]);
  await assert.rejects(retry(fn, { engine, clock, retryIf: (e, i) => i.kind === 'error' && !e.permanent }), (e) => e.permanent);
  assert.equal(fn.seen.length, 1);
});

test('retryIf on results: a 503 Response is retried, honouring its Retry-After', async () => {
  const { engine, clock } = setup();
  const responses = [
    new Response('busy', { status: 503, headers: { 'Retry-After': '4' } }),
    new Response('fine', { status: 200 }),
  ];
  const seen = [];
  const res = await retry(async (attempt) => responses[attempt - 1], {
    engine,
    clock,
    jobType: 'fetch_user',
    retryIf: (r, info) => info.kind === 'result' && !r.ok,
    onRetry: (i) => seen.push(i),
  });
  assert.equal(res.status, 200);
  assert.equal(seen[0].result.status, 503);
  assert.ok(seen[0].decision.delay_ms >= 4000, `Retry-After is a floor (${seen[0].decision.delay_ms})`);
});

test('retryIf on results: when retries run out, the last result is returned', async () => {
  const { engine, clock } = setup();
  const gaveUp = [];
  const res = await retry(async () => ({ status: 404 }), {
    engine,
    clock,
    retryIf: (r, info) => info.kind === 'result' && r.status !== 200,
    onGiveUp: (i) => gaveUp.push(i),
  });
  assert.deepEqual(res, { status: 404 });
  assert.equal(gaveUp[0].reason, 'engine');
  assert.deepEqual(gaveUp[0].result, { status: 404 });
});

test('maxAttempts caps the attempts below the engine (the engine applies it)', async () => {
  const { engine, clock } = setup();
  const fn = flaky([httpError(429), httpError(429), httpError(429), httpError(429)]);
  const gaveUp = [];
  await assert.rejects(retry(fn, { engine, clock, maxAttempts: 2, onGiveUp: (i) => gaveUp.push(i) }));
  assert.equal(fn.seen.length, 2);
  assert.equal(gaveUp[0].reason, 'engine');
  assert.equal(gaveUp[0].decision.max_attempts, 2, 'the engine applied the cap');
  assert.match(gaveUp[0].decision.rationale, /no attempts left/);
  const once = flaky([httpError(503)]);
  await assert.rejects(retry(once, { engine, clock, maxAttempts: 1 }));
  assert.equal(once.seen.length, 1);
});

test('deadline: the engine refuses a retry that would start after it', async () => {
  const { engine, clock } = setup();
  const fn = flaky([httpError(503)]);
  let caught;
  await retry(fn, { engine, clock, deadline: 500 }).catch((e) => (caught = e));
  const d = historyOf(caught)[0].decision;
  assert.equal(d.should_retry, false);
  assert.ok(d.policy_guardrails.includes('deadline'), d.rationale);
  assert.equal(fn.seen.length, 1);
});

test('per-attempt timeout: a hung attempt fails with a timeout and its signal aborts', async () => {
  const { engine, clock } = setup();
  const signals = [];
  const value = await retry(
    (attempt, ctx) => {
      signals.push(ctx.signal);
      if (attempt === 1) return new Promise(() => {}); // never settles
      return 'second';
    },
    { engine, clock, timeout: 20, jobType: 'slow' },
  );
  assert.equal(value, 'second');
  assert.ok(signals[0].aborted);
  assert.ok(signals[0].reason instanceof AttemptTimeoutError);
  assert.equal(signals[1].aborted, false);
});

test('a timed-out non-idempotent call is not retried', async () => {
  const { engine, clock } = setup();
  let caught;
  await retry(() => new Promise(() => {}), { engine, clock, timeout: 10, idempotent: false, jobType: 'charge' }).catch(
    (e) => (caught = e),
  );
  assert.ok(caught instanceof AttemptTimeoutError);
  assert.equal(caught.name, 'TimeoutError');
  const d = historyOf(caught)[0].decision;
  assert.equal(d.should_retry, false);
  assert.deepEqual(d.policy_guardrails, ['non_idempotent']);
});

test('idempotent: false never retries after a failure that may have taken effect', async () => {
  const { engine, clock } = setup();
  const after503 = flaky([httpError(503)]);
  await assert.rejects(retry(after503, { engine, clock, idempotent: false }));
  assert.equal(after503.seen.length, 1);
  // A 429 was refused at the door: safe to retry even so.
  const after429 = flaky([httpError(429)]);
  assert.equal(await retry(after429, { engine, clock, idempotent: false }), 'ok');
});

test('fallback: a value or a function of the give-up info', async () => {
  const { engine, clock } = setup();
  assert.equal(await retry(flaky([httpError(400)]), { engine, clock, fallback: 'cached' }), 'cached');
  const v = await retry(flaky([httpError(401)]), { engine, clock, fallback: async (i) => `gave up: ${i.reason} ${i.error.status}` });
  assert.equal(v, 'gave up: engine 401');
});

test('hooks: onRetry before each wait, onGiveUp once with the full history', async () => {
  const { engine, clock } = setup();
  const events = [];
  const realSleep = clock.sleep.bind(clock);
  clock.sleep = (ms, s) => (events.push(`sleep ${ms}`), realSleep(ms, s));
  let caught;
  await retry(flaky([httpError(503), httpError(503), httpError(503)]), {
    engine,
    clock,
    maxAttempts: 3,
    onRetry: async (i) => events.push(`retry ${i.attempt} ${i.delayMs}`),
    onGiveUp: (i) => events.push(`give up ${i.attempt} ${i.history.length}`),
  }).catch((e) => (caught = e));
  const h = historyOf(caught);
  assert.deepEqual(events, [
    `retry 1 ${h[0].decision.delay_ms}`,
    `sleep ${h[0].decision.delay_ms}`,
    `retry 2 ${h[1].decision.delay_ms}`,
    `sleep ${h[1].decision.delay_ms}`,
    'give up 3 3',
  ]);
});

test('a throwing onRetry hook stops the retries with its error', async () => {
  const { engine, clock } = setup();
  const fn = flaky([httpError(503)]);
  await assert.rejects(
    retry(fn, { engine, clock, onRetry: () => { throw new Error('hook'); } }),
    /hook/,
  );
  assert.equal(fn.seen.length, 1);
});

test('an invalid job type is refused before the function runs, naming the option', async () => {
  const { engine, clock } = setup();
  for (const fn of [flaky([httpError(503)]), flaky([])]) {
    await assert.rejects(retry(fn, { engine, clock, jobType: '' }), (e) => {
      assert.ok(e instanceof SmartRetryError);
      assert.equal(e.code, 'invalid_input');
      assert.equal(e.field, 'jobType');
      return true;
    });
    assert.equal(fn.seen.length, 0, 'never called: no late failure, on either path');
  }
});

test('wrap keeps arguments and this, and names the job after the function', async () => {
  const { engine, clock, calls } = setup();
  let n = 0;
  const account = {
    balance: 7,
    async fetchBalance(currency) {
      if (++n === 1) throw httpError(502);
      return `${this.balance} ${currency}`;
    },
  };
  account.fetchBalance = wrap(account.fetchBalance, { engine, clock });
  assert.equal(await account.fetchBalance('EUR'), '7 EUR');
  assert.equal(calls.decideFailure[0][1], 'fetchBalance');
  const named = wrap(async () => 1, { engine, clock, jobType: 'explicit' });
  assert.equal(await named(), 1);
});

test('job type defaults to the function name, else anonymous', async () => {
  const { engine, clock, calls } = setup();
  async function loadUser() {
    throw httpError(404);
  }
  await assert.rejects(retry(loadUser, { engine, clock }));
  await assert.rejects(retry(() => Promise.reject(httpError(404)), { engine, clock }));
  assert.deepEqual(calls.decideFailure.map((c) => c[1]), ['loadUser', 'anonymous']);
});

test('synchronous throws and plain values work like promises', async () => {
  const { engine, clock } = setup();
  let n = 0;
  const v = await retry(() => {
    if (++n === 1) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    return 42;
  }, { engine, clock });
  assert.equal(v, 42);
  await assert.rejects(retry(() => { throw 'a string'; }, { engine, clock, maxAttempts: 1 }), (e) => e === 'a string');
});

test('a virtual clock moves with the decided delays; the default clock is real', async () => {
  const clock = testing.virtualClock(T0);
  const engine = new Engine({ seed: 2 });
  await retry(flaky([httpError(503), httpError(503)]), { engine, clock });
  assert.equal(clock.now(), T0 + clock.sleeps.reduce((a, b) => a + b, 0));
});

test('a call waiting out an outage checks in and retries as soon as calls get through', async () => {
  const engine = new Engine({
    seed: 3,
    config: { strategy: { circuit_breaker: { enabled: false }, guardrails: { adaptive_throttle: false } } },
  });
  const clock = testing.virtualClock(T0);
  // Down for every caller: one call got through, then twelve jobs failed.
  engine.recordSuccesses('webhook', null, 1, T0);
  for (let i = 0; i < 12; i++) engine.decide({ job_type: 'webhook', attempt_number: 1, http_status: 503, job_id: `w${i}` }, T0);
  // Another job's call gets through during the first check-in.
  const sleep = clock.sleep.bind(clock);
  clock.sleep = async (ms, signal) => {
    await sleep(ms, signal);
    if (clock.sleeps.length === 1) engine.recordSuccesses('webhook', null, 1, clock.now());
  };
  let planned;
  const fn = flaky([httpError(503)]);
  const value = await retry(fn, { engine, clock, jobType: 'webhook', onRetry: (info) => (planned = info.delayMs) });
  assert.equal(value, 'ok');
  assert.equal(fn.seen.length, 2);
  assert.ok(planned >= 2_000, `held while down: ${planned}`);
  assert.deepEqual(clock.sleeps, [1_000], 'one check-in, then released');
  assert.equal(engine.metrics().released_total, 1);
});

test('released() names a bad argument', () => {
  const engine = new Engine({ seed: 1 });
  assert.throws(() => engine.released('', 0), (e) => e.field === 'job_type');
  assert.throws(() => engine.released('webhook', -1), (e) => e.field === 'failedAtMs');
  assert.equal(engine.released('webhook', 0), false);
});
