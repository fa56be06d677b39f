import type { Clock } from './clock.js';
import { realClock } from './clock.js';
import { Engine, defaultEngine } from './engine.js';
import { AttemptTimeoutError, isEngineError } from './errors.js';
import type { FailureInfo } from './failure.js';
import { describeFailure } from './failure.js';
import type { Decision, Priority } from './types.js';

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

/**
 * A history entry. The engine's decision arrives as JSON and is parsed the first time
 * someone reads `decision`: the retry loop itself needs only two numbers of it.
 */
class HistoryEntry implements AttemptRecord {
  declare error?: unknown;
  declare result?: unknown;
  #raw: string | undefined;
  #parsed: Decision | undefined;

  constructor(
    readonly attempt: number,
    readonly startedAt: number,
    readonly durationMs: number,
    readonly waitedMs: number,
  ) {}

  get decision(): Decision | undefined {
    if (this.#parsed === undefined && this.#raw !== undefined) this.#parsed = JSON.parse(this.#raw) as Decision;
    return this.#parsed;
  }

  /** @internal */
  setDecision(json: string): void {
    this.#raw = json;
  }

  toJSON(): AttemptRecord {
    const { attempt, startedAt, durationMs, waitedMs, error, result, decision } = this;
    return { attempt, startedAt, durationMs, waitedMs, error, result, decision };
  }
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
  /** `retryOn` / `retryIf` said this failure is not worth retrying. */
  | 'not_retryable';

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

type ErrorClass = abstract new (...args: never[]) => unknown;

export interface RetryOptions<T = unknown> {
  /** Default: the process-wide `defaultEngine()`. */
  engine?: Engine;
  /** What the engine learns under. Default: the function's name, else 'anonymous'. */
  jobType?: string;
  tenant?: string;
  /** Identifies this call to the engine (concurrency caps). Default: generated. */
  jobId?: string;
  /** Only errors that are instances of these are retried; others are thrown at once. */
  retryOn?: ErrorClass | readonly ErrorClass[];
  /**
   * Called with each error (after `retryOn`) and each result. For an error, `false`
   * means "do not retry, throw it". For a result, `true` means "this result is a
   * failure": it is described to the engine like an error (a fetch `Response` gives
   * its status and Retry-After) and retried; if retries run out, retry() resolves
   * with the last result (or the fallback).
   */
  retryIf?: (value: unknown, info: { kind: 'error' | 'result'; attempt: number }) => boolean;
  /**
   * The caller's cap on attempts, the first included. The engine applies it with its
   * own caps (policies, guardrails) and says so in the decision.
   */
  maxAttempts?: number;
  /** Milliseconds from the call's start after which no retry starts (the engine enforces it). */
  deadline?: number;
  /** Milliseconds one attempt may run; it then fails with an `AttemptTimeoutError`. */
  timeout?: number;
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
  /** Stops at once: rejects with `signal.reason`, interrupting a wait or an attempt. */
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

let defaultClock: Clock = realClock;

/** Sets the clock retry() uses when none is given (e.g. a virtual clock in a test suite). */
export function setDefaultClock(clock: Clock): void {
  defaultClock = clock;
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
const processTag = Math.random().toString(36).slice(2, 8);
let sequence = 0;

/** Thrown inside the loop when the caller's signal aborts during an attempt. */
class Aborted {
  constructor(readonly reason: unknown) {}
}

/**
 * Calls `fn` until it succeeds, retrying failures when and as the engine decides.
 * Resolves with `fn`'s value; rejects with the last error (the original object, with
 * `retryHistory` and `attemptNumber` attached), or the caller's abort reason.
 *
 * The success path makes no native call: successes are counted and told to the
 * engine in batches.
 */
export async function retry<T>(fn: RetryFunction<T>, options?: RetryOptions<T>): Promise<T> {
  const o: RetryOptions<T> = options ?? (NO_OPTIONS as RetryOptions<T>);
  const signal = o.signal;
  if (signal !== undefined && signal.aborted) throw signal.reason;
  // The success path reads no clock (Date.now() costs ~80 ns here); the first
  // attempt's start is measured only when a deadline or timeout asks for time.
  const startedAt = o.deadline !== undefined || o.timeout !== undefined ? (o.clock ?? defaultClock).now() : -1;
  const context: AttemptContext = { attempt: 1, signal: undefined };
  let value: T;
  try {
    value = o.timeout === undefined && signal === undefined ? await fn(1, context) : await guarded(fn, context, o);
  } catch (error) {
    if (error instanceof Aborted) throw error.reason;
    return failed(fn, o, startedAt, error, undefined, true);
  }
  if (o.retryIf !== undefined && o.retryIf(value, { kind: 'result', attempt: 1 }) === true) {
    return failed(fn, o, startedAt, undefined, value, false);
  }
  (o.engine ?? defaultEngine()).countSuccess(o.jobType ?? (fn.name || 'anonymous'), o.tenant, o.clock ?? defaultClock);
  return value;
}

/**
 * `fn` with retries: a function with the same parameters whose calls go through
 * retry(). The job type defaults to `fn`'s name.
 */
export function wrap<A extends unknown[], T>(
  fn: (...args: A) => T | PromiseLike<T>,
  options: RetryOptions<T> = {},
): (...args: A) => Promise<T> {
  const resolved: RetryOptions<T> = { ...options, jobType: options.jobType ?? (fn.name || 'anonymous') };
  return function (this: unknown, ...args: A): Promise<T> {
    return retry(() => fn.apply(this, args), resolved);
  };
}

/** Runs one attempt under the `timeout` option and the caller's `signal`. */
function guarded<T>(fn: RetryFunction<T>, context: AttemptContext, o: RetryOptions<T>): Promise<T> {
  const { timeout, signal } = o;
  const controller = new AbortController();
  context.signal = controller.signal;
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      settle();
      controller.abort(signal?.reason);
      reject(new Aborted(signal?.reason));
    };
    let done = false;
    const settle = (): boolean => {
      if (done) return false;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    if (signal !== undefined) signal.addEventListener('abort', onAbort, { once: true });
    if (timeout !== undefined) {
      timer = setTimeout(() => {
        if (!settle()) return;
        const error = new AttemptTimeoutError(timeout, context.attempt);
        controller.abort(error);
        reject(error);
      }, timeout);
    }
    let pending: T | PromiseLike<T>;
    try {
      pending = fn(context.attempt, context);
    } catch (error) {
      if (settle()) reject(error);
      return;
    }
    Promise.resolve(pending).then(
      (v) => {
        if (settle()) resolve(v);
      },
      (e: unknown) => {
        if (settle()) reject(e);
      },
    );
  });
}

/**
 * Waits out `planned` ms in check-ins of `every` ms while the downstream is down for
 * every caller, and stops early once the engine says it is back (probe-and-release).
 * Resolves with how long it waited.
 */
async function waitOrRelease(
  engine: Engine,
  clock: Clock,
  jobType: string,
  failedAt: number,
  planned: number,
  every: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  let waited = 0;
  while (waited < planned) {
    const pause = Math.min(every, planned - waited);
    await clock.sleep(pause, signal);
    waited += pause;
    if (waited < planned && engine.released(jobType, Math.round(failedAt), clock.now())) break;
  }
  return waited;
}

function isRetryableError<T>(o: RetryOptions<T>, error: unknown, attempt: number): boolean {
  const on = o.retryOn;
  if (on !== undefined) {
    const classes = Array.isArray(on) ? on : [on as ErrorClass];
    if (!classes.some((c) => error instanceof c)) return false;
  }
  return o.retryIf === undefined || o.retryIf(error, { kind: 'error', attempt }) !== false;
}

/** `[should_retry, delay_ms, check_in_ms]` of the last decideFailure call (calls are synchronous). */
const OUT = new Float64Array(3);

const FEATURE_FIELDS = new Set(['http_status', 'error_class', 'error_code', 'retry_after']);

/** The failure path: decide, wait, retry, record; give up when the engine says so. */
async function failed<T>(
  fn: RetryFunction<T>,
  o: RetryOptions<T>,
  startedAt: number,
  firstError: unknown,
  firstResult: T | undefined,
  threw: boolean,
): Promise<T> {
  const engine = o.engine ?? defaultEngine();
  const clock = o.clock ?? defaultClock;
  const jobType = o.jobType ?? (fn.name || 'anonymous');
  const tenant = o.tenant;
  const signal = o.signal;
  const jobId = o.jobId ?? `${jobType}-${processTag}-${++sequence}`;
  const history: HistoryEntry[] = [];
  const firstFailureAt = clock.now();
  const deadlineMs = o.deadline === undefined ? undefined : Math.max(0, o.deadline - (firstFailureAt - startedAt));
  const firstStart = startedAt === -1 ? firstFailureAt : startedAt;
  const native = engine.native;
  const context: AttemptContext = { attempt: 1, signal: undefined };

  let attempt = 1;
  let attemptStart = firstStart;
  let error = firstError;
  let result = firstResult;
  let failedByThrow = threw;
  let waited = 0;
  let previous: FailureInfo | undefined;

  // Successes counted before this failure must reach the budget first.
  engine.flushSuccesses();

  for (;;) {
    const now = clock.now();
    const entry = new HistoryEntry(attempt, attemptStart, Math.max(0, now - attemptStart), waited);
    if (failedByThrow) entry.error = error;
    else entry.result = result;
    history.push(entry);
    const failure = failedByThrow ? error : result;

    if (previous !== undefined) {
      // The outcome of a retry: the engine learns under the failure it retried.
      native.recordAttempt(
        jobId,
        jobType,
        attempt,
        false,
        waited,
        tenant,
        previous.http_status,
        previous.error_class,
        previous.error_code,
        Math.round(attemptStart - firstFailureAt),
        now,
      );
    }

    if (failedByThrow && !isRetryableError(o, error, attempt)) {
      return giveUp(o, hookInfo(entry, jobType, jobId, history, 'not_retryable'), true);
    }

    let info = describeFailure(failure);
    try {
      info = decideFailure(engine, entry, jobType, attempt, jobId, tenant, info, o, Math.round(now - firstFailureAt), deadlineMs, now);
    } catch (engineError) {
      if (engineError instanceof Error && engineError.cause === undefined) engineError.cause = failure;
      throw engineError;
    }
    const shouldRetry = OUT[0] === 1;
    const planned = OUT[1];
    const checkIn = OUT[2];

    if (!shouldRetry) {
      return giveUp(o, hookInfo(entry, jobType, jobId, history, 'engine'), failedByThrow);
    }
    if (o.onRetry !== undefined) {
      const retryInfo = hookInfo(entry, jobType, jobId, history, undefined) as unknown as RetryInfo<T>;
      retryInfo.delayMs = planned;
      await o.onRetry(retryInfo);
    }
    let delay = planned;
    if (checkIn > 0) delay = await waitOrRelease(engine, clock, jobType, now, planned, checkIn, signal);
    else await clock.sleep(planned, signal);

    previous = info;
    waited = delay;
    attempt += 1;
    context.attempt = attempt;
    attemptStart = clock.now();
    try {
      const value = o.timeout === undefined && signal === undefined ? await fn(attempt, context) : await guarded(fn, context, o);
      if (o.retryIf !== undefined && o.retryIf(value, { kind: 'result', attempt }) === true) {
        failedByThrow = false;
        result = value;
        error = undefined;
        continue;
      }
      const end = clock.now();
      history.push(new HistoryEntry(attempt, attemptStart, Math.max(0, end - attemptStart), waited));
      native.recordAttempt(
        jobId,
        jobType,
        attempt,
        true,
        waited,
        tenant,
        previous.http_status,
        previous.error_class,
        previous.error_code,
        Math.round(attemptStart - firstFailureAt),
        end,
      );
      return value;
    } catch (e) {
      if (e instanceof Aborted) throw e.reason;
      failedByThrow = true;
      error = e;
      result = undefined;
    }
  }
}

/**
 * Asks the engine about a failure. A value taken from a third-party error that the
 * engine rejects (an out-of-range status, an unparseable Retry-After, an overlong
 * name) is left out and the question asked again: such a hint is dropped, never fatal.
 * The decision goes to `entry` (as JSON) and `OUT`; returns the description the engine
 * accepted, so the retry's outcome is recorded under the same key.
 */
function decideFailure<T>(
  engine: Engine,
  entry: HistoryEntry,
  jobType: string,
  attempt: number,
  jobId: string,
  tenant: string | undefined,
  info: FailureInfo,
  o: RetryOptions<T>,
  sinceFirstFailureMs: number,
  deadlineMs: number | undefined,
  now: number,
): FailureInfo {
  for (;;) {
    try {
      entry.setDecision(
        engine.native.decideFailure(
          OUT,
          jobType,
          attempt,
          jobId,
          tenant,
          info.http_status,
          info.error_class,
          info.error_code,
          info.retry_after,
          o.idempotent,
          sinceFirstFailureMs,
          deadlineMs,
          o.maxAttempts,
          o.priority,
          now,
        ),
      );
      return info;
    } catch (e) {
      const field = isEngineError(e) && e.code === 'invalid_input' ? e.field : null;
      if (field === null || !FEATURE_FIELDS.has(field) || info[field as keyof FailureInfo] === undefined) throw e;
      info = { ...info, [field]: undefined };
    }
  }
}

/** The object hooks receive; `decision` is parsed only if read. */
function hookInfo<T>(
  entry: HistoryEntry,
  jobType: string,
  jobId: string,
  history: readonly AttemptRecord[],
  reason: GiveUpReason | undefined,
): GiveUpInfo<T> {
  const info = {
    jobType,
    jobId,
    attempt: entry.attempt,
    get decision(): Decision | undefined {
      return entry.decision;
    },
    history,
  } as GiveUpInfo<T>;
  if ('error' in entry) info.error = entry.error;
  else info.result = entry.result as T;
  if (reason !== undefined) info.reason = reason;
  return info;
}

async function giveUp<T>(o: RetryOptions<T>, info: GiveUpInfo<T>, threw: boolean): Promise<T> {
  if (threw) attachHistory(info.error, info.history, info.attempt);
  if (o.onGiveUp !== undefined) await o.onGiveUp(info);
  const fallback = o.fallback;
  if (fallback !== undefined) {
    return typeof fallback === 'function'
      ? await (fallback as (i: GiveUpInfo<T>) => T | PromiseLike<T>)(info)
      : fallback;
  }
  if (!threw) return info.result as T;
  throw info.error;
}

function attachHistory(error: unknown, history: readonly AttemptRecord[], attempt: number): void {
  if (typeof error !== 'object' || error === null || Object.isFrozen(error)) return;
  try {
    Object.defineProperty(error, 'retryHistory', { value: history, configurable: true, writable: true });
    Object.defineProperty(error, 'attemptNumber', { value: attempt, configurable: true, writable: true });
  } catch {
    // A proxy or a non-extensible error keeps its shape.
  }
}
