//go:build cgo

package smartretry

import (
	"errors"
	"fmt"
)

// Kind is the engine's stable error kind, shared by every language binding.
type Kind string

const (
	KindInvalidInput Kind = "invalid_input" // a request value is missing, malformed or out of range
	KindConfig       Kind = "config"        // a configuration value is invalid
	KindNotFound     Kind = "not_found"     // a named thing (a policy) does not exist
	KindStore        Kind = "store"         // the state store failed
	KindModel        Kind = "model"         // a model could not be loaded or run
	KindInternal     Kind = "internal"      // a bug: the engine panicked (caught, never crossing into Go)
)

// Sentinels for errors.Is: errors.Is(err, smartretry.ErrInvalidInput).
var (
	ErrInvalidInput = errors.New("smartretry: invalid input")
	ErrConfig       = errors.New("smartretry: invalid config")
	ErrNotFound     = errors.New("smartretry: not found")
	ErrStore        = errors.New("smartretry: store error")
	ErrModel        = errors.New("smartretry: model error")
	ErrInternal     = errors.New("smartretry: internal error")
	// ErrClosed is returned by the methods of an Engine after Close.
	ErrClosed = errors.New("smartretry: engine is closed")
)

var sentinels = map[Kind]error{
	KindInvalidInput: ErrInvalidInput,
	KindConfig:       ErrConfig,
	KindNotFound:     ErrNotFound,
	KindStore:        ErrStore,
	KindModel:        ErrModel,
	KindInternal:     ErrInternal,
}

// Error is what the engine returns for bad input or a failure: the kind, the field it
// concerns (for invalid_input and config, e.g. "attempt_number" or
// "guardrails.max_attempts") and the reason. Use errors.As to read it, or errors.Is
// with the Err* sentinels.
type Error struct {
	Kind    Kind
	Field   string
	Reason  string
	Message string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return "smartretry: " + e.Message
	}
	if e.Field != "" {
		return fmt.Sprintf("smartretry: %s: %s: %s", e.Kind, e.Field, e.Reason)
	}
	return fmt.Sprintf("smartretry: %s: %s", e.Kind, e.Reason)
}

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool {
	return sentinels[e.Kind] == target
}

func invalid(field, reason string) *Error {
	return &Error{Kind: KindInvalidInput, Field: field, Reason: reason,
		Message: "invalid input: " + field + ": " + reason}
}

// GaveUpError is what Do returns when the engine decides not to retry a failure: it
// wraps the last failure (errors.Is and errors.As see through it) and carries the
// engine's decision, whose Rationale says why.
type GaveUpError struct {
	Attempts int
	// Decision is nil when RetryIf refused the failure before the engine was asked.
	Decision *Decision
	Err      error
}

func (e *GaveUpError) Error() string {
	if e.Decision == nil {
		return fmt.Sprintf("smartretry: gave up after %d attempt(s), not retryable: %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("smartretry: gave up after %d attempt(s): %s: %v", e.Attempts, e.Decision.Rationale, e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }
