package smartretry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// newEngine is a real engine whose "flaky" jobs back off 5–20 ms, so tests wait for real.
func newEngine(t testing.TB) *smartretry.Engine {
	t.Helper()
	e, err := smartretry.NewEngine(smartretry.WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	fast := smartretry.Policy{Name: "fast", JobTypePatterns: []string{"flaky.*"}, MaxAttempts: 5,
		BaseDelayMs: 5, MaxDelayMs: 20, Priority: 100}
	if err := e.AddPolicy(fast); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDoRetriesUntilSuccessAndTeachesTheEngine(t *testing.T) {
	e := newEngine(t)
	var calls int
	var events []smartretry.RetryEvent
	opts := smartretry.Options{JobType: "flaky_job", Engine: e, OnRetry: func(ev smartretry.RetryEvent) { events = append(events, ev) }}
	err := smartretry.Do(context.Background(), opts, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return &smartretry.HTTPError{StatusCode: 503}
		}
		return nil
	})
	if err != nil || calls != 3 || len(events) != 2 {
		t.Fatalf("err=%v calls=%d events=%d", err, calls, len(events))
	}
	if events[0].Decision.Policy != "fast" || !events[0].Decision.ShouldRetry {
		t.Errorf("decision: %+v", events[0].Decision)
	}
	st, err := e.Stats("flaky_job", "service_unavailable", 0)
	if err != nil || st.TotalAttempts != 2 || st.SuccessfulRetries != 1 {
		t.Errorf("stats %+v, %v", st, err)
	}
}

func TestDoGivesUpOnANonRetryableFailureAtOnce(t *testing.T) {
	e := newEngine(t)
	var calls int
	notFound := &smartretry.HTTPError{StatusCode: 404}
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e}, func(context.Context) error {
		calls++
		return notFound
	})
	var gaveUp *smartretry.GaveUpError
	if !errors.As(err, &gaveUp) || !errors.Is(err, notFound) || calls != 1 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
	if gaveUp.Attempts != 1 || gaveUp.Decision == nil || gaveUp.Decision.ShouldRetry || gaveUp.Decision.Rationale == "" {
		t.Errorf("gave up: %+v", gaveUp)
	}
}

func TestDoObeysMaxAttemptsAndRetryIf(t *testing.T) {
	e := newEngine(t)
	var calls int
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e, MaxAttempts: 2},
		func(context.Context) error { calls++; return io.ErrUnexpectedEOF })
	if !errors.Is(err, io.ErrUnexpectedEOF) || calls != 2 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
	calls = 0
	bug := errors.New("bug")
	err = smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e,
		RetryIf: func(err error) bool { return !errors.Is(err, bug) }},
		func(context.Context) error { calls++; return bug })
	if !errors.Is(err, bug) || calls != 1 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
}

func TestDoNeverRetriesANonIdempotentCallThatMayHaveTakenEffect(t *testing.T) {
	e := newEngine(t)
	var calls int
	opts := smartretry.Options{JobType: "flaky_job", Engine: e, NonIdempotent: true}
	_ = smartretry.Do(context.Background(), opts, func(context.Context) error { calls++; return &smartretry.HTTPError{StatusCode: 503} })
	if calls != 1 {
		t.Fatalf("a 503 on a non-idempotent call was retried: %d calls", calls)
	}
	// A refused connection carried no request: safe to retry.
	calls = 0
	err := smartretry.Do(context.Background(), opts, func(context.Context) error {
		calls++
		if calls == 1 {
			return &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
}

func TestDoSendsItsPriorityWithEveryDecision(t *testing.T) {
	e := newEngine(t)
	// A budget of 3 retries a minute (no share of first attempts), of which low may use 1.
	patch := map[string]any{"adaptive_throttle": false, "min_retries_per_sec": 0.05, "max_budget_percent": 0}
	if _, err := e.UpdateGuardrails(patch); err != nil {
		t.Fatal(err)
	}
	run := func(p smartretry.Priority) (int, *smartretry.GaveUpError) {
		calls := 0
		err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e, Priority: p},
			func(context.Context) error { calls++; return &smartretry.HTTPError{StatusCode: 503} })
		var gaveUp *smartretry.GaveUpError
		if !errors.As(err, &gaveUp) || gaveUp.Decision == nil {
			t.Fatalf("want the engine to give up, got %v", err)
		}
		return calls, gaveUp
	}
	calls, low := run(smartretry.PriorityLow)
	if calls != 2 || !strings.Contains(low.Decision.Rationale, "low priority may use 1 of them") {
		t.Errorf("low: %d calls, %q", calls, low.Decision.Rationale)
	}
	// Critical work may use the whole budget: two more retries.
	calls, critical := run(smartretry.PriorityCritical)
	if calls != 3 || !strings.Contains(critical.Decision.Rationale, "3 of 3 retries") {
		t.Errorf("critical: %d calls, %q", calls, critical.Decision.Rationale)
	}
}

func TestDoStopsAtOnceWhenTheContextIsCancelled(t *testing.T) {
	e := newEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		// A 503 under the default policy waits ~2 s: cancellation must not wait it out.
		done <- smartretry.Do(ctx, smartretry.Options{JobType: "slow_job", Engine: e}, func(context.Context) error {
			calls.Add(1)
			cancel()
			return &smartretry.HTTPError{StatusCode: 503}
		})
	}()
	err := <-done
	if !errors.Is(err, context.Canceled) || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
	var h *smartretry.HTTPError
	if !errors.As(err, &h) || h.StatusCode != 503 {
		t.Errorf("the last failure is not wrapped: %v", err)
	}

	// Cancelled during the wait, not the attempt.
	ctx, cancel = context.WithCancel(context.Background())
	failed := make(chan struct{})
	go func() {
		done <- smartretry.Do(ctx, smartretry.Options{JobType: "slow_job", Engine: e}, func(context.Context) error {
			close(failed)
			return &smartretry.HTTPError{StatusCode: 503}
		})
	}()
	<-failed
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err=%v", err)
	}
	if err := smartretry.Do(ctx, smartretry.Options{JobType: "x", Engine: e}, func(context.Context) error {
		t.Error("fn ran under a cancelled context")
		return nil
	}); !errors.Is(err, context.Canceled) {
		t.Errorf("err=%v", err)
	}
}

// breakerAndThrottleOff leaves a down downstream's waits to probe-and-release: the
// breaker's cool-down would hold every job 30 s, the adaptive throttle a minute.
const breakerAndThrottleOff = `{"strategy":{"circuit_breaker":{"enabled":false},"guardrails":{"adaptive_throttle":false}}}`

func TestAWaitForADownDownstreamEndsWhenCallsGetThroughAgain(t *testing.T) {
	e, err := smartretry.NewEngine(smartretry.WithSeed(7), smartretry.WithConfigJSON(breakerAndThrottleOff))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Down for every caller: 1 call of 11 accepted.
	if err := e.RecordSuccesses("webhook", "", 1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := e.Decide(smartretry.Features{JobType: "webhook", AttemptNumber: 1, HTTPStatus: 503, JobID: fmt.Sprint("w", i)}); err != nil {
			t.Fatal(err)
		}
	}
	failed := make(chan struct{})
	recorded := make(chan error, 1)
	go func() {
		<-failed
		time.Sleep(200 * time.Millisecond)
		recorded <- e.RecordSuccesses("webhook", "", 1) // another worker's call got through: it is back
	}()
	var planned *smartretry.Decision
	var calls int
	started := time.Now()
	opts := smartretry.Options{JobType: "webhook", Engine: e, OnRetry: func(ev smartretry.RetryEvent) { planned = &ev.Decision }}
	err = smartretry.Do(context.Background(), opts, func(context.Context) error {
		calls++
		if calls == 1 {
			close(failed)
			return &smartretry.HTTPError{StatusCode: 503}
		}
		return nil
	})
	took := time.Since(started)
	if err != nil || calls != 2 || planned == nil {
		t.Fatalf("err=%v calls=%d decision=%+v", err, calls, planned)
	}
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	if planned.CheckInMs == nil {
		t.Fatalf("no check-in while down: %s", planned.Rationale)
	}
	if took >= time.Duration(planned.DelayMs)*time.Millisecond {
		t.Errorf("not released early: took %v of a planned %d ms", took, planned.DelayMs)
	}
	// A job failing now is not released by that earlier success.
	if again, err := e.Released("webhook", time.Now()); err != nil || again {
		t.Errorf("released=%v err=%v", again, err)
	}
}

func TestReleasedNamesTheFieldItRejects(t *testing.T) {
	e := newEngine(t)
	var se *smartretry.Error
	if _, err := e.Released("webhook", time.Now().Add(time.Minute)); !errors.As(err, &se) || se.Field != "failed_at_ms" {
		t.Errorf("a failure in the future: %v", err)
	}
	if _, err := e.Released("webhook", time.UnixMilli(-1)); !errors.As(err, &se) || se.Field != "failed_at_ms" {
		t.Errorf("before 1970: %v", err)
	}
	if _, err := e.Released("", time.Now()); !errors.As(err, &se) || se.Field != "job_type" || !errors.Is(err, smartretry.ErrInvalidInput) {
		t.Errorf("no job type: %v", err)
	}
}

func TestTheEmergencyStopWins(t *testing.T) {
	e := newEngine(t)
	if err := e.EmergencyStop(true); err != nil || !e.IsEmergencyStopped() {
		t.Fatal(err)
	}
	var calls int
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e},
		func(context.Context) error { calls++; return &smartretry.HTTPError{StatusCode: 503} })
	var gaveUp *smartretry.GaveUpError
	if !errors.As(err, &gaveUp) || calls != 1 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
}

func TestBadInputIsATypedErrorNamingTheField(t *testing.T) {
	e := newEngine(t)
	calls := 0
	err := smartretry.Do(context.Background(), smartretry.Options{Engine: e}, func(context.Context) error { calls++; return io.EOF })
	var se *smartretry.Error
	if !errors.As(err, &se) || se.Field != "JobType" || !errors.Is(err, smartretry.ErrInvalidInput) || calls != 0 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
	_, err = e.UpdateGuardrails(map[string]any{"max_attempts": 0})
	if !errors.As(err, &se) || se.Kind != smartretry.KindConfig || se.Field != "max_attempts" {
		t.Fatalf("err=%v", err)
	}
	if _, err := e.RemovePolicy("nope"); !errors.Is(err, smartretry.ErrNotFound) {
		t.Fatalf("err=%v", err)
	}
	if _, err := smartretry.NewEngine(smartretry.WithConfigJSON(`{"strategy":{"guardrails":{"max_attempts":"ten"}}}`)); !errors.As(err, &se) || se.Field == "" {
		t.Fatalf("err=%v", err)
	}
	_ = e.Close()
	if _, err := e.Decide(smartretry.Features{JobType: "a", AttemptNumber: 1}); !errors.Is(err, smartretry.ErrClosed) {
		t.Fatalf("err=%v", err)
	}
}

func TestAHintTheEngineRejectsIsDropped(t *testing.T) {
	e := newEngine(t)
	var calls int
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_job", Engine: e}, func(context.Context) error {
		calls++
		if calls == 1 {
			return &smartretry.HTTPError{StatusCode: 999}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
}

func TestFailuresAreDescribed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f := smartretry.DescribeFailure(smartretry.ResponseError(resp))
	if f.HTTPStatus != 429 || f.RetryAfter != "3" {
		t.Errorf("%+v", f)
	}
	if f := smartretry.DescribeFailure(context.DeadlineExceeded); f.ErrorClass != "timeout" {
		t.Errorf("%+v", f)
	}
	if f := smartretry.DescribeFailure(&net.OpError{Op: "read", Err: syscall.ECONNRESET}); f.ErrorCode != "ECONNRESET" {
		t.Errorf("%+v", f)
	}
	e := newEngine(t)
	d, err := e.Decide(smartretry.Features{JobType: "api", AttemptNumber: 1, HTTPStatus: 429, RetryAfter: "3"})
	if err != nil || d.Policy != "rate_limit" || d.DelayMs < 3000 {
		t.Errorf("Retry-After is a floor: %+v %v", d, err)
	}
}

func TestEngineIsSafeForConcurrentUse(t *testing.T) {
	e := newEngine(t)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				if _, err := e.Decide(smartretry.Features{JobType: "flaky_job", AttemptNumber: 1, HTTPStatus: 503}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
