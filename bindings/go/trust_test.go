package smartretry_test

// Decisions a user would defend (issue 18), through Do against a real HTTP server on
// 127.0.0.1: the caller's MaxAttempts wins over the policy's, a new job type's first
// failure is not throttled, and a hostile Retry-After is capped. Waits use a virtual
// clock shared with the engine: it decides at the times the retries would happen,
// nothing sleeps.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// trustServer answers
//
//	/flaky?job=…   503 for the first five requests of each job, then 200
//	/once?job=…    503 for the first request of each job, then 200
//	/hostile?job=… 429 with Retry-After: 99999999999 (about 3171 years) once, then 200
//	anything else  200
//
// and counts the requests per path and job.
type trustServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]int
}

func newTrustServer(t *testing.T) *trustServer {
	s := &trustServer{seen: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		key := r.URL.Path + ":" + r.URL.Query().Get("job")
		s.seen[key]++
		n := s.seen[key]
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/flaky" && n <= 5, r.URL.Path == "/once" && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/hostile" && n == 1:
			w.Header().Set("Retry-After", "99999999999")
			w.WriteHeader(http.StatusTooManyRequests)
		}
		_, _ = io.WriteString(w, "answered")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *trustServer) calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[key]
}

// get is one attempt: a status of 400 or more is an *HTTPError with its Retry-After.
func (s *trustServer) get(path string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		if err != nil {
			return err
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return smartretry.ResponseError(resp)
	}
}

// trustEngine is a fresh engine with the default policies and guardrails, on clock.
func trustEngine(t *testing.T, clock *smartretry.VirtualClock) *smartretry.Engine {
	t.Helper()
	e, err := smartretry.NewEngine(smartretry.WithSeed(7), smartretry.WithClock(clock.UnixMilli))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestTrustMaxAttempts10AgainstA503LastingFiveCallsSucceedsOnCall6(t *testing.T) {
	srv := newTrustServer(t)
	clock := smartretry.NewVirtualClock(time.UnixMilli(1_700_000_000_000))
	e := trustEngine(t, clock)
	var decisions []smartretry.Decision
	o := smartretry.Options{JobType: "export", Engine: e, Clock: clock, MaxAttempts: 10,
		OnRetry: func(ev smartretry.RetryEvent) { decisions = append(decisions, ev.Decision) }}
	if err := smartretry.Do(context.Background(), o, srv.get("/flaky?job=export-1")); err != nil {
		t.Fatalf("Do: %v (decisions %+v)", err, decisions)
	}
	if n := srv.calls("/flaky:export-1"); n != 6 {
		t.Fatalf("the server saw %d calls, want 6", n)
	}
	if len(decisions) != 5 {
		t.Fatalf("%d retries, want 5: %+v", len(decisions), decisions)
	}
	var delays []time.Duration
	for _, d := range decisions {
		if !d.ShouldRetry || d.MaxAttempts != 10 {
			t.Errorf("decision %+v", d)
		}
		delays = append(delays, time.Duration(d.DelayMs)*time.Millisecond)
	}
	if got := clock.Sleeps(); !slices.Equal(got, delays) {
		t.Errorf("slept %v, decided %v", got, delays)
	}
}

func TestTrustANewJobTypesFirstFailureIsRetriedAtItsRulesDelayNeverThrottled(t *testing.T) {
	srv := newTrustServer(t)
	clock := smartretry.NewVirtualClock(time.UnixMilli(1_700_000_000_000))
	e := trustEngine(t, clock)
	ctx := context.Background()
	// The engine has seen outcomes: a first-attempt success and a successful retry of another job type.
	warm := smartretry.Options{JobType: "warmup", Engine: e, Clock: clock}
	if err := smartretry.Do(ctx, warm, srv.get("/ok?job=warm-0")); err != nil {
		t.Fatal(err)
	}
	if err := smartretry.Do(ctx, warm, srv.get("/once?job=warm-1")); err != nil || srv.calls("/once:warm-1") != 2 {
		t.Fatalf("warm-up: %v, %d calls", err, srv.calls("/once:warm-1"))
	}
	for i := range 40 {
		var decisions []smartretry.Decision
		o := smartretry.Options{JobType: fmt.Sprintf("new_type_%d", i), Engine: e, Clock: clock,
			OnRetry: func(ev smartretry.RetryEvent) { decisions = append(decisions, ev.Decision) }}
		job := fmt.Sprintf("new-%d", i)
		if err := smartretry.Do(ctx, o, srv.get("/once?job="+job)); err != nil {
			t.Fatalf("job type %d: %v", i, err)
		}
		if n := srv.calls("/once:" + job); n != 2 || len(decisions) != 1 {
			t.Fatalf("job type %d: %d calls, %d retries; want 2 and 1", i, n, len(decisions))
		}
		d := decisions[0]
		raw, _ := json.Marshal(d)
		// The service_unavailable rules: 2 s ± 20 %.
		if !d.ShouldRetry || d.DelayMs > 2_400 {
			t.Errorf("job type %d: %s", i, raw)
		}
		if slices.Contains(d.PolicyGuardrails, "adaptive_throttle") || strings.Contains(string(raw), "adaptive_throttle") {
			t.Errorf("job type %d was throttled: %s", i, raw)
		}
	}
}

func TestTrustAHostileRetryAfterIsCappedAtTheMaxDelayAndSaidInYears(t *testing.T) {
	srv := newTrustServer(t)
	clock := smartretry.NewVirtualClock(time.UnixMilli(1_700_000_000_000))
	e := trustEngine(t, clock)
	var decisions []smartretry.Decision
	o := smartretry.Options{JobType: "email", Engine: e, Clock: clock,
		OnRetry: func(ev smartretry.RetryEvent) { decisions = append(decisions, ev.Decision) }}
	if err := smartretry.Do(context.Background(), o, srv.get("/hostile?job=email-1")); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls("/hostile:email-1"); n != 2 || len(decisions) != 1 {
		t.Fatalf("%d calls, %d retries; want 2 and 1", n, len(decisions))
	}
	d := decisions[0]
	if d.DelayMs != 300_000 {
		t.Errorf("delay %d ms, want 300000: %s", d.DelayMs, d.Rationale)
	}
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{5 * time.Minute}) {
		t.Errorf("slept %v", got)
	}
	if !strings.Contains(d.Rationale, "3171y") || !strings.Contains(d.Rationale, "capped at the max delay") {
		t.Errorf("rationale: %s", d.Rationale)
	}
	if regexp.MustCompile(`\d{5,}h`).MatchString(d.Rationale) {
		t.Errorf("an absurd hour count: %s", d.Rationale)
	}
}
