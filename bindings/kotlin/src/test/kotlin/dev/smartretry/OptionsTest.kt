package dev.smartretry

import java.io.File
import java.net.SocketTimeoutException
import java.util.concurrent.atomic.AtomicInteger
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.runBlocking
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * The options contract (core/src/options.rs, docs/options.md) through RetryOptions: the
 * shared invalid-option vectors, random values fed to every option; and what gets
 * retried (docs/errors.md) and the controls: schedules, stops, statistics, logging.
 */
class OptionsTest {
    private val engine = Engine(seed = 7, configJson = BREAKER_AND_THROTTLE_OFF)

    @AfterEach
    fun close() = engine.close()

    private val vectors = JSONObject(
        File(System.getProperty("smartretry.vectors.dir") ?: "../../tests/vectors", "options/retry_options.json").readText(),
    )

    /** The options contract's canonical names as RetryOptions spells them. */
    private val kotlinNames = mapOf(
        "job_type" to "jobType", "tenant" to "tenant", "job_id" to "jobId", "max_attempts" to "maxAttempts",
        "deadline" to "deadline", "timeout" to "timeout", "priority" to "priority", "backoff" to "backoff",
    )

    private fun ms(v: Any): Duration = when {
        v is JSONObject && v.optString("$") == "inf" -> Duration.INFINITE
        else -> (v as Number).toDouble().milliseconds
    }

    private fun text(v: Any): String =
        if (v is JSONObject && v.optString("$") == "long") "x".repeat(v.optInt("length", 300)) else v as String

    /** RetryOptions with one option set from a vector's value, as Kotlin code would write it. */
    private fun build(option: String, v: Any): RetryOptions {
        val base = RetryOptions("opts", engine)
        return when (option) {
            "job_type" -> base.copy(jobType = text(v))
            "tenant" -> base.copy(tenant = text(v))
            "job_id" -> base.copy(jobId = text(v))
            "priority" -> base.copy(priority = Priority.valueOf((v as String).uppercase()))
            "max_attempts" -> base.copy(maxAttempts = (v as Number).toInt())
            "deadline" -> base.copy(deadline = ms(v))
            "timeout" -> base.copy(timeout = ms(v))
            "backoff" -> {
                val o = v as JSONObject
                base.copy(
                    backoff = Backoff(
                        strategy = o.optString("strategy").ifEmpty { null },
                        base = if (o.has("base")) ms(o["base"]) else null,
                        max = if (o.has("max")) ms(o["max"]) else null,
                        multiplier = if (o.has("multiplier")) {
                            (o["multiplier"] as? JSONObject)?.let { Double.POSITIVE_INFINITY } ?: o.getDouble("multiplier")
                        } else {
                            null
                        },
                        jitter = o.optString("jitter").ifEmpty { null },
                    ),
                )
            }
            else -> error("no Kotlin option for $option")
        }
    }

    private fun cases(section: String) = (0 until vectors.getJSONArray(section).length())
        .map { vectors.getJSONArray(section).getJSONObject(it) }
        .filter { c ->
            val hosts = c.optJSONArray("hosts")?.let { h -> (0 until h.length()).map(h::getString) }
            c.getString("option") in kotlinNames && (hosts == null || "kotlin" in hosts)
        }

    @Test
    fun `the invalid-option vectors are refused by the constructor, naming the option`() {
        val cases = cases("invalid")
        assertTrue(cases.size >= 20, "${cases.size} cases")
        for (c in cases) {
            val option = kotlinNames.getValue(c.getString("option"))
            val field = if (c.has("sub")) "$option.${c.getString("sub")}" else option
            val e = assertThrows<InvalidRetryOptionException>("${c.getString("option")}=${c["value"]}") {
                build(c.getString("option"), c["value"])
            }
            assertEquals(field, e.option, e.message)
            assertTrue(e is IllegalArgumentException)
        }
    }

    @Test
    fun `the valid-option vectors are accepted`() {
        for (c in cases("valid")) build(c.getString("option"), c["value"])
    }

    @Test
    fun `fuzz - every option fails in the constructor naming itself, or never fails later`() {
        val rng = Random(20240611)
        val strings = listOf("", "x", "  ", "a\nb", "y".repeat(300), "linear", "full", "25%", "150%", "wobbly")
        val ints = listOf(0, 1, -1, 3, 100, 101, Int.MAX_VALUE, Int.MIN_VALUE)
        val durations = listOf(Duration.ZERO, 1.milliseconds, (-1).seconds, 5.milliseconds, Duration.INFINITE, 3000.seconds * 1000)
        val doubles = listOf(0.0, 0.5, 1.0, 2.0, 100.0, 101.0, Double.NaN, Double.POSITIVE_INFINITY)
        var accepted = 0
        var refused = 0
        repeat(600) {
            var o = RetryOptions("fuzz", engine)
            val set = mutableSetOf<String>()
            val built = try {
                repeat(1 + rng.nextInt(3)) {
                    when (rng.nextInt(7)) {
                        0 -> { set += "jobType"; o = o.copy(jobType = strings.random(rng)) }
                        1 -> { set += "tenant"; o = o.copy(tenant = strings.random(rng)) }
                        2 -> { set += "jobId"; o = o.copy(jobId = strings.random(rng)) }
                        3 -> { set += "maxAttempts"; o = o.copy(maxAttempts = ints.random(rng)) }
                        4 -> { set += "deadline"; o = o.copy(deadline = durations.random(rng)) }
                        5 -> { set += "timeout"; o = o.copy(timeout = durations.random(rng)) }
                        else -> {
                            set += "backoff"
                            o = o.copy(
                                backoff = Backoff(strings.random(rng), durations.random(rng), durations.random(rng), doubles.random(rng), strings.random(rng)),
                            )
                        }
                    }
                }
                o
            } catch (e: InvalidRetryOptionException) {
                refused++
                assertTrue(e.option.substringBefore('.') in set, "${e.option} not among $set")
                null
            }
            if (built != null) {
                accepted++
                // A success, then a failure the engine decides on (a 400: never retried, so
                // no real wait): neither may fail with an error of ours.
                try {
                    runBlocking {
                        assertEquals("ok", retry(built) { "ok" })
                        retry(built) { throw HttpStatusException(400) }
                    }
                } catch (e: SmartRetryException) {
                    throw AssertionError("$built accepted, then the engine's $e", e)
                } catch (e: HttpStatusException) {
                    // The function's own failure: not ours.
                }
            }
        }
        assertTrue(accepted > 50 && refused > 200, "$accepted accepted, $refused refused")
    }

    // ── what gets retried, and the controls ─────────────────────────────────────

    @Test
    fun `a programming error is thrown after one attempt, a network error is retried`() {
        for (bug in listOf(IllegalStateException("no session"), NullPointerException("x"), IllegalArgumentException("y"))) {
            val calls = AtomicInteger()
            assertThrows<RuntimeException> {
                retryBlocking(RetryOptions("bug_${bug.javaClass.simpleName}", engine)) { calls.incrementAndGet(); throw bug }
            }
            assertEquals(1, calls.get(), bug.javaClass.simpleName)
        }
        val calls = AtomicInteger()
        val value = retryBlocking(RetryOptions("net", engine, backoff = Backoff(base = 1.milliseconds))) {
            if (calls.incrementAndGet() < 3) throw SocketTimeoutException("read timed out") else "ok"
        }
        assertEquals("ok", value)
        assertEquals(3, calls.get())
    }

    @Test
    fun `retryExceptions retries a programming error, ignoreExceptions never retries`() {
        val calls = AtomicInteger()
        val fast = Backoff(strategy = "constant", base = 1.milliseconds)
        val value = retryBlocking(RetryOptions("listed", engine, backoff = fast, retryExceptions = setOf(IllegalStateException::class))) {
            if (calls.incrementAndGet() < 3) throw IllegalStateException("flaky driver") else "ok"
        }
        assertEquals("ok", value)
        assertEquals(3, calls.get())
        val ignored = AtomicInteger()
        assertThrows<SocketTimeoutException> {
            retryBlocking(RetryOptions("ignored", engine, ignoreExceptions = setOf(SocketTimeoutException::class))) {
                ignored.incrementAndGet(); throw SocketTimeoutException("slow")
            }
        }
        assertEquals(1, ignored.get())
    }

    @Test
    fun `a call's own schedule sets the waits, stops combine, and a Retrier keeps statistics`() = runBlocking {
        val events = mutableListOf<Long>()
        val gaveUp = mutableListOf<GiveUpEvent>()
        val retrier = Retrier(
            RetryOptions(
                "sched", engine,
                backoff = Backoff(strategy = "exponential", base = 10.milliseconds, multiplier = 3.0),
                onRetry = { events += it.decision.delayMs },
                onGiveUp = { gaveUp += it },
                stopIf = { it.attempt >= 3 && it.error is IllegalStateException },
                retryExceptions = setOf(IllegalStateException::class),
            ),
        )
        val calls = AtomicInteger()
        assertEquals("ok", retrier.retry { if (calls.incrementAndGet() < 3) throw SocketTimeoutException("x") else "ok" })
        assertEquals(listOf(10L, 30L), events.take(2))
        assertThrows<IllegalStateException> { runBlocking { retrier.retry<String> { throw IllegalStateException("down") } } }
        assertEquals("stopped", gaveUp.single().reason)
        val s = retrier.statistics
        assertEquals(listOf(2L, 6L, 4L, 1L, 1L), listOf(s.calls, s.attempts, s.retries, s.successes, s.gaveUp))
        assertTrue(s.idle > Duration.ZERO)
        assertNotNull(s.lastDecision)
    }

    @Test
    fun `one log record per retry, and a never-retried failure's give-up is INFO`() {
        val records = mutableListOf<LogRecord>()
        val handler = object : Handler() {
            override fun publish(record: LogRecord) {
                records += record
            }
            override fun flush() {}
            override fun close() {}
        }
        val logger = Logger.getLogger("dev.smartretry")
        logger.addHandler(handler)
        try {
            val calls = AtomicInteger()
            retryBlocking(RetryOptions("logged", engine, backoff = Backoff(base = 1.milliseconds))) {
                if (calls.incrementAndGet() < 2) throw HttpStatusException(503) else "ok"
            }
            val retry = records.single()
            assertEquals(Level.INFO, retry.level)
            assertEquals(listOf("logged", 1, 1L, "rules"), retry.parameters.take(4))
            records.clear()
            assertThrows<HttpStatusException> { retryBlocking(RetryOptions("bad_request", engine)) { throw HttpStatusException(400) } }
            assertEquals(Level.INFO, records.single().level)
        } finally {
            logger.removeHandler(handler)
        }
    }

    @Test
    fun `a closed engine returns a successful block's value, like Go`() = runBlocking {
        val closed = Engine(seed = 1)
        closed.close()
        assertEquals("fine", retry(RetryOptions("after_close", closed)) { "fine" })
        assertEquals("fine", retryBlocking(RetryOptions("after_close", closed)) { "fine" })
        // Past a batch of counted successes (1024), whose hand-over finds the engine closed.
        repeat(1100) { assertEquals(it, retry(RetryOptions("after_close", closed)) { _ -> it }) }
        // A failure cannot be decided by a closed engine: its error, not the failure retried.
        val e = assertThrows<Exception> { runBlocking { retry(RetryOptions("after_close", closed)) { throw HttpStatusException(503) } } }
        assertTrue(e !is HttpStatusException, "$e")
        Unit
    }

    @Test
    fun `the timeout option cancels a hung attempt, which is retried`() = runBlocking {
        val attempts = AtomicInteger()
        val options = RetryOptions("hung", engine, timeout = 50.milliseconds, backoff = Backoff(base = 1.milliseconds))
        val value = retry(options) { attempt ->
            attempts.incrementAndGet()
            if (attempt == 1) kotlinx.coroutines.delay(60_000)
            "ok on $attempt"
        }
        assertEquals("ok on 2", value)
        assertEquals(2, attempts.get())
    }

    @Test
    fun `a timeout needs retry, not retryBlocking`() {
        val e = assertThrows<InvalidRetryOptionException> {
            retryBlocking(RetryOptions("blocking", engine, timeout = 1.seconds)) { "never" }
        }
        assertEquals("timeout", e.option)
    }
}
