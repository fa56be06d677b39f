'use strict';
// Stores from Node: `new Engine({ store })` with a SQLite file that outlives the engine,
// the dead-letter queue, and errors naming the field.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Engine, retry, deadLetterOnGiveUp, testing } = require('smartretry');

const T0 = 1_700_000_000_000;
const CALM = { strategy: { guardrails: { adaptive_throttle: false } } };
const FAILURE = { job_type: 'export', attempt_number: 1, error_class: 'timeout', since_first_failure_ms: 0 };

function teach(engine, n = 40) {
  for (let i = 0; i < n; i++) {
    const t = T0 + i * 1000;
    const base = { job_type: 'export', error_class: 'timeout' };
    engine.record({ ...base, job_id: `f${i}`, attempt_number: 2, success: false, delay_ms: 2000, since_first_failure_ms: 2000 }, t);
    const okAt = 6000 + (i % 7) * 1000;
    engine.record({ ...base, job_id: `s${i}`, attempt_number: 3, success: true, delay_ms: okAt - 2000, since_first_failure_ms: okAt }, t);
  }
}

function tempDb(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smartretry-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return `sqlite://${path.join(dir, 'state.db')}`;
}

test('a SQLite store outlives the engine', (t) => {
  const store = tempDb(t);
  const first = new Engine({ seed: 3, config: CALM, store });
  teach(first);
  first.flush();
  assert.match(first.metrics().store, /^sqlite:\/\//);
  const again = new Engine({ seed: 3, config: CALM, store });
  assert.equal(again.decide(FAILURE, T0 + 100_000).method, 'bayesian');
  assert.equal(new Engine({ seed: 3, config: CALM }).decide(FAILURE, T0 + 100_000).method, 'rules');
});

test('dead letters round-trip with history, retry and a resolution note', (t) => {
  const engine = new Engine({ store: tempDb(t) });
  const entry = engine.addDeadLetter({
    job_id: 'o-1',
    job_type: 'invoice',
    failure_reason: 'no attempts left',
    payload_ref: 's3://bucket/o-1.json',
    attempts: [{ job_id: 'o-1', job_type: 'invoice', attempt_number: 1, success: false }],
  });
  assert.equal(entry.status, 'open');
  assert.equal(engine.deadLetterCount(), 1);
  assert.deepEqual(engine.deadLetters({ status: 'open' }).map((d) => d.job_id), ['o-1']);
  assert.equal(engine.retryDeadLetter(entry.id).manual_retries, 1);
  assert.equal(engine.resolveDeadLetter(entry.id, 'sent by hand').resolution_note, 'sent by hand');
  assert.equal(engine.deadLetter(entry.id).attempts.length, 1);
  assert.throws(() => engine.deadLetter('dlq_nope'), (e) => e.code === 'not_found');
  assert.throws(() => engine.deadLetterCount('lost'), (e) => e.code === 'invalid_input' && e.field === 'status');
});

test('a bad store is a config error naming the field', () => {
  assert.throws(() => new Engine({ store: 'ftp://elsewhere' }), (e) => e.code === 'config' && e.field === 'store');
});

test('a job retry() gives up on lands in the dead-letter queue with its history', async (t) => {
  const engine = new Engine({ seed: 3, config: CALM, store: tempDb(t) });
  const timeout = Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' });
  await assert.rejects(
    retry(
      () => {
        throw timeout;
      },
      {
        engine,
        jobType: 'order_sync',
        maxAttempts: 3,
        clock: testing.virtualClock(),
        onGiveUp: deadLetterOnGiveUp({ engine, tenant: 'acme', payload: () => ({ order: 'o-7' }), payloadRef: () => 's3://orders/o-7.json' }),
      },
    ),
  );
  const [entry] = engine.deadLetters({ status: 'open' });
  assert.equal(entry.job_type, 'order_sync');
  assert.equal(entry.tenant, 'acme');
  assert.match(entry.failure_reason, /no attempts left/);
  assert.deepEqual(entry.attempts.map((a) => a.attempt_number), [1, 2, 3]);
  assert.deepEqual(entry.payload, { order: 'o-7' });
  assert.equal(entry.payload_ref, 's3://orders/o-7.json');
});
