'use strict';
// Failures from fetch, axios and got (plain objects of their shapes: no client is
// imported) and Node's own errors, as the engine sees them.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { retry, describeFailure, historyOf } = require('smartretry');
const { setup, flaky } = require('./helpers.js');

// axios: error.response = { status, headers }, headers an AxiosHeaders (has get) or an object
function axiosError(status, headers = {}) {
  return Object.assign(new Error(`Request failed with status code ${status}`), {
    name: 'AxiosError',
    code: status >= 500 ? 'ERR_BAD_RESPONSE' : 'ERR_BAD_REQUEST',
    isAxiosError: true,
    response: { status, statusText: '', headers, data: '' },
  });
}
// got: error.response = { statusCode, headers } with lower-case header names
function gotError(statusCode, headers = {}) {
  return Object.assign(new Error(`Response code ${statusCode}`), {
    name: 'HTTPError',
    code: 'ERR_NON_2XX_3XX_RESPONSE',
    response: { statusCode, headers },
  });
}

test('describeFailure reads status, statusCode, response.status and Retry-After', () => {
  const fetchResponse = new Response('', { status: 429, headers: { 'Retry-After': '12' } });
  assert.deepEqual(describeFailure(fetchResponse), { http_status: 429, retry_after: '12' });
  assert.deepEqual(describeFailure(Object.assign(new Error('x'), { response: fetchResponse })), {
    http_status: 429,
    retry_after: '12',
  });
  assert.deepEqual(describeFailure(axiosError(503, { 'retry-after': '3' })), {
    http_status: 503,
    error_code: 'ERR_BAD_RESPONSE',
    retry_after: '3',
  });
  const axiosHeaders = { get: (n) => (n.toLowerCase() === 'retry-after' ? 'Wed, 21 Oct 2015 07:28:00 GMT' : undefined) };
  assert.equal(describeFailure(axiosError(503, axiosHeaders)).retry_after, 'Wed, 21 Oct 2015 07:28:00 GMT');
  assert.deepEqual(describeFailure(gotError(429, { 'retry-after': '7' })), {
    http_status: 429,
    error_code: 'ERR_NON_2XX_3XX_RESPONSE',
    retry_after: '7',
  });
  assert.deepEqual(describeFailure({ statusCode: 502 }), { http_status: 502 });
  assert.deepEqual(describeFailure({ status: '503' }), { http_status: 503 });
  assert.deepEqual(describeFailure({ response: { status: 500, headers: { 'Retry-After': ['5', '6'] } } }), {
    http_status: 500,
    retry_after: '5',
  });
  assert.deepEqual(describeFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), {
    error_code: 'ECONNRESET',
  });
  const fetchFailed = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
  assert.deepEqual(describeFailure(fetchFailed), { error_code: 'ECONNREFUSED', error_class: 'TypeError' });
  assert.deepEqual(describeFailure(new DOMException('timed out', 'TimeoutError')), {
    error_class: 'TimeoutError',
    error_code: '23',
  });
  assert.deepEqual(describeFailure(new Error('plain')), {});
  assert.deepEqual(describeFailure('a string'), {});
  assert.deepEqual(describeFailure(null), {});
});

async function decisionFor(failure, options = {}) {
  const { engine, clock } = setup();
  let caught;
  const fn = flaky([failure]);
  const value = await retry(fn, { engine, clock, maxAttempts: 2, ...options }).catch((e) => (caught = e));
  const history = caught === undefined ? null : historyOf(caught);
  return { value, caught, decision: (history ?? [])[0]?.decision, attempts: fn.seen.length, clock };
}

test('axios: a 503 with Retry-After is retried no sooner than asked', async () => {
  const { value, clock } = await decisionFor(axiosError(503, { 'retry-after': '9' }));
  assert.equal(value, 'ok');
  assert.ok(clock.sleeps[0] >= 9000, `${clock.sleeps[0]}`);
});

test('got: a 429 with Retry-After is a rate limit waited out', async () => {
  const seen = [];
  const { value } = await decisionFor(gotError(429, { 'retry-after': '7' }), { onRetry: (i) => seen.push(i.decision) });
  assert.equal(value, 'ok');
  assert.equal(seen[0].policy, 'rate_limit');
  assert.ok(seen[0].delay_ms >= 7000);
});

test('fetch: an error carrying a Response is classified by its status', async () => {
  const seen = [];
  const failure = Object.assign(new Error('bad'), { response: new Response('', { status: 503 }) });
  await decisionFor(failure, { onRetry: (i) => seen.push(i.decision) });
  assert.equal(seen[0].error_class, 'service_unavailable');
});

test('statusCode 404, 401, 400 and 422 are never retried', async () => {
  for (const status of [404, 401, 400, 422]) {
    const { caught, decision, attempts } = await decisionFor({ statusCode: status, message: 'no' });
    assert.equal(caught.statusCode, status);
    assert.equal(decision.should_retry, false, `${status}: ${decision.rationale}`);
    assert.equal(attempts, 1);
  }
});

test('Node network error codes are retried', async () => {
  for (const code of ['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE']) {
    const seen = [];
    const { value } = await decisionFor(Object.assign(new Error(code), { code }), { onRetry: (i) => seen.push(i.decision) });
    assert.equal(value, 'ok', code);
    assert.equal(seen[0].should_retry, true, code);
  }
});

test('an unparseable Retry-After or odd status is dropped, not fatal', async () => {
  const a = await decisionFor(axiosError(503, { 'retry-after': 'soon-ish' }));
  assert.equal(a.value, 'ok');
  const b = await decisionFor({ status: 999, message: 'odd' });
  assert.equal(b.value, 'ok');
  const c = await decisionFor(Object.assign(new Error('x'), { name: 'N'.repeat(400) }));
  assert.equal(c.value, 'ok');
});
