// Package smartretry is a retry library that learns when a failed call will succeed.
//
// Do runs a function and retries its failures when and as the engine decides: whether
// to retry at all (a 404 never is; a 503 on a non-idempotent call is not) and after how
// long, from what it has learned per (job type, error class), bounded by guardrails,
// with a one-sentence rationale. Do waits with a timer and returns at once when its
// context is done. While a downstream is down for every caller, it checks in every
// Decision.CheckInMs and retries as soon as Engine.Released says calls get through.
//
// The engine is the Rust crate smartretry, linked statically through a small C ABI
// (bindings/uniffi, header include/smartretry.h). Build the library first with
// `cargo build -p smartretry-uniffi` (the default build tag links target/debug;
// `-tags smartretry_release` links target/release).
//
// Errors are values: engine errors are *Error with Kind, Field and Reason (match with
// errors.Is(err, ErrInvalidInput) or errors.As); Do's "gave up" is a *GaveUpError that
// wraps the last failure, so errors.Is and errors.As see the caller's own errors.
package smartretry
