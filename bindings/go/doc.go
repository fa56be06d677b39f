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
// (header smartretry.h): the module carries the release library for linux/amd64 in
// deps/linux_amd64, so `go build` needs no Rust toolchain. On other platforms, build the
// library (cargo build --release -p smartretry-uniffi) and build with
// -tags smartretry_use_lib and CGO_LDFLAGS=-L<its directory>. In a checkout of the
// repository, `make dist` (or scripts/dist.sh go) puts the library into deps/.
//
// Errors are values: engine errors are *Error with Kind, Field and Reason (match with
// errors.Is(err, ErrInvalidInput) or errors.As); Do's "gave up" is a *GaveUpError that
// wraps the last failure, so errors.Is and errors.As see the caller's own errors.
package smartretry
