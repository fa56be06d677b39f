import type { Clock } from './clock.js';
import { getDefaultClock } from './clock.js';
import type { Engine } from './engine.js';
import { defaultEngine } from './engine.js';
import { Aborted, abortReason, failed, guarded, type Call } from './loop.js';
import type { Checked } from './options.js';
import { UNCHECKED, checkOptions } from './options.js';
import type { Decision, Priority } from './types.js';

export { setDefaultClock } from './clock.js';

/** Passed to the function on every attempt. */
export interface AttemptContext {
  /** 1-based. */
  attempt: number;
  /**
   * Aborts when this attempt times out (`timeout` option) or the caller's `signal`
   * aborts; pass it on to fetch/axios/got so the work stops too. Present only when
   * one of those options is set.
   */
  signal: AbortSignal | undefined;
}

export type RetryFunction<T> = (attempt: number, context: AttemptContext) => T | PromiseLike<T>;

/** One attempt, as kept in the history. */
export interface AttemptRecord {
  /** 1-based. */
  attempt: number;
  /**
   * When it started (the clock's epoch ms). For the first attempt this is measured only
   * with `deadline` or `timeout` (the success path reads no clock); otherwise it is when
   * the first attempt failed, and its `durationMs` is 0.
   */
  startedAt: number;
  durationMs: number;
  /** How long retry() waited before it (the previous decision's delay). */
  waitedMs: number;
  /** What it threw, when it threw. */
  error?: unknown;
  /** What it returned, when `retryIf` judged that result a failure. */
  result?: unknown;
  /** The engine's decision about this failure (absent if the engine was not asked). */
  readonly decision?: Decision;
}

export interface RetryInfo<T = unknown> {
  jobType: string;
  jobId: string;
  /** The attempt that just failed. */
  attempt: number;
  error?: unknown;
  result?: T;
  decision: Decision;
  /** = decision.delay_ms: how long retry() is about to wait. */
  delayMs: number;
  history: readonly AttemptRecord[];
}

/** Why retry() stopped. */
export type GiveUpReason =
  /** The engine's decision (see `decision.rationale`; it applies `maxAttempts` too). */
  | 'engine'
  /** `retryOn` / `giveUpOn` / `retryIf` said this failure is not worth retrying. */
  | 'not_retryable'
  /** `stopIf` said stop. */
  | 'stopped';

export interface GiveUpInfo<T = unknown> {
  jobType: string;
  jobId: string;
  attempt: number;
  error?: unknown;
  result?: T;
  decision?: Decision;
  reason: GiveUpReason;
  /** Every attempt, oldest first: the dead-letter record. */
  history: readonly AttemptRecord[];
}

/** What `stopIf` sees after each failure. */
export interface StopInfo<T = unknown> {
  jobType: string;
  jobId: string;
  /** The attempt that just failed. */
  attempt: number;
  error?: unknown;
  result?: T;
  /** Since the first failure, on the call's clock. */
  elapsedMs: number;
  history: readonly AttemptRecord[];
}

type ErrorClass = abstract new (...args: never[]) => unknown;

/**
 * A call's own schedule: the engine computes the delays from it as its rules tier for
 * the call, within the guardrails (docs/options.md). Milliseconds.
 */
export interface Backoff {
  strategy?: 'exponential' | 'linear' | 'fibonacci' | 'aggressive' | 'constant';
  /** The first delay (default 1000). */
  base?: number;
  /** The longest delay (default: the guardrails' max delay). */
  max?: number;
  /** Growth per retry of `exponential`, 1–100 (default 2). */
  multiplier?: number;
  jitter?: 'none' | 'full' | 'equal' | 'decorrelated' | number;
}

/**
 * The options of retry() and wrap(): the engine's options contract (docs/options.md),
 * checked when retry() is called (wrap: when it builds its function). A wrong one
 * rejects with a `SmartRetryError` naming it before `fn` runs; so does an unknown one.
 */
export interface RetryOptions<T = unknown> {
  /** Default: the process-wide `defaultEngine()`. */
  engine?: Engine;
  /** What the engine learns under. Default: the function's name, else 'anonymous'. */
  jobType?: string;
  tenant?: string;
  /** Identifies this call to the engine (concurrency caps). Default: generated. */
  jobId?: string;
  /**
   * Only errors that are instances of these are retried; others are thrown at once.
   * Naming a programming error's class (`TypeError`…, not retried by default: see
   * docs/errors.md) retries it.
   */
  retryOn?: ErrorClass | readonly ErrorClass[];
  /** Errors that are instances of these are never retried: thrown after their attempt. */
  giveUpOn?: ErrorClass | readonly ErrorClass[];
  /**
   * Called with each error (after `retryOn`) and each result; may be async (awaited).
   * For an error, `false` means "do not retry, throw it". For a result, `true` means
   * "this result is a failure": it is described to the engine like an error (a fetch
   * `Response` gives its status and Retry-After) and retried; if retries run out,
   * retry() resolves with the last result (or the fallback).
   */
  retryIf?: (value: unknown, info: { kind: 'error' | 'result'; attempt: number }) => boolean | PromiseLike<boolean>;
  /**
   * Called after each failure, before the engine is asked; `true` stops retrying. May
   * be async. Combines with `maxAttempts` and `deadline`: any of them stops.
   */
  stopIf?: (info: StopInfo<T>) => boolean | PromiseLike<boolean>;
  /**
   * The caller's number of attempts, the first included (1–100): authoritative both
   * ways over the policy's (default 6), up to an operator's guardrail. Retries a rate
   * limit refused with a known reset, and failures while the downstream is down for
   * everyone, do not use one up; the job still ends by its deadline (default 30 min).
   */
  maxAttempts?: number;
  /** Milliseconds from the call's start after which no retry starts (the engine enforces it). */
  deadline?: number;
  /** Milliseconds one attempt may run; it then fails with an `AttemptTimeoutError`. */
  timeout?: number;
  /** This call's own schedule (the engine computes the delays from it). */
  backoff?: Backoff;
  /**
   * `false` marks a call that must not run twice: the engine never retries it after a
   * failure that may have taken effect (timeouts, 5xx, resets). Default `true`.
   */
  idempotent?: boolean;
  /**
   * How much this call matters. When the retry budget or a concurrency cap binds, a
   * priority may use only its share of it (the rest waits for higher ones); critical
   * work of a context that does not respect global backpressure goes past it.
   */
  priority?: Priority;
  /**
   * Stops the call at once, in an attempt or a wait: retry() rejects with
   * `signal.reason`, whose `cause` is then the last failure (when it had none). The
   * attempt gets the signal as `context.signal`.
   */
  signal?: AbortSignal;
  /** Called before each wait; may be async (awaited). Throwing stops the retries. */
  onRetry?: (info: RetryInfo<T>) => void | PromiseLike<void>;
  /** Called once when retry() gives up, with the full history (a dead-letter hook). */
  onGiveUp?: (info: GiveUpInfo<T>) => void | PromiseLike<void>;
  /** What to resolve with instead of failing: a value, or a function of the give-up info. */
  fallback?: T | ((info: GiveUpInfo<T>) => T | PromiseLike<T>);
  /** Time source; `testing.virtualClock()` skips real waiting. Default: `setDefaultClock()`'s. */
  clock?: Clock;
}

/**
 * What the calls of one `wrap()`ped function have been through (`wrapped.statistics`):
 * calls started, attempts made, retries, successes, calls given up, the time spent
 * waiting between attempts and the engine's last decision.
 */
export class RetryStatistics {
  calls = 0;
  retries = 0;
  successes = 0;
  gaveUp = 0;
  idleMs = 0;
  /** @internal the last decision's JSON, parsed when read. */
  lastDecisionJson: string | undefined = undefined;

  get attempts(): number {
    return this.calls + this.retries;
  }

  get lastDecision(): Decision | undefined {
    return this.lastDecisionJson === undefined ? undefined : (JSON.parse(this.lastDecisionJson) as Decision);
  }

  toJSON(): Record<string, unknown> {
    const { calls, attempts, retries, successes, gaveUp, idleMs, lastDecision } = this;
    return { calls, attempts, retries, successes, gaveUp, idleMs, lastDecision };
  }
}

/** The history attached to an error thrown by retry() (also `error.retryHistory`). */
export function historyOf(error: unknown): readonly AttemptRecord[] | undefined {
  if (typeof error === 'object' && error !== null) {
    const h = (error as { retryHistory?: unknown }).retryHistory;
    if (Array.isArray(h)) return h as AttemptRecord[];
  }
  return undefined;
}

const NO_OPTIONS: RetryOptions<unknown> = Object.freeze({});
/** The context of a first attempt without `timeout`: nothing to change in it. */
const FIRST: AttemptContext = Object.freeze({ attempt: 1, signal: undefined });

/**
 * Calls `fn` until it succeeds, retrying failures when and as the engine decides.
 * Resolves with `fn`'s value; rejects with the last error (the original object, with
 * `retryHistory` and `attemptNumber` attached), or the caller's abort reason.
 *
 * The success path makes no native call: successes are counted and told to the
 * engine in batches.
 */
export function retry<T>(fn: RetryFunction<T>, options?: RetryOptions<T>): Promise<T> {
  let checked = UNCHECKED;
  if (options !== undefined) {
    try {
      checked = checkOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  const o = options ?? (NO_OPTIONS as RetryOptions<T>);
  return o.signal === undefined ? run(fn, o, checked, undefined, undefined) : start(fn, o, checked, undefined);
}

/**
 * `fn` with retries: a function with the same parameters whose calls go through
 * retry(). The job type defaults to `fn`'s name. Its options are checked here, once;
 * `wrapped.statistics` counts what its calls went through.
 */
export function wrap<A extends unknown[], T>(
  fn: (...args: A) => T | PromiseLike<T>,
  options: RetryOptions<T> = {},
): ((...args: A) => Promise<T>) & { readonly statistics: RetryStatistics } {
  const resolved: RetryOptions<T> = { ...options, jobType: options.jobType ?? (fn.name || 'anonymous') };
  const checked = checkOptions(resolved);
  const statistics = new RetryStatistics();
  const signal = resolved.signal;
  const wrapped = function (this: unknown, ...args: A): Promise<T> {
    statistics.calls++;
    const call = (): T | PromiseLike<T> => fn.apply(this, args);
    return signal === undefined ? run(call, resolved, checked, statistics, undefined) : start(call, resolved, checked, statistics);
  };
  return Object.assign(wrapped, { statistics });
}

function start<T>(fn: RetryFunction<T>, o: RetryOptions<T>, checked: Checked, stats: RetryStatistics | undefined): Promise<T> {
  const signal = o.signal;
  if (signal === undefined || o.timeout !== undefined) return run(fn, o, checked, stats, undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  // The caller's signal without a timeout: no per-call listener, no controller. One
  // listener per signal rejects every call waiting on it (a list, linked through the
  // calls: a Set cost 0.3-0.5 µs per call, hashing each new call); the attempt gets the
  // signal in a context shared by the signal's first attempts (frozen, as FIRST is).
  // The first attempt runs here, not in an async function: one promise per call.
  const watched = watch(signal);
  return new Promise<T>((resolve, reject) => {
    const head = watched.head;
    const call: Waiting = { reject, lastFailure: undefined, hasFailed: false, prev: head.prev, next: head };
    (head.prev as Waiting).next = call;
    head.prev = call;
    // The first attempt's start, read only when a deadline asks for time.
    const startedAt = o.deadline !== undefined ? (o.clock ?? getDefaultClock()).now() : -1;
    const onError = (error: unknown): void => {
      settle(failed(fn, o, checked, stats, call, startedAt, error, undefined, true), call, resolve, reject);
    };
    const onValue = (value: T): void => {
      if (o.retryIf !== undefined) {
        const p = succeededOrRetried(fn, o, checked, stats, call, startedAt, o.clock ?? getDefaultClock(), value);
        settle(p, call, resolve, reject);
        return;
      }
      (o.engine ?? defaultEngine()).countSuccess(o.jobType ?? (fn.name || 'anonymous'), o.tenant, o.clock ?? getDefaultClock());
      if (stats !== undefined) stats.successes++;
      unlink(call);
      resolve(value);
    };
    let pending: T | PromiseLike<T>;
    try {
      pending = fn(1, watched.first);
    } catch (error) {
      onError(error);
      return;
    }
    if (typeof (pending as PromiseLike<T> | null)?.then === 'function') (pending as PromiseLike<T>).then(onValue, onError);
    else onValue(pending as T);
  });
}

/** Settles a waiting call with what its retries came to, taking it out of the list. */
function settle<T>(p: Promise<T>, call: Waiting, resolve: (value: T) => void, reject: (error: unknown) => void): void {
  p.then(
    (value: T) => {
      unlink(call);
      resolve(value);
    },
    (error: unknown) => {
      unlink(call);
      reject(error);
    },
  );
}

/** A call waiting on its signal, in the signal's list (`prev` null once out of it). */
interface Waiting extends Call {
  prev: Waiting | null;
  next: Waiting | null;
}

/** The calls waiting on a signal (a ring around `head`), and their first attempts' context. */
interface Watched {
  head: Waiting;
  first: AttemptContext;
}

const unlink = (call: Waiting): void => {
  const prev = call.prev;
  if (prev === null) return; // rejected by the abort already
  const next = call.next as Waiting;
  prev.next = next;
  next.prev = prev;
  call.prev = call.next = null;
};

/** The calls waiting on each signal, rejected together when it aborts. */
const watchers = new WeakMap<AbortSignal, Watched>();

function watch(signal: AbortSignal): Watched {
  let watched = watchers.get(signal);
  if (watched === undefined) {
    const head: Waiting = { reject: () => {}, lastFailure: undefined, hasFailed: false, prev: null, next: null };
    head.prev = head.next = head;
    watched = { head, first: Object.freeze({ attempt: 1, signal }) };
    watchers.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        let call = head.next as Waiting;
        head.prev = head.next = head;
        while (call !== head) {
          const next = call.next as Waiting;
          call.prev = call.next = null;
          call.reject(abortReason(signal, call));
          call = next;
        }
      },
      { once: true },
    );
  }
  return watched;
}

async function run<T>(
  fn: RetryFunction<T>,
  o: RetryOptions<T>,
  checked: Checked,
  stats: RetryStatistics | undefined,
  call: Call | undefined,
): Promise<T> {
  // The success path reads no clock (Date.now() costs ~80 ns here); the first
  // attempt's start is measured only when a deadline or timeout asks for time.
  const clock = o.clock ?? getDefaultClock();
  const startedAt = o.deadline !== undefined || o.timeout !== undefined ? clock.now() : -1;
  let value: T;
  try {
    value = o.timeout === undefined ? await fn(1, FIRST) : await guarded(fn, { attempt: 1, signal: undefined }, o);
  } catch (error) {
    if (error instanceof Aborted) throw error.reason;
    return failed(fn, o, checked, stats, call, startedAt, error, undefined, true);
  }
  if (o.retryIf !== undefined) return succeededOrRetried(fn, o, checked, stats, call, startedAt, clock, value);
  (o.engine ?? defaultEngine()).countSuccess(o.jobType ?? (fn.name || 'anonymous'), o.tenant, clock);
  if (stats !== undefined) stats.successes++;
  return value;
}

/** A first attempt returned `value`: a success, unless `retryIf` judges it a failure. */
async function succeededOrRetried<T>(
  fn: RetryFunction<T>,
  o: RetryOptions<T>,
  checked: Checked,
  stats: RetryStatistics | undefined,
  call: Call | undefined,
  startedAt: number,
  clock: Clock,
  value: T,
): Promise<T> {
  if (o.retryIf !== undefined) {
    const said = o.retryIf(value, { kind: 'result', attempt: 1 });
    if ((typeof said === 'boolean' ? said : await said) === true) {
      return failed(fn, o, checked, stats, call, startedAt, undefined, value, false);
    }
  }
  (o.engine ?? defaultEngine()).countSuccess(o.jobType ?? (fn.name || 'anonymous'), o.tenant, clock);
  if (stats !== undefined) stats.successes++;
  return value;
}
