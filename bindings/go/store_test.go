package smartretry_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

const storeT0 = int64(1_700_000_000_000)

// calm turns off adaptive throttling: these engines decide at one fixed instant.
const calm = `{"strategy":{"guardrails":{"adaptive_throttle":false}}}`

// storeEngine is an engine on url whose clock stands at *now.
func storeEngine(t *testing.T, url string, now *int64) *smartretry.Engine {
	t.Helper()
	opts := []smartretry.Option{smartretry.WithSeed(3), smartretry.WithConfigJSON(calm),
		smartretry.WithClock(func() int64 { return *now })}
	if url != "" {
		opts = append(opts, smartretry.WithStore(url))
	}
	e, err := smartretry.NewEngine(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestASQLiteStoreOutlivesTheEngine(t *testing.T) {
	url := "sqlite:///" + filepath.Join(t.TempDir(), "state.db")
	now := storeT0
	first := storeEngine(t, url, &now)
	// 40 export timeouts whose retry failed after 2 s, 40 whose retry succeeded after 6–12 s.
	for i := 0; i < 40; i++ {
		now = storeT0 + int64(i)*1_000
		okAt := int64(6_000 + (i%7)*1_000)
		for _, a := range []smartretry.Attempt{
			{JobID: fmt.Sprintf("f%d", i), JobType: "export", AttemptNumber: 2, ErrorClass: "timeout",
				DelayMs: 2_000, SinceFirstFailureMs: smartretry.Ptr(int64(2_000))},
			{JobID: fmt.Sprintf("s%d", i), JobType: "export", AttemptNumber: 3, Success: true, ErrorClass: "timeout",
				DelayMs: okAt - 2_000, SinceFirstFailureMs: smartretry.Ptr(okAt)},
		} {
			if err := first.Record(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Close finishes the store's writes.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	now = storeT0 + 100_000
	failure := smartretry.Features{JobType: "export", AttemptNumber: 1, ErrorClass: "timeout",
		SinceFirstFailureMs: smartretry.Ptr(int64(0))}
	again := storeEngine(t, url, &now)
	defer again.Close()
	d, err := again.Decide(failure)
	if err != nil {
		t.Fatal(err)
	}
	if d.Method != smartretry.MethodBayesian {
		t.Errorf("restarted engine decided by %s: %s", d.Method, d.Rationale)
	}
	stats, err := again.Stats("export", "timeout", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if stats.TotalAttempts != 80 || stats.SuccessfulRetries != 40 {
		t.Errorf("learned stats after restart: %+v", stats)
	}

	fresh := storeEngine(t, "", &now)
	defer fresh.Close()
	if d, err := fresh.Decide(failure); err != nil || d.Method != smartretry.MethodRules {
		t.Errorf("an engine without the store: %+v, %v", d, err)
	}
}

func TestABadStoreIsAConfigErrorNamingTheField(t *testing.T) {
	_, err := smartretry.NewEngine(smartretry.WithStore("ftp://elsewhere"))
	var e *smartretry.Error
	if !errors.As(err, &e) || e.Kind != smartretry.KindConfig || e.Field != "store" {
		t.Fatalf("want a config error on store, got %v", err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("Z", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = smartretry.NewEngine(smartretry.WithStore("sqlite:///" + corrupt))
	if !errors.Is(err, smartretry.ErrStore) || !strings.Contains(err.Error(), corrupt) {
		t.Fatalf("want a store error naming %s, got %v", corrupt, err)
	}
}
