// The engine's data shapes, in the API document's snake_case JSON (core/src/model.rs,
// guard.rs, policy.rs, config.rs). The engine ignores fields it does not know.
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
  priority?: number;
  worker_version?: string;
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
  respect_retry_after: boolean;
  adaptive_throttle: boolean;
  throttle_k: number;
  throttle_window_ms: number;
  max_concurrent_retries?: number;
  in_flight_ttl_ms: number;
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
  [field: string]: unknown;
}
