package smartretry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

// next is the next event, or a failure if none comes (a hang guard, not a speed limit).
func next(t *testing.T, events <-chan smartretry.Event) smartretry.Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("channel closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return smartretry.Event{}
}

func TestSubscribeDeliversTheKindsAskedForAndClosesOnCancel(t *testing.T) {
	e := newEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := e.Subscribe(ctx, smartretry.EventRetryScheduled, smartretry.EventGaveUp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(smartretry.Features{JobType: "flaky_job", JobID: "j1", AttemptNumber: 1, HTTPStatus: 503}); err != nil {
		t.Fatal(err)
	}
	// A recorded failure is a retry_failed event: not asked for, so not delivered.
	if err := e.Record(smartretry.Attempt{JobID: "j1", JobType: "flaky_job", AttemptNumber: 2, ErrorClass: "service_unavailable", DelayMs: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(smartretry.Features{JobType: "flaky_job", JobID: "j2", AttemptNumber: 1, HTTPStatus: 404}); err != nil {
		t.Fatal(err)
	}
	scheduled := next(t, events)
	if scheduled.Type != smartretry.EventRetryScheduled || scheduled.JobID != "j1" || scheduled.DelayMs == nil {
		t.Errorf("first event: %+v", scheduled)
	}
	gaveUp := next(t, events)
	if gaveUp.Type != smartretry.EventGaveUp || gaveUp.JobID != "j2" || gaveUp.JobType != "flaky_job" {
		t.Errorf("second event: %+v", gaveUp)
	}
	cancel()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			t.Errorf("event after the ones caused: %+v", ev)
		case <-time.After(10 * time.Second):
			t.Fatal("channel not closed after cancel")
		}
	}
}

func TestSubscribeNamesAnUnknownKind(t *testing.T) {
	e := newEngine(t)
	_, err := e.Subscribe(context.Background(), "retried")
	var se *smartretry.Error
	if !errors.As(err, &se) || se.Field != "event" {
		t.Fatalf("want an invalid_input error on event, got %v", err)
	}
}
