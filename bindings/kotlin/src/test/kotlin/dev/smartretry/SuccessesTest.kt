package dev.smartretry

import kotlinx.coroutines.runBlocking
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** First-attempt successes are counted in Kotlin and reach the engine in batches. */
class SuccessesTest {
    private val engine = fastEngine()

    @AfterEach
    fun close() = engine.close()

    /** How many calls of [jobType] the engine has been told about (its health view). */
    private fun requests(jobType: String) = JSONObject(engine.healthJson(jobType, null)).getInt("requests")

    @Test
    fun `successes make no native call until they are flushed`() = runBlocking {
        repeat(100) { i ->
            val options = RetryOptions(jobType = "fast", engine = engine, tenant = if (i % 2 == 1) "acme" else null)
            if (i % 3 == 0) retryBlocking(options) { it } else retry(options) { it }
        }
        assertEquals(0, requests("fast"), "each success crossed into Rust")
        engine.flushSuccesses()
        assertEquals(100, requests("fast"))
        engine.flushSuccesses()
        assertEquals(100, requests("fast"), "a second flush handed over more")
    }

    @Test
    fun `successes are handed over every 1024`() {
        val options = RetryOptions(jobType = "bulk", engine = engine)
        repeat(2100) { retryBlocking(options) { it } }
        assertEquals(2048, requests("bulk"))
        engine.flushSuccesses()
        assertEquals(2100, requests("bulk"))
    }

    @Test
    fun `counted successes reach the engine before a failure is decided`() {
        val options = RetryOptions(jobType = "flaky_job", engine = engine)
        repeat(3) { retryBlocking(options) { it } }
        var seen = -1
        val failing = options.copy(retryOn = { seen = requests("flaky_job"); false })
        assertThrows<HttpStatusException> { retryBlocking(failing) { throw HttpStatusException(503) } }
        assertEquals(3, seen)
    }
}
