/**
 * Dead-letter a job automatically when retry() gives up:
 *
 *   await retry(() => sendInvoice(id), {
 *     jobType: 'invoice_send',
 *     onGiveUp: deadLetterOnGiveUp({ payload: () => ({ invoiceId: id }) }),
 *   });
 *
 * The job goes to the engine's dead-letter queue (kept in its store: SQLite or Redis make
 * it durable and shared) with its failure reason, every attempt and the payload or
 * payload reference given, for a person to review, retry or resolve.
 */
import { defaultEngine, type Engine } from './engine.js';
import { describeFailure } from './failure.js';
import type { GiveUpInfo } from './retry.js';
import type { Attempt, DeadLetterRecord, NewDeadLetter } from './types.js';

export interface DeadLetterOptions<T = unknown> {
  /** The engine whose queue it goes to; pass retry()'s own if it has one. Default: `defaultEngine()`. */
  engine?: Engine;
  tenant?: string;
  /** The payload (JSON-able, at most 1 MiB). */
  payload?: (info: GiveUpInfo<T>) => unknown;
  /** Where the payload lives (a queue message id, an object-store key…). */
  payloadRef?: (info: GiveUpInfo<T>) => string;
}

/** An `onGiveUp` hook that adds the job to the dead-letter queue (returns the record). */
export function deadLetterOnGiveUp<T = unknown>(
  options: DeadLetterOptions<T> = {},
): (info: GiveUpInfo<T>) => DeadLetterRecord {
  return (info) => {
    const errorClassOf = (error: unknown): string | undefined =>
      error === undefined ? undefined : describeFailure(error).error_class;
    // Every attempt in the history failed (retry() gives up only after a failure).
    const attempts: Attempt[] = info.history.slice(-1000).map((a) => {
      const attempt: Attempt = {
        job_id: info.jobId,
        job_type: info.jobType,
        attempt_number: a.attempt,
        success: false,
        delay_ms: Math.round(a.waitedMs),
      };
      const failure = a.error === undefined ? {} : describeFailure(a.error);
      if (failure.error_class !== undefined) attempt.error_class = failure.error_class;
      if (failure.http_status !== undefined) attempt.http_status = failure.http_status;
      return attempt;
    });
    const entry: NewDeadLetter = {
      job_id: info.jobId,
      job_type: info.jobType,
      failure_reason:
        info.decision?.rationale ?? (info.reason === 'not_retryable' ? 'not retryable' : 'given up'),
      attempts,
    };
    const errorClass = errorClassOf(info.error);
    if (errorClass !== undefined) entry.error_class = errorClass;
    if (options.tenant !== undefined) entry.tenant = options.tenant;
    if (options.payload !== undefined) entry.payload = options.payload(info);
    if (options.payloadRef !== undefined) entry.payload_ref = options.payloadRef(info);
    return (options.engine ?? defaultEngine()).addDeadLetter(entry);
  };
}
