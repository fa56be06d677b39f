import { realClock } from './clock.js';
import { defaultEngine } from './engine.js';
import type { GiveUpInfo, RetryOptions } from './retry.js';
import { retry } from './retry.js';

/** An item the retries could not save. */
export interface DeadLetter<T> {
  index: number;
  item: T;
  error: unknown;
  attempts: number;
  /** Why retrying stopped: the engine's rationale, or `not_retryable`. */
  reason: string;
}

/** What happened to a batch. */
export interface BatchSummary<T, R> {
  total: number;
  succeeded: number;
  /** Items whose first attempt failed and that were retried at least once. */
  retried: number;
  deadLettered: number;
  /** succeeded / total (1 for an empty batch). */
  successRate: number;
  /** Results of the items that succeeded, by their index in the batch. */
  results: Map<number, R>;
  deadLetters: DeadLetter<T>[];
}

export interface BatchOptions
  extends Pick<RetryOptions<unknown>, 'engine' | 'tenant' | 'retryOn' | 'maxAttempts' | 'timeout' | 'clock' | 'idempotent' | 'priority'> {
  /** What the engine learns under. */
  jobType: string;
  /** Items run at once (default 10). */
  chunkSize?: number;
  /** Wait between chunks (default 0). */
  delayBetweenChunksMs?: number;
  /** Stops the batch: rejects with `signal.reason`, interrupting a wait or an attempt. */
  signal?: AbortSignal;
}

/**
 * Runs `fn(item)` for every item, `chunkSize` at a time; the failed items of a chunk
 * are then retried one by one with the engine (concurrently, each on its own engine
 * schedule), and items that succeeded are never run again. Resolves with a summary:
 * what succeeded, what was retried, what was dead-lettered and why.
 */
export async function retryBatch<T, R>(
  items: Iterable<T>,
  fn: (item: T, attempt: number, signal: AbortSignal | undefined) => R | PromiseLike<R>,
  options: BatchOptions,
): Promise<BatchSummary<T, R>> {
  const batch = [...items];
  const { chunkSize = 10, delayBetweenChunksMs = 0, signal, jobType } = options;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunkSize must be an integer ≥ 1, got ${chunkSize}`);
  }
  const engine = options.engine ?? defaultEngine();
  const clock = options.clock ?? realClock;
  const results = new Map<number, R>();
  const deadLetters: DeadLetter<T>[] = [];
  let retried = 0;
  const base: RetryOptions<R> = {
    engine,
    tenant: options.tenant,
    retryOn: options.retryOn,
    maxAttempts: options.maxAttempts,
    timeout: options.timeout,
    clock: options.clock,
    idempotent: options.idempotent,
    priority: options.priority,
    signal,
    jobType,
  };

  for (let start = 0; start < batch.length; start += chunkSize) {
    if (signal?.aborted) throw signal.reason;
    if (start > 0 && delayBetweenChunksMs > 0) await clock.sleep(delayBetweenChunksMs, signal);
    const chunk = batch.slice(start, start + chunkSize);
    // Each item once. A failure is not retried here: its retry below starts from it.
    const firsts = await Promise.all(
      chunk.map(async (item, offset) => {
        try {
          const value = await fn(item, 1, signal);
          engine.countSuccess(jobType, options.tenant, clock);
          return { ok: true as const, value };
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          return { ok: false as const, error, index: start + offset, item };
        }
      }),
    );
    firsts.forEach((r, offset) => {
      if (r.ok) results.set(start + offset, r.value);
    });
    await Promise.all(
      firsts.flatMap((r) => {
        if (r.ok) return [];
        const { index, item, error: firstError } = r;
        let gaveUp: GiveUpInfo<R> | undefined;
        let wasRetried = false;
        const again = retry<R>(
          // Attempt 1 is the failure already seen: replayed, not run again.
          (attempt, ctx) => (attempt === 1 ? Promise.reject(firstError) : fn(item, attempt, ctx.signal)),
          {
            ...base,
            onRetry: () => {
              wasRetried = true;
            },
            onGiveUp: (info) => {
              gaveUp = info;
            },
          },
        ).then(
          (value) => {
            results.set(index, value);
          },
          (error: unknown) => {
            if (signal?.aborted) throw signal.reason;
            deadLetters.push({
              index,
              item,
              error,
              attempts: gaveUp?.attempt ?? 1,
              reason: gaveUp?.decision?.rationale ?? gaveUp?.reason ?? 'retries ended',
            });
          },
        );
        return [again.finally(() => {
          if (wasRetried) retried += 1;
        })];
      }),
    );
  }
  deadLetters.sort((a, b) => a.index - b.index);
  const sorted = new Map([...results.entries()].sort((a, b) => a[0] - b[0]));
  return {
    total: batch.length,
    succeeded: sorted.size,
    retried,
    deadLettered: deadLetters.length,
    successRate: batch.length === 0 ? 1 : sorted.size / batch.length,
    results: sorted,
    deadLetters,
  };
}

