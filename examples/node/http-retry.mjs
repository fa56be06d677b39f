// smartretry against a real HTTP server on 127.0.0.1: 429 with Retry-After, then a
// flaky payment API (503) whose recovery time the engine learns.
//
//   (cd node && npm ci && npm run build)            # build the package once
//   cd examples/node && npm install && npm start    # links ../../node as `smartretry`
//
// Everything is real: the server, fetch, the timers. The engine starts with the rules
// tier's backoff; after a few dozen retries it has learned when this downstream comes
// back and retries then, so jobs need fewer attempts.
import http from 'node:http';
import { retry, Engine } from 'smartretry';

// ── the downstream ────────────────────────────────────────────────────────────
// /quota: the first request of each job is rate limited (429, Retry-After: 1).
// /pay:   17 jobs in 20 succeed at once; the others hit an incident: 503 until
//         RECOVERY_MS after that job's first request, then success.
const RECOVERY_MS = 900;
const firstSeen = new Map();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const job = url.searchParams.get('job');
  const key = `${url.pathname}:${job}`;
  const now = Date.now();
  if (!firstSeen.has(key)) firstSeen.set(key, now);
  const since = now - firstSeen.get(key);
  if (url.pathname === '/quota' && since === 0) {
    res.writeHead(429, { 'Retry-After': '1' }).end('slow down');
  } else if (url.pathname === '/pay' && Number(job.slice(1)) % 20 >= 17 && since < RECOVERY_MS) {
    res.writeHead(503).end('unavailable');
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ job, ok: true }));
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

// ── the client ────────────────────────────────────────────────────────────────
// Our own engine with a policy for this API (quick first retries, at most 6 attempts).
// Without `engine`, retry() uses one process-wide engine with the default policies.
const engine = new Engine({ seed: 7 });
engine.addPolicy({
  name: 'payments_api',
  error_patterns: ['503'],
  job_type_patterns: ['payment_.*'],
  max_attempts: 6,
  base_delay_ms: 150,
  max_delay_ms: 5000,
  jitter_percent: 10,
  priority: 200,
});

async function getJson(path) {
  const res = await fetch(`${base}${path}`);
  // Throwing an error that carries the Response lets the engine see the status and
  // the Retry-After header.
  if (!res.ok) throw Object.assign(new Error(`${path}: HTTP ${res.status}`), { response: res });
  return res.json();
}

// 1. A rate limit: the engine never retries before the server's Retry-After.
const t0 = Date.now();
await retry(() => getJson('/quota?job=q1'), {
  engine,
  jobType: 'quota_check',
  onRetry: ({ decision }) => console.log(`429 → wait ${decision.delay_ms} ms (${decision.method}): ${decision.rationale}`),
});
console.log(`quota_check succeeded after ${Date.now() - t0} ms\n`);

// 2. A flaky payment API, in waves of concurrent jobs that share the engine.
const WAVES = 8;
const PER_WAVE = 40;
console.log(
  `payment_capture: ${WAVES} waves of ${PER_WAVE} concurrent jobs; 15% fail with 503 until ${RECOVERY_MS} ms after their first failure`,
);
let job = 0;
for (let wave = 1; wave <= WAVES; wave++) {
  const firstDelays = [];
  const methods = new Set();
  const started = Date.now();
  const attempts = await Promise.all(
    Array.from({ length: PER_WAVE }, async () => {
      const id = `p${++job}`;
      let used = 0;
      await retry(
        async (attempt) => {
          used = attempt;
          return getJson(`/pay?job=${id}`);
        },
        {
          engine,
          jobType: 'payment_capture',
          onRetry: ({ attempt, decision }) => {
            if (attempt === 1) firstDelays.push(decision.delay_ms);
            methods.add(decision.method);
          },
        },
      );
      return used;
    }),
  );
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const failing = attempts.filter((a) => a > 1);
  console.log(
    `wave ${wave}: first retry after ~${Math.round(mean(firstDelays))} ms (${[...methods].join(' + ')}), ` +
      `${mean(failing).toFixed(2)} attempts per failing job, wave took ${Date.now() - started} ms`,
  );
}

const stats = engine.stats('payment_capture', 'service_unavailable');
console.log(
  `\nlearned from ${stats.total_attempts} retries (${stats.successful_retries} succeeded); ` +
    `a fresh failure now gets: ${engine.preview({ job_type: 'payment_capture', attempt_number: 1, http_status: 503, since_first_failure_ms: 0 }, 6).recommendations[0].rationale}`,
);
server.close();
