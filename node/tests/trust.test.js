'use strict';
// Decisions a user would defend (issue 18), through retry() against a real HTTP server on
// 127.0.0.1: the caller's maxAttempts wins over the policy's, a new job type's first
// failure is not throttled, and a hostile Retry-After is capped. Waits use a virtual
// clock: the engine decides at the times the retries would happen, nothing sleeps.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { retry, Engine, testing } = require('smartretry');

const T0 = 1_700_000_000_000;

// /flaky?job=…  503 for the first five requests of each job, then 200
// /once?job=…   503 for the first request of each job, then 200
// /hostile?job=… 429 with Retry-After: 99999999999 (about 3171 years) once, then 200
const seen = new Map();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const key = `${url.pathname}:${url.searchParams.get('job')}`;
  const n = (seen.get(key) ?? 0) + 1;
  seen.set(key, n);
  if (url.pathname === '/flaky' && n <= 5) res.writeHead(503).end('unavailable');
  else if (url.pathname === '/once' && n === 1) res.writeHead(503).end('unavailable');
  else if (url.pathname === '/hostile' && n === 1) res.writeHead(429, { 'Retry-After': '99999999999' }).end('slow down');
  else res.writeHead(200).end('ok');
});
let base;

before(async () => {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

/** GETs `path`; a status ≥ 400 throws an error carrying the Response (status, Retry-After). */
async function get(path) {
  const res = await fetch(`${base}${path}`);
  const body = await res.text();
  if (!res.ok) throw Object.assign(new Error(`${path}: HTTP ${res.status}`), { response: res });
  return body;
}

test('maxAttempts 10 against a 503 that lasts five calls succeeds on call 6', async () => {
  const engine = new Engine({ seed: 7 });
  const clock = testing.virtualClock(T0);
  const decisions = [];
  const body = await retry(() => get('/flaky?job=export-1'), {
    engine,
    clock,
    jobType: 'export',
    maxAttempts: 10,
    onRetry: (i) => decisions.push(i.decision),
  });
  assert.equal(body, 'ok');
  assert.equal(seen.get('/flaky:export-1'), 6, 'the server saw six calls');
  assert.equal(decisions.length, 5);
  assert.ok(decisions.every((d) => d.should_retry && d.max_attempts === 10), JSON.stringify(decisions));
  assert.deepEqual(clock.sleeps, decisions.map((d) => d.delay_ms), 'each wait is the decided delay');
});

test('a new job type\'s first failure is retried at its rules delay, never throttled', async () => {
  const engine = new Engine({ seed: 7 });
  const clock = testing.virtualClock(T0);
  // The engine has seen outcomes: a first-attempt success and a successful retry of another job type.
  assert.equal(await retry(() => get('/ok?job=warm-0'), { engine, clock, jobType: 'warmup' }), 'ok');
  assert.equal(await retry(() => get('/once?job=warm-1'), { engine, clock, jobType: 'warmup' }), 'ok');
  assert.equal(seen.get('/once:warm-1'), 2);

  const firsts = [];
  for (let i = 0; i < 40; i++) {
    const decisions = [];
    const body = await retry(() => get(`/once?job=new-${i}`), {
      engine,
      clock,
      jobType: `new_type_${i}`,
      onRetry: (info) => decisions.push(info.decision),
    });
    assert.equal(body, 'ok');
    assert.equal(seen.get(`/once:new-${i}`), 2, `job type ${i}: one failure, one retry`);
    assert.equal(decisions.length, 1);
    firsts.push(decisions[0]);
  }
  for (const [i, d] of firsts.entries()) {
    const json = JSON.stringify(d);
    assert.ok(d.should_retry, `job type ${i}: ${json}`);
    // The service_unavailable rules: 2 s ± 20 %.
    assert.ok(d.delay_ms <= 2_400, `job type ${i}: ${json}`);
    assert.ok(!d.policy_guardrails.includes('adaptive_throttle'), `job type ${i}: ${json}`);
    assert.ok(!json.includes('adaptive_throttle'), `job type ${i}: ${json}`);
  }
});

test('a Retry-After of 99999999999 s is capped at the max delay, and said in years', async () => {
  const engine = new Engine({ seed: 7 });
  const clock = testing.virtualClock(T0);
  const decisions = [];
  const body = await retry(() => get('/hostile?job=email-1'), {
    engine,
    clock,
    jobType: 'email',
    onRetry: (i) => decisions.push(i.decision),
  });
  assert.equal(body, 'ok');
  assert.equal(seen.get('/hostile:email-1'), 2);
  assert.equal(decisions.length, 1);
  const [d] = decisions;
  assert.equal(d.delay_ms, 300_000, d.rationale);
  assert.deepEqual(clock.sleeps, [300_000]);
  assert.match(d.rationale, /3171y/);
  assert.match(d.rationale, /capped at the max delay/);
  assert.doesNotMatch(d.rationale, /\d{5,}h/, 'no absurd hour count');
});
