package smartretry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// The shared conformance vectors (the JSON files in tests/vectors) through the Go API,
// exactly as core/tests/vectors.rs runs them through the Rust engine.

type step struct {
	Op          string          `json:"op"`
	NowMs       int64           `json:"now_ms"`
	Repeat      int             `json:"repeat"`
	StepMs      int64           `json:"step_ms"`
	Features    json.RawMessage `json:"features"`
	Attempt     json.RawMessage `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	JobType     string          `json:"job_type"`
	ErrorClass  string          `json:"error_class"`
	Tenant      string          `json:"tenant"`
	Count       *int            `json:"count"`
	On          *bool           `json:"on"`
	Guardrails  json.RawMessage `json:"guardrails"`
	Policy      json.RawMessage `json:"policy"`
	Name        string          `json:"name"`
	Expect      any             `json:"expect"`
	ExpectError any             `json:"expect_error"`
	WindowMs    *int64          `json:"window_ms"`
	Override    json.RawMessage `json:"override"`
}

// matches checks every key of expected in actual (numbers within 1e-9).
func matches(expected, actual any, at string, errs *[]string) {
	switch e := expected.(type) {
	case map[string]any:
		a, ok := actual.(map[string]any)
		if !ok {
			*errs = append(*errs, fmt.Sprintf("%s: expected an object, got %v", at, actual))
			return
		}
		for k, v := range e {
			if k == "rationale_contains" {
				r, _ := a["rationale"].(string)
				if !strings.Contains(r, v.(string)) {
					*errs = append(*errs, fmt.Sprintf("%s.rationale %q lacks %q", at, r, v))
				}
				continue
			}
			inner, ok := a[k]
			if !ok {
				*errs = append(*errs, fmt.Sprintf("%s.%s missing", at, k))
				continue
			}
			matches(v, inner, at+"."+k, errs)
		}
	case []any:
		a, ok := actual.([]any)
		if !ok || len(a) != len(e) {
			*errs = append(*errs, fmt.Sprintf("%s: expected %v, got %v", at, e, actual))
			return
		}
		for i := range e {
			matches(e[i], a[i], fmt.Sprintf("%s[%d]", at, i), errs)
		}
	case float64:
		a, ok := actual.(float64)
		if !ok || math.Abs(e-a) > 1e-9 {
			*errs = append(*errs, fmt.Sprintf("%s: expected %v, got %v", at, e, actual))
		}
	default:
		if fmt.Sprint(expected) != fmt.Sprint(actual) {
			*errs = append(*errs, fmt.Sprintf("%s: expected %v, got %v", at, expected, actual))
		}
	}
}

// generic is v as decoded JSON (maps, slices, float64), the shape the vectors compare.
func generic(v any) any {
	text, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(text, &out)
	return out
}

func runStep(e *smartretry.Engine, s step) (any, error) {
	switch s.Op {
	case "decide":
		var f smartretry.Features
		if err := json.Unmarshal(s.Features, &f); err != nil {
			return nil, err
		}
		d, err := e.Decide(f)
		return generic(d), err
	case "record":
		var a smartretry.Attempt
		if err := json.Unmarshal(s.Attempt, &a); err != nil {
			return nil, err
		}
		return nil, e.Record(a)
	case "preview":
		var f smartretry.Features
		if err := json.Unmarshal(s.Features, &f); err != nil {
			return nil, err
		}
		max := s.MaxAttempts
		if max == 0 {
			max = 5
		}
		p, err := e.Preview(f, max)
		return generic(p), err
	case "stats":
		var window time.Duration
		if s.WindowMs != nil {
			window = time.Duration(*s.WindowMs) * time.Millisecond
		}
		st, err := e.Stats(s.JobType, s.ErrorClass, window)
		return generic(st), err
	case "emergency_stop":
		return nil, e.EmergencyStop(s.On == nil || *s.On)
	case "update_guardrails":
		g, err := e.UpdateGuardrails(s.Guardrails)
		return generic(g), err
	case "add_policy":
		var p smartretry.Policy
		if err := json.Unmarshal(s.Policy, &p); err != nil {
			return nil, err
		}
		return nil, e.AddPolicy(p)
	case "remove_policy":
		p, err := e.RemovePolicy(s.Name)
		return generic(p), err
	case "record_successes":
		count := 1
		if s.Count != nil {
			count = *s.Count
		}
		return nil, e.RecordSuccesses(s.JobType, s.Tenant, count)
	case "policies":
		ps, err := e.Policies()
		return generic(ps), err
	case "guardrails":
		g, err := e.Guardrails()
		return generic(g), err
	case "add_override":
		raw, err := e.AddOverride(s.Override)
		return generic(raw), err
	case "remove_override":
		raw, err := e.RemoveOverride(s.Name)
		return generic(raw), err
	case "overrides":
		raw, err := e.Overrides()
		return generic(raw), err
	case "health":
		raw, err := e.Health(s.JobType)
		return generic(raw), err
	}
	return nil, fmt.Errorf("unknown op %q", s.Op)
}

func TestVectors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "tests", "vectors", "*.json"))
	sort.Strings(files)
	if len(files) < 4 {
		t.Fatalf("vectors present: %v", files)
	}
	checked := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var vector struct {
				Name   string          `json:"name"`
				Seed   uint64          `json:"seed"`
				Config json.RawMessage `json:"config"`
				Steps  []step          `json:"steps"`
			}
			if err := json.Unmarshal(text, &vector); err != nil {
				t.Fatal(err)
			}
			var now int64
			opts := []smartretry.Option{smartretry.WithSeed(vector.Seed), smartretry.WithClock(func() int64 { return now })}
			if len(vector.Config) > 0 && string(vector.Config) != "null" {
				opts = append(opts, smartretry.WithConfigJSON(string(vector.Config)))
			}
			engine, err := smartretry.NewEngine(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer engine.Close()
			var errs []string
			for i, s := range vector.Steps {
				now = s.NowMs
				repeat := max(s.Repeat, 1)
				var result any
				var failure error
				for r := 0; r < repeat; r++ {
					result, failure = runStep(engine, s)
					now += s.StepMs
				}
				at := fmt.Sprintf("%s step %d (%s)", vector.Name, i, s.Op)
				var e *smartretry.Error
				switch {
				case s.ExpectError != nil && failure == nil:
					errs = append(errs, fmt.Sprintf("%s: expected an error, got %v", at, result))
				case s.ExpectError != nil && errors.As(failure, &e):
					var field any
					if e.Field != "" {
						field = e.Field
					}
					matches(s.ExpectError, map[string]any{"kind": string(e.Kind), "field": field}, at, &errs)
				case failure != nil:
					errs = append(errs, fmt.Sprintf("%s: unexpected error %v", at, failure))
				case s.Expect != nil:
					matches(s.Expect, result, at, &errs)
				}
				checked++
			}
			if len(errs) > 0 {
				t.Errorf("%d mismatches:\n%s", len(errs), strings.Join(errs, "\n"))
			}
		})
	}
	if checked <= 50 {
		t.Errorf("%d steps checked", checked)
	}
}
