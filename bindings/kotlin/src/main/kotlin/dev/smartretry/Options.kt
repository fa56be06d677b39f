package dev.smartretry

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/**
 * A [RetryOptions] value the engine's options contract refuses (docs/options.md):
 * [option] names it (`maxAttempts`, `backoff.max`) and [reason] says why. Thrown by the
 * constructor, so a bad option never reaches a call.
 */
class InvalidRetryOptionException(val option: String, val reason: String) :
    IllegalArgumentException("invalid retry option: $option: $reason")

/**
 * A call's own schedule ([RetryOptions.backoff]): the engine computes every delay from it
 * as its rules tier for the call, and the guardrails still bound it. `null` fields take
 * the defaults.
 */
data class Backoff(
    /** `exponential` (default), `linear`, `fibonacci`, `aggressive` (×3) or `constant`. */
    val strategy: String? = null,
    /** The first delay (default 1 s). */
    val base: Duration? = null,
    /** The longest delay (default: the guardrails' max delay). */
    val max: Duration? = null,
    /** Growth per retry of `exponential`, 1–100 (default 2). */
    val multiplier: Double? = null,
    /** `none` (default), `full`, `equal`, `decorrelated`, or a percentage (`"25%"`). */
    val jitter: String? = null,
)

/** What the engine made of a [RetryOptions]: the schedule as `Features` carries it. */
internal class Checked(val backoffJson: String?)

/** The part of [RetryOptions] the engine checks; the verdict on one set is remembered. */
private data class CheckedKey(
    val jobType: String,
    val tenant: String?,
    val maxAttempts: Int?,
    val deadline: Duration?,
    val timeout: Duration?,
    val backoff: Backoff?,
)

private val verdicts = ConcurrentHashMap<CheckedKey, Checked>()
private const val MAX_VERDICTS = 4096

/**
 * Checks [o] against the engine's options contract, once per distinct set of values (a
 * `RetryOptions` made on every call costs a map lookup, not a native call); [RetryOptions.jobId],
 * unique per call, is checked each time it is set.
 */
internal fun check(o: RetryOptions): Checked {
    o.jobId?.let { ask(mapOf("jobId" to it)) }
    val key = CheckedKey(o.jobType, o.tenant, o.maxAttempts, o.deadline, o.timeout, o.backoff)
    verdicts[key]?.let { return it }
    val given = linkedMapOf<String, Any>("jobType" to o.jobType)
    o.tenant?.let { given["tenant"] = it }
    o.maxAttempts?.let { given["maxAttempts"] = it }
    o.deadline?.let { given["deadline"] = millis(it) }
    o.timeout?.let { given["timeout"] = millis(it) }
    o.backoff?.let { b ->
        given["backoff"] = buildMap {
            b.strategy?.let { put("strategy", it) }
            b.base?.let { put("base", millis(it)) }
            b.max?.let { put("max", millis(it)) }
            b.multiplier?.let { put("multiplier", number(it)) }
            b.jitter?.let { put("jitter", it) }
        }
    }
    val answer = ask(given)
    val checked = Checked(backoffJsonOf(answer))
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear()
    verdicts[key] = checked
    return checked
}

private fun ask(given: Map<String, Any>): String = try {
    checkRetryOptions(json(given))
} catch (e: SmartRetryException.InvalidInput) {
    throw InvalidRetryOptionException(e.field, e.reason)
}

/** A duration in ms, fractions kept (the engine rounds up); an infinite one as the longest. */
private fun millis(d: Duration): Any =
    if (d.isInfinite()) (if (d.isPositive()) Double.MAX_VALUE else -Double.MAX_VALUE) else d.inWholeNanoseconds / 1e6

/** NaN and infinities as text (JSON has no form for them): the engine refuses them by name. */
private fun number(x: Double): Any = if (x.isFinite()) x else x.toString()

/** The `"backoff":{…}` object of the engine's answer, as its JSON text. */
private fun backoffJsonOf(answer: String): String? {
    val at = answer.indexOf("\"backoff\":")
    if (at < 0) return null
    val start = at + "\"backoff\":".length
    var depth = 0
    for (i in start until answer.length) {
        when (answer[i]) {
            '{' -> depth++
            '}' -> if (--depth == 0) return answer.substring(start, i + 1)
        }
    }
    return null
}

/** A small JSON writer for the options (strings, numbers, booleans, maps). */
private fun json(value: Any?): String = when (value) {
    null -> "null"
    is String -> buildString {
        append('"')
        for (c in value) {
            when {
                c == '"' -> append("\\\"")
                c == '\\' -> append("\\\\")
                c < ' ' -> append("\\u%04x".format(c.code))
                else -> append(c)
            }
        }
        append('"')
    }
    is Map<*, *> -> value.entries.joinToString(",", "{", "}") { (k, v) -> json(k.toString()) + ":" + json(v) }
    is Double -> if (value == Math.floor(value) && Math.abs(value) < 1e15) value.toLong().toString() else value.toString()
    else -> value.toString()
}

/** What a [Retrier]'s calls have been through so far. */
data class RetryStatistics(
    val calls: Long,
    val attempts: Long,
    val retries: Long,
    val successes: Long,
    val gaveUp: Long,
    /** Time spent waiting between attempts, over every call. */
    val idle: Duration,
    /** The engine's last decision (null before any failure). */
    val lastDecision: Decision?,
)

/** The counters a [Retrier] keeps, updated by its calls (lock-free). */
internal class Counters {
    val calls = AtomicLong()
    val retries = AtomicLong()
    val successes = AtomicLong()
    val gaveUp = AtomicLong()
    val idleMs = AtomicLong()
    val last = AtomicReference<Decision?>()
}

/**
 * [retry] and [retryBlocking] with one [RetryOptions], and statistics of their calls (as
 * resilience4j's `Retry` keeps metrics).
 */
class Retrier(val options: RetryOptions) {
    internal val counters = Counters()

    suspend fun <T> retry(block: suspend (attempt: Int) -> T): T = retry(options, block, counters)

    fun <T> retryBlocking(block: (attempt: Int) -> T): T = retryBlocking(options, block, counters)

    val statistics: RetryStatistics
        get() {
            val c = counters
            val calls = c.calls.get()
            val retries = c.retries.get()
            return RetryStatistics(
                calls = calls,
                attempts = calls + retries,
                retries = retries,
                successes = c.successes.get(),
                gaveUp = c.gaveUp.get(),
                idle = c.idleMs.get().milliseconds,
                lastDecision = c.last.get(),
            )
        }
}
