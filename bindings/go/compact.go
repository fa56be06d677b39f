package smartretry

// #include <stdlib.h>
// #include "smartretry.h"
import "C"

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"
)

// Decide and Record cross into Rust in a compact binary form instead of JSON
// (bindings/uniffi/src/compact.rs has the format): a failure's path spends its time in
// the engine, not in encoding/json. Tags and layout must match compact.rs.

const (
	fJobType byte = iota + 1
	fAttemptNumber
	fErrorClass
	fErrorCode
	fHTTPStatus
	fQueue
	fTenant
	fPayloadSize
	fTimeOfDay
	fJobID
	fSinceFirstFailureMs
	fSinceLastFailureMs
	fRetryAfterMs
	fRetryAfter
	fIdempotent
	fPriority
	fWorkerVersion
	fHealth
	fDeadlineMs
	fMaxAttempts
	fExpected
	fBackoff
)

const (
	aJobID byte = iota + 1
	aJobType
	aAttemptNumber
	aSuccess
	aDelayMs
	aErrorClass
	aErrorCode
	aHTTPStatus
	aQueue
	aTenant
	aSinceFirstFailureMs
	aPayloadSize
	aTimeOfDay
	aWorkerVersion
	aTimestamp
)

var priorityBytes = map[Priority]byte{PriorityLow: 0, PriorityNormal: 1, PriorityHigh: 2, PriorityCritical: 3}

var methods = [...]Method{MethodRules, MethodBayesian, MethodML, MethodGuardrail, MethodBreaker}

type encoder []byte

func (b *encoder) int(tag byte, v int64) {
	*b = binary.LittleEndian.AppendUint64(append(*b, tag), uint64(v))
}

func (b *encoder) optInt(tag byte, v *int64) {
	if v != nil {
		b.int(tag, *v)
	}
}

func (b *encoder) str(tag byte, s string) {
	*b = append(binary.LittleEndian.AppendUint32(append(*b, tag), uint32(len(s))), s...)
}

func (b *encoder) optStr(tag byte, s string) {
	if s != "" {
		b.str(tag, s)
	}
}

// encodeFeatures is f in the compact form; false if it cannot say it (an unknown
// priority: the JSON path lets the engine name it).
func encodeFeatures(buf []byte, f *Features) ([]byte, bool) {
	b := encoder(buf)
	b.str(fJobType, f.JobType)
	b.int(fAttemptNumber, int64(f.AttemptNumber))
	b.optStr(fErrorClass, f.ErrorClass)
	b.optStr(fErrorCode, f.ErrorCode)
	if f.HTTPStatus != 0 {
		b.int(fHTTPStatus, int64(f.HTTPStatus))
	}
	b.optStr(fQueue, f.Queue)
	b.optStr(fTenant, f.Tenant)
	b.optInt(fPayloadSize, f.PayloadSize)
	if f.TimeOfDay != nil {
		b.int(fTimeOfDay, int64(*f.TimeOfDay))
	}
	b.optStr(fJobID, f.JobID)
	b.optInt(fSinceFirstFailureMs, f.SinceFirstFailureMs)
	b.optInt(fSinceLastFailureMs, f.SinceLastFailureMs)
	b.optInt(fRetryAfterMs, f.RetryAfterMs)
	b.optStr(fRetryAfter, f.RetryAfter)
	if f.Idempotent != nil {
		b = append(b, fIdempotent, boolByte(*f.Idempotent))
	}
	if f.Priority != "" {
		p, ok := priorityBytes[f.Priority]
		if !ok {
			return nil, false
		}
		b = append(b, fPriority, p)
	}
	b.optStr(fWorkerVersion, f.WorkerVersion)
	for k, v := range f.Health {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false // not JSON either: encoding/json names the field
		}
		b.str(fHealth, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b.optInt(fDeadlineMs, f.DeadlineMs)
	if f.MaxAttempts != nil {
		b.int(fMaxAttempts, int64(*f.MaxAttempts))
	}
	if f.Expected != nil {
		b = append(b, fExpected, boolByte(*f.Expected))
	}
	if len(f.Backoff) != 0 {
		b.str(fBackoff, string(f.Backoff))
	}
	return b, true
}

func encodeAttempt(buf []byte, a *Attempt) []byte {
	b := encoder(buf)
	b.str(aJobID, a.JobID)
	b.str(aJobType, a.JobType)
	b.int(aAttemptNumber, int64(a.AttemptNumber))
	b = append(b, aSuccess, boolByte(a.Success))
	b.int(aDelayMs, a.DelayMs)
	b.optStr(aErrorClass, a.ErrorClass)
	b.optStr(aErrorCode, a.ErrorCode)
	if a.HTTPStatus != 0 {
		b.int(aHTTPStatus, int64(a.HTTPStatus))
	}
	b.optStr(aQueue, a.Queue)
	b.optStr(aTenant, a.Tenant)
	b.optInt(aSinceFirstFailureMs, a.SinceFirstFailureMs)
	b.optInt(aPayloadSize, a.PayloadSize)
	if a.TimeOfDay != nil {
		b.int(aTimeOfDay, int64(*a.TimeOfDay))
	}
	b.optStr(aWorkerVersion, a.WorkerVersion)
	b.optStr(aTimestamp, a.Timestamp)
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	head := d.b[:n]
	d.b = d.b[n:]
	return head
}

func (d *decoder) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *decoder) str() string {
	return string(d.take(int(binary.LittleEndian.Uint32(d.take(4)))))
}

func decodeDecision(b []byte) (Decision, error) {
	d := decoder{b: b}
	head := d.take(3)
	out := Decision{ShouldRetry: head[0] != 0}
	if int(head[1]) < len(methods) {
		out.Method = methods[head[1]]
	}
	out.DelayMs = int64(d.u64())
	out.MaxAttempts = int(d.u64())
	if checkIn := int64(d.u64()); head[2] != 0 {
		out.CheckInMs = &checkIn
	}
	out.Confidence = math.Float64frombits(d.u64())
	out.EstimatedSuccess = math.Float64frombits(d.u64())
	out.Rationale, out.NextEvaluation, out.ErrorClass, out.Policy = d.str(), d.str(), d.str(), d.str()
	n := binary.LittleEndian.Uint32(d.take(4))
	out.PolicyGuardrails = make([]string, 0, min(n, 64))
	for i := uint32(0); i < n && !d.bad; i++ {
		out.PolicyGuardrails = append(out.PolicyGuardrails, d.str())
	}
	if d.bad || len(d.b) != 0 {
		return Decision{}, &Error{Kind: KindInternal, Reason: "unreadable decision from the engine"}
	}
	return out, nil
}

// buffers are a call's input and output space, reused (a fresh 1 KiB per call would
// be a heap allocation: memory handed to C escapes). A result longer than out comes
// back in a Rust buffer (spill), copied and freed.
type buffers struct {
	in  []byte
	out [1024]byte
}

var bufferPool = sync.Pool{New: func() any { return &buffers{in: make([]byte, 0, 256)} }}

// compactCall is one of the C ABI's compact functions (top-level wrappers below: a
// closure here would be a heap allocation per call).
type compactCall func(n *C.SmartretryEngine, in *C.uint8_t, inLen C.size_t, now C.uint64_t, out *C.uint8_t, outCap C.size_t, outLen *C.size_t, spill **C.uint8_t) C.int32_t

func decideCompact(n *C.SmartretryEngine, in *C.uint8_t, inLen C.size_t, now C.uint64_t, out *C.uint8_t, outCap C.size_t, outLen *C.size_t, spill **C.uint8_t) C.int32_t {
	return C.smartretry_decide_compact(n, in, inLen, now, out, outCap, outLen, spill)
}

func recordCompact(n *C.SmartretryEngine, in *C.uint8_t, inLen C.size_t, now C.uint64_t, out *C.uint8_t, outCap C.size_t, outLen *C.size_t, spill **C.uint8_t) C.int32_t {
	return C.smartretry_record_compact(n, in, inLen, now, out, outCap, outLen, spill)
}

// callCompact runs f on bufs.in under the read lock and returns its output: a result,
// valid until bufs goes back to the pool, or an error's decoded into an *Error.
func (e *Engine) callCompact(bufs *buffers, f compactCall) ([]byte, error) {
	var outLen C.size_t
	var spill *C.uint8_t
	e.mu.RLock()
	if e.native == nil {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	status := f(e.native, (*C.uint8_t)(unsafe.SliceData(bufs.in)), C.size_t(len(bufs.in)), e.now(),
		(*C.uint8_t)(unsafe.Pointer(&bufs.out[0])), C.size_t(len(bufs.out)), &outLen, &spill)
	e.mu.RUnlock()
	result := bufs.out[:min(int(outLen), len(bufs.out))]
	if spill != nil {
		result = C.GoBytes(unsafe.Pointer(spill), C.int(outLen))
		C.smartretry_bytes_free(spill, outLen)
	}
	if status != C.SMARTRETRY_OK {
		return nil, parseError(result)
	}
	return result, nil
}
