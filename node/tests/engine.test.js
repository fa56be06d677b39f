'use strict';
// The Engine class: the Python package's methods and field names, snake_case objects,
// errors carrying `code` and `field`.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Engine, isEngineError } = require('smartretry');
const shapes = require('./shapes.js');

const T0 = 1_700_000_000_000;

function keysWithin(obj, allowed, what) {
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  assert.deepEqual(extra, [], `${what} has fields the TypeScript types lack`);
}

function throwsEngineError(fn, code, field) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, 'an Error was thrown');
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.field, field, caught.message);
  assert.ok(isEngineError(caught));
  return caught;
}

test('decide answers in the API document shape, with nowMs optional', () => {
  const engine = new Engine({ seed: 7 });
  const d = engine.decide({ job_type: 'payment_capture', attempt_number: 1, http_status: 503 }, T0);
  assert.equal(d.should_retry, true);
  assert.equal(d.method, 'rules');
  assert.equal(d.policy, 'service_unavailable');
  assert.equal(d.error_class, 'service_unavailable');
  assert.ok(d.delay_ms > 0);
  assert.equal(typeof d.rationale, 'string');
  assert.equal(d.next_evaluation, new Date(T0 + d.delay_ms).toISOString().replace('.000Z', 'Z'));
  keysWithin(d, shapes.DECISION, 'Decision');

  const now = Date.now();
  const wall = engine.decide({ job_type: 'payment_capture', attempt_number: 1, http_status: 503 });
  const at = Date.parse(wall.next_evaluation) - wall.delay_ms;
  assert.ok(at >= now - 1000, 'no nowMs means the wall clock');
});

test('the same seed gives the same decisions', () => {
  const f = { job_type: 'sync', attempt_number: 2, http_status: 500 };
  const a = new Engine({ seed: 3 }).decide(f, T0);
  const b = new Engine({ seed: 3 }).decide(f, T0);
  assert.deepEqual(a, b);
});

test('a caller max_attempts caps the engine; an unreadable Retry-After is no hint', () => {
  const engine = new Engine({ seed: 1 });
  const capped = engine.decide({ job_type: 'x', attempt_number: 2, http_status: 429, max_attempts: 2 }, T0);
  assert.equal(capped.should_retry, false);
  assert.equal(capped.max_attempts, 2);
  assert.match(capped.rationale, /no attempts left/);
  const d = engine.decide({ job_type: 'x', attempt_number: 1, http_status: 503, retry_after: 'soon' }, T0);
  assert.equal(d.should_retry, true);
  assert.ok(!d.policy_guardrails.includes('retry_after'));
});

test('permanent failures are never retried', () => {
  const d = new Engine({ seed: 1 }).decide({ job_type: 'x', attempt_number: 1, http_status: 404 }, T0);
  assert.equal(d.should_retry, false);
  assert.equal(d.delay_ms, 0);
});

test('record and stats: the engine learns from what happened', () => {
  const engine = new Engine({ seed: 1 });
  engine.record({ job_id: 'j1', job_type: 'pay', attempt_number: 2, success: true, delay_ms: 2000, error_class: 'service_unavailable', since_first_failure_ms: 2000 }, T0);
  engine.record({ job_id: 'j2', job_type: 'pay', attempt_number: 2, success: false, delay_ms: 1000, error_class: 'service_unavailable', since_first_failure_ms: 1000 }, T0 + 1);
  const s = engine.stats('pay', 'service_unavailable', 60_000, T0 + 10);
  assert.equal(s.total_attempts, 2);
  assert.equal(s.successful_retries, 1);
  assert.equal(s.failed_retries, 1);
  assert.equal(s.avg_delay_ms, 1500);
  keysWithin(s, shapes.STATS, 'Stats');
  for (const b of s.buckets ?? []) keysWithin(b, shapes.BUCKET_STATS, 'BucketStats');
  const empty = engine.stats('pay', 'service_unavailable', 1000, T0 + 60_000);
  assert.equal(empty.total_attempts, 0);
});

test('recordSuccesses counts first attempts in one call', () => {
  const engine = new Engine({ seed: 1 });
  engine.recordSuccesses('pay', 'acme', 500, T0);
  engine.recordSuccesses('pay', null, 1);
  throwsEngineError(() => engine.recordSuccesses('', undefined, 1, T0), 'invalid_input', 'job_type');
  throwsEngineError(() => engine.recordSuccesses('pay', undefined, -1, T0), 'invalid_input', 'count');
});

test('preview lays out the schedule without changing state', () => {
  const engine = new Engine({ seed: 5 });
  const f = { job_type: 'pay', attempt_number: 1, http_status: 429 };
  const p = engine.preview(f, 5, T0);
  assert.equal(p.current_attempt, 1);
  assert.ok(p.timeline.length >= 1);
  assert.equal(p.recommendations[0].should_retry, true);
  keysWithin(p, shapes.PREVIEW, 'Preview');
  for (const t of p.timeline) keysWithin(t, shapes.TIMELINE_ENTRY, 'TimelineEntry');
  for (const r of p.recommendations) keysWithin(r, shapes.DECISION, 'Decision');
  keysWithin(p.features, shapes.FEATURES, 'Features');
  assert.deepEqual(engine.preview(f, 5, T0), p, 'a preview changes nothing');
  throwsEngineError(() => engine.preview(f, 0, T0), 'invalid_input', 'max_attempts');
});

test('policies: list, add, remove', () => {
  const engine = new Engine({ seed: 1 });
  const names = engine.policies().map((p) => p.name);
  assert.deepEqual([...names].sort(), ['fallback', 'rate_limit', 'service_unavailable', 'validation']);
  for (const p of engine.policies()) keysWithin(p, shapes.POLICY, 'Policy');
  engine.addPolicy({ name: 'payments', error_patterns: ['503'], job_type_patterns: ['pay.*'], max_attempts: 6, base_delay_ms: 100, max_delay_ms: 1000, priority: 500 });
  const d = engine.decide({ job_type: 'payments_capture', attempt_number: 1, http_status: 503 }, T0);
  assert.equal(d.policy, 'payments');
  assert.equal(d.max_attempts, 6);
  throwsEngineError(() => engine.addPolicy({ name: 'payments', max_attempts: 2 }), 'invalid_input', 'name');
  throwsEngineError(() => engine.addPolicy({ name: 'bad', max_attempts: 0 }), 'invalid_input', 'max_attempts');
  throwsEngineError(() => engine.addPolicy({ max_attempts: 2 }), 'invalid_input', 'name');
  assert.equal(engine.removePolicy('payments').name, 'payments');
  throwsEngineError(() => engine.removePolicy('payments'), 'not_found', null);
});

test('guardrails: read, partial update, validation names the field', () => {
  const engine = new Engine({ seed: 1 });
  const g = engine.guardrails();
  keysWithin(g, shapes.GUARDRAILS, 'Guardrails');
  assert.equal(g.max_attempts, 10);
  const next = engine.updateGuardrails({ max_delay_ms: 3000, min_delay_ms: 1500 });
  assert.equal(next.max_delay_ms, 3000);
  assert.equal(next.max_attempts, 10, 'other fields are kept');
  throwsEngineError(() => engine.updateGuardrails({ max_attempts: 0 }), 'config', 'max_attempts');
  throwsEngineError(() => engine.updateGuardrails({ max_attempts: 'many' }), 'invalid_input', 'max_attempts');
  assert.equal(engine.guardrails().max_delay_ms, 3000, 'unchanged after an error');
  const d = engine.decide({ job_type: 'sync', attempt_number: 1, http_status: 500 }, T0);
  assert.ok(d.delay_ms >= 1500 && d.delay_ms <= 3000);
});

test('emergencyStop halts every retry until turned off', () => {
  const engine = new Engine({ seed: 1 });
  const f = { job_type: 'pay', attempt_number: 1, http_status: 503 };
  engine.emergencyStop(true);
  assert.equal(engine.isEmergencyStopped(), true);
  assert.equal(engine.guardrails().emergency_stop, true);
  const d = engine.decide(f, T0);
  assert.equal(d.should_retry, false);
  assert.deepEqual(d.policy_guardrails, ['emergency_stop']);
  engine.emergencyStop(false);
  assert.equal(engine.decide(f, T0).should_retry, true);
});

test('config: an object or its JSON, errors name the field', () => {
  const engine = new Engine({ seed: 1, config: { strategy: { guardrails: { max_attempts: 2 } } } });
  assert.equal(engine.guardrails().max_attempts, 2);
  const fromText = new Engine({ config: '{"strategy": {"guardrails": {"max_delay_ms": 5000}}}' });
  assert.equal(fromText.guardrails().max_delay_ms, 5000);
  throwsEngineError(() => new Engine({ config: { strategy: { guardrails: { max_attempts: 0 } } } }), 'config', 'strategy.guardrails.max_attempts');
  throwsEngineError(() => new Engine({ seed: -1 }), 'invalid_input', 'seed');
});

test('bad input is an Error with code and field, never a crash', () => {
  const engine = new Engine({ seed: 1 });
  const e = throwsEngineError(() => engine.decide({ attempt_number: 1 }, T0), 'invalid_input', 'job_type');
  assert.match(e.message, /job_type/);
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 0 }, T0), 'invalid_input', 'attempt_number');
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 1, http_status: 700 }, T0), 'invalid_input', 'http_status');
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 1, http_status: '503' }, T0), 'invalid_input', 'http_status');
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 1, max_attempts: 0 }, T0), 'invalid_input', 'max_attempts');
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 1 }, -5), 'invalid_input', 'nowMs');
  throwsEngineError(() => engine.decide({ job_type: 'a', attempt_number: 1 }, 1.5), 'invalid_input', 'nowMs');
  throwsEngineError(() => engine.decide({ job_type: 'x'.repeat(300), attempt_number: 1 }, T0), 'invalid_input', 'job_type');
  throwsEngineError(() => engine.record({ job_id: 'j', job_type: 'a', attempt_number: 1 }, T0), 'invalid_input', 'success');
  throwsEngineError(() => engine.stats('a', 'b', 0, T0), 'invalid_input', 'window');
  assert.equal(engine.decide({ job_type: 'a', attempt_number: 1 }, T0).should_retry, true, 'still works after errors');
});
