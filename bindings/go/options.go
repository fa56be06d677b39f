//go:build cgo

package smartretry

// #include <stdlib.h>
// #include "smartretry.h"
import "C"

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff is a call's own schedule (Options.Backoff): the engine computes every delay
// from it, as its rules tier for the call, and the guardrails still bound it (see
// docs/options.md). Zero fields take the defaults.
type Backoff struct {
	// Strategy is "exponential" (default), "linear", "fibonacci", "aggressive" (×3) or
	// "constant".
	Strategy string
	// Base is the first delay (zero: 1 s).
	Base time.Duration
	// Max is the longest delay (zero: the guardrails' max delay).
	Max time.Duration
	// Multiplier is the growth per retry of "exponential", 1–100 (zero: 2).
	Multiplier float64
	// Jitter is "none" (default), "full", "equal", "decorrelated" or a percentage ("25%").
	Jitter string
}

// PermanentError marks a failure that must not be retried; make one with Permanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that Do returns it after its attempt, without a retry (as
// cenkalti/backoff's Permanent does). errors.Is and errors.As see through it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// checked is what the engine made of an Options' values (its units, its JSON).
type checked struct {
	backoff json.RawMessage
}

// optionsKey is the part of Options the engine checks, comparable: the verdict on one
// set of values is remembered, so Do checks its options without a cgo call once seen.
type optionsKey struct {
	jobType     string
	tenant      string
	maxAttempts int
	deadline    time.Duration
	priority    Priority
	backoff     Backoff
	hasBackoff  bool
}

// verdicts remembers the options the engine accepted (bounded: cleared past maxVerdicts).
var (
	verdicts    sync.Map
	verdictsLen atomic.Int64
)

const maxVerdicts = 4096

// check asks the engine (once per distinct set of values) whether o's options keep the
// options contract; a bad one is an *Error naming it by its Go name (MaxAttempts,
// Backoff.Max). JobID, unique per call, is checked each time it is set.
func (o *Options) check() (checked, error) {
	key := optionsKey{jobType: o.JobType, tenant: o.Tenant, maxAttempts: o.MaxAttempts,
		deadline: o.Deadline, priority: o.Priority}
	if o.Backoff != nil {
		key.backoff, key.hasBackoff = *o.Backoff, true
	}
	if o.JobID != "" {
		if _, err := CheckOptions(map[string]any{"JobID": o.JobID}); err != nil {
			return checked{}, err
		}
	}
	if c, ok := verdicts.Load(key); ok {
		return c.(checked), nil
	}
	given := map[string]any{"JobType": o.JobType}
	if o.Tenant != "" {
		given["Tenant"] = o.Tenant
	}
	if o.MaxAttempts != 0 {
		given["MaxAttempts"] = o.MaxAttempts
	}
	if o.Deadline != 0 {
		given["Deadline"] = ms(o.Deadline)
	}
	if o.Priority != "" {
		given["Priority"] = string(o.Priority)
	}
	if b := o.Backoff; b != nil {
		schedule := map[string]any{}
		if b.Strategy != "" {
			schedule["Strategy"] = b.Strategy
		}
		if b.Base != 0 {
			schedule["Base"] = ms(b.Base)
		}
		if b.Max != 0 {
			schedule["Max"] = ms(b.Max)
		}
		if b.Multiplier != 0 {
			schedule["Multiplier"] = number(b.Multiplier)
		}
		if b.Jitter != "" {
			schedule["Jitter"] = b.Jitter
		}
		given["Backoff"] = schedule
	}
	answer, err := CheckOptions(given)
	if err != nil {
		return checked{}, err
	}
	c := checked{backoff: answer["backoff"]}
	if verdictsLen.Add(1) > maxVerdicts {
		verdicts.Clear()
		verdictsLen.Store(1)
	}
	verdicts.Store(key, c)
	return c, nil
}

// number is f as JSON can carry it: NaN and ±Inf (which encoding/json refuses) as text,
// for the engine to refuse naming the field.
func number(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// ms is d in milliseconds, fractions kept (the engine rounds up: 1µs is 1 ms, never 0).
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CheckOptions checks options given by their Go names (durations in ms) against the
// engine's options contract (docs/options.md), and returns them in the engine's units
// (job_type, deadline_ms, backoff…). Do and NewRetrier call it; a bad option is an
// *Error of KindInvalidInput naming it.
func CheckOptions(given map[string]any) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	err := withJSON("options", given, func(s *C.char) error {
		var res *C.char
		text, err := result(C.smartretry_check_options(s, &res), res)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(text, &out); err != nil {
			return &Error{Kind: KindInternal, Reason: "unreadable result: " + err.Error()}
		}
		return nil
	})
	return out, err
}

// Retrier is Do with its Options checked once, by NewRetrier, and statistics of its calls.
type Retrier struct {
	opts    Options
	checked checked
	stats   stats
}

// NewRetrier checks opts against the engine's options contract: a bad option is an
// *Error naming it (errors.As), before any call.
func NewRetrier(opts Options) (*Retrier, error) {
	c, err := opts.check()
	if err != nil {
		return nil, err
	}
	return &Retrier{opts: opts, checked: c}, nil
}

// Do is Do(ctx, r's Options, fn).
func (r *Retrier) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return run(ctx, &r.opts, r.checked, &r.stats, fn)
}

// RetrierStats are what a Retrier's calls have been through so far.
type RetrierStats struct {
	Calls, Attempts, Retries, Successes, GaveUp int64
	// Idle is the time spent waiting between attempts, over every call.
	Idle time.Duration
	// LastDecision is the engine's last decision (nil before any failure).
	LastDecision *Decision
}

type stats struct {
	calls, retries, successes, gaveUp, idle atomic.Int64
	last                                    atomic.Pointer[Decision]
}

// Stats returns a snapshot of the Retrier's statistics.
func (r *Retrier) Stats() RetrierStats {
	s := &r.stats
	calls, retries := s.calls.Load(), s.retries.Load()
	return RetrierStats{Calls: calls, Attempts: calls + retries, Retries: retries, Successes: s.successes.Load(),
		GaveUp: s.gaveUp.Load(), Idle: time.Duration(s.idle.Load()), LastDecision: s.last.Load()}
}
