package dev.smartretry

import kotlinx.coroutines.runBlocking

/**
 * Per-call cost from Kotlin, run by scripts/bench-kotlin.sh against the release library
 * (not a test). Each case is warmed up (JIT) for 2 s, then timed in 5 rounds of
 * `n` calls; the median round is reported, with the spread.
 */
private fun measure(name: String, n: Int, body: () -> Unit) {
    val warmUntil = System.nanoTime() + 2_000_000_000L
    while (System.nanoTime() < warmUntil) body()
    val rounds = (1..5).map {
        val t0 = System.nanoTime()
        repeat(n) { body() }
        (System.nanoTime() - t0).toDouble() / n
    }.sorted()
    println("%-44s %8.0f ns/call (rounds %.0f–%.0f)".format(name, rounds[2], rounds.first(), rounds.last()))
}

fun main() {
    Engine(seed = 1).use { engine ->
        val failure = Features(jobType = "payment_capture", attemptNumber = 1, httpStatus = 503)
        measure("isEmergencyStopped (the bare JNA crossing)", 20_000) { engine.isEmergencyStopped() }
        measure("decide (503, rules tier)", 20_000) { engine.decide(failure) }
        measure("recordSuccesses", 20_000) { engine.recordSuccesses("payment_capture") }
        val options = RetryOptions(jobType = "payment_capture", engine = engine)
        measure("retryBlocking { } succeeding at once", 20_000) { retryBlocking(options) { it } }
        measure("retry { } succeeding at once (in runBlocking)", 20_000) { runBlocking { retry(options) { it } } }
    }
}
