// Package bench measures the Go SDK side by side with cenkalti/backoff in one process
// (scripts/bench-go.sh; numbers in docs/performance.md). It is its own module so that the
// SDK's module keeps no third-party dependency.
package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	smartretry "github.com/smartretry/smartretry/bindings/go"
)

func engine(b *testing.B) *smartretry.Engine {
	e, err := smartretry.NewEngine(smartretry.WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}

// cpu is the process's CPU time so far (user + system): per op, it is what an op costs
// even on a loaded machine, where wall time also counts waiting for a core.
func cpu() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// lastCPU is the CPU time per op of the last run of a benchmark (testing.Benchmark's
// final, timed run).
var lastCPU float64

// run times op with b.Loop, and records its CPU time per op.
func run(b *testing.B, op func() error) {
	b.ReportAllocs()
	start := cpu()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	lastCPU = float64(cpu()-start) / float64(b.N)
}

var failure = smartretry.Features{JobType: "payment_capture", AttemptNumber: 1, HTTPStatus: 503, JobID: "job-1", Tenant: "acme"}

var outcome = smartretry.Attempt{JobID: "job-1", JobType: "payment_capture", AttemptNumber: 2, DelayMs: 1000,
	HTTPStatus: 503, Tenant: "acme", SinceFirstFailureMs: smartretry.Ptr(int64(1000))}

// BenchmarkDoSuccess is the overhead Do adds to a call that succeeds at once.
func BenchmarkDoSuccess(b *testing.B) {
	opts := smartretry.Options{JobType: "payment_capture", Engine: engine(b)}
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	run(b, func() error { return smartretry.Do(ctx, opts, ok) })
}

// BenchmarkBackoffRetrySuccess is cenkalti/backoff's Retry on the same call, with its
// default exponential backoff.
func BenchmarkBackoffRetrySuccess(b *testing.B) {
	ctx := context.Background()
	ok := func() (struct{}, error) { return struct{}{}, nil }
	run(b, func() error {
		_, err := backoff.Retry(ctx, ok)
		return err
	})
}

// BenchmarkCrossing is the bare cgo call (a bool): the floor under every method.
func BenchmarkCrossing(b *testing.B) {
	e := engine(b)
	run(b, func() error {
		_ = e.IsEmergencyStopped()
		return nil
	})
}

// BenchmarkDecide is one decision: encoding, the crossing, the engine, decoding.
func BenchmarkDecide(b *testing.B) {
	e := engine(b)
	run(b, func() error {
		_, err := e.Decide(failure)
		return err
	})
}

// BenchmarkRecord is one recorded outcome.
func BenchmarkRecord(b *testing.B) {
	e := engine(b)
	run(b, func() error { return e.Record(outcome) })
}

// BenchmarkFailure is what Do pays per failure: a Decide and a Record.
func BenchmarkFailure(b *testing.B) {
	e := engine(b)
	run(b, func() error {
		if _, err := e.Decide(failure); err != nil {
			return err
		}
		return e.Record(outcome)
	})
}

// TestCompare runs the benchmarks in this process and prints them side by side, with
// the ratios the issue asks for (go test -run Compare -v).
func TestCompare(t *testing.T) {
	if os.Getenv("SMARTRETRY_BENCH") == "" {
		t.Skip("set SMARTRETRY_BENCH=1 (scripts/bench-go.sh)")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average: %s", load)
	ns := func(name string, f func(*testing.B)) float64 {
		var wall, cpus []float64
		for range 5 {
			r := testing.Benchmark(f)
			wall = append(wall, float64(r.T.Nanoseconds())/float64(r.N))
			cpus = append(cpus, lastCPU)
		}
		median, cpuMedian := sortedMedian(wall), sortedMedian(cpus)
		fmt.Printf("%-44s %7.0f ns/op wall (runs %s), %7.0f ns/op CPU\n", name, median, spread(wall), cpuMedian)
		return cpuMedian
	}
	do := ns("smartretry Do, success at once", BenchmarkDoSuccess)
	bo := ns("cenkalti/backoff v5 Retry, success at once", BenchmarkBackoffRetrySuccess)
	ns("cgo crossing (IsEmergencyStopped)", BenchmarkCrossing)
	ns("Decide (compact)", BenchmarkDecide)
	ns("Record (compact)", BenchmarkRecord)
	per := ns("per failure: Decide + Record", BenchmarkFailure)
	fmt.Printf("CPU time: ratio Do / backoff.Retry on success %.2fx; per failure %.2f µs\n", do/bo, per/1000)
}

func sortedMedian(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func spread(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, " ")
}
