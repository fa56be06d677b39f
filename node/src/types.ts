// The engine's data shapes, in the API document's snake_case JSON (core/src/model.rs,
// guard/settings.rs, policy.rs, config.rs). The engine ignores fields it does not know.
// test/shapes.test.js checks these field lists against what the real engine returns.

/** Which tier made a decision. */
export type Method = 'rules' | 'bayesian' | 'ml' | 'guardrail' | 'breaker';

/** What failed: the inputs to a retry decision. */
export interface Features {
  job_type: string;
  /** The attempt that just failed, 1-based. */
  attempt_number: number;
  error_class?: string;
  error_code?: string | number;
  http_status?: number;
  queue?: string;
  tenant?: string;
  payload_size?: number;
  /** Hour of day (0–23, UTC); derived from `now_ms` when absent. */
  time_of_day?: number;
  job_id?: string;
  /** Time since this job's first failure: the downstream's recovery clock. */
  since_first_failure_ms?: number;
  since_last_failure_ms?: number;
  /** The API document's text form (`"00:02:30"`). */
  since_last_failure?: string;
  /** A `Retry-After` already converted to milliseconds. */
  retry_after_ms?: number;
  /** A raw `Retry-After` header (delta-seconds or HTTP-date); an unreadable one is ignored. */
  retry_after?: string;
  /** `false` marks a call that must not run twice (a payment, an order). Default true. */
  idempotent?: boolean;
  /** How much the job matters when retry budgets bind: a name, or 0–3 (low–critical). */
  priority?: Priority | 0 | 1 | 2 | 3;
  worker_version?: string;
  /** Downstream health signals: `latency_ms`, `error_rate`, `cpu`, `queue_depth`. */
  health?: Record<string, number>;
  recent_failures?: number;
  avg_processing_time?: string;
  /** Total time the caller allows from the first failure; no retry may start later. */
  deadline_ms?: number;
  /** The caller's own attempt limit, on top of the policies' and guardrails'. */
  max_attempts?: number;
}

/** What happened on one attempt: the engine learns from these. */
export interface Attempt {
  job_id: string;
  job_type: string;
  attempt_number: number;
  success: boolean;
  /** How long the caller waited before this attempt. */
  delay_ms?: number;
  error_class?: string;
  error_code?: string | number;
  http_status?: number;
  status?: string;
  queue?: string;
  tenant?: string;
  /** Time from the job's first failure to this attempt. */
  since_first_failure_ms?: number;
  payload_size?: number;
  time_of_day?: number;
  worker_version?: string;
  health?: Record<string, number>;
  /** When the attempt happened (RFC 3339); defaults to the call's `nowMs`. */
  timestamp?: string;
  now_ms?: number;
  processing_time?: string;
}

/** The engine's answer: retry or not, after how long, and why. */
export interface Decision {
  should_retry: boolean;
  delay_ms: number;
  max_attempts: number;
  confidence: number;
  /** One human sentence. */
  rationale: string;
  method: Method;
  estimated_success: number;
  /** When to ask again (RFC 3339): now + delay. */
  next_evaluation: string;
  /**
   * Set while the downstream is down for every caller: wait out `delay_ms`, but every
   * this many ms ask `engine.released()` whether it is back, and retry at once if so.
   */
  check_in_ms?: number;
  /** Every guardrail that changed this decision, in the order they acted. */
  policy_guardrails: string[];
  /** The error class the engine learned under (the given one, or the classified kind). */
  error_class?: string;
  /** The rules-tier policy that matched. */
  policy?: string;
}

/** One future attempt of a preview. */
export interface TimelineEntry {
  attempt_number: number;
  scheduled_time: string;
  estimated_success: number;
  delay_ms: number;
  method: Method;
  rationale: string;
  confidence: number;
}

/** The schedule the engine would follow if every retry failed. */
export interface Preview {
  job_id: string;
  current_attempt: number;
  features: Features;
  recommendations: Decision[];
  timeline: TimelineEntry[];
  generated_at: string;
}

/** One delay bucket of the Bayesian tier. */
export interface BucketStats {
  label: string;
  min_ms: number;
  max_ms?: number;
  successes: number;
  failures: number;
  success_probability: number;
  confidence: number;
}

/** What the engine has seen for one (job_type, error_class) in a window. */
export interface Stats {
  job_type: string;
  error_class: string;
  total_attempts: number;
  successful_retries: number;
  failed_retries: number;
  avg_delay_ms: number;
  success_rate: number;
  last_updated?: string;
  window_start: string;
  window_end: string;
  buckets?: BucketStats[];
}

export type BackoffStrategy = 'exponential' | 'linear' | 'fibonacci' | 'aggressive' | 'constant';

/** A retry policy of the rules tier. */
export interface Policy {
  name: string;
  /** Matched against the error class, code, HTTP status and classified kind. Empty = all. */
  error_patterns?: string[];
  /** Regular expressions over the job type (whole string). Empty = all. */
  job_type_patterns?: string[];
  /** Attempts in total, the first included; 1 means "never retry". */
  max_attempts: number;
  base_delay_ms?: number;
  max_delay_ms?: number;
  min_delay_ms?: number;
  backoff_multiplier?: number;
  jitter_percent?: number;
  priority?: number;
  strategy?: BackoffStrategy;
  /** Jitter mode (see the core's `backoff::Jitter`); absent = ±`jitter_percent`. */
  jitter?: unknown;
  /** The deadline of the jobs it governs, from their first failure, unless the call names one. */
  deadline_ms?: number;
}

/** Hard limits that can only make decisions safer. */
export interface Guardrails {
  max_attempts: number;
  max_delay_ms: number;
  min_delay_ms: number;
  max_budget_percent: number;
  per_tenant_limits: boolean;
  emergency_stop: boolean;
  explainability_required: boolean;
  budget_window_ms: number;
  min_retries_per_sec: number;
  tenant_max_share: number;
  max_total_ms?: number;
  /** The deadline, from its first failure, of a job whose call, policy and overrides name none. */
  default_deadline_ms: number;
  respect_retry_after: boolean;
  adaptive_throttle: boolean;
  throttle_k: number;
  throttle_window_ms: number;
  max_concurrent_retries?: number;
  in_flight_ttl_ms: number;
  /** While a downstream is down for every caller, jobs take turns to probe it and the rest wait to be released. */
  probe_and_release: boolean;
  /** The share of the budget and caps each priority may use; the rest waits for higher ones. */
  priority_shares: Record<Priority, number>;
}

/**
 * The configuration file's shape (core/src/config.rs): every field is optional and
 * defaults to the API document's value. Unknown fields are ignored; invalid ones
 * throw an error whose `field` names them (`strategy.guardrails.max_attempts`).
 */
export interface Config {
  enabled?: boolean;
  strategy?: {
    name?: string;
    enabled?: boolean;
    policies?: Policy[];
    bayesian_threshold?: number;
    ml_enabled?: boolean;
    guardrails?: Partial<Guardrails>;
    data_collection?: Record<string, unknown>;
    circuit_breaker?: Record<string, unknown>;
    bayesian?: Record<string, unknown>;
    [field: string]: unknown;
  };
  seed?: number;
  max_keys?: number;
  history_capacity?: number;
  /** Defaults per service / operation, keyed by job type or a prefix of it. */
  contexts?: Record<string, Context>;
  [field: string]: unknown;
}

/** How much a job matters when retry budgets and concurrency caps bind. */
export type Priority = 'low' | 'normal' | 'high' | 'critical';

/**
 * One context of the configuration's `contexts` (core/src/contexts.rs). The documents'
 * camelCase names (`maxAttempts`, `baseDelay`, `jitterType`…) are accepted too.
 */
export interface Context {
  service_type?: string;
  operation_type?: string;
  max_attempts?: number;
  base_delay_ms?: number;
  max_delay_ms?: number;
  backoff?: BackoffStrategy | 'adaptive';
  jitter?: unknown;
  adaptive?: boolean;
  health_aware?: boolean;
  adaptation_factor?: number;
  circuit_breaker?: boolean;
  circuit_breaker_threshold?: number;
  circuit_breaker_timeout_ms?: number;
  max_concurrent_retries?: number;
  retry_budget_per_minute?: number;
  retry_budget_per_hour?: number;
  respect_global_backpressure?: boolean;
  priority?: Priority;
  [camelCaseAlias: string]: unknown;
}

/** An operator override: a scope (none = global) and what it sets there. */
export interface Override {
  name: string;
  queue?: string;
  tenant?: string;
  job_type?: string;
  job_id?: string;
  max_attempts?: number;
  min_delay_ms?: number;
  max_delay_ms?: number;
  deadline_ms?: number;
  /** A policy (by name) instead of the one the failure matches. */
  policy?: string;
  /** A fixed delay instead of any tier's. */
  delay_ms?: number;
  retries_disabled?: boolean;
  expires_at_ms?: number;
  reason?: string;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

/** A downstream's health (`engine.health(jobType)`). */
export interface HealthReport {
  job_type: string;
  /** 0–100; absent with nothing to judge by. */
  score?: number;
  /** What a rules-tier delay of this downstream is multiplied by now. */
  delay_factor: number;
  success_rate?: number;
  requests: number;
  breaker_state?: BreakerState;
  signals: { latency_ms?: number; error_rate?: number; cpu?: number; queue_depth?: number };
  signals_at_ms?: number;
}

export type EventName =
  | 'retry_scheduled'
  | 'retry_succeeded'
  | 'retry_failed'
  | 'gave_up'
  | 'guardrail_triggered'
  | 'breaker_state_changed';

/** A lifecycle event, as `engine.on(name, listener)` receives it. */
export interface LifecycleEvent {
  type: EventName;
  at_ms: number;
  job_type: string;
  job_id?: string;
  tenant?: string;
  queue?: string;
  attempt_number?: number;
  error_class?: string;
  delay_ms?: number;
  method?: Method;
  guardrails?: string[];
  rationale?: string;
  breaker_from?: BreakerState;
  breaker_to?: BreakerState;
}

/** Training metrics from the model's sidecar (hold-out unless named `cv_*`). */
export interface TrainingMetrics {
  accuracy?: number;
  f1?: number;
  auc?: number;
  brier?: number;
  calibration_error?: number;
  samples?: number;
  [metric: string]: unknown;
}

/** A registered model version (the ML tier's registry, core/src/ml). */
export interface ModelInfo {
  version: string;
  name: string;
  model_type: string;
  features: string[];
  metrics: TrainingMetrics;
  registered_at: string;
  size_bytes: number;
  state: 'serving' | 'canary' | 'shadow' | 'registered';
}

/** What is deployed: a version serving a sticky share of jobs, and one in shadow. */
export interface Deployment {
  serving: string | null;
  canary_percent: number;
  shadow: string | null;
  since?: string;
}

/** Outcomes of the decisions one side made (or, in shadow, would have made). */
export interface ArmStats {
  decisions: number;
  outcomes: number;
  successes: number;
  delay_ms_total: number;
  squared_error_total: number;
  success_rate: number;
  mean_delay_ms: number;
  brier: number;
}

/** The ML tier against the tier below on the same traffic. */
export interface Comparison {
  ml: ArmStats;
  bayesian: ArmStats;
  shadow: {
    decisions: number;
    agreements: number;
    agreement_rate: number;
    model: ArmStats;
    served: ArmStats;
  };
}

/** The ML tier's condition (`Engine.mlStatus()`). */
export interface MlStatus {
  enabled: boolean;
  available: boolean;
  runtime: string | null;
  reason: string | null;
  deployment: Deployment;
  versions: ModelInfo[];
  comparison: Comparison;
  errors_total: number;
  unavailable_total: number;
}

/** Where a dead letter stands. */
export type DeadLetterStatus = 'open' | 'retried' | 'resolved';

/** A job for the dead-letter queue: its full attempt history and where its payload is. */
export interface NewDeadLetter {
  job_id: string;
  job_type: string;
  error_class?: string;
  tenant?: string;
  /** Why it was given up on (typically the last decision's rationale). */
  failure_reason?: string;
  attempts?: Attempt[];
  /** Where the original payload lives (a queue message id, an object-store key…). */
  payload_ref?: string;
  /** The payload itself, when small (at most 1 MiB as JSON). */
  payload?: unknown;
}

/** A job in the dead-letter queue. */
export interface DeadLetterRecord extends NewDeadLetter {
  id: string;
  failure_reason: string;
  attempts: Attempt[];
  status: DeadLetterStatus;
  added_ms: number;
  added_at: string;
  updated_ms: number;
  manual_retries: number;
  last_retried_at?: string;
  resolution_note?: string;
  resolved_at?: string;
}

/** Which dead letters to list (newest first). */
export interface DeadLetterQuery {
  status?: DeadLetterStatus;
  job_type?: string;
  /** 1–1000 (default 100). */
  limit?: number;
  offset?: number;
}

/** One sampled decision of the audit trail. */
export interface AuditRecord {
  at_ms: number;
  features: Features;
  decision: Decision;
}
