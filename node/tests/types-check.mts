// Compiled by `tsc -p tests/tsconfig.json` (no output): the public types are usable as
// documented, and the shape lists in shapes.js are exactly the interfaces' keys.
import {
  retry,
  wrap,
  Engine,
  testing,
  historyOf,
  AttemptTimeoutError,
  SmartRetryError,
  RetryStatistics,
  isEngineError,
  type EngineErrorCode,
  type Decision,
  type Features,
  type Guardrails,
  type Policy,
  type Preview,
  type Stats,
  type BucketStats,
  type TimelineEntry,
  type RetryOptions,
  type GiveUpInfo,
} from 'smartretry';
import * as esm from '../index.mjs';
import * as shapes from './shapes.js';

type Exactly<List extends readonly PropertyKey[], T> = [Exclude<keyof T, List[number]>] extends [never]
  ? [Exclude<List[number], keyof T>] extends [never]
    ? true
    : false
  : false;

export const shapeChecks: true[] = [
  true as Exactly<typeof shapes.DECISION, Decision>,
  true as Exactly<typeof shapes.TIMELINE_ENTRY, TimelineEntry>,
  true as Exactly<typeof shapes.PREVIEW, Preview>,
  true as Exactly<typeof shapes.STATS, Stats>,
  true as Exactly<typeof shapes.BUCKET_STATS, BucketStats>,
  true as Exactly<typeof shapes.POLICY, Policy>,
  true as Exactly<typeof shapes.GUARDRAILS, Guardrails>,
  true as Exactly<typeof shapes.FEATURES, Features>,
];

export async function usage(): Promise<void> {
  const engine = new Engine({ seed: 1, config: { strategy: { guardrails: { max_attempts: 5 } } } });
  const features: Features = { job_type: 'pay', attempt_number: 1, http_status: 503 };
  const d: Decision = engine.decide(features, 1_700_000_000_000);
  const delay: number = d.delay_ms;
  engine.record({ job_id: 'j', job_type: 'pay', attempt_number: 2, success: true, delay_ms: delay });
  engine.recordSuccesses('pay', 'acme', 10);
  const p: Preview = engine.preview(features, 5);
  const s: Stats = engine.stats('pay', 'service_unavailable', 60_000);
  const g: Guardrails = engine.updateGuardrails({ max_delay_ms: 30_000 });
  engine.addPolicy({ name: 'mine', max_attempts: 2, base_delay_ms: 100, max_delay_ms: 1000 });
  const removed: Policy = engine.removePolicy('mine');
  engine.emergencyStop(false);
  void [p, s, g, removed, engine.policies(), engine.guardrails()];

  const clock = testing.virtualClock();
  const options: RetryOptions<string> = {
    engine,
    clock,
    jobType: 'pay',
    tenant: 'acme',
    maxAttempts: 4,
    deadline: 10_000,
    timeout: 500,
    idempotent: false,
    retryOn: [TypeError, AttemptTimeoutError],
    retryIf: (value, info) => info.kind === 'result' && value === 'busy',
    onRetry: (info) => console.log(info.decision.rationale, info.delayMs),
    onGiveUp: async (info: GiveUpInfo<string>) => console.log(info.reason, info.history.length),
    fallback: (info) => `gave up after ${info.attempt}`,
    signal: AbortSignal.timeout(1000),
  };
  const value: string = await retry(async (attempt, { signal }) => `ok ${attempt} ${signal?.aborted}`, options);
  const fetchish = wrap(async (url: string, n: number) => ({ url, n }), { jobType: 'fetch' });
  const r: { url: string; n: number } = await fetchish('http://127.0.0.1', 1);
  const e: unknown = new Error('x');
  if (isEngineError(e)) console.log(e.code, e.field);
  void [value, r, historyOf(e)?.[0]?.decision?.method];
  const viaEsm: typeof retry = esm.retry;
  void viaEsm;
  // The options added by the contract, typed; an engine closed by `using`.
  const controlled: RetryOptions<number> = {
    giveUpOn: [RangeError],
    stopIf: async (info) => info.elapsedMs > 1000 || info.attempt > 3,
    backoff: { strategy: 'exponential', base: 100, max: 5_000, jitter: 'full' },
  };
  {
    using scoped = new Engine({ seed: 1 });
    const n: number = await retry(async () => 1, { ...controlled, engine: scoped });
    const closed: boolean = scoped.closed;
    void [n, closed];
  }
  const counted = wrap(async () => 1, controlled);
  const stats: RetryStatistics = counted.statistics;
  const err: unknown = new Error('y');
  if (err instanceof SmartRetryError) console.log(err.code satisfies EngineErrorCode, err.field, err.reason);
  void stats.attempts;
}
