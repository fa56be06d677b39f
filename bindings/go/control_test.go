package smartretry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

var errConnReset = &net.OpError{Op: "read", Err: syscall.ECONNRESET}

// quietEngine is a real engine whose shared guardrails stay out of the way.
func quietEngine(t *testing.T, clock *smartretry.VirtualClock) *smartretry.Engine {
	t.Helper()
	e, err := smartretry.NewEngine(smartretry.WithSeed(7), smartretry.WithClock(clock.UnixMilli))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	if _, err := e.UpdateGuardrails(map[string]any{"adaptive_throttle": false, "min_retries_per_sec": 1000}); err != nil {
		t.Fatal(err)
	}
	return e
}

func failing(n int, err error) (func(context.Context) error, *int) {
	calls := 0
	return func(context.Context) error {
		calls++
		if calls <= n {
			return err
		}
		return nil
	}, &calls
}

func TestACallsOwnScheduleSetsTheWaitsWithinTheGuardrails(t *testing.T) {
	clock := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	e := quietEngine(t, clock)
	fn, _ := failing(2, &smartretry.HTTPError{StatusCode: 503})
	o := smartretry.Options{JobType: "sched", Engine: e, Clock: clock,
		Backoff: &smartretry.Backoff{Strategy: "exponential", Base: 100 * time.Millisecond, Multiplier: 3}}
	if err := smartretry.Do(context.Background(), o, fn); err != nil {
		t.Fatal(err)
	}
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}) {
		t.Errorf("sleeps %v", got)
	}
	if _, err := e.UpdateGuardrails(map[string]any{"max_delay_ms": 1000}); err != nil {
		t.Fatal(err)
	}
	capped := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	fn, _ = failing(1, &smartretry.HTTPError{StatusCode: 503})
	o = smartretry.Options{JobType: "capped", Engine: e, Clock: capped, Backoff: &smartretry.Backoff{Strategy: "constant", Base: time.Minute}}
	if err := smartretry.Do(context.Background(), o, fn); err != nil {
		t.Fatal(err)
	}
	if got := capped.Sleeps(); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("capped sleeps %v", got)
	}
}

func TestStopsCombinePermanentAndOnGiveUp(t *testing.T) {
	clock := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	e := quietEngine(t, clock)
	var gaveUp []smartretry.GiveUpEvent
	var seen []int
	fn, calls := failing(10, &smartretry.HTTPError{StatusCode: 503})
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "stops", Engine: e, Clock: clock, MaxAttempts: 10,
		StopIf:   func(ev smartretry.StopEvent) bool { seen = append(seen, ev.Attempt); return ev.Attempt >= 2 },
		OnGiveUp: func(ev smartretry.GiveUpEvent) { gaveUp = append(gaveUp, ev) }}, fn)
	var g *smartretry.GaveUpError
	if !errors.As(err, &g) || *calls != 2 || !slices.Equal(seen, []int{1, 2}) || len(gaveUp) != 1 || gaveUp[0].Reason != "stopped" {
		t.Errorf("err=%v calls=%d seen=%v gaveUp=%+v", err, *calls, seen, gaveUp)
	}
	gone := errors.New("deleted")
	fn, calls = failing(5, smartretry.Permanent(gone))
	err = smartretry.Do(context.Background(), smartretry.Options{JobType: "gone", Engine: e, Clock: clock}, fn)
	var p *smartretry.PermanentError
	if !errors.Is(err, gone) || !errors.As(err, &p) || *calls != 1 {
		t.Errorf("permanent: err=%v calls=%d", err, *calls)
	}
}

func TestRetrierStatistics(t *testing.T) {
	clock := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	e := quietEngine(t, clock)
	r, err := smartretry.NewRetrier(smartretry.Options{JobType: "stats", Engine: e, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := failing(2, &smartretry.HTTPError{StatusCode: 503})
	for i := 0; i < 4; i++ {
		if err := r.Do(context.Background(), fn); err != nil {
			t.Fatal(err)
		}
	}
	s := r.Stats()
	if s.Calls != 4 || s.Attempts != 6 || s.Retries != 2 || s.Successes != 4 || s.GaveUp != 0 || s.Idle <= 0 || s.LastDecision == nil || !s.LastDecision.ShouldRetry {
		t.Errorf("%+v", s)
	}
}

func TestOneStructuredLogRecordPerRetry(t *testing.T) {
	clock := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	e := quietEngine(t, clock)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fn, _ := failing(1, &smartretry.HTTPError{StatusCode: 503})
	if err := smartretry.Do(context.Background(), smartretry.Options{JobType: "logged", Engine: e, Clock: clock, Logger: logger}, fn); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rec["level"] != "INFO" || rec["job_type"] != "logged" || rec["attempt"] != 1.0 || rec["method"] != "rules" || rec["delay_ms"] != float64(clock.Sleeps()[0].Milliseconds()) {
		t.Errorf("%v", rec)
	}
	// A failure that was never retryable: its give-up is Info, not Warn.
	buf.Reset()
	fn, _ = failing(1, &smartretry.HTTPError{StatusCode: 400})
	_ = smartretry.Do(context.Background(), smartretry.Options{JobType: "bad_request", Engine: e, Clock: clock, Logger: logger}, fn)
	if !strings.Contains(buf.String(), `"level":"INFO"`) || !strings.Contains(buf.String(), "gave up") {
		t.Errorf("%s", buf.String())
	}
}

func TestMetricsAndTheVirtualClock(t *testing.T) {
	clock := smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))
	e := quietEngine(t, clock)
	fn, _ := failing(1, errConnReset)
	start := clock.Now()
	if err := smartretry.Do(context.Background(), smartretry.Options{JobType: "virtual", Engine: e, Clock: clock}, fn); err != nil {
		t.Fatal(err)
	}
	if waited := clock.Now().Sub(start); waited != clock.Sleeps()[0] || waited < 100*time.Millisecond {
		t.Errorf("virtual wait %v, sleeps %v", waited, clock.Sleeps())
	}
	m, err := e.Metrics()
	var counters map[string]any
	if err != nil || json.Unmarshal(m, &counters) != nil || !strings.Contains(string(m), "decisions") {
		t.Errorf("metrics %s, %v", m, err)
	}
}

// TestAClosedEngineReturnsASuccessAndRefusesToDecideAFailure: after Close, Do still
// returns nil for a function that succeeds (its success is not counted: nobody is left to
// tell), and a failure, which only the engine can decide, is ErrClosed, not retried —
// the behaviour Kotlin's retry { } after close keeps too (OptionsTest).
func TestAClosedEngineReturnsASuccessAndRefusesToDecideAFailure(t *testing.T) {
	e, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	opts := smartretry.Options{JobType: "after_close", Engine: e}
	fn, calls := failing(0, nil)
	if err := smartretry.Do(context.Background(), opts, fn); err != nil || *calls != 1 {
		t.Fatalf("a success after Close: err=%v calls=%d", err, *calls)
	}
	for i := 0; i < 2000; i++ { // past a batch of counted successes: still nil
		if err := smartretry.Do(context.Background(), opts, fn); err != nil {
			t.Fatalf("success %d after Close: %v", i, err)
		}
	}
	fn, calls = failing(5, errConnReset)
	if err := smartretry.Do(context.Background(), opts, fn); !errors.Is(err, smartretry.ErrClosed) || *calls != 1 {
		t.Fatalf("a failure after Close: err=%v calls=%d", err, *calls)
	}
}
