//go:build linux && amd64 && !smartretry_use_lib

package smartretry

// The engine, statically linked from the release library shipped in the module
// (deps/linux_amd64, as go-duckdb ships its deps/): plain `go build` needs no Rust
// toolchain. In a checkout of the repository, `make dist` (or scripts/dist.sh go) puts
// it there.

// #cgo LDFLAGS: ${SRCDIR}/deps/linux_amd64/libsmartretry_uniffi.a -ldl -lm -lpthread
import "C"
