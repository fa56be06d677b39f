//go:build smartretry_release

package smartretry

// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libsmartretry_uniffi.a -ldl -lm -lpthread
import "C"
