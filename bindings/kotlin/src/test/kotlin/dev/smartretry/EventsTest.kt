package dev.smartretry

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class EventsTest {
    private val engine = fastEngine()

    @AfterEach
    fun close() = engine.close()

    /** The collector's subscription is open (a hang guard, not a speed limit). */
    private suspend fun awaitSubscribers(n: Int) = withTimeout(10_000) {
        while (engine.eventSubscribers() != n) delay(5)
    }

    private fun CoroutineScope.collectInto(flow: kotlinx.coroutines.flow.Flow<Event>, into: Channel<Event>) =
        launch { flow.collect { into.send(it) } }

    @Test
    fun `a retry's lifecycle arrives in order and cancelling closes the subscription`() = runBlocking {
        val received = Channel<Event>(Channel.UNLIMITED)
        val lifecycle = arrayOf(EventKind.RETRY_SCHEDULED, EventKind.RETRY_SUCCEEDED, EventKind.RETRY_FAILED, EventKind.GAVE_UP)
        val collector = collectInto(engine.events(*lifecycle), received)
        awaitSubscribers(1)

        val ok = retry(RetryOptions(jobType = "flaky_ok", engine = engine, jobId = "ok")) { attempt ->
            if (attempt < 3) throw HttpStatusException(503)
            "done"
        }
        assertEquals("done", ok)
        assertThrows<HttpStatusException> {
            runBlocking {
                retry(RetryOptions(jobType = "flaky_down", engine = engine, jobId = "down", maxAttempts = 2)) {
                    throw HttpStatusException(503)
                }
            }
        }

        val events = withTimeout(10_000) { List(7) { received.receive() } }
        assertEquals(
            listOf(
                Triple(EventKind.RETRY_SCHEDULED, "ok", 1),
                Triple(EventKind.RETRY_FAILED, "ok", 2),
                Triple(EventKind.RETRY_SCHEDULED, "ok", 2),
                Triple(EventKind.RETRY_SUCCEEDED, "ok", 3),
                Triple(EventKind.RETRY_SCHEDULED, "down", 1),
                Triple(EventKind.RETRY_FAILED, "down", 2),
                Triple(EventKind.GAVE_UP, "down", 2),
            ),
            events.map { Triple(it.kind, it.jobId, it.attemptNumber) },
        )
        assertEquals("flaky_ok", events[0].jobType)
        assertEquals(Method.RULES, events[0].method)
        assertTrue(events[0].delayMs!! in 5L..20L, "delay ${events[0].delayMs}")
        assertTrue(events[6].rationale!!.isNotEmpty())

        collector.cancelAndJoin()
        assertEquals(0, engine.eventSubscribers())
    }

    @Test
    fun `a stalled collector loses events, counted, and never holds up the engine`() = runBlocking {
        val dropped = CompletableDeferred<Long>()
        val release = CompletableDeferred<Unit>()
        val collector = launch {
            engine.events(capacity = 1, onDropped = { dropped.complete(it) }).collect { release.await() }
        }
        awaitSubscribers(1)
        // Every decision is at least one event (retry_scheduled or gave_up): far more than
        // the collector (stalled), the flow's buffer and the engine's queue of 1 hold.
        repeat(300) { engine.decide(Features(jobType = "flaky_job", attemptNumber = 1, httpStatus = 503, jobId = "j$it")) }
        release.complete(Unit)
        val total = withTimeout(10_000) { dropped.await() }
        assertTrue(total > 0)
        assertTrue(JSONObject(engine.metricsJson()).getLong("events_dropped_total") >= total)
        collector.cancelAndJoin()
        assertEquals(0, engine.eventSubscribers())
    }

    @Test
    fun `closing the engine completes the flow`() = runBlocking {
        val collector = launch { engine.events().collect {} }
        awaitSubscribers(1)
        engine.close()
        withTimeout(10_000) { collector.join() }
        assertTrue(collector.isCompleted && !collector.isCancelled)
    }

    @Test
    fun `a bad capacity is an error naming it`() {
        val e = assertThrows<SmartRetryException.InvalidInput> { engine.subscribe(listOf(), 0) }
        assertEquals("capacity", e.field)
        assertEquals(0, engine.eventSubscribers())
    }
}
