//go:build !smartretry_release

package smartretry

// The Rust library as `cargo build -p smartretry-uniffi` leaves it (the debug profile
// `cargo test --workspace` builds too). Build with `-tags smartretry_release` to link
// target/release instead (`cargo build --release -p smartretry-uniffi`): benchmarks.

// #cgo LDFLAGS: ${SRCDIR}/../../target/debug/libsmartretry_uniffi.a -ldl -lm -lpthread
import "C"
