/**
 * retry()'s failure path: describe the failure, ask the engine, wait, run the next
 * attempt, tell the engine what happened; give up when the engine (or the caller's
 * `retryOn`/`giveUpOn`/`retryIf`/`stopIf`) says so. Every delay comes from the engine.
 * @internal
 */
import { channel } from 'node:diagnostics_channel';
import type { Clock } from './clock.js';
import { getDefaultClock } from './clock.js';
import type { Engine } from './engine.js';
import { defaultEngine } from './engine.js';
import { AttemptTimeoutError, isEngineError } from './errors.js';
import type { FailureInfo } from './failure.js';
import { describeFailure } from './failure.js';
import type { Checked } from './options.js';
import type {
  AttemptContext,
  AttemptRecord,
  GiveUpInfo,
  GiveUpReason,
  RetryFunction,
  RetryInfo,
  RetryOptions,
  RetryStatistics,
  StopInfo,
} from './retry.js';
import type { Decision } from './types.js';

/** One call waiting on its signal (see `start` in retry.ts). */
export interface Call {
  reject: (reason: unknown) => void;
  lastFailure: unknown;
  hasFailed: boolean;
}

/**
 * One structured record per retry, for whoever subscribes (logs, metrics):
 * `{jobType, jobId, attempt, delayMs, method, errorClass}`. Nothing is built while
 * nobody listens.
 */
const retries = channel('smartretry:retry');
/** One record per give-up: `{jobType, jobId, attempts, reason, retried}`. */
const giveUps = channel('smartretry:give_up');

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

  /** @internal */
  get rawDecision(): string | undefined {
    return this.#raw;
  }

  toJSON(): AttemptRecord {
    const { attempt, startedAt, durationMs, waitedMs, error, result, decision } = this;
    return { attempt, startedAt, durationMs, waitedMs, error, result, decision };
  }
}

/** `signal.reason`, with the call's last failure as its `cause` when it has none. */
export function abortReason(signal: AbortSignal, call: Call | undefined): unknown {
  const reason: unknown = signal.reason;
  if (call?.hasFailed === true && typeof reason === 'object' && reason !== null && !('cause' in reason)) {
    try {
      Object.defineProperty(reason, 'cause', { value: call.lastFailure, configurable: true, writable: true });
    } catch {
      // A frozen reason stays as it is.
    }
  }
  return reason;
}

/** Thrown inside the loop when the caller's signal aborts during an attempt. */
export class Aborted {
  constructor(readonly reason: unknown) {}
}

const processTag = Math.random().toString(36).slice(2, 8);
let sequence = 0;

/** Runs one attempt under the `timeout` option and the caller's `signal`. */
export function guarded<T>(fn: RetryFunction<T>, context: AttemptContext, o: RetryOptions<T>): Promise<T> {
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

/** Read through a call: TypeScript would keep an earlier check's narrowing. */
const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

type ErrorClasses = RetryOptions['retryOn'];

function isInstance(error: unknown, classes: ErrorClasses): boolean {
  if (classes === undefined) return false;
  const list = (Array.isArray(classes) ? classes : [classes]) as Array<abstract new (...args: never[]) => unknown>;
  return list.some((c) => error instanceof c);
}

async function isRetryableError<T>(o: RetryOptions<T>, error: unknown, attempt: number): Promise<boolean> {
  if (o.retryOn !== undefined && !isInstance(error, o.retryOn)) return false;
  if (o.giveUpOn !== undefined && isInstance(error, o.giveUpOn)) return false;
  if (o.retryIf === undefined) return true;
  let verdict = o.retryIf(error, { kind: 'error', attempt });
  if (typeof verdict !== 'boolean') verdict = await verdict;
  return verdict !== false;
}

/** Whether the caller named this failure's class to retry (not taken for a bug then). */
function expected<T>(o: RetryOptions<T>, error: unknown): boolean | undefined {
  const on = o.retryOn;
  if (on === undefined) return undefined;
  const list = (Array.isArray(on) ? on : [on]) as Array<abstract new (...args: never[]) => unknown>;
  return list.some((c) => (c as unknown) !== Error && error instanceof c) || undefined;
}

/** `[should_retry, delay_ms, check_in_ms]` of the last decideFailure call (calls are synchronous). */
const OUT = new Float64Array(3);

const FEATURE_FIELDS = new Set(['http_status', 'error_class', 'error_code', 'retry_after']);

/** The failure path: decide, wait, retry, record; give up when the engine says so. */
export async function failed<T>(
  fn: RetryFunction<T>,
  o: RetryOptions<T>,
  checked: Checked,
  stats: RetryStatistics | undefined,
  call: Call | undefined,
  startedAt: number,
  firstError: unknown,
  firstResult: T | undefined,
  threw: boolean,
): Promise<T> {
  const engine = o.engine ?? defaultEngine();
  const clock = o.clock ?? getDefaultClock();
  const jobType = o.jobType ?? (fn.name || 'anonymous');
  const tenant = o.tenant;
  const signal = o.signal;
  const jobId = o.jobId ?? `${jobType}-${processTag}-${++sequence}`;
  const history: HistoryEntry[] = [];
  const firstFailureAt = clock.now();
  const deadlineMs = o.deadline === undefined ? undefined : Math.max(0, o.deadline - (firstFailureAt - startedAt));
  const firstStart = startedAt === -1 ? firstFailureAt : startedAt;
  const native = engine.native;
  const context: AttemptContext = { attempt: 1, signal: o.timeout === undefined ? signal : undefined };

  let attempt = 1;
  let attemptStart = firstStart;
  let error = firstError;
  let result = firstResult;
  let failedByThrow = threw;
  let waited = 0;
  let previous: FailureInfo | undefined;
  // Where an abort finds the last failure (to be its cause).
  const last: Call = call ?? { reject: () => {}, lastFailure: undefined, hasFailed: false };
  const aborted = (): unknown => abortReason(signal as AbortSignal, last);

  // The outcome of the retry now at `attempt`: the engine learns it under the failure it
  // retried.
  const recordRetry = (retried: FailureInfo, success: boolean, at: number): void =>
    native.recordAttempt(
      jobId,
      jobType,
      attempt,
      success,
      waited,
      tenant,
      retried.http_status,
      retried.error_class,
      retried.error_code,
      Math.round(attemptStart - firstFailureAt),
      at,
    );

  // Successes counted before this failure must reach the budget first.
  engine.flushSuccesses();

  for (;;) {
    const now = clock.now();
    const entry = new HistoryEntry(attempt, attemptStart, Math.max(0, now - attemptStart), waited);
    if (failedByThrow) entry.error = error;
    else entry.result = result;
    history.push(entry);
    const failure = failedByThrow ? error : result;
    last.lastFailure = failure;
    last.hasFailed = true;

    if (previous !== undefined) {
      recordRetry(previous, false, now);
    }
    if (isAborted(signal)) throw aborted();

    if (failedByThrow && !(await isRetryableError(o, error, attempt))) {
      return giveUp(o, stats, hookInfo(entry, jobType, jobId, history, 'not_retryable'), true);
    }
    if (o.stopIf !== undefined) {
      const info: StopInfo<T> = { jobType, jobId, attempt, elapsedMs: now - firstFailureAt, history };
      if (failedByThrow) info.error = error;
      else info.result = result as T;
      const said = o.stopIf(info);
      const stop = typeof said === 'boolean' ? said : await said;
      if (stop) return giveUp(o, stats, hookInfo(entry, jobType, jobId, history, 'stopped'), failedByThrow);
    }

    let info = describeFailure(failure);
    try {
      info = decideFailure(engine, entry, jobType, attempt, jobId, tenant, info, o, checked, failure, Math.round(now - firstFailureAt), deadlineMs, now);
    } catch (engineError) {
      if (engineError instanceof Error && engineError.cause === undefined) engineError.cause = failure;
      throw engineError;
    }
    const shouldRetry = OUT[0] === 1;
    const planned = OUT[1];
    const checkIn = OUT[2];
    if (stats !== undefined) stats.lastDecisionJson = entry.rawDecision;

    if (!shouldRetry) {
      return giveUp(o, stats, hookInfo(entry, jobType, jobId, history, 'engine'), failedByThrow);
    }
    if (retries.hasSubscribers) {
      retries.publish({ jobType, jobId, attempt, delayMs: planned, method: entry.decision?.method, errorClass: info.error_class ?? info.error_code ?? info.http_status });
    }
    if (o.onRetry !== undefined) {
      const retryInfo = hookInfo(entry, jobType, jobId, history, undefined) as unknown as RetryInfo<T>;
      retryInfo.delayMs = planned;
      await o.onRetry(retryInfo);
    }
    let delay = planned;
    try {
      if (checkIn > 0) delay = await waitOrRelease(engine, clock, jobType, now, planned, checkIn, signal);
      else await clock.sleep(planned, signal);
    } catch (e) {
      if (isAborted(signal)) throw aborted();
      throw e;
    }

    previous = info;
    waited = delay;
    attempt += 1;
    context.attempt = attempt;
    attemptStart = clock.now();
    if (stats !== undefined) {
      stats.retries++;
      stats.idleMs += delay;
    }
    try {
      const value = o.timeout === undefined ? await fn(attempt, context) : await guarded(fn, context, o);
      if (o.retryIf !== undefined) {
        let verdict = o.retryIf(value, { kind: 'result', attempt });
        if (typeof verdict !== 'boolean') verdict = await verdict;
        if (verdict === true) {
          failedByThrow = false;
          result = value;
          error = undefined;
          continue;
        }
      }
      const end = clock.now();
      history.push(new HistoryEntry(attempt, attemptStart, Math.max(0, end - attemptStart), waited));
      recordRetry(previous, true, end);
      if (stats !== undefined) stats.successes++;
      return value;
    } catch (e) {
      if (e instanceof Aborted) throw abortReason(signal as AbortSignal, last);
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
  checked: Checked,
  failure: unknown,
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
          checked.backoff,
          expected(o, failure),
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

async function giveUp<T>(o: RetryOptions<T>, stats: RetryStatistics | undefined, info: GiveUpInfo<T>, threw: boolean): Promise<T> {
  if (stats !== undefined) stats.gaveUp++;
  if (giveUps.hasSubscribers) {
    giveUps.publish({ jobType: info.jobType, jobId: info.jobId, attempts: info.attempt, reason: info.reason, retried: info.attempt > 1 });
  }
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
