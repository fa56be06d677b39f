'use strict';
// The ML tier from Node: the registry's operations on real ONNX models (made by
// tests/ml/make_models.py with scikit-learn, never downloaded) and the real ONNX Runtime.
// Under `make test` (SMARTRETRY_REQUIRE_ML=1) a missing Python or runtime fails here;
// elsewhere these tests are skipped with the reason.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Engine } = require('smartretry');

const T0 = 1_700_000_000_000;
const REPO = path.resolve(__dirname, '..', '..');
const REQUIRED = process.env.SMARTRETRY_REQUIRE_ML === '1';

/** The test models' directory, or why there is none. */
function makeModels() {
  const python = process.env.SMARTRETRY_PYTHON ?? path.join(REPO, '.venv', 'bin', 'python');
  if (!fs.existsSync(python)) return { skip: `no Python at ${python} (scripts/venv.sh makes it)` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smartretry-ml-'));
  try {
    execFileSync(python, [path.join(REPO, 'tests', 'ml', 'make_models.py'), dir], { stdio: 'pipe' });
  } catch (e) {
    return { skip: `make_models.py failed: ${e.stderr}` };
  }
  const status = new Engine().mlStatus();
  if (status.runtime === null) return { skip: status.reason };
  return { dir };
}

const models = makeModels();
const skip = models.skip !== undefined && !REQUIRED ? models.skip : false;
if (models.skip !== undefined && REQUIRED) {
  throw new Error(`SMARTRETRY_REQUIRE_ML=1 but the ML tier cannot be tested: ${models.skip}`);
}

function engineWith(...stems) {
  const engine = new Engine({ seed: 7 });
  for (const stem of stems) engine.registerModel(path.join(models.dir, `${stem}.onnx`));
  return engine;
}

const failure = (jobId, attempt = 1) => ({
  job_type: 'payment',
  attempt_number: attempt,
  error_class: 'timeout',
  job_id: jobId,
  since_first_failure_ms: 0,
});

test('a deployed model decides, and says which and why', { skip }, () => {
  const engine = engineWith('recovery');
  const info = engine.models()[0];
  assert.equal(info.version, 'lr-1');
  assert.equal(info.state, 'registered');
  assert.ok(info.metrics.accuracy > 0.8);
  const deployment = engine.deployModel('lr-1');
  assert.equal(deployment.serving, 'lr-1');
  assert.equal(deployment.canary_percent, 100);
  const d = engine.decide(failure('j1'), T0);
  assert.equal(d.method, 'ml', d.rationale);
  assert.match(d.rationale, /test-recovery lr-1 \(logistic_regression\)/);
  assert.ok(d.delay_ms >= 5_000 && d.delay_ms <= 25_000, String(d.delay_ms));
});

test('canary, shadow, rollback and snapshot from Node', { skip }, () => {
  const engine = engineWith('recovery', 'recovery_gb');
  engine.deployModel('lr-1', 50);
  engine.shadowModel('gb-1');
  assert.deepEqual(
    engine.models().map((m) => [m.version, m.state]),
    [['lr-1', 'canary'], ['gb-1', 'shadow']],
  );
  for (let i = 0; i < 40; i++) {
    const jobId = `job-${i}`;
    const now = T0 + i * 60_000;
    const d = engine.decide(failure(jobId), now);
    engine.record(
      { job_id: jobId, job_type: 'payment', attempt_number: 2, error_class: 'timeout', success: d.delay_ms >= 8_000, delay_ms: d.delay_ms },
      now + d.delay_ms,
    );
  }
  const status = engine.mlStatus();
  assert.ok(status.available && status.enabled);
  assert.equal(status.comparison.ml.decisions + status.comparison.bayesian.decisions, 40);
  assert.equal(status.comparison.shadow.decisions, 40);
  assert.ok(status.comparison.shadow.model.outcomes > 0);

  const copy = new Engine({ seed: 7 });
  copy.restoreMl(engine.mlSnapshot());
  assert.deepEqual(copy.models(), engine.models());

  assert.equal(engine.rollbackModel().shadow, null);
  assert.equal(engine.rollbackToBayesian().serving, null);
  assert.notEqual(engine.decide(failure('jx'), T0).method, 'ml');
});

test('bad models and bad requests throw named errors', { skip }, () => {
  const engine = engineWith('recovery');
  assert.throws(() => engine.registerModel(path.join(models.dir, 'corrupt.onnx')), (e) => e.code === 'model' && /not a loadable ONNX model/.test(e.message));
  assert.throws(() => engine.registerModel(path.join(models.dir, 'wrong_width.onnx')), (e) => e.code === 'model' && /5 columns/.test(e.message));
  assert.throws(() => engine.deployModel('lr-1', 101), (e) => e.code === 'invalid_input' && e.field === 'canary_percent');
  assert.throws(() => engine.deployModel('nope'), (e) => e.code === 'not_found');
  assert.throws(() => engine.rollbackModel(), (e) => e.code === 'not_found');
});

test('a model failing at inference leaves the decision to the tier below', { skip }, () => {
  const engine = engineWith('fails_at_inference');
  engine.deployModel('gated-1');
  const d = engine.decide(failure('j2', 2), T0);
  assert.notEqual(d.method, 'ml');
  assert.match(d.rationale, /gated-1 failed: inference failed/);
  assert.equal(engine.mlStatus().errors_total, 1);
});
