package dev.smartretry

import java.util.WeakHashMap
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong

// First attempts that succeed are counted in Kotlin and handed to the engine in batches
// (Engine.recordSuccesses), as the Python and Node packages do: the engine needs them for
// its retry budget, adaptive throttling and breakers, but not one native call each. A
// batch goes over every FLUSH_EVERY successes, before a failure of the same job type is
// decided (so the budget is current when it matters), a second after a batch starts, at
// JVM exit, and on Engine.flushSuccesses() (call it before Engine.close()).

private const val FLUSH_EVERY = 1024L
private const val FLUSH_AFTER_MS = 1000L

/** One (job type, tenant)'s successes since its last flush. */
internal class SuccessCounter(val jobType: String, val tenant: String?) {
    val pending = AtomicLong()
}

/** What the Kotlin layer keeps per engine. It must not reference the engine (a weak key). */
internal class EngineState {
    /** By job type: the counter without a tenant, and those of each tenant. */
    private val counters = ConcurrentHashMap<String, JobCounters>()
    private val armed = AtomicBoolean(false)

    /** The engine's weak handle for the compact calls (Hot.kt); 0 until first used. */
    @Volatile var hot = 0L

    private class JobCounters(jobType: String) {
        val untenanted = SuccessCounter(jobType, null)
        val byTenant = ConcurrentHashMap<String, SuccessCounter>()
    }

    fun counter(jobType: String, tenant: String?): SuccessCounter {
        val job = counters[jobType] ?: counters.computeIfAbsent(jobType) { JobCounters(it) }
        if (tenant == null) return job.untenanted
        return job.byTenant[tenant] ?: job.byTenant.computeIfAbsent(tenant) { SuccessCounter(jobType, it) }
    }

    fun count(engine: Engine, counter: SuccessCounter) {
        val n = counter.pending.incrementAndGet()
        if (n >= FLUSH_EVERY) {
            flush(engine, counter)
        } else if (n == 1L && armed.compareAndSet(false, true)) {
            Flusher.later(engine, this)
        }
    }

    fun flushAll(engine: Engine) {
        armed.set(false)
        for (job in counters.values) {
            flush(engine, job.untenanted)
            for (c in job.byTenant.values) flush(engine, c)
        }
    }

    fun flush(engine: Engine, counter: SuccessCounter) {
        val n = counter.pending.getAndSet(0)
        if (n == 0L) return
        try {
            engine.recordSuccesses(counter.jobType, counter.tenant, n)
        } catch (e: SmartRetryException) {
            // An invalid job type or tenant: the failure path throws a named error for it.
        } catch (e: IllegalStateException) {
            // The engine was closed: nobody is left to tell.
        }
    }
}

private val states = WeakHashMap<Engine, EngineState>()

/** The last engine used and its state: most processes use one engine, read without a lock. */
private class LastUsed(val engine: Engine, val state: EngineState)

@Volatile private var lastUsed: LastUsed? = null

internal val Engine.state: EngineState
    get() {
        val last = lastUsed
        if (last != null && last.engine === this) return last.state
        val state = synchronized(states) { states.getOrPut(this) { EngineState() } }
        lastUsed = LastUsed(this, state)
        return state
    }

/** Flushes a second after a batch starts, and at JVM exit. */
private object Flusher {
    private val timer = Executors.newSingleThreadScheduledExecutor { r ->
        Thread(r, "smartretry-successes").apply { isDaemon = true }
    }

    init {
        Runtime.getRuntime().addShutdownHook(Thread({ flushEverything() }, "smartretry-successes-exit"))
    }

    fun later(engine: Engine, state: EngineState) {
        val ref = java.lang.ref.WeakReference(engine)
        timer.schedule({ ref.get()?.let { state.flushAll(it) } }, FLUSH_AFTER_MS, TimeUnit.MILLISECONDS)
    }

    fun flushEverything() {
        val all = synchronized(states) { states.entries.map { it.key to it.value } }
        for ((engine, state) in all) state.flushAll(engine)
    }
}

/**
 * Tells the engine now about the first-attempt successes [retry] and [retryBlocking] have
 * counted but not yet handed over (they batch them: no native call per success). Call it
 * before [Engine.close]; it also runs a second after a batch starts and at JVM exit.
 */
fun Engine.flushSuccesses() = state.flushAll(this)
