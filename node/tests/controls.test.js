'use strict';
// Overrides, context configuration, priority, health, lifecycle events (EventEmitter)
// and batch item retries, through the npm package against the real engine.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { Engine, retry, retryBatch, testing, wrap } = require('smartretry');

const T0 = 1_700_000_000_000;

function quiet(seed = 7, config = undefined) {
  const engine = new Engine({ seed, config });
  engine.updateGuardrails({ adaptive_throttle: false, min_retries_per_sec: 1000 });
  return engine;
}

class HttpError extends Error {
  constructor(status) {
    super(`HTTP ${status}`);
    this.status = status;
  }
}

test('an operator caps a queue; a tenant override is more specific and wins', () => {
  const engine = quiet();
  assert.equal(engine.addOverride({ name: 'cap-payments', queue: 'payments', max_attempts: 2 }, T0), null);
  engine.addOverride({ name: 'acme', tenant: 'acme', max_attempts: 4 }, T0);
  const failure = { job_type: 'capture', attempt_number: 2, http_status: 503, queue: 'payments' };
  let d = engine.decide(failure, T0);
  assert.equal(d.should_retry, false);
  assert.deepEqual(d.policy_guardrails, ['override']);
  assert.match(d.rationale, /override "cap-payments" \(queue=payments\): max attempts 2/);
  d = engine.decide({ ...failure, tenant: 'acme' }, T0);
  assert.equal(d.should_retry, true);
  assert.equal(d.max_attempts, 4);
  assert.deepEqual(engine.overrides(T0).map((o) => o.name), ['acme', 'cap-payments']);
  assert.equal(engine.removeOverride('acme').max_attempts, 4);
  assert.throws(() => engine.removeOverride('acme'), { code: 'not_found' });
  assert.throws(() => engine.addOverride({ name: 'x', max_attempts: 0 }), { code: 'invalid_input', field: 'max_attempts' });
});

test('a manual delay for one job', () => {
  const engine = quiet();
  engine.addOverride({ name: 'ctrl-o', job_id: 'job-7', delay_ms: 45_000 }, T0);
  const d = engine.decide({ job_type: 'export', attempt_number: 1, http_status: 503, job_id: 'job-7' }, T0);
  assert.deepEqual([d.delay_ms, d.method, d.policy_guardrails], [45_000, 'guardrail', ['override']]);
});

test("the documents' DEFAULT_RETRY_CONFIGS and critical priority past global backpressure", () => {
  // The seed document's DEFAULT_RETRY_CONFIGS, shared with the Rust and Python tests.
  const contexts = require('../../tests/fixtures/default_retry_configs.json');
  const engine = new Engine({
    seed: 3,
    config: { contexts, strategy: { guardrails: { min_retries_per_sec: 0, max_budget_percent: 20, per_tenant_limits: false } } },
  });
  const d = new Engine({ seed: 3, config: { contexts } }).decide({ job_type: 'connection_pool.acquire_connection', attempt_number: 1 }, T0);
  assert.equal(d.max_attempts, 5);
  assert.match(d.rationale, /settings of the connection_pool context/);
  const retry = { job_type: 'campaign_orchestrator.run', attempt_number: 2, http_status: 503 };
  assert.deepEqual(engine.decide({ ...retry, priority: 'high' }, T0).policy_guardrails, ['retry_budget']);
  const critical = engine.decide({ ...retry, priority: 'critical' }, T0);
  assert.equal(critical.should_retry, true);
  assert.match(critical.rationale, /critical priority went past the global retry budget/);
  assert.throws(() => new Engine({ config: { contexts: { pool: { maxAttempts: 0 } } } }), {
    code: 'config',
    field: 'contexts.pool.max_attempts',
  });
});

test('retry() and wrap() carry their priority to every decision', async () => {
  const engine = new Engine({ seed: 7 });
  // A budget of 3 retries a minute (no share of first attempts), of which low priority may use 1.
  engine.updateGuardrails({ adaptive_throttle: false, min_retries_per_sec: 0.05, max_budget_percent: 0 });
  // Attempts are not what runs out here: only the budget is.
  engine.addPolicy({ name: 'nightly', job_type_patterns: ['nightly'], max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1000, priority: 100 });
  const clock = testing.virtualClock(T0);
  const calls = { low: 0, critical: 0 };
  const reasons = [];
  const options = (priority) => ({
    engine,
    clock,
    jobType: 'nightly',
    priority,
    onGiveUp: (info) => reasons.push([info.decision.policy_guardrails, info.decision.rationale]),
  });
  const low = () => {
    calls.low += 1;
    throw new HttpError(503);
  };
  await assert.rejects(retry(low, options('low')), HttpError);
  assert.equal(calls.low, 2);
  assert.deepEqual(reasons[0][0], ['retry_budget']);
  assert.match(reasons[0][1], /low priority may use 1 of them/);
  // The same spent share: critical work may use the whole budget, so it retries twice more.
  const critical = wrap(async function nightly() {
    calls.critical += 1;
    throw new HttpError(503);
  }, options('critical'));
  await assert.rejects(critical(), HttpError);
  assert.equal(calls.critical, 3);
  assert.deepEqual(reasons[1][0], ['retry_budget']);
  assert.match(reasons[1][1], /3 of 3 retries/);
  assert.doesNotMatch(reasons[1][1], /priority may use/);
  await assert.rejects(retry(low, { ...options('urgent'), onGiveUp: undefined }), { code: 'invalid_input', field: 'priority' });
});

test('health signals stretch rules delays; health() reports the downstream', () => {
  const engine = quiet();
  const base = { job_type: 'api', attempt_number: 1, http_status: 503, job_id: 'h' };
  const plain = engine.preview(base, 2, T0).recommendations[0].delay_ms;
  const sick = engine.preview({ ...base, health: { error_rate: 0.9, latency_ms: 4000 } }, 2, T0).recommendations[0];
  assert.ok(sick.delay_ms > plain);
  assert.match(sick.rationale, /downstream health 18\/100/);
  engine.decide({ ...base, health: { cpu: 95 } }, T0);
  const report = engine.health('api', T0);
  assert.deepEqual(report.signals, { cpu: 0.95 });
  assert.equal(report.score, 5);
  assert.ok(report.delay_factor > 1);
});

test('lifecycle events arrive through the EventEmitter and stop when nobody listens', async (t) => {
  // Event delivery never keeps the process alive (like an unref'd timer): a test that
  // awaits one holds the event loop open itself, or a loaded machine may end it first.
  const keepAlive = setInterval(() => {}, 1_000);
  t.after(() => clearInterval(keepAlive));
  const engine = quiet();
  const seen = [];
  const listener = (e) => seen.push(e.type);
  engine.on('retry_scheduled', listener);
  const gaveUp = once(engine, 'gave_up');
  engine.decide({ job_type: 'mail', attempt_number: 1, http_status: 503, job_id: 'm1' }, T0);
  engine.decide({ job_type: 'mail', attempt_number: 1, http_status: 404, job_id: 'm2' }, T0);
  const [event] = await gaveUp;
  assert.equal(event.job_id, 'm2');
  assert.equal(event.attempt_number, 1);
  assert.match(event.rationale, /permanent/);
  assert.deepEqual(seen, ['retry_scheduled']);
  const succeeded = once(engine, 'retry_succeeded');
  engine.record({ job_id: 'm1', job_type: 'mail', attempt_number: 2, success: true }, T0);
  assert.equal((await succeeded)[0].job_id, 'm1');
  engine.off('retry_scheduled', listener);
  const counts = Object.fromEntries(engine.metrics().events_total);
  assert.equal(counts.retry_scheduled, 1);
  assert.equal(counts.gave_up, 1);
});

test('a batch retries only its failed items and reports what was dead-lettered', async () => {
  const engine = quiet();
  const clock = testing.virtualClock(T0);
  const calls = new Map();
  const failures = new Map([[3, 1], [7, 2], [9, 99]]);
  const work = async (item) => {
    calls.set(item, (calls.get(item) ?? 0) + 1);
    if ((failures.get(item) ?? 0) >= calls.get(item)) throw new HttpError(503);
    if (item === 13) throw new HttpError(404);
    return `done ${item}`;
  };
  const summary = await retryBatch(Array.from({ length: 15 }, (_, i) => i), work, {
    jobType: 'weekly_report',
    chunkSize: 4,
    engine,
    clock,
  });
  assert.deepEqual([summary.total, summary.succeeded, summary.retried, summary.deadLettered], [15, 13, 3, 2]);
  assert.equal(summary.successRate, 13 / 15);
  for (let i = 0; i < 15; i++) if (![3, 7, 9, 13].includes(i)) assert.equal(calls.get(i), 1, `item ${i} ran once`);
  assert.deepEqual([calls.get(3), calls.get(7), calls.get(13)], [2, 3, 1]);
  assert.equal(summary.results.get(7), 'done 7');
  assert.deepEqual(summary.deadLetters.map((d) => d.index), [9, 13]);
  assert.equal(summary.deadLetters[0].attempts, 6, 'the service_unavailable policy allows 6 attempts');
  assert.match(summary.deadLetters[0].reason, /no attempts left/);
  assert.match(summary.deadLetters[1].reason, /permanent/);
});

test('a batch stops on abort', async () => {
  const controller = new AbortController();
  const reason = new Error('shutting down');
  const work = async (item) => {
    if (item === 2) controller.abort(reason);
    return item;
  };
  await assert.rejects(
    retryBatch([0, 1, 2, 3, 4, 5], work, { jobType: 'abortable', chunkSize: 3, engine: quiet(), signal: controller.signal }),
    (e) => e === reason,
  );
  await assert.rejects(retryBatch([1], work, { jobType: 'x', chunkSize: 0 }), RangeError);
});
