package smartretry

// The C ABI of bindings/uniffi (header: bindings/uniffi/include/smartretry.h, generated
// by cbindgen and checked by a Rust test). Every call returns a status and a string the
// Rust side allocated: the result's JSON, or the error's. It is copied into Go memory
// and freed at once with smartretry_string_free.

// #cgo CFLAGS: -I${SRCDIR}/../uniffi/include
// #include <stdlib.h>
// #include "smartretry.h"
import "C"

import (
	"encoding/json"
	"unsafe"
)

// nativeNow asks the engine to read the wall clock.
const nativeNow = C.SMARTRETRY_NOW

// nativeNone is an absent optional number.
const nativeNone = C.SMARTRETRY_NONE

// result turns a call's status and output string into JSON bytes or an *Error.
func result(status C.int32_t, out *C.char) ([]byte, error) {
	var text []byte
	if out != nil {
		text = []byte(C.GoString(out))
		C.smartretry_string_free(out)
	}
	if status == C.SMARTRETRY_OK {
		return text, nil
	}
	return nil, parseError(text)
}

func parseError(text []byte) error {
	e := &Error{}
	var wire struct {
		Kind    string  `json:"kind"`
		Field   *string `json:"field"`
		Reason  string  `json:"reason"`
		Message string  `json:"message"`
	}
	if err := json.Unmarshal(text, &wire); err != nil {
		return &Error{Kind: KindInternal, Reason: "unreadable error from the engine: " + string(text)}
	}
	e.Kind, e.Reason, e.Message = Kind(wire.Kind), wire.Reason, wire.Message
	if wire.Field != nil {
		e.Field = *wire.Field
	}
	return e
}

// cString is a C copy of s; free it with C.free.
func cString(s string) *C.char { return C.CString(s) }

// optCString is NULL for "".
func optCString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

func free(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}
