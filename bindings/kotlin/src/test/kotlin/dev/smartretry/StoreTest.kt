package dev.smartretry

import java.nio.file.Files
import java.nio.file.Path
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

private const val T0 = 1_700_000_000_000L
private const val CALM = """{"strategy":{"guardrails":{"adaptive_throttle":false}}}"""

class StoreTest {
    /** 40 retries of `export` timeouts that failed after 2 s and succeeded after 6–12 s. */
    private fun teach(engine: Engine) {
        for (i in 0 until 40) {
            val t = T0 + i * 1_000L
            engine.record(
                Attempt(jobId = "f$i", jobType = "export", attemptNumber = 2, success = false,
                    errorClass = "timeout", delayMs = 2_000, sinceFirstFailureMs = 2_000),
                nowMs = t,
            )
            val okAt = 6_000L + (i % 7) * 1_000L
            engine.record(
                Attempt(jobId = "s$i", jobType = "export", attemptNumber = 3, success = true,
                    errorClass = "timeout", delayMs = okAt - 2_000, sinceFirstFailureMs = okAt),
                nowMs = t,
            )
        }
    }

    private val failure = Features(jobType = "export", attemptNumber = 1, errorClass = "timeout", sinceFirstFailureMs = 0)

    @Test
    fun `a SQLite store outlives the engine`(@TempDir dir: Path) {
        val url = "sqlite:///${dir.resolve("state.db")}"
        Engine(seed = 3, configJson = CALM, store = url).use { first ->
            teach(first)
            first.flush()
            assertTrue(org.json.JSONObject(first.metricsJson()).getString("store").startsWith("sqlite://"))
        }
        val learned = Engine(seed = 3, configJson = CALM, store = url).use { again ->
            assertEquals(Method.BAYESIAN, again.decide(failure, nowMs = T0 + 100_000).method)
            again.stats("export", "timeout", nowMs = T0 + 100_000)
        }
        assertEquals(80L, learned.totalAttempts)
        assertEquals(40L, learned.successfulRetries)
        Engine(seed = 3, configJson = CALM).use { fresh ->
            assertEquals(Method.RULES, fresh.decide(failure, nowMs = T0 + 100_000).method)
        }
    }

    @Test
    fun `a bad store is a config error naming the field, a corrupt file names the file`(@TempDir dir: Path) {
        val e = assertThrows<SmartRetryException.Config> { Engine(store = "ftp://elsewhere") }
        assertEquals("store", e.field)
        val corrupt = dir.resolve("corrupt.db")
        Files.write(corrupt, ByteArray(8192) { 'Z'.code.toByte() })
        val s = assertThrows<SmartRetryException.Store> { Engine(store = "sqlite:///$corrupt") }
        assertTrue(s.reason.contains(corrupt.toString()), s.reason)
    }
}
