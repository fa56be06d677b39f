//go:build smartretry_use_lib

package smartretry

// -tags smartretry_use_lib links a libsmartretry_uniffi you built yourself for any
// platform (cargo build --release -p smartretry-uniffi), found through CGO_LDFLAGS, e.g.
// CGO_LDFLAGS="-L/path/to/target/release".

// #cgo LDFLAGS: -lsmartretry_uniffi -ldl -lm -lpthread
import "C"
