/**
 * smartretry for Node: retry(fn) and wrap(fn) over a Rust engine that learns when a
 * failed call will succeed. See README.md.
 */
export { retry, wrap, setDefaultClock, historyOf, RetryStatistics } from './retry.js';
export type {
  AttemptContext,
  AttemptRecord,
  Backoff,
  GiveUpInfo,
  GiveUpReason,
  RetryFunction,
  RetryInfo,
  RetryOptions,
  StopInfo,
} from './retry.js';
export { Engine, defaultEngine, setDefaultEngine } from './engine.js';
export type { EngineOptions, LifecycleListener } from './engine.js';
export { retryBatch } from './batch.js';
export { deadLetterOnGiveUp } from './deadLetters.js';
export type { DeadLetterOptions } from './deadLetters.js';
export type { BatchOptions, BatchSummary, DeadLetter } from './batch.js';
export { realClock, VirtualClock } from './clock.js';
export type { Clock } from './clock.js';
export { testing } from './testing.js';
export { describeFailure } from './failure.js';
export type { FailureInfo } from './failure.js';
export { AttemptTimeoutError, SmartRetryError, isEngineError } from './errors.js';
export type { EngineError, EngineErrorCode } from './errors.js';
export type {
  ArmStats,
  Attempt,
  AuditRecord,
  BackoffStrategy,
  BreakerState,
  DeadLetterQuery,
  DeadLetterRecord,
  DeadLetterStatus,
  NewDeadLetter,
  BucketStats,
  Comparison,
  Config,
  Context,
  Decision,
  Deployment,
  EventName,
  Features,
  Guardrails,
  HealthReport,
  LifecycleEvent,
  Method,
  MlStatus,
  ModelInfo,
  Override,
  Policy,
  Priority,
  Preview,
  Stats,
  TimelineEntry,
  TrainingMetrics,
} from './types.js';
