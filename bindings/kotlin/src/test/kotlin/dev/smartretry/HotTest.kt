package dev.smartretry

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The compact path (decideCompact, recordCompact) answers exactly as the generated one. */
class HotTest {
    private val now = 1_700_000_000_000L

    @Test
    fun `compact decisions equal generated ones, step by step`() {
        val a = Engine(seed = 3)
        val b = Engine(seed = 3)
        val failures = listOf(
            Features(jobType = "pay", attemptNumber = 1, httpStatus = 503, tenant = "acme", jobId = "j1"),
            Features(jobType = "pay", attemptNumber = 2, httpStatus = 429, retryAfter = "7", idempotent = false),
            Features(jobType = "sync", attemptNumber = 1, errorClass = "timeout", priority = Priority.CRITICAL,
                health = mapOf("cpu" to 0.25), deadlineMs = 60_000, maxAttempts = 4, queue = "q", workerVersion = "v1"),
            Features(jobType = "naïve-ünïcode", attemptNumber = 3, errorCode = "ECONNRESET", sinceFirstFailureMs = 1234),
        )
        for ((i, f) in failures.withIndex()) {
            val t = now + i * 1000L
            assertEquals(a.decide(f, t), b.decideCompact(f, t))
            val outcome = Attempt(jobId = "j$i", jobType = f.jobType, attemptNumber = 2, success = i % 2 == 0,
                delayMs = 500, httpStatus = f.httpStatus, errorClass = f.errorClass, tenant = f.tenant)
            a.record(outcome, t + 500)
            b.recordCompact(outcome, t + 500)
        }
        assertEquals(a.statsJson("pay"), b.statsJson("pay"))
        a.close()
        b.close()
    }

    @Test
    fun `errors name the field, as on the generated path`() {
        Engine(seed = 1).use { e ->
            val bad = Features(jobType = "pay", attemptNumber = 1, httpStatus = -5)
            val generated = assertThrows<SmartRetryException.InvalidInput> { e.decide(bad) }
            val compact = assertThrows<SmartRetryException.InvalidInput> { e.decideCompact(bad) }
            assertEquals(generated.field to generated.reason, compact.field to compact.reason)
            val empty = assertThrows<SmartRetryException.InvalidInput> {
                e.recordCompact(Attempt(jobId = "", jobType = "pay", attemptNumber = 1, success = true))
            }
            assertEquals("job_id", empty.field)
            assertThrows<SmartRetryException.InvalidInput> { e.decideCompact(bad.copy(httpStatus = 503), nowMs = -1) }
        }
    }

    @Test
    fun `a closed engine is refused, never reached`() {
        val e = Engine(seed = 1)
        e.decideCompact(Features(jobType = "pay", attemptNumber = 1))
        e.close()
        assertThrows<IllegalStateException> { e.decideCompact(Features(jobType = "pay", attemptNumber = 1)) }
    }

    @Test
    fun `an input longer than the buffer takes the generated path`() {
        Engine(seed = 1).use { e ->
            val f = Features(jobType = "pay", attemptNumber = 1, health = (1..400).associate { "signal_$it" to 0.5 })
            val error = runCatching { e.decide(f) }.exceptionOrNull()
            val compactError = runCatching { e.decideCompact(f) }.exceptionOrNull()
            assertEquals(error?.javaClass, compactError?.javaClass)
            assertEquals(error?.message, compactError?.message)
        }
    }
}

private fun Engine.statsJson(jobType: String) = stats(jobType, "service_unavailable", null, 1_700_000_010_000L)
