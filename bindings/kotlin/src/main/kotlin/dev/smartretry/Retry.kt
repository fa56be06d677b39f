package dev.smartretry

import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.cancellation.CancellationException
import kotlin.time.Duration
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.withTimeout
import kotlin.reflect.KClass

/** The process-wide engine [RetryOptions] uses unless given one. */
val defaultEngine: Engine by lazy { Engine() }

/** Passed to [RetryOptions.onRetry] before each wait. */
data class RetryEvent(
    val jobType: String,
    val jobId: String,
    /** The attempt that just failed, 1-based. */
    val attempt: Int,
    val error: Throwable,
    val decision: Decision,
)

/**
 * Attached (as a suppressed exception) to the failure [retry] rethrows when it gives up:
 * how many attempts ran and the engine's last decision, with its rationale.
 */
class RetriesExhausted(val attempts: Int, val decision: Decision?) :
    RuntimeException("gave up after $attempts attempt(s): ${decision?.rationale ?: "not retryable"}", null, false, false)

/** Passed to [RetryOptions.stopIf] after each failure. */
data class StopInfo(
    val jobType: String,
    val jobId: String,
    /** The attempt that just failed, 1-based. */
    val attempt: Int,
    val error: Throwable,
    /** Milliseconds since the first failure. */
    val elapsedMs: Long,
)

/** Passed to [RetryOptions.onGiveUp] once, when retries end without success. */
data class GiveUpEvent(
    val jobType: String,
    val jobId: String,
    val attempts: Int,
    val error: Throwable,
    /** The engine's last decision (null when it was not asked). */
    val decision: Decision?,
    /** `engine`, `not_retryable` (retryOn/ignoreExceptions) or `stopped` (stopIf). */
    val reason: String,
)

/**
 * Options of [retry] and [retryBlocking]. Only [jobType] is required. They are the
 * engine's options contract (docs/options.md), checked by the constructor: a bad one
 * throws [InvalidRetryOptionException] (an `IllegalArgumentException`) naming it.
 */
data class RetryOptions(
    /** What the engine learns under, e.g. "payment_capture". */
    val jobType: String,
    val engine: Engine = defaultEngine,
    val tenant: String? = null,
    /** Identifies this call to the engine (concurrency caps). Default: generated. */
    val jobId: String? = null,
    /** The caller's cap on attempts, the first included, 1–100 (the engine applies its own too). */
    val maxAttempts: Int? = null,
    /** Time from the first attempt's start after which no retry starts (the engine enforces it). */
    val deadline: Duration? = null,
    /**
     * How long one attempt may run ([retry] only: it is cancelled with `withTimeout` and
     * retried like any timeout; [retryBlocking] refuses it, a thread cannot be cancelled).
     */
    val timeout: Duration? = null,
    /** This call's own schedule (null: the matched policy's); the engine computes the delays. */
    val backoff: Backoff? = null,
    /** `false`: the call must not run twice; never retried after a failure that may have taken effect. */
    val idempotent: Boolean = true,
    /**
     * Sent with every decision: when the retry budget or a concurrency cap binds, a
     * priority may use only its share of it (null: not ranked).
     */
    val priority: Priority? = null,
    /** `false` for a failure means "do not retry it, throw it at once". */
    val retryOn: (Throwable) -> Boolean = { true },
    /**
     * Exception classes retried even when the engine would take them for a programming
     * error (`IllegalStateException`, `NullPointerException`…: see docs/errors.md).
     */
    val retryExceptions: Set<KClass<out Throwable>> = emptySet(),
    /** Exception classes never retried: thrown after their attempt. */
    val ignoreExceptions: Set<KClass<out Throwable>> = emptySet(),
    /** `true` after a failure stops retrying; with [maxAttempts] and [deadline], any stops. */
    val stopIf: (StopInfo) -> Boolean = { false },
    /** Called before each wait. Throwing stops the retries. */
    val onRetry: (RetryEvent) -> Unit = {},
    /** Called once when retries end without success (a dead-letter hook). */
    val onGiveUp: (GiveUpEvent) -> Unit = {},
) {
    /** What the engine made of these options, checked here. */
    internal val checked: Checked = check(this)
}

/**
 * One record per retry (INFO: job type, attempt, delay, method, error class) and per
 * give-up (WARNING after retries, INFO when nothing was retried), on the platform
 * logger `dev.smartretry` (routed to java.util.logging, or to SLF4J/Log4j by their
 * `System.Logger` bridges).
 */
private val log: System.Logger = System.getLogger("dev.smartretry")

private val sequence = AtomicLong()

/** Values the engine rejected when taken from a third-party exception: dropped, never fatal. */
private val HINT_FIELDS = setOf("http_status", "error_class", "error_code", "retry_after")

/**
 * One call's retry state, shared by the suspend and the blocking loop: it asks the
 * engine and tells it outcomes; the caller sleeps with its own primitive.
 */
private class RetryLoop(private val o: RetryOptions, private val counters: Counters?) {
    /** Read only with a deadline: a call that succeeds at once reads no clock. */
    private val startedAt = if (o.deadline != null) System.currentTimeMillis() else 0L
    /** Made on the first failure: a call that succeeds at once needs none. */
    private var jobId = o.jobId ?: ""
    private var firstFailureAt = 0L
    /** When the last attempt failed (before `decide`): what `released` is asked about. */
    private var failedAt = 0L
    private var attemptStartedAt = startedAt
    private var waited = 0L
    /** The failure being retried: outcomes are learned under its key. */
    private var retried: FailureInfo? = null
    var attempt = 1
        private set

    fun started() {
        if (attempt > 1) attemptStartedAt = System.currentTimeMillis()
    }

    fun succeeded() {
        counters?.successes?.incrementAndGet()
        val previous = retried
        if (previous == null) {
            // Counted in Kotlin, handed over in batches (Successes.kt): no native call.
            val engine = o.engine
            val state = engine.state
            state.count(engine, state.counter(o.jobType, o.tenant))
        } else {
            record(previous, success = true)
        }
    }

    /** The engine's decision to retry, or throws `error` when the engine says stop. */
    fun failed(error: Throwable): Decision {
        val now = System.currentTimeMillis()
        failedAt = now
        if (attempt == 1) {
            firstFailureAt = now
            if (jobId.isEmpty()) jobId = "${o.jobType}-${sequence.incrementAndGet()}"
            // The budget and the throttle see this job type's successes before its failure is decided.
            val state = o.engine.state
            state.flush(o.engine, state.counter(o.jobType, o.tenant))
        }
        retried?.let { record(it, success = false) }
        if (o.ignoreExceptions.any { it.isInstance(error) } || !o.retryOn(error)) giveUp(error, null, "not_retryable")
        if (o.stopIf(StopInfo(o.jobType, jobId, attempt, error, now - firstFailureAt))) giveUp(error, null, "stopped")
        val expected = o.retryExceptions.any { it.isInstance(error) }
        var info = describeFailure(error)
        var decided: Decision? = null
        while (decided == null) {
            try {
                decided = o.engine.decideCompact(features(info, now, expected))
            } catch (e: SmartRetryException.InvalidInput) {
                info = withoutHint(info, e.field) ?: throw e.also { it.addSuppressed(error) }
            }
        }
        val decision: Decision = decided
        counters?.last?.set(decision)
        if (!decision.shouldRetry) giveUp(error, decision, "engine")
        if (log.isLoggable(System.Logger.Level.INFO)) {
            log.log(
                System.Logger.Level.INFO,
                "smartretry: retrying job_type={0} attempt={1} delay_ms={2} method={3} error_class={4}",
                o.jobType, attempt, decision.delayMs, decision.method.name.lowercase(), decision.errorClass,
            )
        }
        o.onRetry(RetryEvent(o.jobType, jobId, attempt, error, decision))
        retried = info
        attempt += 1
        return decision
    }

    /**
     * Waits with [sleep] until the next attempt is due: the decision's delay, or sooner
     * when it has check-ins (its downstream is down for every caller) and, at one of
     * them, the engine says calls get through again.
     */
    inline fun waitOut(decision: Decision, sleep: (Long) -> Unit) {
        val step = decision.checkInMs?.takeIf { it > 0 } ?: decision.delayMs
        var left = decision.delayMs
        while (left > 0) {
            val nap = minOf(step, left)
            sleep(nap)
            left -= nap
            if (left > 0 && o.engine.released(o.jobType, failedAt)) break
        }
        waited = decision.delayMs - left
        counters?.let {
            it.retries.incrementAndGet()
            it.idleMs.addAndGet(waited)
        }
    }

    private fun features(info: FailureInfo, now: Long, expected: Boolean) = Features(
        jobType = o.jobType,
        attemptNumber = attempt,
        jobId = jobId,
        tenant = o.tenant,
        httpStatus = info.httpStatus,
        errorClass = info.errorClass,
        errorCode = info.errorCode,
        retryAfter = info.retryAfter,
        idempotent = o.idempotent,
        priority = o.priority,
        sinceFirstFailureMs = now - firstFailureAt,
        deadlineMs = o.deadline?.let { maxOf(0L, it.inWholeMilliseconds - (firstFailureAt - startedAt)) },
        maxAttempts = o.maxAttempts,
        expected = if (expected) true else null,
        backoffJson = o.checked.backoffJson,
    )

    private fun record(failure: FailureInfo, success: Boolean) {
        o.engine.recordCompact(
            Attempt(
                jobId = jobId,
                jobType = o.jobType,
                attemptNumber = attempt,
                success = success,
                delayMs = waited,
                tenant = o.tenant,
                httpStatus = failure.httpStatus,
                errorClass = failure.errorClass,
                errorCode = failure.errorCode,
                sinceFirstFailureMs = maxOf(0L, attemptStartedAt - firstFailureAt),
            ),
        )
    }

    private fun giveUp(error: Throwable, decision: Decision?, reason: String): Nothing {
        counters?.gaveUp?.incrementAndGet()
        // After retries, a warning; a failure never retried (a 400, a bug) reaches the caller anyway.
        val level = if (attempt > 1) System.Logger.Level.WARNING else System.Logger.Level.INFO
        if (log.isLoggable(level)) {
            log.log(level, "smartretry: gave up job_type={0} attempts={1} reason={2}: {3}", o.jobType, attempt, reason, error.toString())
        }
        error.addSuppressed(RetriesExhausted(attempt, decision))
        o.onGiveUp(GiveUpEvent(o.jobType, jobId, attempt, error, decision, reason))
        throw error
    }
}

private fun withoutHint(info: FailureInfo, field: String): FailureInfo? = when {
    field !in HINT_FIELDS -> null
    field == "http_status" && info.httpStatus != null -> info.copy(httpStatus = null)
    field == "error_class" && info.errorClass != null -> info.copy(errorClass = null)
    field == "error_code" && info.errorCode != null -> info.copy(errorCode = null)
    field == "retry_after" && info.retryAfter != null -> info.copy(retryAfter = null)
    else -> null
}

/**
 * Runs [block] until it succeeds, retrying failures when and as the engine decides,
 * waiting with `delay` (no thread is blocked); while the downstream is down for every
 * caller, it checks in every `Decision.checkInMs` and retries as soon as the engine
 * says calls get through again (`Engine.released`). Returns the block's value; when the
 * engine gives up, rethrows the last failure with a suppressed [RetriesExhausted].
 *
 * Cancellation is respected at once: a wait is cancelled with the coroutine (the
 * [CancellationException] then carries the failure waited out as a suppressed
 * exception), and a [CancellationException] from the block is rethrown, never retried. A
 * [TimeoutCancellationException] from a `withTimeout` inside the block (the coroutine
 * itself still active) is an attempt that timed out, and is retried like one.
 */
suspend fun <T> retry(options: RetryOptions, block: suspend (attempt: Int) -> T): T = retry(options, block, null)

internal suspend fun <T> retry(options: RetryOptions, block: suspend (attempt: Int) -> T, counters: Counters?): T {
    counters?.calls?.incrementAndGet()
    val loop = RetryLoop(options, counters)
    val timeout = options.timeout
    while (true) {
        val error = try {
            loop.started()
            val value = if (timeout == null) block(loop.attempt) else withTimeout(timeout) { block(loop.attempt) }
            loop.succeeded()
            return value
        } catch (e: TimeoutCancellationException) {
            currentCoroutineContext().ensureActive()
            e
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            // Errors (OutOfMemoryError, StackOverflowError…) are not failures to retry.
            e
        }
        val decision = loop.failed(error)
        try {
            loop.waitOut(decision) { delay(it) }
        } catch (e: CancellationException) {
            // A wait cancelled: the failure being waited out goes with the cancellation (as
            // Node's abort and Go's context error keep it), which still propagates.
            if (e.suppressed.none { it === error }) e.addSuppressed(error)
            throw e
        }
    }
}

/** [retry] with only a job type. */
suspend fun <T> retry(jobType: String, block: suspend (attempt: Int) -> T): T = retry(RetryOptions(jobType), block)

/**
 * The blocking form of [retry], for threads outside coroutines: waits with
 * `Thread.sleep`. An interrupt during a wait stops at once with [InterruptedException]
 * (the thread's interrupt flag set again).
 */
fun <T> retryBlocking(options: RetryOptions, block: (attempt: Int) -> T): T = retryBlocking(options, block, null)

internal fun <T> retryBlocking(options: RetryOptions, block: (attempt: Int) -> T, counters: Counters?): T {
    if (options.timeout != null) {
        throw InvalidRetryOptionException("timeout", "needs retry {}: a blocking call cannot be cancelled")
    }
    counters?.calls?.incrementAndGet()
    val loop = RetryLoop(options, counters)
    while (true) {
        val error = try {
            loop.started()
            val value = block(loop.attempt)
            loop.succeeded()
            return value
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw e
        } catch (e: Exception) {
            e
        }
        val decision = loop.failed(error)
        try {
            loop.waitOut(decision) { Thread.sleep(it) }
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw e
        }
    }
}
