package smartretry

// #include <stdlib.h>
// #include "smartretry.h"
import "C"

import (
	"context"
	"encoding/json"
)

// Lifecycle event kinds (Event.Type), the names Subscribe accepts.
const (
	EventRetryScheduled      = "retry_scheduled"
	EventRetrySucceeded      = "retry_succeeded"
	EventRetryFailed         = "retry_failed"
	EventGaveUp              = "gave_up"
	EventGuardrailTriggered  = "guardrail_triggered"
	EventBreakerStateChanged = "breaker_state_changed"
)

// Event is one lifecycle event (the API document's snake_case shape). Fields that do
// not apply to its Type are zero.
type Event struct {
	Type string `json:"type"`
	AtMs int64  `json:"at_ms"`
	// JobType is the job type; for a breaker event, the downstream it guards.
	JobType       string `json:"job_type"`
	JobID         string `json:"job_id,omitempty"`
	Tenant        string `json:"tenant,omitempty"`
	Queue         string `json:"queue,omitempty"`
	AttemptNumber int    `json:"attempt_number,omitempty"`
	ErrorClass    string `json:"error_class,omitempty"`
	// DelayMs is a scheduled retry's delay, or the wait before a recorded one.
	DelayMs     *int64   `json:"delay_ms,omitempty"`
	Method      Method   `json:"method,omitempty"`
	Guardrails  []string `json:"guardrails,omitempty"`
	Rationale   string   `json:"rationale,omitempty"`
	BreakerFrom string   `json:"breaker_from,omitempty"`
	BreakerTo   string   `json:"breaker_to,omitempty"`
}

// eventQueueCapacity bounds the engine-side queue; beyond it events are dropped (and
// counted in the engine's metrics), never waited for, so a slow reader never slows a decision.
const eventQueueCapacity = 1024

// eventPollMs is how long one poll waits in the engine; ctx is checked between polls.
const eventPollMs = 100

// Subscribe delivers lifecycle events of the given kinds (all when none) on the returned
// channel until ctx is done, then closes it. An unknown kind is an *Error naming "event".
func (e *Engine) Subscribe(ctx context.Context, kinds ...string) (<-chan Event, error) {
	names := kinds
	if names == nil {
		names = []string{}
	}
	var sub *C.SmartretrySubscription
	err := withJSON("kinds", names, func(kindsJSON *C.char) error {
		return e.call(nil, func(n *C.SmartretryEngine, out **C.char) C.int32_t {
			return C.smartretry_subscribe(n, kindsJSON, eventQueueCapacity, &sub, out)
		})
	})
	if err != nil {
		return nil, err
	}
	events := make(chan Event)
	go func() {
		defer close(events)
		defer C.smartretry_subscription_free(sub)
		for ctx.Err() == nil {
			var out *C.char
			text, err := result(C.smartretry_subscription_poll(sub, eventPollMs, &out), out)
			var batch []Event
			if err != nil || json.Unmarshal(text, &batch) != nil {
				return // the engine's own bug: end the stream rather than spin
			}
			for _, ev := range batch {
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return events, nil
}
