'use strict';
// The options contract (core/src/options.rs, docs/options.md) through retry() and wrap():
// the shared invalid-option vectors, random values fed to every option, and the engine
// methods' arguments.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { retry, wrap, Engine, SmartRetryError, isEngineError, testing } = require('smartretry');
const { PARAMS } = require('../dist/native.js');
const native = require('../native/index.js');
const { httpError, flaky } = require('./helpers.js');

const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'options', 'retry_options.json'), 'utf8'),
);
/** The contract as Node spells it: canonical name -> Node name. */
const SPELLED = Object.fromEntries(JSON.parse(native.retryOptions()).map((o) => [o.canonical, o.name]));

function hostValue(v) {
  if (v !== null && typeof v === 'object' && '$' in v) {
    return { nan: NaN, inf: Infinity, '-inf': -Infinity }[v.$] ?? 'x'.repeat(v.length ?? 300);
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hostValue(x)]));
  }
  return v;
}

const forNode = (c) => (c.hosts ?? ['node']).includes('node') && c.option in SPELLED;

test('the invalid-option vectors are refused before the function runs, naming the option', async () => {
  const cases = vectors.invalid.filter(forNode);
  assert.ok(cases.length >= 35, `${cases.length} cases`);
  for (const c of cases) {
    const name = SPELLED[c.option];
    const field = c.sub === undefined ? name : `${name}.${c.sub}`;
    const fn = flaky([httpError(503)]);
    const check = (e) => {
      assert.ok(e instanceof SmartRetryError, `${name}=${JSON.stringify(c.value)}: ${e}`);
      assert.equal(e.code, c.kind, `${name}=${JSON.stringify(c.value)}: ${e.message}`);
      assert.equal(e.field, field, e.message);
      return true;
    };
    await assert.rejects(retry(fn, { engine: new Engine(), [name]: hostValue(c.value) }), check);
    assert.throws(() => wrap(fn, { [name]: hostValue(c.value) }), check);
    assert.equal(fn.seen.length, 0);
  }
});

test('the valid-option vectors are accepted', async () => {
  for (const c of vectors.valid.filter(forNode)) {
    const name = SPELLED[c.option];
    assert.equal(await retry(async () => 'ok', { [name]: hostValue(c.value) }), 'ok', name);
  }
});

test('every option of the contract is a key of RetryOptions, and unknown keys are refused', async () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'dist', 'retry.d.ts'), 'utf8');
  const body = dts.slice(dts.indexOf('export interface RetryOptions'), dts.indexOf('export declare class RetryStatistics'));
  const keys = [...body.matchAll(/^ {4}(\w+)\?:/gm)].map((m) => m[1]).sort();
  assert.deepEqual(keys, Object.values(SPELLED).sort());
  await assert.rejects(retry(async () => 1, { maxAtempts: 3 }), (e) => {
    assert.equal(e.field, 'maxAtempts');
    assert.match(e.message, /did you mean maxAttempts\?/);
    return true;
  });
});

// ── fuzz: random types and values to every option ──────────────────────────────

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x9e3779b9) >>> 0) / 2 ** 32);
}

const hook = () => undefined;
const POOL = [
  undefined, null, true, false, 0, 1, -1, 3, 7, 100, 101, 2 ** 60, -(2 ** 60), 0.5, 2.5, NaN, Infinity, -Infinity,
  '', 'x', '5', 'high', 'urgent', 'x'.repeat(300), 'a\nb', 10n, Symbol('s'), [], [1], [Error], {}, { strategy: 'linear' },
  { base: -1 }, { strategy: 'constant', base: 1, max: 2 }, { base: 5, max: 1 }, { jitter: 'full' }, { nope: 1 },
  new Date(), new Map(), hook, async () => false, Error, TypeError, new AbortController().signal,
  testing.virtualClock(), new Engine({ seed: 3 }),
];

test('fuzz: every option fails at once naming itself, or never fails later', async () => {
  const next = rng(20240611);
  const names = Object.values(SPELLED);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 1500; i++) {
    const options = { clock: testing.virtualClock() };
    for (let k = 1 + Math.floor(next() * 3); k > 0; k--) {
      options[names[Math.floor(next() * names.length)]] = POOL[Math.floor(next() * POOL.length)];
    }
    const fn = flaky([httpError(503), Object.assign(new Error('reset'), { code: 'ECONNRESET' })]);
    let wrapped;
    try {
      wrapped = wrap(fn, options);
    } catch (e) {
      refused++;
      assert.ok(e instanceof SmartRetryError, `${Object.keys(options)}: ${e}`);
      assert.ok(['invalid_input', 'invalid_type'].includes(e.code), e.message);
      assert.ok(e.field !== null && e.field.split('.')[0] in options, `${e.field} of ${Object.keys(options)}`);
      await assert.rejects(retry(fn, options), (again) => again.field === e.field);
      continue;
    }
    accepted++;
    try {
      await wrapped();
    } catch (e) {
      // The function's own failure (or the abort reason of an aborted signal): never ours.
      assert.ok(!isEngineError(e), `${JSON.stringify(Object.keys(options))} accepted, then: ${e}`);
    }
  }
  assert.ok(accepted > 100 && refused > 500, `${accepted} accepted, ${refused} refused`);
});

test("engine methods' arguments of a wrong type are SmartRetryErrors naming the argument", () => {
  const engine = new Engine({ seed: 1 });
  const cases = [
    ['windowMs', () => engine.stats('a', 'b', 'x')],
    ['nowMs', () => engine.decide({ job_type: 'a', attempt_number: 1 }, 'soon')],
    ['jobType', () => engine.health(3)],
    ['count', () => engine.recordSuccesses('a', undefined, '3')],
    ['on', () => engine.emergencyStop('yes')],
    ['seed', () => new Engine({ seed: 'x' })],
    ['nowMs', () => engine.decide({ job_type: 'a', attempt_number: 1 }, -5)],
  ];
  for (const [field, call] of cases) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof SmartRetryError, `${field}: ${e}`);
      assert.ok(isEngineError(e));
      assert.equal(e.field, field, e.message);
      return true;
    });
  }
});

test('unknown fields in the objects Engine takes are refused, named', () => {
  assert.throws(() => new Engine({ config: { nope: 1 } }), { code: 'config', field: 'nope' });
  const engine = new Engine();
  assert.throws(() => engine.updateGuardrails({ max_atempts: 3 }), { field: 'max_atempts' });
  assert.throws(() => engine.decide({ job_type: 'a', attempt_number: 1, bogus: 1 }), { field: 'bogus' });
});

test('the native parameter table matches the generated native/index.d.ts', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'native', 'index.d.ts'), 'utf8');
  const cls = dts.slice(dts.indexOf('export declare class NativeEngine'), dts.indexOf('export declare class NativeSubscription'));
  const kind = (t) => {
    const first = t.split('|')[0].trim();
    if (first.startsWith("'") || first === 'string') return 'string';
    if (first.startsWith('(')) return 'function';
    return { number: 'number', boolean: 'boolean' }[first] ?? 'object';
  };
  const describe = (params) =>
    params
      .split(/,(?![^(]*\))/)
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const [name, type] = p.split(/:(.*)/s);
        const optional = name.endsWith('?') || type.includes('undefined');
        return `${name.replace('?', '')}:${kind(type)}${optional ? '?' : ''}`;
      })
      .join(' ');
  for (const m of cls.matchAll(/^ {2}(\w+)\((.*)\)(?::|$)/gm)) {
    assert.equal(PARAMS[m[1]], describe(m[2]), m[1]);
  }
});
