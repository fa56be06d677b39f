package dev.smartretry

import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * Decisions a user would defend (issue 18), through `retry { }` against a real HTTP
 * server on 127.0.0.1: the caller's maxAttempts wins over the policy's, a new job type's
 * first failure is not throttled, and a hostile Retry-After is capped. The waits run on
 * runTest's virtual time: `retry` waits with `delay`, so nothing sleeps for real.
 */
class TrustTest {
    private val engine = Engine(seed = 7)
    private val seen = ConcurrentHashMap<String, AtomicInteger>()
    private val client = HttpClient.newHttpClient()

    /**
     * `/flaky?job=…` 503 for the first five requests of each job, then 200;
     * `/once?job=…` 503 for the first request of each job, then 200;
     * `/hostile?job=…` 429 with Retry-After: 99999999999 (about 3171 years) once, then 200;
     * anything else 200.
     */
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
        createContext("/") { exchange ->
            val path = exchange.requestURI.path
            val key = "$path:${exchange.requestURI.query.orEmpty().removePrefix("job=")}"
            val n = seen.computeIfAbsent(key) { AtomicInteger() }.incrementAndGet()
            val status = when {
                path == "/flaky" && n <= 5 -> 503
                path == "/once" && n == 1 -> 503
                path == "/hostile" && n == 1 -> 429.also { exchange.responseHeaders.add("Retry-After", "99999999999") }
                else -> 200
            }
            val body = "answered".toByteArray()
            exchange.sendResponseHeaders(status, body.size.toLong())
            exchange.responseBody.use { it.write(body) }
        }
        start()
    }

    @AfterEach
    fun close() {
        server.stop(0)
        engine.close()
    }

    private fun calls(key: String): Int = seen[key]?.get() ?: 0

    /** One attempt: a status of 400 or more throws [HttpStatusException] with its Retry-After. */
    private fun get(path: String): String {
        val request = HttpRequest.newBuilder(URI("http://127.0.0.1:${server.address.port}$path")).build()
        val response = client.send(request, HttpResponse.BodyHandlers.ofString())
        if (response.statusCode() >= 400) {
            throw HttpStatusException(response.statusCode(), response.headers().firstValue("retry-after").orElse(null))
        }
        return response.body()
    }

    @Test
    fun `maxAttempts 10 against a 503 that lasts five calls succeeds on call 6`() = runTest {
        val decisions = mutableListOf<Decision>()
        val options = RetryOptions(jobType = "export", engine = engine, maxAttempts = 10, onRetry = { decisions += it.decision })
        assertEquals("answered", retry(options) { get("/flaky?job=export-1") })
        assertEquals(6, calls("/flaky:export-1"), "the server saw six calls")
        assertEquals(5, decisions.size)
        assertTrue(decisions.all { it.shouldRetry && it.maxAttempts == 10 }, decisions.toString())
        assertEquals(decisions.sumOf { it.delayMs }, testScheduler.currentTime, "waited exactly the decided delays")
    }

    @Test
    fun `a new job type's first failure is retried at its rules delay, never throttled`() = runTest {
        // The engine has seen outcomes: a first-attempt success and a successful retry of another job type.
        val warm = RetryOptions(jobType = "warmup", engine = engine)
        assertEquals("answered", retry(warm) { get("/ok?job=warm-0") })
        assertEquals("answered", retry(warm) { get("/once?job=warm-1") })
        assertEquals(2, calls("/once:warm-1"))
        for (i in 0 until 40) {
            val decisions = mutableListOf<Decision>()
            val options = RetryOptions(jobType = "new_type_$i", engine = engine, onRetry = { decisions += it.decision })
            assertEquals("answered", retry(options) { get("/once?job=new-$i") })
            assertEquals(2, calls("/once:new-$i"), "job type $i: one failure, one retry")
            val d = decisions.single()
            assertTrue(d.shouldRetry, "job type $i: $d")
            // The service_unavailable rules: 2 s ± 20 %.
            assertTrue(d.delayMs <= 2_400, "job type $i: $d")
            assertFalse("adaptive_throttle" in d.policyGuardrails, "job type $i: $d")
            assertFalse("adaptive_throttle" in d.toString(), "job type $i: $d")
        }
    }

    @Test
    fun `a Retry-After of 99999999999 s is capped at the max delay, and said in years`() = runTest {
        val decisions = mutableListOf<Decision>()
        val options = RetryOptions(jobType = "email", engine = engine, onRetry = { decisions += it.decision })
        assertEquals("answered", retry(options) { get("/hostile?job=email-1") })
        assertEquals(2, calls("/hostile:email-1"))
        val d = decisions.single()
        assertEquals(300_000L, d.delayMs, d.rationale)
        assertEquals(300_000L, testScheduler.currentTime, "waited the capped delay")
        assertTrue("3171y" in d.rationale, d.rationale)
        assertTrue("capped at the max delay" in d.rationale, d.rationale)
        assertFalse(Regex("""\d{5,}h""").containsMatchIn(d.rationale), "an absurd hour count: ${d.rationale}")
    }
}
