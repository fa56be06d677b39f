package dev.smartretry

import java.net.ConnectException
import java.net.SocketTimeoutException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** A Spring-style client exception: the status is an object with `value()`. */
class FakeStatus(private val code: Int) {
    fun value(): Int = code
}
class ForeignHttpException(private val status: FakeStatus) : RuntimeException("foreign") {
    fun getStatusCode(): FakeStatus = status
}

/** A real engine whose `flaky` jobs back off 5–20 ms, so the tests wait for real. */
fun fastEngine() = Engine(seed = 7).also {
    it.addPolicyJson(
        """{"name":"fast","job_type_patterns":["flaky.*"],"max_attempts":5,"base_delay_ms":5,
           "max_delay_ms":20,"jitter_percent":0,"priority":100}""",
    )
}

const val BREAKER_AND_THROTTLE_OFF =
    """{"strategy":{"circuit_breaker":{"enabled":false},"guardrails":{"adaptive_throttle":false}}}"""

class RetryTest {
    private val engine = fastEngine()

    @AfterEach
    fun close() = engine.close()

    private fun options(jobType: String = "flaky_job", maxAttempts: Int? = null) =
        RetryOptions(jobType = jobType, engine = engine, maxAttempts = maxAttempts)

    @Test
    fun `retries until the block succeeds and teaches the engine`() = runBlocking {
        val calls = AtomicInteger()
        val events = mutableListOf<RetryEvent>()
        val value = retry(options().copy(onRetry = { events += it })) { attempt ->
            calls.incrementAndGet()
            if (attempt < 3) throw HttpStatusException(503)
            "done on $attempt"
        }
        assertEquals("done on 3", value)
        assertEquals(3, calls.get())
        assertEquals(listOf(1, 2), events.map { it.attempt })
        assertTrue(events.all { it.decision.shouldRetry && it.decision.policy == "fast" })
        val stats = engine.stats("flaky_job", "service_unavailable")
        assertEquals(2L, stats.totalAttempts)
        assertEquals(1L, stats.successfulRetries)
    }

    @Test
    fun `the priority goes with every decision`() {
        // A budget of 3 retries a minute (no share of first attempts), of which low may use 1.
        engine.patchGuardrails("""{"adaptive_throttle":false,"min_retries_per_sec":0.05,"max_budget_percent":0}""")
        fun run(priority: Priority): Pair<Int, String> {
            val calls = AtomicInteger()
            val e = assertThrows<HttpStatusException> {
                retryBlocking(options().copy(priority = priority)) { calls.incrementAndGet(); throw HttpStatusException(503) }
            }
            return calls.get() to e.suppressed.filterIsInstance<RetriesExhausted>().single().decision!!.rationale
        }
        val (lowCalls, lowReason) = run(Priority.LOW)
        assertEquals(2, lowCalls)
        assertTrue("low priority may use 1 of them" in lowReason, lowReason)
        // Critical work may use the whole budget: two more retries.
        val (criticalCalls, criticalReason) = run(Priority.CRITICAL)
        assertEquals(3, criticalCalls)
        assertTrue("3 of 3 retries" in criticalReason, criticalReason)
    }

    @Test
    fun `a non-retryable failure is thrown at once with the engine's reason`() = runBlocking {
        val calls = AtomicInteger()
        val e = assertThrows<HttpStatusException> {
            runBlocking { retry(options()) { calls.incrementAndGet(); throw HttpStatusException(404) } }
        }
        assertEquals(1, calls.get())
        val exhausted = e.suppressed.filterIsInstance<RetriesExhausted>().single()
        assertEquals(1, exhausted.attempts)
        assertFalse(exhausted.decision!!.shouldRetry)
    }

    @Test
    fun `the caller's max attempts is obeyed`() {
        val calls = AtomicInteger()
        assertThrows<SocketTimeoutException> {
            runBlocking { retry(options(maxAttempts = 2)) { calls.incrementAndGet(); throw SocketTimeoutException("slow") } }
        }
        assertEquals(2, calls.get())
    }

    @Test
    fun `retryOn false rethrows without asking the engine`() {
        val calls = AtomicInteger()
        assertThrows<IllegalStateException> {
            runBlocking {
                retry(options().copy(retryOn = { it !is IllegalStateException })) {
                    calls.incrementAndGet(); error("bug")
                }
            }
        }
        assertEquals(1, calls.get())
    }

    @Test
    fun `a non-idempotent call is not retried after a failure that may have taken effect`() {
        val calls = AtomicInteger()
        assertThrows<HttpStatusException> {
            runBlocking {
                retry(options().copy(idempotent = false)) { calls.incrementAndGet(); throw HttpStatusException(503) }
            }
        }
        assertEquals(1, calls.get())
        // A refused connection never reached the server: retrying it is safe.
        val value = runBlocking {
            retry(options().copy(idempotent = false)) { attempt -> if (attempt == 1) throw ConnectException("refused") else attempt }
        }
        assertEquals(2, value)
    }

    @Test
    fun `the emergency stop wins`() {
        engine.emergencyStop(true)
        val calls = AtomicInteger()
        assertThrows<HttpStatusException> {
            runBlocking { retry(options()) { calls.incrementAndGet(); throw HttpStatusException(503) } }
        }
        assertEquals(1, calls.get())
        assertTrue(engine.isEmergencyStopped())
    }

    @Test
    fun `cancelling the caller stops a wait at once`() = runBlocking {
        // 503 under the default policy waits ~2 s: cancellation must not wait it out.
        val failed = CompletableDeferred<Unit>()
        val calls = AtomicInteger()
        val job = async {
            retry(RetryOptions("slow_job", engine = engine)) {
                calls.incrementAndGet()
                failed.complete(Unit)
                throw HttpStatusException(503)
            }
        }
        failed.await()
        yield()
        job.cancel()
        assertThrows<CancellationException> { runBlocking { job.await() } }
        assertTrue(job.isCancelled)
        assertEquals(1, calls.get())
    }

    @Test
    fun `a cancelled wait carries the failure it was waiting out`() = runBlocking {
        val failure = HttpStatusException(503)
        val failed = CompletableDeferred<Unit>()
        val seen = CompletableDeferred<CancellationException>()
        val job = launch {
            try {
                retry(RetryOptions("cancelled_wait", engine = engine)) {
                    failed.complete(Unit)
                    throw failure
                }
            } catch (e: CancellationException) {
                seen.complete(e)
                throw e
            }
        }
        failed.await()
        yield()
        job.cancelAndJoin()
        assertTrue(seen.await().suppressed.any { it === failure })
    }

    @Test
    fun `a wait for a downstream that is down ends when calls get through again`() = runBlocking {
        // Without the breaker (its cool-down would hold every job 30 s regardless) and the
        // adaptive throttle (it would defer the retry a minute): the wait is probe-and-release's.
        Engine(seed = 7, configJson = BREAKER_AND_THROTTLE_OFF).use { engine ->
            // Down for every caller: 1 call of 11 accepted.
            engine.recordSuccesses("webhook")
            repeat(10) { engine.decide(Features(jobType = "webhook", attemptNumber = 1, httpStatus = 503, jobId = "w$it")) }

            var decision: Decision? = null
            val failed = CompletableDeferred<Unit>()
            launch {
                failed.await()
                kotlinx.coroutines.delay(200)
                engine.recordSuccesses("webhook") // another worker's call got through: it is back
            }
            val started = System.nanoTime()
            val value = retry(RetryOptions("webhook", engine = engine, onRetry = { decision = it.decision })) { attempt ->
                if (attempt == 1) {
                    failed.complete(Unit)
                    throw HttpStatusException(503)
                }
                attempt
            }
            val tookMs = (System.nanoTime() - started) / 1_000_000
            val planned = checkNotNull(decision) { "no retry was scheduled" }
            assertEquals(2, value)
            assertNotNull(planned.checkInMs, planned.rationale)
            assertTrue(tookMs < planned.delayMs, "released after $tookMs ms, planned ${planned.delayMs} ms")
            assertEquals(1L, JSONObject(engine.metricsJson()).getLong("released_total"))
        }
    }

    @Test
    fun `released names the field it rejects`() {
        val now = System.currentTimeMillis()
        assertFalse(engine.released("webhook", now))
        val late = assertThrows<SmartRetryException.InvalidInput> { engine.released("webhook", now + 60_000) }
        assertEquals("failed_at_ms", late.field)
        val negative = assertThrows<SmartRetryException.InvalidInput> { engine.released("webhook", -1) }
        assertEquals("failed_at_ms", negative.field)
        val noType = assertThrows<SmartRetryException.InvalidInput> { engine.released("", now) }
        assertEquals("job_type", noType.field)
    }

    @Test
    fun `a withTimeout inside the block is a failed attempt, retried`() = runBlocking {
        val value = retry(options()) { attempt ->
            withTimeout(if (attempt == 1) 1.milliseconds else 10_000.milliseconds) {
                if (attempt == 1) kotlinx.coroutines.delay(1_000)
                attempt
            }
        }
        assertEquals(2, value)
    }

    @Test
    fun `the blocking form retries and stops when interrupted`() {
        assertEquals(3, retryBlocking(options()) { attempt -> if (attempt < 3) throw SocketTimeoutException() else attempt })

        val failedOnce = CountDownLatch(1)
        var thrown: Throwable? = null
        val worker = Thread {
            try {
                retryBlocking(RetryOptions("slow_job", engine = engine)) { failedOnce.countDown(); throw HttpStatusException(503) }
            } catch (e: Throwable) {
                thrown = e
            }
        }
        worker.start()
        failedOnce.await()
        worker.interrupt()
        worker.join()
        assertTrue(thrown is InterruptedException, "got $thrown")
    }

    @Test
    fun `bad input is a typed exception naming the field`() {
        // A bad option: refused by RetryOptions' constructor, before any call.
        val e = assertThrows<InvalidRetryOptionException> { options(jobType = "") }
        assertEquals("jobType", e.option)
        val c = assertThrows<SmartRetryException.Config> { engine.updateGuardrails(engine.guardrails().copy(maxAttempts = 0)) }
        assertEquals("max_attempts", c.field)
        assertThrows<SmartRetryException.NotFound> { engine.removePolicy("nope") }
        val n = assertThrows<SmartRetryException.InvalidInput> {
            engine.decide(Features(jobType = "x", attemptNumber = 1, sinceFirstFailureMs = -1))
        }
        assertEquals("since_first_failure_ms", n.field)
    }

    @Test
    fun `a hint the engine rejects is dropped, not fatal`() = runBlocking {
        // An out-of-range status from a foreign client: retried as an unknown failure.
        val value = retry(options()) { attempt -> if (attempt == 1) throw HttpStatusException(999) else attempt }
        assertEquals(2, value)
    }

    @Test
    fun `HTTP exceptions are classified by status`() {
        assertEquals(FailureInfo(httpStatus = 429, retryAfter = "3"), describeFailure(HttpStatusException(429, "3")))
        assertEquals(502, describeFailure(ForeignHttpException(FakeStatus(502))).httpStatus)
        assertNull(describeFailure(ForeignHttpException(FakeStatus(502))).errorClass)
        assertEquals(503, describeFailure(java.util.concurrent.ExecutionException(HttpStatusException(503))).httpStatus)
        assertEquals("SocketTimeoutException", describeFailure(SocketTimeoutException()).errorClass)
        assertEquals("ECONNREFUSED", describeFailure(ConnectException()).errorCode)
        val d = engine.decide(Features(jobType = "api", attemptNumber = 1, httpStatus = 429, retryAfter = "3"), 1_700_000_000_000)
        assertEquals("rate_limit", d.policy)
        assertTrue(d.delayMs >= 3_000, "Retry-After is a floor: ${d.delayMs}")
    }
}
