'use strict';
// The shared conformance vectors (tests/vectors/*.json), run through the public
// Engine exactly as core/tests/vectors.rs runs them through the Rust engine.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Engine } = require('smartretry');

const dir = path.join(__dirname, '..', '..', 'tests', 'vectors');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

/** Every key of `expected` matches in `actual` (numbers within 1e-9). */
function matches(expected, actual, at, errors) {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      errors.push(`${at}: expected an object, got ${JSON.stringify(actual)}`);
      return;
    }
    for (const [k, v] of Object.entries(expected)) {
      if (k === 'rationale_contains') {
        const rationale = typeof actual.rationale === 'string' ? actual.rationale : '';
        if (!rationale.includes(v)) errors.push(`${at}.rationale ${JSON.stringify(rationale)} lacks ${JSON.stringify(v)}`);
      } else if (!(k in actual)) {
        errors.push(`${at}.${k} missing`);
      } else {
        matches(v, actual[k], `${at}.${k}`, errors);
      }
    }
  } else if (Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length) {
    expected.forEach((x, i) => matches(x, actual[i], `${at}[${i}]`, errors));
  } else if (typeof expected === 'number' && typeof actual === 'number') {
    if (!(Math.abs(expected - actual) <= 1e-9)) errors.push(`${at}: expected ${expected}, got ${actual}`);
  } else if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    errors.push(`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function runStep(engine, step, now) {
  switch (step.op) {
    case 'decide':
      return engine.decide(step.features, now);
    case 'record':
      return engine.record(step.attempt, now) ?? null;
    case 'preview':
      return engine.preview(step.features, step.max_attempts ?? 5, now);
    case 'stats':
      return engine.stats(step.job_type ?? '', step.error_class ?? '', step.window_ms, now);
    case 'emergency_stop':
      engine.emergencyStop(step.on ?? true);
      return null;
    case 'update_guardrails':
      return engine.updateGuardrails(step.guardrails);
    case 'add_policy':
      return engine.addPolicy(step.policy) ?? null;
    case 'remove_policy':
      return engine.removePolicy(step.name ?? '');
    case 'record_successes':
      return engine.recordSuccesses(step.job_type ?? '', step.tenant, step.count ?? 1, now) ?? null;
    case 'policies':
      return engine.policies();
    case 'guardrails':
      return engine.guardrails();
    case 'add_override':
      return engine.addOverride(step.override, now);
    case 'remove_override':
      return engine.removeOverride(step.name ?? '');
    case 'overrides':
      return engine.overrides(now);
    case 'health':
      return engine.health(step.job_type ?? '', now);
    default:
      throw new Error(`unknown op ${step.op}`);
  }
}

let checked = 0;

test('the shared vectors are present', () => {
  assert.ok(files.length >= 4, `vectors in ${dir}: ${files}`);
});

for (const file of files) {
  test(`vector ${file}`, () => {
    const vector = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const engine = new Engine({ seed: vector.seed ?? 0, config: vector.config ?? undefined });
    const errors = [];
    vector.steps.forEach((step, i) => {
      const repeat = step.repeat ?? 1;
      const stepMs = step.step_ms ?? 0;
      let now = step.now_ms;
      let result = null;
      let thrown;
      for (let r = 0; r < repeat; r++) {
        try {
          result = runStep(engine, step, now);
          thrown = undefined;
        } catch (e) {
          thrown = e;
        }
        now += stepMs;
      }
      const at = `${vector.name} step ${i} (${step.op})`;
      if (step.expect_error !== undefined) {
        if (thrown === undefined) errors.push(`${at}: expected an error, got ${JSON.stringify(result)}`);
        else matches(step.expect_error, { kind: thrown.code, field: thrown.field }, at, errors);
      } else if (thrown !== undefined) {
        errors.push(`${at}: unexpected error ${thrown.message}`);
      } else if (step.expect !== undefined) {
        matches(step.expect, result, at, errors);
      }
      checked += 1;
    });
    assert.deepEqual(errors, []);
  });
}

test('more than 50 vector steps were checked', () => {
  assert.ok(checked > 50, `${checked} steps`);
});
