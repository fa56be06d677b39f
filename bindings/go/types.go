//go:build cgo

package smartretry

import "encoding/json"

// Ptr returns a pointer to v, for the optional fields (Ptr(int64(0)) is "zero", nil is "absent").
func Ptr[T any](v T) *T { return &v }

// Features describes what failed: the inputs to a retry decision (the API document's
// snake_case shape). Zero values of the plain fields mean "absent"; pointer fields are
// optional where zero is meaningful.
type Features struct {
	JobType string `json:"job_type"`
	// AttemptNumber is the attempt that just failed, 1-based.
	AttemptNumber int    `json:"attempt_number"`
	ErrorClass    string `json:"error_class,omitempty"`
	ErrorCode     string `json:"error_code,omitempty"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	Queue         string `json:"queue,omitempty"`
	Tenant        string `json:"tenant,omitempty"`
	PayloadSize   *int64 `json:"payload_size,omitempty"`
	// TimeOfDay is the hour (0–23, UTC); derived from the clock when nil.
	TimeOfDay           *int   `json:"time_of_day,omitempty"`
	JobID               string `json:"job_id,omitempty"`
	SinceFirstFailureMs *int64 `json:"since_first_failure_ms,omitempty"`
	SinceLastFailureMs  *int64 `json:"since_last_failure_ms,omitempty"`
	RetryAfterMs        *int64 `json:"retry_after_ms,omitempty"`
	// RetryAfter is a raw Retry-After header (delta-seconds or HTTP-date).
	RetryAfter string `json:"retry_after,omitempty"`
	// Idempotent false marks a call that must not run twice; nil means true.
	Idempotent    *bool              `json:"idempotent,omitempty"`
	Priority      Priority           `json:"priority,omitempty"`
	WorkerVersion string             `json:"worker_version,omitempty"`
	Health        map[string]float64 `json:"health,omitempty"`
	// DeadlineMs is the total time allowed from the first failure; no retry starts later.
	DeadlineMs *int64 `json:"deadline_ms,omitempty"`
	// MaxAttempts is the caller's own attempt limit, on top of the engine's (nil: none).
	MaxAttempts *int `json:"max_attempts,omitempty"`
	// Expected true: the caller named this failure's kind among those to retry, so it is
	// not taken for a programming error (docs/errors.md).
	Expected *bool `json:"expected,omitempty"`
	// Backoff is the call's own schedule, as CheckOptions returns it (Options.Backoff):
	// the engine's rules tier for the call.
	Backoff json.RawMessage `json:"backoff,omitempty"`
}

// Attempt is what happened on one attempt: the engine learns from it.
type Attempt struct {
	JobID         string `json:"job_id"`
	JobType       string `json:"job_type"`
	AttemptNumber int    `json:"attempt_number"`
	Success       bool   `json:"success"`
	// DelayMs is how long the caller waited before this attempt.
	DelayMs             int64  `json:"delay_ms"`
	ErrorClass          string `json:"error_class,omitempty"`
	ErrorCode           string `json:"error_code,omitempty"`
	HTTPStatus          int    `json:"http_status,omitempty"`
	Queue               string `json:"queue,omitempty"`
	Tenant              string `json:"tenant,omitempty"`
	SinceFirstFailureMs *int64 `json:"since_first_failure_ms,omitempty"`
	PayloadSize         *int64 `json:"payload_size,omitempty"`
	TimeOfDay           *int   `json:"time_of_day,omitempty"`
	WorkerVersion       string `json:"worker_version,omitempty"`
	// Timestamp is when the attempt happened (RFC 3339); default: the engine's clock.
	Timestamp string `json:"timestamp,omitempty"`
}

// Priority is how much a job matters: critical work may pass global backpressure
// (never the emergency stop); low work is the first to wait. "" = normal.
type Priority string

const (
	PriorityLow      Priority = "low"
	PriorityNormal   Priority = "normal"
	PriorityHigh     Priority = "high"
	PriorityCritical Priority = "critical"
)

// UnmarshalJSON reads a name, or the index 0–3 (the documents' ConnectionPriority),
// as the engine does.
func (p *Priority) UnmarshalJSON(b []byte) error {
	var index int
	if err := json.Unmarshal(b, &index); err == nil {
		names := []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical}
		if index < 0 || index >= len(names) {
			return invalid("priority", "expected 0–3 (low–critical), got "+string(b))
		}
		*p = names[index]
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return invalid("priority", "expected a name or 0–3, got "+string(b))
	}
	*p = Priority(name)
	return nil
}

// Method names the tier that made a decision.
type Method string

const (
	MethodRules     Method = "rules"
	MethodBayesian  Method = "bayesian"
	MethodML        Method = "ml"
	MethodGuardrail Method = "guardrail"
	MethodBreaker   Method = "breaker"
)

// Decision is the engine's answer: retry or not, after how long, and why.
type Decision struct {
	ShouldRetry bool    `json:"should_retry"`
	DelayMs     int64   `json:"delay_ms"`
	MaxAttempts int     `json:"max_attempts"`
	Confidence  float64 `json:"confidence"`
	// Rationale is one human sentence.
	Rationale        string  `json:"rationale"`
	Method           Method  `json:"method"`
	EstimatedSuccess float64 `json:"estimated_success"`
	// NextEvaluation is when to ask again (RFC 3339): now + delay.
	NextEvaluation string `json:"next_evaluation"`
	// PolicyGuardrails lists every guardrail that changed this decision.
	PolicyGuardrails []string `json:"policy_guardrails"`
	ErrorClass       string   `json:"error_class,omitempty"`
	Policy           string   `json:"policy,omitempty"`
	// CheckInMs is set while the downstream is down for every caller: wait out DelayMs,
	// but every CheckInMs ask Engine.Released whether calls get through again, and retry
	// at once if they do (Do does this).
	CheckInMs *int64 `json:"check_in_ms,omitempty"`
}

// TimelineEntry is one future attempt of a Preview.
type TimelineEntry struct {
	AttemptNumber    int     `json:"attempt_number"`
	ScheduledTime    string  `json:"scheduled_time"`
	EstimatedSuccess float64 `json:"estimated_success"`
	DelayMs          int64   `json:"delay_ms"`
	Method           Method  `json:"method"`
	Rationale        string  `json:"rationale"`
	Confidence       float64 `json:"confidence"`
}

// Preview is the schedule the engine would follow if every retry failed.
type Preview struct {
	JobID           string          `json:"job_id"`
	CurrentAttempt  int             `json:"current_attempt"`
	Features        Features        `json:"features"`
	Recommendations []Decision      `json:"recommendations"`
	Timeline        []TimelineEntry `json:"timeline"`
	GeneratedAt     string          `json:"generated_at"`
}

// BucketStats is one delay bucket of the Bayesian tier.
type BucketStats struct {
	Label              string  `json:"label"`
	MinMs              int64   `json:"min_ms"`
	MaxMs              *int64  `json:"max_ms,omitempty"`
	Successes          int64   `json:"successes"`
	Failures           int64   `json:"failures"`
	SuccessProbability float64 `json:"success_probability"`
	Confidence         float64 `json:"confidence"`
}

// Stats is what the engine has seen for one (job type, error class) in a window.
type Stats struct {
	JobType           string        `json:"job_type"`
	ErrorClass        string        `json:"error_class"`
	TotalAttempts     int64         `json:"total_attempts"`
	SuccessfulRetries int64         `json:"successful_retries"`
	FailedRetries     int64         `json:"failed_retries"`
	AvgDelayMs        float64       `json:"avg_delay_ms"`
	SuccessRate       float64       `json:"success_rate"`
	LastUpdated       string        `json:"last_updated,omitempty"`
	WindowStart       string        `json:"window_start"`
	WindowEnd         string        `json:"window_end"`
	Buckets           []BucketStats `json:"buckets,omitempty"`
}

// Policy is one rule of the rules tier (the configuration file's shape).
type Policy struct {
	Name string `json:"name"`
	// ErrorPatterns match the error class, code, HTTP status and classified kind; empty = all.
	ErrorPatterns []string `json:"error_patterns,omitempty"`
	// JobTypePatterns are regular expressions over the job type; empty = all.
	JobTypePatterns []string `json:"job_type_patterns,omitempty"`
	// MaxAttempts counts the first attempt: 1 means "never retry".
	MaxAttempts       int     `json:"max_attempts"`
	BaseDelayMs       int64   `json:"base_delay_ms"`
	MaxDelayMs        int64   `json:"max_delay_ms"`
	MinDelayMs        int64   `json:"min_delay_ms,omitempty"`
	BackoffMultiplier float64 `json:"backoff_multiplier,omitempty"`
	JitterPercent     float64 `json:"jitter_percent"`
	Priority          int     `json:"priority"`
	// Strategy: "exponential", "linear", "fibonacci", "aggressive", "constant"; "" = by error kind.
	Strategy string `json:"strategy,omitempty"`
	// Jitter: "none", "full", "equal", "decorrelated" or {"percent": 25}; empty = ±JitterPercent.
	Jitter json.RawMessage `json:"jitter,omitempty"`
	// DeadlineMs is the deadline of the jobs it governs unless the call names one
	// (0: the guardrails' DefaultDeadlineMs).
	DeadlineMs int64 `json:"deadline_ms,omitempty"`
}

// Guardrails are the hard limits every decision obeys.
type Guardrails struct {
	MaxAttempts            int     `json:"max_attempts"`
	MaxDelayMs             int64   `json:"max_delay_ms"`
	MinDelayMs             int64   `json:"min_delay_ms"`
	MaxBudgetPercent       float64 `json:"max_budget_percent"`
	PerTenantLimits        bool    `json:"per_tenant_limits"`
	EmergencyStop          bool    `json:"emergency_stop"`
	ExplainabilityRequired bool    `json:"explainability_required"`
	BudgetWindowMs         int64   `json:"budget_window_ms"`
	MinRetriesPerSec       float64 `json:"min_retries_per_sec"`
	TenantMaxShare         float64 `json:"tenant_max_share"`
	MaxTotalMs             *int64  `json:"max_total_ms,omitempty"`
	RespectRetryAfter      bool    `json:"respect_retry_after"`
	AdaptiveThrottle       bool    `json:"adaptive_throttle"`
	ThrottleK              float64 `json:"throttle_k"`
	ThrottleWindowMs       int64   `json:"throttle_window_ms"`
	MaxConcurrentRetries   *int    `json:"max_concurrent_retries,omitempty"`
	InFlightTTLMs          int64   `json:"in_flight_ttl_ms"`
	ProbeAndRelease        bool    `json:"probe_and_release"`
	// DefaultDeadlineMs is the deadline of a job whose call, policy and overrides name
	// none, from its first failure (30 minutes).
	DefaultDeadlineMs int64 `json:"default_deadline_ms"`
}
