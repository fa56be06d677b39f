// Charges five orders against a local HTTP server that is briefly overloaded (503 on
// order 3's first two tries), with smartretry.Do deciding whether and when to retry.
// Exits non-zero if an order is not charged. Run: cd examples/go && go run .
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

func main() {
	var mu sync.Mutex
	tries := map[string]int{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order := r.URL.Query().Get("order")
		mu.Lock()
		tries[order]++
		failing := order == "3" && tries[order] <= 2
		mu.Unlock()
		if failing {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "charged")
	}))
	defer server.Close()

	engine, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	// Short waits keep the example quick; without this policy 503s wait ~2 s, 4 s…
	err = engine.AddPolicy(smartretry.Policy{Name: "example", JobTypePatterns: []string{"charge"},
		MaxAttempts: 4, BaseDelayMs: 50, MaxDelayMs: 500, JitterPercent: 10, Priority: 100})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := smartretry.Options{
		JobType: "charge",
		Engine:  engine,
		OnRetry: func(ev smartretry.RetryEvent) {
			fmt.Printf("attempt %d failed (%v); retry in %d ms: %s\n", ev.Attempt, ev.Err, ev.Decision.DelayMs, ev.Decision.Rationale)
		},
	}
	for order := 1; order <= 5; order++ {
		attempts := 0
		var body string
		err := smartretry.Do(ctx, opts, func(ctx context.Context) error {
			attempts++
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/charge?order=%d", server.URL, order), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := smartretry.ResponseError(resp); err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			body = string(b)
			return err
		})
		if err != nil {
			log.Fatalf("order %d: %v", order, err)
		}
		fmt.Printf("order %d %s (attempt %d)\n", order, body, attempts)
	}
}
