//go:build cgo

package smartretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure Do and NewRetrier. Only JobType is required. They are the engine's
// options contract (docs/options.md), checked before the first attempt: a bad one is an
// *Error naming it (MaxAttempts, Backoff.Max), returned by Do before fn runs.
type Options struct {
	// JobType is what the engine learns under, e.g. "payment_capture".
	JobType string
	// Engine defaults to Default().
	Engine *Engine
	Tenant string
	// JobID identifies this call to the engine (concurrency caps). Default: generated.
	JobID string
	// MaxAttempts is the caller's cap, the first attempt included, 1–100 (0: the engine's).
	MaxAttempts int
	// Deadline: no retry starts later than this after the first attempt began (0: none).
	Deadline time.Duration
	// Backoff is the call's own schedule (nil: the matched policy's); the engine computes
	// the delays from it and the guardrails still bound them.
	Backoff *Backoff
	// NonIdempotent marks a call that must not run twice: it is never retried after a
	// failure that may have taken effect (timeouts, 5xx, resets).
	NonIdempotent bool
	// Priority is sent with every decision: when the retry budget or a concurrency cap
	// binds, a priority may use only its share of it ("": not ranked).
	Priority Priority
	// RetryIf returning false for a failure returns it at once, without asking the engine
	// (as does a failure wrapped with Permanent).
	RetryIf func(err error) bool
	// StopIf returning true after a failure stops retrying; with MaxAttempts and Deadline,
	// any of them stops.
	StopIf func(StopEvent) bool
	// OnRetry is called before each wait.
	OnRetry func(RetryEvent)
	// OnGiveUp is called once when Do gives up on a failure (a dead-letter hook).
	OnGiveUp func(GiveUpEvent)
	// Clock is how Do reads the time and waits (nil: the wall clock); NewVirtualClock
	// makes waits instant in tests.
	Clock Clock
	// Logger gets one Info record per retry (job_type, attempt, delay_ms, method,
	// error_class) and one per give-up (Warn after retries, Info when nothing was
	// retried). Nil: nothing is logged.
	Logger *slog.Logger
}

// StopEvent is passed to Options.StopIf after each failure.
type StopEvent struct {
	JobType string
	JobID   string
	// Attempt is the attempt that just failed, 1-based.
	Attempt int
	Err     error
	// Elapsed is the time since the first failure, on the Options' clock.
	Elapsed time.Duration
}

// GiveUpEvent is passed to Options.OnGiveUp.
type GiveUpEvent struct {
	JobType  string
	JobID    string
	Attempts int
	Err      error
	// Decision is the engine's last decision (nil when it was not asked).
	Decision *Decision
	// Reason is "engine" (the decision said no), "not_retryable" (RetryIf or Permanent)
	// or "stopped" (StopIf).
	Reason string
}

// RetryEvent is passed to Options.OnRetry.
type RetryEvent struct {
	JobType string
	JobID   string
	// Attempt is the attempt that just failed, 1-based.
	Attempt  int
	Err      error
	Decision Decision
}

// HTTPError is an HTTP failure: its status and Retry-After let the engine classify it
// and respect the server's wait. Make one with ResponseError.
type HTTPError struct {
	StatusCode int
	// RetryAfter is the raw header (delta-seconds or HTTP-date), "" if absent.
	RetryAfter string
	Err        error
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("HTTP %d: %v", e.StatusCode, e.Err)
	}
	return "HTTP " + strconv.Itoa(e.StatusCode)
}

func (e *HTTPError) Unwrap() error { return e.Err }

// ResponseError is nil for a response below 400, else an *HTTPError with its status and
// Retry-After header.
func ResponseError(resp *http.Response) error {
	if resp == nil || resp.StatusCode < 400 {
		return nil
	}
	return &HTTPError{StatusCode: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
}

// Failure is what an error tells the engine (extraction only: the engine classifies).
type Failure struct {
	HTTPStatus int
	ErrorClass string
	ErrorCode  string
	RetryAfter string
}

// errnoNames are the network errnos the engine classifies by name.
var errnoNames = map[syscall.Errno]string{
	syscall.ECONNREFUSED: "ECONNREFUSED",
	syscall.ECONNRESET:   "ECONNRESET",
	syscall.ECONNABORTED: "ECONNABORTED",
	syscall.EPIPE:        "EPIPE",
	syscall.EHOSTUNREACH: "EHOSTUNREACH",
	syscall.ENETUNREACH:  "ENETUNREACH",
	syscall.ETIMEDOUT:    "ETIMEDOUT",
}

// DescribeFailure is what Do tells the engine about err. Understood: *HTTPError
// anywhere in the chain; any error with a `StatusCode() int` or `HTTPStatusCode() int`
// method (AWS SDK, many clients); timeouts (context.DeadlineExceeded, net.Error's
// Timeout()); errnos (ECONNREFUSED: the request never left; ECONNRESET, EPIPE…);
// DNS failures; unexpected EOF. Otherwise the error's type name is the class.
func DescribeFailure(err error) Failure {
	var f Failure
	var h *HTTPError
	var coder interface{ StatusCode() int }
	var awsCoder interface{ HTTPStatusCode() int }
	switch {
	case errors.As(err, &h):
		f.HTTPStatus, f.RetryAfter = h.StatusCode, h.RetryAfter
		return f
	case errors.As(err, &coder):
		f.HTTPStatus = coder.StatusCode()
		return f
	case errors.As(err, &awsCoder):
		f.HTTPStatus = awsCoder.HTTPStatusCode()
		return f
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		f.ErrorCode = errnoNames[errno]
	}
	var dns *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		f.ErrorClass = "timeout"
	case errors.As(err, &dns):
		f.ErrorClass = "dns_error"
	case errors.Is(err, io.ErrUnexpectedEOF):
		f.ErrorClass = "unexpected_eof"
	case f.ErrorCode == "":
		f.ErrorClass = typeName(err)
	}
	return f
}

func typeName(err error) string {
	t := reflect.TypeOf(err)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

var sequence atomic.Uint64

// hintFields are the Features fields taken from a third-party error: a value the
// engine rejects (an out-of-range status, an unreadable Retry-After) is dropped.
func dropHint(f *Failure, field string) bool {
	switch {
	case field == "http_status" && f.HTTPStatus != 0:
		f.HTTPStatus = 0
	case field == "error_class" && f.ErrorClass != "":
		f.ErrorClass = ""
	case field == "error_code" && f.ErrorCode != "":
		f.ErrorCode = ""
	case field == "retry_after" && f.RetryAfter != "":
		f.RetryAfter = ""
	default:
		return false
	}
	return true
}

// Do calls fn until it succeeds, retrying failures when and as the engine decides.
// Its Options are checked first (a bad one is an *Error naming it; fn never runs). While
// the downstream is down for every caller, a wait checks in every Decision.CheckInMs and
// ends as soon as the engine says calls get through again (Engine.Released).
// It returns nil on success; a *GaveUpError wrapping the last failure when the engine
// (or RetryIf, Permanent, StopIf) says stop; an engine *Error for bad options; and, as
// soon as ctx is done — during a wait or an attempt — an error that matches ctx.Err()
// with errors.Is (and the last failure too, if there was one). fn receives ctx and
// should honour it. A panic in fn is never caught: it propagates, as Go panics do.
func Do(ctx context.Context, opts Options, fn func(ctx context.Context) error) error {
	c, err := opts.check()
	if err != nil {
		return err
	}
	return run(ctx, &opts, c, nil, fn)
}

func run(ctx context.Context, o *Options, c checked, s *stats, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	engine := o.Engine
	if engine == nil {
		engine = Default()
	}
	var clock Clock = wallClock{}
	if o.Clock != nil {
		clock = o.Clock
	}
	if s != nil {
		s.calls.Add(1)
	}
	var startedAt time.Time
	if o.Deadline > 0 {
		startedAt = clock.Now()
	}
	// The first attempt: a success is counted in Go, no cgo call (see successes.go).
	err := fn(ctx)
	if err == nil {
		engine.countSuccess(o.JobType, o.Tenant)
		if s != nil {
			s.successes.Add(1)
		}
		return nil
	}
	firstFailureAt := clock.Now()
	jobID := o.JobID
	if jobID == "" {
		jobID = o.JobType + "-" + strconv.FormatUint(sequence.Add(1), 10)
	}
	// The budget and the throttle see this job type's successes before its failure is decided.
	engine.flushSuccessesOf(o.JobType, o.Tenant)
	var retried *Failure // the failure being retried: outcomes are learned under its key
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		now := firstFailureAt
		if attempt > 1 {
			attemptStartedAt := clock.Now()
			err = fn(ctx)
			now = clock.Now()
			// What is recorded only teaches the engine: a label it rejects is reported by
			// the next Decide, and never turns a success into an error.
			_ = engine.Record(outcome(o, jobID, attempt, err == nil, waited, *retried, attemptStartedAt.Sub(firstFailureAt)))
			if err == nil {
				if s != nil {
					s.successes.Add(1)
				}
				return nil
			}
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("smartretry: %w (last failure: %w)", cerr, err)
		}
		var permanent *PermanentError
		if errors.As(err, &permanent) || (o.RetryIf != nil && !o.RetryIf(err)) {
			return giveUp(ctx, o, s, jobID, &GaveUpError{Attempts: attempt, Err: err}, "not_retryable")
		}
		if o.StopIf != nil && o.StopIf(StopEvent{o.JobType, jobID, attempt, err, now.Sub(firstFailureAt)}) {
			return giveUp(ctx, o, s, jobID, &GaveUpError{Attempts: attempt, Err: err}, "stopped")
		}
		failure := DescribeFailure(err)
		failedAt := engine.clockTime() // what Released is asked about: calls since this one
		features := Features{
			JobType:             o.JobType,
			AttemptNumber:       attempt,
			JobID:               jobID,
			Tenant:              o.Tenant,
			Priority:            o.Priority,
			SinceFirstFailureMs: Ptr(now.Sub(firstFailureAt).Milliseconds()),
			Backoff:             c.backoff,
		}
		if o.MaxAttempts > 0 {
			features.MaxAttempts = Ptr(o.MaxAttempts)
		}
		if o.NonIdempotent {
			features.Idempotent = Ptr(false)
		}
		if o.Deadline > 0 {
			features.DeadlineMs = Ptr(max(0, (o.Deadline - firstFailureAt.Sub(startedAt)).Milliseconds()))
		}
		decision, derr := decide(engine, features, &failure)
		if derr != nil {
			return derr
		}
		if s != nil {
			s.last.Store(&decision)
		}
		if !decision.ShouldRetry {
			return giveUp(ctx, o, s, jobID, &GaveUpError{Attempts: attempt, Decision: &decision, Err: err}, "engine")
		}
		if o.Logger != nil {
			o.Logger.LogAttrs(ctx, slog.LevelInfo, "smartretry: retrying", slog.String("job_type", o.JobType),
				slog.Int("attempt", attempt), slog.Int64("delay_ms", decision.DelayMs),
				slog.String("method", string(decision.Method)), slog.String("error_class", decision.ErrorClass))
		}
		if o.OnRetry != nil {
			o.OnRetry(RetryEvent{JobType: o.JobType, JobID: jobID, Attempt: attempt, Err: err, Decision: decision})
		}
		var werr error
		if waited, werr = waitOut(ctx, clock, engine, o.JobType, decision, failedAt); werr != nil {
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("smartretry: %w (last failure: %w)", cerr, err)
			}
			return werr
		}
		if s != nil {
			s.retries.Add(1)
			s.idle.Add(int64(waited))
		}
		retried = &failure
	}
}

// giveUp ends a call without success: the statistics, the hook, the log; returns g.
func giveUp(ctx context.Context, o *Options, s *stats, jobID string, g *GaveUpError, reason string) error {
	if s != nil {
		s.gaveUp.Add(1)
	}
	if o.OnGiveUp != nil {
		o.OnGiveUp(GiveUpEvent{JobType: o.JobType, JobID: jobID, Attempts: g.Attempts, Err: g.Err, Decision: g.Decision, Reason: reason})
	}
	if o.Logger != nil {
		// After retries, a warning; a failure never retried (a 400, RetryIf) reaches the caller anyway.
		level := slog.LevelInfo
		if g.Attempts > 1 {
			level = slog.LevelWarn
		}
		o.Logger.LogAttrs(ctx, level, "smartretry: gave up", slog.String("job_type", o.JobType),
			slog.Int("attempts", g.Attempts), slog.String("reason", reason), slog.String("error", g.Err.Error()))
	}
	return g
}

// waitOut sleeps until the next attempt is due: the decision's delay, or sooner when
// it has check-ins (its downstream is down for every caller) and, at one of them, the
// engine says calls get through again. It returns how long it waited, or ctx's error
// as soon as ctx is done.
func waitOut(ctx context.Context, clock Clock, e *Engine, jobType string, d Decision, failedAt time.Time) (time.Duration, error) {
	delay := time.Duration(d.DelayMs) * time.Millisecond
	step := delay
	if d.CheckInMs != nil && *d.CheckInMs > 0 {
		step = time.Duration(*d.CheckInMs) * time.Millisecond
	}
	left := delay
	for left > 0 {
		nap := min(step, left)
		if err := clock.Sleep(ctx, nap); err != nil {
			return delay - left, err
		}
		left -= nap
		if left > 0 {
			released, err := e.Released(jobType, failedAt)
			if err != nil || released {
				return delay - left, err
			}
		}
	}
	return delay, nil
}

// decide asks the engine, dropping hints taken from the error that it rejects.
func decide(engine *Engine, f Features, failure *Failure) (Decision, error) {
	for {
		f.HTTPStatus, f.ErrorClass, f.ErrorCode, f.RetryAfter = failure.HTTPStatus, failure.ErrorClass, failure.ErrorCode, failure.RetryAfter
		d, err := engine.Decide(f)
		var e *Error
		if err != nil && errors.As(err, &e) && e.Kind == KindInvalidInput && dropHint(failure, e.Field) {
			continue
		}
		return d, err
	}
}

func outcome(o *Options, jobID string, attempt int, success bool, waited time.Duration, f Failure, sinceFirst time.Duration) Attempt {
	return Attempt{
		JobID:               jobID,
		JobType:             o.JobType,
		AttemptNumber:       attempt,
		Success:             success,
		DelayMs:             waited.Milliseconds(),
		Tenant:              o.Tenant,
		HTTPStatus:          f.HTTPStatus,
		ErrorClass:          f.ErrorClass,
		ErrorCode:           f.ErrorCode,
		SinceFirstFailureMs: Ptr(max(0, sinceFirst.Milliseconds())),
	}
}
