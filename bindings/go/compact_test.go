package smartretry_test

import (
	"errors"
	"math"
	"testing"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// Decide and Record cross without JSON; bad input is still named by the engine.
func TestCompactCallsNameBadInput(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		field string
		f     smartretry.Features
	}{
		{"http_status", smartretry.Features{JobType: "pay", AttemptNumber: 1, HTTPStatus: -1}},
		{"attempt_number", smartretry.Features{JobType: "pay", AttemptNumber: -2}},
		{"priority", smartretry.Features{JobType: "pay", AttemptNumber: 1, Priority: "urgent"}},
		{"job_type", smartretry.Features{AttemptNumber: 1}},
	}
	for _, c := range cases {
		_, err := e.Decide(c.f)
		var se *smartretry.Error
		if !errors.As(err, &se) || se.Kind != smartretry.KindInvalidInput || se.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	if _, err := e.Decide(smartretry.Features{JobType: "pay", AttemptNumber: 1, Health: map[string]float64{"cpu": math.NaN()}}); err == nil {
		t.Error("a NaN health value was accepted")
	}
	err := e.Record(smartretry.Attempt{JobType: "pay", AttemptNumber: 1, DelayMs: -5, JobID: "j"})
	if !errors.Is(err, smartretry.ErrInvalidInput) {
		t.Errorf("negative delay: %v", err)
	}
	_ = e.Close()
	if _, err := e.Decide(smartretry.Features{JobType: "pay", AttemptNumber: 1}); !errors.Is(err, smartretry.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// Every field crosses: a decision with all of them set is the one the engine makes.
func TestCompactDecisionCarriesEveryField(t *testing.T) {
	e := newEngine(t)
	d, err := e.Decide(smartretry.Features{JobType: "flaky_job", AttemptNumber: 1, HTTPStatus: 503, Tenant: "acme",
		JobID: "j1", Queue: "q", WorkerVersion: "v1", Priority: smartretry.PriorityHigh, Idempotent: smartretry.Ptr(true),
		Health: map[string]float64{"cpu": 0.5}, DeadlineMs: smartretry.Ptr(int64(60_000)), MaxAttempts: smartretry.Ptr(4),
		RetryAfter: "1", SinceFirstFailureMs: smartretry.Ptr(int64(10))})
	if err != nil {
		t.Fatal(err)
	}
	if !d.ShouldRetry || d.Policy != "fast" || d.ErrorClass != "service_unavailable" || d.Method != smartretry.MethodRules ||
		d.Rationale == "" || d.NextEvaluation == "" || d.PolicyGuardrails == nil || d.MaxAttempts != 4 {
		t.Errorf("decision: %+v", d)
	}
}
