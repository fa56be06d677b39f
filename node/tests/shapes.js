// @ts-check
'use strict';
// The field names of each shape, as the TypeScript types declare them. types-check.ts
// proves (with tsc) that each list is exactly the keys of its interface, and
// shapes.test.js proves that the real engine returns no other keys: together they keep
// src/types.ts true to the core.

const DECISION = /** @type {const} */ ([
  'should_retry', 'delay_ms', 'max_attempts', 'confidence', 'rationale', 'method',
  'estimated_success', 'next_evaluation', 'check_in_ms', 'policy_guardrails', 'error_class', 'policy',
]);
const TIMELINE_ENTRY = /** @type {const} */ ([
  'attempt_number', 'scheduled_time', 'estimated_success', 'delay_ms', 'method', 'rationale', 'confidence',
]);
const PREVIEW = /** @type {const} */ (['job_id', 'current_attempt', 'features', 'recommendations', 'timeline', 'generated_at']);
const STATS = /** @type {const} */ ([
  'job_type', 'error_class', 'total_attempts', 'successful_retries', 'failed_retries', 'avg_delay_ms',
  'success_rate', 'last_updated', 'window_start', 'window_end', 'buckets',
]);
const BUCKET_STATS = /** @type {const} */ (['label', 'min_ms', 'max_ms', 'successes', 'failures', 'success_probability', 'confidence']);
const POLICY = /** @type {const} */ ([
  'name', 'error_patterns', 'job_type_patterns', 'max_attempts', 'base_delay_ms', 'max_delay_ms',
  'min_delay_ms', 'backoff_multiplier', 'jitter_percent', 'priority', 'strategy', 'jitter', 'deadline_ms',
]);
const GUARDRAILS = /** @type {const} */ ([
  'max_attempts', 'max_delay_ms', 'min_delay_ms', 'max_budget_percent', 'per_tenant_limits',
  'emergency_stop', 'explainability_required', 'budget_window_ms', 'min_retries_per_sec',
  'tenant_max_share', 'max_total_ms', 'default_deadline_ms', 'respect_retry_after', 'adaptive_throttle', 'throttle_k',
  'throttle_window_ms', 'max_concurrent_retries', 'in_flight_ttl_ms', 'probe_and_release', 'priority_shares',
]);
const FEATURES = /** @type {const} */ ([
  'job_type', 'attempt_number', 'error_class', 'error_code', 'http_status', 'queue', 'tenant',
  'payload_size', 'time_of_day', 'job_id', 'since_first_failure_ms', 'since_last_failure_ms',
  'since_last_failure', 'retry_after_ms', 'retry_after', 'idempotent', 'priority', 'worker_version',
  'health', 'recent_failures', 'avg_processing_time', 'deadline_ms', 'max_attempts',
]);

module.exports = { DECISION, TIMELINE_ENTRY, PREVIEW, STATS, BUCKET_STATS, POLICY, GUARDRAILS, FEATURES };
