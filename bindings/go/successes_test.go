package smartretry_test

import (
	"context"
	"encoding/json"
	"testing"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// requests is how many calls of jobType the engine has been told about (its health view).
func requests(t *testing.T, e *smartretry.Engine, jobType string) int {
	t.Helper()
	raw, err := e.Health(jobType)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Requests int }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Requests
}

func succeed(context.Context) error { return nil }

func TestDoCountsFirstAttemptSuccessesInGoAndHandsThemOverInBatches(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		tenant := ""
		if i%2 == 1 {
			tenant = "acme"
		}
		if err := smartretry.Do(ctx, smartretry.Options{JobType: "fast", Tenant: tenant, Engine: e}, succeed); err != nil {
			t.Fatal(err)
		}
	}
	if n := requests(t, e, "fast"); n != 0 {
		t.Fatalf("the engine was told of %d successes before a flush: each success crossed into Rust", n)
	}
	e.FlushSuccesses()
	if n := requests(t, e, "fast"); n != 100 {
		t.Fatalf("after FlushSuccesses the engine knows %d successes, want 100", n)
	}
	e.FlushSuccesses()
	if n := requests(t, e, "fast"); n != 100 {
		t.Fatalf("a second flush handed over more: %d", n)
	}
}

func TestDoHandsSuccessesOverEvery1024(t *testing.T) {
	e := newEngine(t)
	for i := 0; i < 2100; i++ {
		if err := smartretry.Do(context.Background(), smartretry.Options{JobType: "bulk", Engine: e}, succeed); err != nil {
			t.Fatal(err)
		}
	}
	if n := requests(t, e, "bulk"); n != 2048 {
		t.Fatalf("after 2100 successes the engine knows %d, want two batches of 1024", n)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCountedSuccessesReachTheEngineBeforeAFailureIsDecided(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	opts := smartretry.Options{JobType: "flaky_job", Engine: e, MaxAttempts: 1}
	for i := 0; i < 3; i++ {
		if err := smartretry.Do(ctx, opts, succeed); err != nil {
			t.Fatal(err)
		}
	}
	seen := -1
	opts.RetryIf = func(error) bool {
		seen = requests(t, e, "flaky_job")
		return false
	}
	_ = smartretry.Do(ctx, opts, func(context.Context) error { return &smartretry.HTTPError{StatusCode: 503} })
	if seen != 3 {
		t.Fatalf("when the failure was handled the engine knew %d successes, want 3", seen)
	}
}
