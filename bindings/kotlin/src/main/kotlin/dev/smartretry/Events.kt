package dev.smartretry

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch

/** How long one poll waits in the engine before the poller looks at its coroutine again. */
private const val POLL_MS = 100L

/** The engine-side queue of a subscription unless asked otherwise. */
const val DEFAULT_EVENT_CAPACITY = 1024

/**
 * This engine's lifecycle events of [kinds] (all when none) as a cold [Flow]: each
 * collector opens its own subscription when it starts and closes it when collection
 * ends, fails or is cancelled (the engine's [Engine.eventSubscribers] goes down again).
 *
 * The engine never waits for a collector: its queue holds [capacity] events and drops
 * (and counts) newer ones while it is full. [onDropped] is called with the
 * subscription's running total of dropped events whenever it grows; the engine-wide
 * total is `events_dropped_total` in [Engine.metricsJson].
 *
 * Polling runs on [Dispatchers.IO]; cancelling the collector wakes it at once. The
 * flow completes when the engine is closed.
 */
fun Engine.events(
    vararg kinds: EventKind,
    capacity: Int = DEFAULT_EVENT_CAPACITY,
    onDropped: (total: Long) -> Unit = {},
): Flow<Event> {
    val wanted = kinds.toList()
    return callbackFlow {
        val subscription = subscribe(wanted, capacity)
        val poller = launch(Dispatchers.IO) {
            var dropped = 0L
            while (isActive) {
                // null: unsubscribed (awaitClose below) and drained.
                val batch = subscription.poll(POLL_MS) ?: break
                for (event in batch) send(event)
                val total = subscription.dropped()
                if (total > dropped) {
                    dropped = total
                    onDropped(total)
                }
            }
            // Unsubscribed here, or the engine is gone (closed): the flow completes.
            channel.close()
        }
        // The native object is freed once the poller is done with it (this runs even if
        // it never started); until then, unsubscribing wakes a poll in flight at once.
        val lock = Any()
        var freed = false
        poller.invokeOnCompletion {
            synchronized(lock) {
                freed = true
                subscription.unsubscribe()
                subscription.close()
            }
        }
        awaitClose { synchronized(lock) { if (!freed) subscription.unsubscribe() } }
    }
}
