// The README's Engine example, run as written (with an explicit nowMs and features).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, retry, testing } from 'smartretry';

test('README: the Engine tour runs', () => {
  const nowMs = 1_700_000_000_000;
  const features = { job_type: 'payment_capture', attempt_number: 1, http_status: 503 };
  const policy = { name: 'name', max_attempts: 2, base_delay_ms: 10, max_delay_ms: 100 };
  const engine = new Engine({ seed: 1, config: { strategy: { guardrails: { max_attempts: 5 } } } });
  const d = engine.decide({ job_type: 'payment_capture', attempt_number: 1, http_status: 503 }, nowMs);
  assert.equal(d.should_retry, true);
  assert.equal(d.method, 'rules');
  assert.match(d.rationale, /service_unavailable policy/);
  engine.record({ job_id: 'j1', job_type: 'payment_capture', attempt_number: 2, success: true, delay_ms: d.delay_ms });
  engine.recordSuccesses('payment_capture', 'acme', 100);
  engine.preview(features, 5);
  engine.stats('payment_capture', 'service_unavailable', 3_600_000);
  engine.policies(); engine.addPolicy(policy); engine.removePolicy('name');
  engine.guardrails(); engine.updateGuardrails({ max_delay_ms: 30_000 });
  engine.emergencyStop(true);
  assert.equal(engine.decide(features, nowMs).should_retry, false);
});

test('README: virtual time', async () => {
  let n = 0;
  const flaky = async () => {
    if (++n < 3) throw Object.assign(new Error('busy'), { status: 503 });
    return 'done';
  };
  const clock = testing.virtualClock();
  assert.equal(await retry(flaky, { clock, engine: new Engine({ seed: 1 }) }), 'done');
  assert.equal(clock.sleeps.length, 2);
});
