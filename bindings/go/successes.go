//go:build cgo

package smartretry

import (
	"sync"
	"sync/atomic"
	"time"
)

// First attempts that succeed are counted in Go and handed to the engine in batches
// (Engine.RecordSuccesses), as the Python and Node packages do: the engine needs them
// for its retry budget, adaptive throttling and breakers, but not one cgo call each.
// A batch goes over every flushEvery successes, before a failure of the same job type
// is decided (so the budget is current when it matters), flushAfter after a batch
// starts, and when the engine is closed or FlushSuccesses is called.
const (
	flushEvery = 1024
	flushAfter = time.Second
)

type successKey struct{ jobType, tenant string }

// successCounter counts one (job type, tenant)'s successes since its last flush.
type successCounter struct {
	pending atomic.Int64
	key     successKey
}

// successes are an engine's counters, created on first use and never removed (one per
// (job type, tenant) the process uses, as the engine's own state is).
type successes struct {
	counters sync.Map // successKey → *successCounter
	last     atomic.Pointer[successCounter]
	armed    atomic.Bool
}

// countSuccess counts one first-attempt success: an atomic add, no cgo call.
func (e *Engine) countSuccess(jobType, tenant string) {
	c := e.successCounter(jobType, tenant)
	switch n := c.pending.Add(1); {
	case n >= flushEvery:
		e.flushCounter(c)
	case n == 1 && e.successes.armed.CompareAndSwap(false, true):
		time.AfterFunc(flushAfter, func() {
			e.successes.armed.Store(false)
			e.FlushSuccesses()
		})
	}
}

// successCounter is (jobType, tenant)'s counter; the last one used is checked first (one
// string comparison, no hashing, for a process that mostly runs one job type).
func (e *Engine) successCounter(jobType, tenant string) *successCounter {
	if c := e.successes.last.Load(); c != nil && c.key.jobType == jobType && c.key.tenant == tenant {
		return c
	}
	key := successKey{jobType, tenant}
	c, ok := e.successes.counters.Load(key)
	if !ok {
		c, _ = e.successes.counters.LoadOrStore(key, &successCounter{key: key})
	}
	e.successes.last.Store(c.(*successCounter))
	return c.(*successCounter)
}

// flushCounter hands one counter's successes to the engine. Labels the engine rejects
// are dropped here: the failure path reports them as errors.
func (e *Engine) flushCounter(c *successCounter) {
	if n := c.pending.Swap(0); n > 0 {
		_ = e.RecordSuccesses(c.key.jobType, c.key.tenant, int(n))
	}
}

// flushSuccessesOf hands jobType's (and tenant's) counted successes over now: before a
// decision about a failure of it.
func (e *Engine) flushSuccessesOf(jobType, tenant string) {
	if c, ok := e.successes.counters.Load(successKey{jobType, tenant}); ok {
		e.flushCounter(c.(*successCounter))
	}
}

// FlushSuccesses tells the engine now about every first-attempt success Do has counted
// but not yet handed over (Do batches them; see Engine.RecordSuccesses). Close calls it.
func (e *Engine) FlushSuccesses() {
	e.successes.counters.Range(func(_, c any) bool {
		e.flushCounter(c.(*successCounter))
		return true
	})
}
