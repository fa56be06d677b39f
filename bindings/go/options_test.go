package smartretry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// goNames spells the options contract's canonical names as Options' fields (docs/options.md).
var goNames = map[string]string{"job_type": "JobType", "tenant": "Tenant", "job_id": "JobID",
	"max_attempts": "MaxAttempts", "deadline": "Deadline", "priority": "Priority", "backoff": "Backoff"}

type optionCase struct {
	Option string          `json:"option"`
	Value  json.RawMessage `json:"value"`
	Kind   string          `json:"kind"`
	Sub    string          `json:"sub"`
	Hosts  []string        `json:"hosts"`
}

func optionVectors(t *testing.T) (invalid, valid []optionCase) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "tests", "vectors", "options", "retry_options.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Invalid, Valid []optionCase }
	if err := json.Unmarshal(text, &v); err != nil {
		t.Fatal(err)
	}
	forGo := func(cases []optionCase) []optionCase {
		var out []optionCase
		for _, c := range cases {
			if _, ok := goNames[c.Option]; ok && (c.Hosts == nil || slices.Contains(c.Hosts, "go")) {
				out = append(out, c)
			}
		}
		return out
	}
	return forGo(v.Invalid), forGo(v.Valid)
}

// msOf is a vector's number (ms in Go) as a Duration; "inf" is the longest one.
func msOf(raw json.RawMessage) time.Duration {
	var tagged struct {
		S string `json:"$"`
	}
	if json.Unmarshal(raw, &tagged) == nil && tagged.S == "inf" {
		return time.Duration(math.MaxInt64)
	}
	var f float64
	_ = json.Unmarshal(raw, &f)
	return time.Duration(f * float64(time.Millisecond))
}

// withOption sets one option of o from a vector's value, as Go code would write it.
func withOption(t *testing.T, o *smartretry.Options, c optionCase) {
	t.Helper()
	var s string
	_ = json.Unmarshal(c.Value, &s)
	var long struct {
		S      string `json:"$"`
		Length int    `json:"length"`
	}
	if json.Unmarshal(c.Value, &long) == nil && long.S == "long" {
		s = strings.Repeat("x", long.Length)
	}
	switch c.Option {
	case "job_type":
		o.JobType = s
	case "tenant":
		o.Tenant = s
	case "job_id":
		o.JobID = s
	case "priority":
		o.Priority = smartretry.Priority(s)
	case "max_attempts":
		var n float64
		_ = json.Unmarshal(c.Value, &n)
		o.MaxAttempts = int(n)
	case "deadline":
		o.Deadline = msOf(c.Value)
	case "backoff":
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(c.Value, &fields)
		b := &smartretry.Backoff{}
		for k, v := range fields {
			switch k {
			case "strategy":
				_ = json.Unmarshal(v, &b.Strategy)
			case "jitter":
				_ = json.Unmarshal(v, &b.Jitter)
			case "base":
				b.Base = msOf(v)
			case "max":
				b.Max = msOf(v)
			case "multiplier":
				_ = json.Unmarshal(v, &b.Multiplier)
			default:
				t.Fatalf("a schedule field Go does not have: %s", k)
			}
		}
		o.Backoff = b
	default:
		t.Fatalf("no Go option for %s", c.Option)
	}
}

func TestInvalidOptionVectorsAreRefusedBeforeTheFunctionRuns(t *testing.T) {
	invalid, _ := optionVectors(t)
	if len(invalid) < 15 {
		t.Fatalf("%d cases for Go", len(invalid))
	}
	e := newEngine(t)
	for _, c := range invalid {
		o := smartretry.Options{JobType: "opts", Engine: e}
		withOption(t, &o, c)
		field := goNames[c.Option]
		if c.Sub != "" {
			field += "." + strings.ToUpper(c.Sub[:1]) + c.Sub[1:]
		}
		calls := 0
		err := smartretry.Do(context.Background(), o, func(context.Context) error { calls++; return nil })
		var se *smartretry.Error
		if !errors.As(err, &se) || se.Kind != smartretry.KindInvalidInput || se.Field != field || calls != 0 {
			t.Errorf("%s=%s: got %v (field %q, %d calls), want invalid_input on %s", c.Option, c.Value, err, fieldOf(se), calls, field)
		}
		if _, err := smartretry.NewRetrier(o); !errors.As(err, &se) || se.Field != field {
			t.Errorf("NewRetrier %s=%s: %v", c.Option, c.Value, err)
		}
	}
}

func fieldOf(e *smartretry.Error) string {
	if e == nil {
		return ""
	}
	return e.Field
}

func TestValidOptionVectorsAreAccepted(t *testing.T) {
	_, valid := optionVectors(t)
	e := newEngine(t)
	for _, c := range valid {
		o := smartretry.Options{JobType: "opts", Engine: e}
		if c.Option == "idempotent" {
			continue // NonIdempotent is a bool: nothing to check
		}
		withOption(t, &o, c)
		if err := smartretry.Do(context.Background(), o, func(context.Context) error { return nil }); err != nil {
			t.Errorf("%s=%s: %v", c.Option, c.Value, err)
		}
	}
}

// TestFuzzEveryOption feeds random values to every option: Do either refuses them at
// once, naming one of the options set, before fn runs, or never fails with an engine
// error later.
func TestFuzzEveryOption(t *testing.T) {
	e := newEngine(t)
	rng := rand.New(rand.NewPCG(20240611, 1))
	strs := []string{"", "x", "  ", "a\nb", strings.Repeat("y", 300), "high", "urgent", "linear", "full", "25%", "150%", "wobbly"}
	ints := []int{0, 1, -1, 3, 100, 101, math.MaxInt32, math.MinInt32}
	durs := []time.Duration{0, time.Millisecond, -time.Second, time.Microsecond, 5 * time.Millisecond, time.Duration(math.MaxInt64), 30 * 24 * time.Hour}
	floats := []float64{0, 0.5, 1, 2, 100, 101, math.NaN(), math.Inf(1)}
	accepted, refused := 0, 0
	for i := 0; i < 800; i++ {
		o := smartretry.Options{JobType: "fuzz", Engine: e, Clock: smartretry.NewVirtualClock(time.Unix(1_700_000_000, 0))}
		set := map[string]bool{}
		for k := 1 + rng.IntN(3); k > 0; k-- {
			switch rng.IntN(7) {
			case 0:
				o.JobType, set["JobType"] = strs[rng.IntN(len(strs))], true
			case 1:
				o.Tenant, set["Tenant"] = strs[rng.IntN(len(strs))], true
			case 2:
				o.JobID, set["JobID"] = strs[rng.IntN(len(strs))], true
			case 3:
				o.MaxAttempts, set["MaxAttempts"] = ints[rng.IntN(len(ints))], true
			case 4:
				o.Deadline, set["Deadline"] = durs[rng.IntN(len(durs))], true
			case 5:
				o.Priority, set["Priority"] = smartretry.Priority(strs[rng.IntN(len(strs))]), true
			default:
				o.Backoff, set["Backoff"] = &smartretry.Backoff{Strategy: strs[rng.IntN(len(strs))], Base: durs[rng.IntN(len(durs))],
					Max: durs[rng.IntN(len(durs))], Multiplier: floats[rng.IntN(len(floats))], Jitter: strs[rng.IntN(len(strs))]}, true
			}
		}
		calls := 0
		err := smartretry.Do(context.Background(), o, func(context.Context) error {
			calls++
			if calls <= 2 {
				return &smartretry.HTTPError{StatusCode: 503}
			}
			return nil
		})
		var se *smartretry.Error
		switch {
		case calls == 0:
			refused++
			if !errors.As(err, &se) || !set[strings.Split(se.Field, ".")[0]] {
				t.Fatalf("%+v refused with %v, naming none of %v", o, err, set)
			}
		case errors.As(err, &se):
			t.Fatalf("%+v accepted, then failed with the engine's %v", o, err)
		default:
			accepted++
		}
	}
	if accepted < 100 || refused < 200 {
		t.Errorf("%d accepted, %d refused", accepted, refused)
	}
}

func TestAPanicPropagatesAfterOneAttemptAndANetworkErrorIsRetried(t *testing.T) {
	e := newEngine(t)
	calls := 0
	func() {
		defer func() {
			if r := recover(); r != "nil map" {
				t.Errorf("recovered %v", r)
			}
		}()
		_ = smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_bug", Engine: e}, func(context.Context) error {
			calls++
			panic("nil map")
		})
	}()
	if calls != 1 {
		t.Errorf("%d calls", calls)
	}
	calls = 0
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "flaky_net", Engine: e}, func(context.Context) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("read: %w", errConnReset)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err=%v calls=%d", err, calls)
	}
}
