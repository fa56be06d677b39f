package dev.smartretry

import io.github.resilience4j.kotlin.retry.executeSuspendFunction
import io.github.resilience4j.retry.Retry
import io.github.resilience4j.retry.RetryConfig
import java.time.Duration
import kotlinx.coroutines.runBlocking

/**
 * Per-call cost from Kotlin, side by side with resilience4j's Retry in the same process;
 * run by scripts/bench-kotlin.sh against the release library (not a test; numbers in
 * docs/performance.md). Each case is warmed up (JIT) for 2 s, then timed in 7 rounds of
 * `n` calls; the median round is reported with the spread, in wall time and in the
 * thread's CPU time (what a call costs even on a loaded machine, where wall time also
 * counts waiting for a core). Ratios use CPU time. Results go to a sink so the JIT
 * cannot drop the calls.
 */
private var sink = 0L
private val threads = java.lang.management.ManagementFactory.getThreadMXBean()

private fun report(name: String, wall: List<Double>, cpu: List<Double>): Double {
    val sorted = wall.sorted()
    val cpuMedian = cpu.sorted()[cpu.size / 2]
    println("%-54s %7.0f ns/call wall (rounds %.0f–%.0f), %7.0f ns/call CPU".format(
        name, sorted[sorted.size / 2], sorted.first(), sorted.last(), cpuMedian))
    return cpuMedian
}

private inline fun measure(name: String, n: Int, body: () -> Long): Double {
    val warmUntil = System.nanoTime() + 2_000_000_000L
    while (System.nanoTime() < warmUntil) sink += body()
    val wall = ArrayList<Double>()
    val cpu = ArrayList<Double>()
    repeat(7) {
        val c0 = threads.currentThreadCpuTime
        val t0 = System.nanoTime()
        repeat(n) { sink += body() }
        wall += (System.nanoTime() - t0).toDouble() / n
        cpu += (threads.currentThreadCpuTime - c0).toDouble() / n
    }
    return report(name, wall, cpu)
}

/** The same for a suspend body, inside one runBlocking (its own cost excluded): the inline
 * lambda runs in the coroutine. */
private fun measureSuspend(name: String, n: Int, body: suspend () -> Long): Double =
    runBlocking { measure(name, n) { body() } }

fun main() {
    println("load average: " + java.io.File("/proc/loadavg").readText().trim())
    Engine(seed = 1).use { engine ->
        val failure = Features(jobType = "payment_capture", attemptNumber = 1, httpStatus = 503, jobId = "job-1", tenant = "acme")
        val attempt = Attempt(
            jobId = "job-1", jobType = "payment_capture", attemptNumber = 2, success = false,
            delayMs = 1000, httpStatus = 503, tenant = "acme", sinceFirstFailureMs = 1000,
        )
        println("-- crossings (one failure's calls)")
        measure("isEmergencyStopped (a generated call, no arguments)", 20_000) {
            if (engine.isEmergencyStopped()) 1 else 0
        }
        val generatedDecide = measure("decide, generated (uniffi: RustBuffer + JNA Structures)", 20_000) {
            engine.decide(failure).delayMs
        }
        val compactDecide = measure("decide, compact (JNA direct, integers only)", 20_000) {
            engine.decideCompact(failure).delayMs
        }
        val generatedRecord = measure("record, generated", 20_000) { engine.record(attempt); 1 }
        val compactRecord = measure("record, compact", 20_000) { engine.recordCompact(attempt); 1 }
        measure("JNA direct crossing, no work (the compact path's floor)", 200_000) { nativeNoop(); 1 }
        val pair = measure("per failure in one loop: decide + record, compact", 20_000) {
            engine.decideCompact(failure).delayMs.also { engine.recordCompact(attempt) }
        }
        println("   CPU per failure, decide + record: generated %.1f µs, compact %.1f µs (%.1f µs in one loop)".format(
            (generatedDecide + generatedRecord) / 1000, (compactDecide + compactRecord) / 1000, pair / 1000))

        println("-- a call that succeeds at once")
        val options = RetryOptions(jobType = "payment_capture", engine = engine)
        val r4j = Retry.of("payment_capture", RetryConfig.custom<Any>().maxAttempts(3).waitDuration(Duration.ofMillis(100)).build())
        val r4jBlocking = measure("resilience4j Retry.executeSupplier { }", 1_000_000) { r4j.executeSupplier { 1L } }
        val ours = measure("smartretry retryBlocking { }", 1_000_000) { retryBlocking(options) { 1L } }
        val r4jSuspend = measureSuspend("resilience4j Retry.executeSuspendFunction { }", 1_000_000) {
            r4j.executeSuspendFunction { 1L }
        }
        val oursSuspend = measureSuspend("smartretry retry { }", 1_000_000) { retry(options) { 1L } }
        val bare = measure("the block alone (no retry helper)", 1_000_000) { 1L }
        println("   CPU ratio smartretry / resilience4j: blocking %.2fx, suspend %.2fx; overhead over the bare block %.0f / %.0f ns".format(
            ours / r4jBlocking, oursSuspend / r4jSuspend, ours - bare, oursSuspend - bare))
        engine.flushSuccesses()
        check(bare >= 0)
    }
    if (sink == 42L) println() // keeps the sink alive
}
