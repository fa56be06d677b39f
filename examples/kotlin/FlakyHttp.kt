// A flaky HTTP endpoint called with smartretry's `retry { }`.
// The server (the JDK's built-in one, on 127.0.0.1) is briefly overloaded; the client
// throws HttpStatusException for an error status, so the engine sees the status and the
// Retry-After header, and decides whether and when to retry.
//
// Run: cd bindings/kotlin && mvn -q test -Dtest=ExamplesTest
package examples

import com.sun.net.httpserver.HttpServer
import dev.smartretry.Engine
import dev.smartretry.HttpStatusException
import dev.smartretry.RetryOptions
import dev.smartretry.retry
import java.net.InetSocketAddress
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.future.await
import kotlinx.coroutines.runBlocking

fun main() {
    println(runExample())
}

/** Charges five orders; the server is overloaded (503) on order 3's first two tries. */
fun runExample(): String {
    val tries = java.util.concurrent.ConcurrentHashMap<String, AtomicInteger>()
    val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
    server.createContext("/charge") { exchange ->
        val order = exchange.requestURI.query.orEmpty()
        val n = tries.computeIfAbsent(order) { AtomicInteger() }.incrementAndGet()
        val failing = order == "order=3" && n <= 2
        val body = (if (failing) "busy" else "charged").toByteArray()
        exchange.sendResponseHeaders(if (failing) 503 else 200, body.size.toLong())
        exchange.responseBody.use { it.write(body) }
    }
    server.start()
    val client = HttpClient.newHttpClient()
    // A policy with short waits keeps the example quick; without it 503s wait ~2 s, 4 s…
    Engine(seed = 1).use { engine ->
        engine.addPolicyJson(
            """{"name":"example","job_type_patterns":["charge"],"max_attempts":4,
               "base_delay_ms":50,"max_delay_ms":500,"jitter_percent":10,"priority":100}""",
        )
        try {
            return runBlocking {
                val options = RetryOptions(
                    jobType = "charge",
                    engine = engine,
                    onRetry = { println("attempt ${it.attempt} failed; retry in ${it.decision.delayMs} ms: ${it.decision.rationale}") },
                )
                (1..5).map { order ->
                    val url = URI("http://127.0.0.1:${server.address.port}/charge?order=$order")
                    retry(options) { attempt ->
                        val request = HttpRequest.newBuilder(url).build()
                        val response = client.sendAsync(request, HttpResponse.BodyHandlers.ofString()).await()
                        if (response.statusCode() >= 400) {
                            throw HttpStatusException(response.statusCode(), response.headers().firstValue("retry-after").orElse(null))
                        }
                        "order $order ${response.body()} (attempt $attempt)"
                    }
                }.joinToString(", ")
            }
        } finally {
            server.stop(0)
        }
    }
}
