// smartretry vs p-retry vs cockatiel, side by side in one process.
//
//   scripts/bench-node.sh            (installs p-retry 7.1 and cockatiel 3.2 here, unsaved)
//
// 1. Success path: the overhead each library adds to an async function that succeeds.
// 2. Failure path: the extra cost of one failure that is retried with no real wait
//    (smartretry: a virtual clock; p-retry: minTimeout 0, which skips its timer;
//    cockatiel always waits with setTimeout, so one setTimeout(0) is measured and
//    subtracted).
// 3. The engine calls behind one failure: decide + record through N-API, as retry()
//    makes them (positional arguments) and through the public Engine API (JSON objects).
//
// Each figure is the median of several rounds (BENCH_STAT=min: the fastest round, for a
// busy machine); µs per call. BENCH_ROUNDS sets the number of rounds (default 7).
import pRetry from 'p-retry';
import { retry as cockatielRetry, handleAll, ConstantBackoff, ExponentialBackoff } from 'cockatiel';
import { retry, wrap, Engine, testing } from '../index.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const T0 = 1_700_000_000_000;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (us) => (us < 0.05 ? '≈0' : us.toFixed(us < 10 ? 2 : 1)).padStart(8);

async function time(n, body) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await body(i);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

function timeSync(n, body) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) body(i);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

async function measure(n, bodies, sync = false) {
  const run = sync ? async (k, b) => timeSync(k, b) : time;
  const samples = Object.fromEntries(Object.keys(bodies).map((k) => [k, []]));
  for (const body of Object.values(bodies)) await run(Math.min(n, 20_000), body); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, body] of Object.entries(bodies)) samples[name].push(await run(n, body));
  }
  const pick = process.env.BENCH_STAT === 'min' ? (v) => Math.min(...v) : median;
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, pick(v)]));
}

// An engine for the failure benchmarks: budget, throttle and breaker off, so every
// failure is answered "retry" and the measurement is the decision machinery itself.
function benchEngine() {
  return new Engine({
    seed: 1,
    config: {
      strategy: {
        guardrails: { max_budget_percent: 100, min_retries_per_sec: 1e9, adaptive_throttle: false },
        circuit_breaker: { enabled: false },
      },
    },
  });
}

const stat = process.env.BENCH_STAT === 'min' ? 'fastest round' : 'median of the rounds';
console.log(`node ${process.version}, ${ROUNDS} rounds, µs per call (${stat})\n`);

// ── 1. success path ──────────────────────────────────────────────────────────
{
  const fn = async () => 1;
  const engine = new Engine({ seed: 1 });
  const wrapped = wrap(fn, { engine, jobType: 'bench' });
  const pOptions = { retries: 3 };
  const cPolicy = cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() });
  // A signal the caller keeps for many calls (a request's, a shutdown's).
  const { signal } = new AbortController();
  const pSignalOptions = { retries: 3, signal };
  const t = await measure(200_000, {
    baseline: () => fn(),
    'p-retry': () => pRetry(fn, pOptions),
    cockatiel: () => cPolicy.execute(fn),
    'smartretry retry()': () => retry(fn, { engine, jobType: 'bench' }),
    'smartretry wrap()': () => wrapped(),
    'p-retry + signal': () => pRetry(fn, pSignalOptions),
    'cockatiel + signal': () => cPolicy.execute(fn, signal),
    'smartretry + signal': () => retry(fn, { engine, jobType: 'bench', signal }),
  });
  engine.flushSuccesses();
  const base = t.baseline;
  const over = (k) => Math.max(0, t[k] - base);
  console.log('1. success path: an async function that succeeds');
  console.log(`   ${'library'.padEnd(20)} ${'per call'.padStart(8)} ${'overhead'.padStart(8)}`);
  for (const k of Object.keys(t)) console.log(`   ${k.padEnd(20)} ${fmt(t[k])} ${k === 'baseline' ? '' : fmt(over(k))}`);
  const ours = over('smartretry retry()');
  console.log(
    `   smartretry overhead vs p-retry: ${(ours / over('p-retry')).toFixed(3)}×, vs cockatiel: ${(ours / Math.max(over('cockatiel'), 1e-3)).toFixed(2)}×\n`,
  );
}

// ── 2. failure path ──────────────────────────────────────────────────────────
{
  const failingOnce = () => {
    let n = 0;
    return async () => {
      if (++n % 2 === 1) throw Object.assign(new Error('unavailable'), { status: 503 });
      return 1;
    };
  };
  const ok = async () => 1;
  const engine = benchEngine();
  const clock = testing.virtualClock(T0);
  const pOptions = { retries: 3, minTimeout: 0, randomize: false };
  const cPolicy = cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) });
  const sOptions = { engine, clock, jobType: 'bench_fail' };
  const [pFail, cFail, sFail] = [failingOnce(), failingOnce(), failingOnce()];
  const fast = await measure(20_000, {
    'p-retry ok': () => pRetry(ok, pOptions),
    'p-retry fail+retry': () => pRetry(pFail, pOptions),
    'smartretry ok': () => retry(ok, sOptions),
    'smartretry fail+retry': () => retry(sFail, sOptions),
  });
  const slow = await measure(1_000, {
    'setTimeout(0)': () => new Promise((r) => setTimeout(r, 0)),
    'cockatiel ok': () => cPolicy.execute(ok),
    'cockatiel fail+retry': () => cPolicy.execute(cFail),
  });
  const perFailure = {
    'p-retry': fast['p-retry fail+retry'] - fast['p-retry ok'],
    cockatiel: slow['cockatiel fail+retry'] - slow['cockatiel ok'] - slow['setTimeout(0)'],
    smartretry: fast['smartretry fail+retry'] - fast['smartretry ok'],
  };
  console.log('2. failure path: one failure, retried at once (no real wait)');
  console.log(`   ${'library'.padEnd(20)} ${'per failure'.padStart(11)}`);
  for (const [k, v] of Object.entries(perFailure)) console.log(`   ${k.padEnd(20)} ${fmt(v).padStart(11)}`);
  console.log(`   (cockatiel waits with setTimeout even for 0 ms: ${fmt(slow['setTimeout(0)']).trim()} µs subtracted)`);
  console.log(
    `   smartretry vs p-retry: ${(perFailure.smartretry / perFailure['p-retry']).toFixed(2)}×, vs cockatiel: ${(perFailure.smartretry / perFailure.cockatiel).toFixed(2)}×\n`,
  );
}

// ── 3. the engine calls behind one failure ──────────────────────────────────
{
  const engine = benchEngine();
  const native = engine.native;
  const out = new Float64Array(3);
  const ids = Array.from({ length: 1024 }, (_, i) => `j${i}`);
  let now = T0;
  // decideFailure as retry() calls it: a 503 on the first attempt.
  const decide = (i) =>
    native.decideFailure(out, 'bench', 1, ids[i & 1023], undefined, 503, undefined, undefined, undefined, undefined, 0, undefined, undefined, undefined, undefined, undefined, now);
  // Steady state: the key has been learned before anything is measured.
  for (let i = 0; i < 50_000; i++) {
    now += 1;
    decide(i);
    native.recordAttempt(ids[i & 1023], 'bench', 2, (i & 3) !== 0, 2000, undefined, 503, undefined, undefined, 2000, now);
  }
  const t = await measure(100_000, {
    'decide + record (retry() path)': (i) => {
      now += 1;
      decide(i);
      native.recordAttempt(ids[i & 1023], 'bench', 2, (i & 3) !== 0, 2000, undefined, 503, undefined, undefined, 2000, now);
    },
    'decide (retry() path)': (i) => {
      now += 1;
      decide(i);
    },
    '  + JSON.parse of the Decision': (i) => {
      now += 1;
      JSON.parse(decide(i));
    },
    'record (retry() path)': (i) => {
      now += 1;
      native.recordAttempt(ids[i & 1023], 'bench', 2, (i & 3) !== 0, 2000, undefined, 503, undefined, undefined, 2000, now);
    },
    'decide + record (Engine API)': (i) => {
      now += 1;
      engine.decide({ job_type: 'bench', attempt_number: 1, job_id: ids[i & 1023], http_status: 503, since_first_failure_ms: 0 }, now);
      engine.record(
        { job_id: ids[i & 1023], job_type: 'bench', attempt_number: 2, success: (i & 3) !== 0, delay_ms: 2000, http_status: 503, since_first_failure_ms: 2000 },
        now,
      );
    },
    'isEmergencyStopped (bool)': () => native.isEmergencyStopped(),
  }, true);
  console.log('3. engine calls per failure (synchronous N-API calls)');
  for (const [k, v] of Object.entries(t)) console.log(`   ${k.padEnd(32)} ${fmt(v)}`);
}
