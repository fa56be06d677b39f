package smartretry_test

import (
	"context"
	"encoding/json"
	"testing"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// The cost of a decision from Go: JSON encoding, the cgo crossing, the core's decide,
// JSON decoding. `go test -tags smartretry_release -bench . -run ^$` for the release build
// (scripts/bench-go.sh); the numbers are in docs/performance.md.

func BenchmarkDecide(b *testing.B) {
	e, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	f := smartretry.Features{JobType: "payment_capture", AttemptNumber: 1, HTTPStatus: 503}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCrossing is the bare cgo call (a bool, no JSON): the floor under every method.
func BenchmarkCrossing(b *testing.B) {
	e, err := smartretry.NewEngine()
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	for b.Loop() {
		_ = e.IsEmergencyStopped()
	}
}

// BenchmarkDoSuccess is the overhead Do adds to a call that succeeds at once.
func BenchmarkDoSuccess(b *testing.B) {
	e, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	opts := smartretry.Options{JobType: "payment_capture", Engine: e}
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := smartretry.Do(ctx, opts, ok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideJSONOnly is Decide's Go-side share: encoding the Features and decoding
// a Decision, without the engine.
func BenchmarkDecideJSONOnly(b *testing.B) {
	e, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	f := smartretry.Features{JobType: "payment_capture", AttemptNumber: 1, HTTPStatus: 503}
	d, err := e.Decide(f)
	if err != nil {
		b.Fatal(err)
	}
	text, _ := json.Marshal(d)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(f); err != nil {
			b.Fatal(err)
		}
		var out smartretry.Decision
		if err := json.Unmarshal(text, &out); err != nil {
			b.Fatal(err)
		}
	}
}
