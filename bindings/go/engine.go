package smartretry

// #include <stdlib.h>
// #include "smartretry.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"time"
)

// Engine is the retry engine (Rust, linked statically). Safe for concurrent use by any
// number of goroutines; every method is synchronous and cheap (no I/O, no waiting).
// Close frees it; an Engine that is never closed is freed when garbage-collected.
type Engine struct {
	mu        sync.RWMutex // held for reading by calls, for writing by Close
	native    *C.SmartretryEngine
	clock     func() int64
	successes successes
}

// Option configures NewEngine.
type Option func(*engineOptions)

type engineOptions struct {
	seed       *uint64
	configJSON string
	store      string
	clock      func() int64
}

// WithSeed makes every random choice (jitter, throttling) reproducible.
func WithSeed(seed uint64) Option { return func(o *engineOptions) { o.seed = &seed } }

// WithConfigJSON configures the engine from the configuration file's JSON.
func WithConfigJSON(config string) Option { return func(o *engineOptions) { o.configJSON = config } }

// WithStore sets where the engine keeps its state, over the configuration's store:
// "memory", "sqlite:///path.db" (learned statistics, attempt history, the audit trail,
// dead letters and breakers survive a restart) or "redis://host:port/db" (shared by a
// fleet). A bad one is an *Error of KindConfig on "store"; a locked or corrupt SQLite
// file is KindStore naming the file. Close the engine to finish its writes.
func WithStore(url string) Option { return func(o *engineOptions) { o.store = url } }

// WithClock sets the engine's "now" in Unix milliseconds (simulation, replay, tests).
// Default: the wall clock, read by the engine.
func WithClock(nowMs func() int64) Option { return func(o *engineOptions) { o.clock = nowMs } }

// NewEngine creates an engine; a bad configuration is an *Error of KindConfig or
// KindInvalidInput naming the field.
func NewEngine(opts ...Option) (*Engine, error) {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	var seed C.uint64_t
	if o.seed != nil {
		seed = C.uint64_t(*o.seed)
	}
	config := optCString(o.configJSON)
	defer free(config)
	store := optCString(o.store)
	defer free(store)
	var native *C.SmartretryEngine
	var out *C.char
	status := C.smartretry_engine_new(seed, C.bool(o.seed != nil), config, store, &native, &out)
	if _, err := result(status, out); err != nil {
		return nil, err
	}
	e := &Engine{native: native, clock: o.clock}
	runtime.SetFinalizer(e, (*Engine).Close)
	return e, nil
}

var (
	defaultOnce   sync.Once
	defaultEngine *Engine
)

// Default is the process-wide engine Do uses when Options.Engine is nil.
func Default() *Engine {
	defaultOnce.Do(func() {
		e, err := NewEngine()
		if err != nil {
			// The default configuration is valid by construction; this is a broken build.
			panic(err)
		}
		defaultEngine = e
	})
	return defaultEngine
}

// Close hands over the successes Do has counted, then frees the engine. Later calls
// return ErrClosed. Safe to call twice.
func (e *Engine) Close() error {
	e.FlushSuccesses()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.native != nil {
		C.smartretry_engine_free(e.native)
		e.native = nil
	}
	runtime.SetFinalizer(e, nil)
	return nil
}

func (e *Engine) now() C.uint64_t {
	if e.clock == nil {
		return nativeNow
	}
	return C.uint64_t(e.clock())
}

// clockTime is the engine's "now": its clock's, else the wall clock.
func (e *Engine) clockTime() time.Time {
	if e.clock == nil {
		return time.Now()
	}
	return time.UnixMilli(e.clock())
}

// call runs one native call under the read lock, then decodes its JSON into into (if any).
func (e *Engine) call(into any, f func(*C.SmartretryEngine, **C.char) C.int32_t) error {
	e.mu.RLock()
	if e.native == nil {
		e.mu.RUnlock()
		return ErrClosed
	}
	var out *C.char
	status := f(e.native, &out)
	e.mu.RUnlock()
	text, err := result(status, out)
	if err != nil || into == nil || text == nil {
		return err
	}
	if err := json.Unmarshal(text, into); err != nil {
		return &Error{Kind: KindInternal, Reason: "unreadable result: " + err.Error()}
	}
	return nil
}

// withJSON passes v to f as a C string of its JSON.
func withJSON(field string, v any, f func(*C.char) error) error {
	text, err := json.Marshal(v)
	if err != nil {
		return invalid(field, err.Error())
	}
	s := cString(string(text))
	defer free(s)
	return f(s)
}

// Decide answers: should this failure be retried, and after how long?
func (e *Engine) Decide(f Features) (Decision, error) {
	bufs := bufferPool.Get().(*buffers)
	defer bufferPool.Put(bufs)
	var ok bool
	if bufs.in, ok = encodeFeatures(bufs.in[:0], &f); !ok {
		// Something only the JSON path can name (an unknown priority, a NaN).
		var d Decision
		err := withJSON("features", f, func(s *C.char) error {
			return e.call(&d, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
				return C.smartretry_decide(n, s, e.now(), out)
			})
		})
		return d, err
	}
	out, err := e.callCompact(bufs, decideCompact)
	if err != nil {
		return Decision{}, err
	}
	return decodeDecision(out)
}

// Record tells the engine what happened on an attempt, so it learns.
func (e *Engine) Record(a Attempt) error {
	bufs := bufferPool.Get().(*buffers)
	defer bufferPool.Put(bufs)
	bufs.in = encodeAttempt(bufs.in[:0], &a)
	_, err := e.callCompact(bufs, recordCompact)
	return err
}

// RecordSuccesses counts count first attempts of jobType (tenant may be "") that
// succeeded: the retry budget's base.
func (e *Engine) RecordSuccesses(jobType, tenant string, count int) error {
	if count < 0 {
		return invalid("count", "must not be negative")
	}
	jt, tn := cString(jobType), optCString(tenant)
	defer free(jt)
	defer free(tn)
	return e.call(nil, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_record_successes(n, jt, tn, C.uint64_t(count), e.now(), out)
	})
}

// Released reports whether jobType's downstream has come back since a job's attempt
// failed at failedAt (when it called Decide): true once a call made since then got
// through, so the job should retry at once. Ask at each of a Decision's CheckInMs.
func (e *Engine) Released(jobType string, failedAt time.Time) (bool, error) {
	failedAtMs := failedAt.UnixMilli()
	if failedAtMs < 0 {
		return false, invalid("failed_at_ms", "must not be before 1970")
	}
	var released bool
	jt := cString(jobType)
	defer free(jt)
	err := e.call(&released, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_released(n, jt, C.uint64_t(failedAtMs), e.now(), out)
	})
	return released, err
}

// Preview is the schedule the engine would follow from this failure if every retry
// failed, up to maxAttempts.
func (e *Engine) Preview(f Features, maxAttempts int) (Preview, error) {
	var p Preview
	if maxAttempts < 0 || maxAttempts > 1<<31 {
		return p, invalid("max_attempts", "out of range")
	}
	err := withJSON("features", f, func(s *C.char) error {
		return e.call(&p, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
			return C.smartretry_preview(n, s, C.uint32_t(maxAttempts), e.now(), out)
		})
	})
	return p, err
}

// Stats is what was seen for (jobType, errorClass) over the last window (0: 24 h).
func (e *Engine) Stats(jobType, errorClass string, window time.Duration) (Stats, error) {
	var st Stats
	if window < 0 {
		return st, invalid("window", "must not be negative")
	}
	windowMs := C.uint64_t(nativeNone)
	if window > 0 {
		windowMs = C.uint64_t(window.Milliseconds())
	}
	jt, ec := cString(jobType), cString(errorClass)
	defer free(jt)
	defer free(ec)
	err := e.call(&st, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_stats(n, jt, ec, windowMs, e.now(), out)
	})
	return st, err
}

// Policies are the rules tier's policies, highest priority first.
func (e *Engine) Policies() ([]Policy, error) {
	var ps []Policy
	err := e.call(&ps, func(n *C.SmartretryEngine, out **C.char) C.int32_t { return C.smartretry_policies(n, out) })
	return ps, err
}

// AddPolicy adds a policy; a name already in use is KindInvalidInput on "name".
func (e *Engine) AddPolicy(p Policy) error {
	return withJSON("policy", p, func(s *C.char) error {
		return e.call(nil, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
			return C.smartretry_add_policy(n, s, out)
		})
	})
}

// RemovePolicy removes a policy by name and returns it; KindNotFound if there is none.
func (e *Engine) RemovePolicy(name string) (Policy, error) {
	var p Policy
	s := cString(name)
	defer free(s)
	err := e.call(&p, func(n *C.SmartretryEngine, out **C.char) C.int32_t { return C.smartretry_remove_policy(n, s, out) })
	return p, err
}

// Overrides are the operator overrides in force, in the API document's JSON shape.
func (e *Engine) Overrides() (json.RawMessage, error) {
	var raw json.RawMessage
	err := e.call(&raw, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_overrides(n, e.now(), out)
	})
	return raw, err
}

// AddOverride adds an operator override (any value whose JSON is the API document's
// override shape) and returns the one it replaced, as JSON ("null" if none).
func (e *Engine) AddOverride(override any) (json.RawMessage, error) {
	var raw json.RawMessage
	err := withJSON("override", override, func(s *C.char) error {
		return e.call(&raw, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
			return C.smartretry_add_override(n, s, e.now(), out)
		})
	})
	return raw, err
}

// RemoveOverride removes an override by name and returns it; KindNotFound if there is none.
func (e *Engine) RemoveOverride(name string) (json.RawMessage, error) {
	var raw json.RawMessage
	s := cString(name)
	defer free(s)
	err := e.call(&raw, func(n *C.SmartretryEngine, out **C.char) C.int32_t { return C.smartretry_remove_override(n, s, out) })
	return raw, err
}

// Health is what the engine knows of a job type's downstream health, as JSON.
func (e *Engine) Health(jobType string) (json.RawMessage, error) {
	var raw json.RawMessage
	s := cString(jobType)
	defer free(s)
	err := e.call(&raw, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_health(n, s, e.now(), out)
	})
	return raw, err
}

// Guardrails are the limits in force.
func (e *Engine) Guardrails() (Guardrails, error) {
	var g Guardrails
	err := e.call(&g, func(n *C.SmartretryEngine, out **C.char) C.int32_t { return C.smartretry_guardrails(n, out) })
	return g, err
}

// Metrics are the engine's counters: decisions by method, guardrails, lifecycle
// events, the store (the same as the HTTP API's /metrics and Python's
// Engine.metrics()), as JSON.
func (e *Engine) Metrics() (json.RawMessage, error) {
	var m json.RawMessage
	err := e.call(&m, func(n *C.SmartretryEngine, out **C.char) C.int32_t { return C.smartretry_metrics(n, out) })
	return m, err
}

// UpdateGuardrails changes the fields present in patch (a Guardrails, or a map of
// some snake_case fields), validated as a whole: nothing changes on error. Returns
// all the guardrails now in force.
func (e *Engine) UpdateGuardrails(patch any) (Guardrails, error) {
	var g Guardrails
	err := withJSON("guardrails", patch, func(s *C.char) error {
		return e.call(&g, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
			return C.smartretry_update_guardrails(n, s, out)
		})
	})
	return g, err
}

// EmergencyStop turns the emergency stop on or off: while on, nothing is retried.
func (e *Engine) EmergencyStop(on bool) error {
	return e.call(nil, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
		return C.smartretry_emergency_stop(n, C.bool(on), out)
	})
}

// IsEmergencyStopped reports whether the emergency stop is on (false after Close).
func (e *Engine) IsEmergencyStopped() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.native != nil && bool(C.smartretry_is_emergency_stopped(e.native))
}
