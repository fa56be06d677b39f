package dev.smartretry

import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import java.lang.ref.Cleaner
import java.nio.ByteBuffer
import java.nio.ByteOrder

// The retry helpers' two calls on a failure's path, decide and record, cross into Rust in
// a compact binary form (bindings/uniffi/src/compact.rs has the format) through JNA's
// direct mapping with plain integers only: a thread's native buffer holds the input and
// the output, so there is no Structure, RustBuffer or handle clone per call as on the
// generated path (docs/performance.md has the measurements that chose this). Tags and
// layout must match compact.rs.

/** The native entry points (JNA direct mapping: plain integers, no marshalling). */
private object HotLib {
    init {
        // The library the generated code loads (the same override property), so that a
        // handle from one is never used by another copy.
        val name = System.getProperty("uniffi.component.smartretry_uniffi.libraryOverride") ?: "smartretry_uniffi"
        Native.register(HotLib::class.java, name)
    }

    external fun smartretry_jvm_decide(
        handle: Long, input: Long, inputLen: Long, nowMs: Long, out: Long, outCap: Long, outLen: Long, spill: Long,
    ): Int

    external fun smartretry_jvm_record(
        handle: Long, input: Long, inputLen: Long, nowMs: Long, out: Long, outCap: Long, outLen: Long, spill: Long,
    ): Int

    external fun smartretry_jvm_release(handle: Long)

    external fun smartretry_jvm_bytes_free(bytes: Long, len: Long)
}

private const val NOW = -1L // u64::MAX: the engine reads the wall clock
private const val IN_CAP = 4096
private const val OUT_CAP = 4096
private const val HEADER = 16 // out_len (size_t), then spill (a pointer)

/** One thread's native buffer: [out_len, spill | input | output]. */
private class Buffers {
    val memory = Memory((HEADER + IN_CAP + OUT_CAP).toLong())
    val address = Pointer.nativeValue(memory)
    val input: ByteBuffer = memory.getByteBuffer(HEADER.toLong(), IN_CAP.toLong()).order(ByteOrder.LITTLE_ENDIAN)
    val output: ByteBuffer =
        memory.getByteBuffer((HEADER + IN_CAP).toLong(), OUT_CAP.toLong()).order(ByteOrder.LITTLE_ENDIAN)
}

private val buffers = ThreadLocal.withInitial { Buffers() }
private val cleaner = Cleaner.create()

/** The engine's weak handle for these calls, made once and released with the engine. */
private fun Engine.hot(state: EngineState): Long {
    state.hot.let { if (it != 0L) return it }
    synchronized(state) {
        if (state.hot == 0L) {
            val handle = hotHandle()
            cleaner.register(this) { HotLib.smartretry_jvm_release(handle) }
            state.hot = handle
        }
        return state.hot
    }
}

/** An input the compact path does not take (over the buffer, a negative time): the generated path does. */
private class TooLong : RuntimeException(null, null, false, false)

private fun ByteBuffer.string(tag: Int, s: String) {
    if (remaining() < 5 + s.length) throw TooLong()
    put(tag.toByte())
    val lengthAt = position()
    putInt(0)
    var ascii = true
    for (c in s) {
        if (c.code >= 0x80) {
            ascii = false
            break
        }
        put(c.code.toByte())
    }
    if (!ascii) {
        position(lengthAt + 4)
        val bytes = s.toByteArray(Charsets.UTF_8)
        if (remaining() < bytes.size) throw TooLong()
        put(bytes)
    }
    putInt(lengthAt, position() - lengthAt - 4)
}

private fun ByteBuffer.optString(tag: Int, s: String?) {
    if (s != null) string(tag, s)
}

private fun ByteBuffer.long(tag: Int, v: Long) {
    if (remaining() < 9) throw TooLong()
    put(tag.toByte())
    putLong(v)
}

private fun ByteBuffer.optLong(tag: Int, v: Long?) {
    if (v != null) long(tag, v)
}

private fun ByteBuffer.byte(tag: Int, v: Int) {
    if (remaining() < 2) throw TooLong()
    put(tag.toByte())
    put(v.toByte())
}

private fun encode(b: ByteBuffer, f: Features) {
    b.string(1, f.jobType)
    b.long(2, f.attemptNumber.toLong())
    b.optString(3, f.errorClass)
    b.optString(4, f.errorCode)
    b.optLong(5, f.httpStatus?.toLong())
    b.optString(6, f.queue)
    b.optString(7, f.tenant)
    b.optLong(8, f.payloadSize)
    b.optLong(9, f.timeOfDay?.toLong())
    b.optString(10, f.jobId)
    b.optLong(11, f.sinceFirstFailureMs)
    b.optLong(12, f.sinceLastFailureMs)
    b.optLong(13, f.retryAfterMs)
    b.optString(14, f.retryAfter)
    f.idempotent?.let { b.byte(15, if (it) 1 else 0) }
    f.priority?.let { b.byte(16, it.ordinal) }
    b.optString(17, f.workerVersion)
    for ((key, value) in f.health) {
        b.string(18, key)
        if (b.remaining() < 8) throw TooLong()
        b.putDouble(value)
    }
    b.optLong(19, f.deadlineMs)
    b.optLong(20, f.maxAttempts?.toLong())
    f.expected?.let { b.byte(21, if (it) 1 else 0) }
    b.optString(22, f.backoffJson)
}

private fun encode(b: ByteBuffer, a: Attempt) {
    b.string(1, a.jobId)
    b.string(2, a.jobType)
    b.long(3, a.attemptNumber.toLong())
    b.byte(4, if (a.success) 1 else 0)
    b.long(5, a.delayMs)
    b.optString(6, a.errorClass)
    b.optString(7, a.errorCode)
    b.optLong(8, a.httpStatus?.toLong())
    b.optString(9, a.queue)
    b.optString(10, a.tenant)
    b.optLong(11, a.sinceFirstFailureMs)
    b.optLong(12, a.payloadSize)
    b.optLong(13, a.timeOfDay?.toLong())
    b.optString(14, a.workerVersion)
    b.optString(15, a.timestamp)
}

private fun ByteBuffer.string(): String {
    val n = getInt()
    val bytes = ByteArray(n)
    get(bytes)
    return String(bytes, Charsets.UTF_8)
}

private fun decodeDecision(b: ByteBuffer): Decision {
    val shouldRetry = b.get() != 0.toByte()
    val method = Method.entries[b.get().toInt()]
    val hasCheckIn = b.get() != 0.toByte()
    val delayMs = b.getLong()
    val maxAttempts = b.getLong().toInt()
    val checkIn = b.getLong()
    val confidence = b.getDouble()
    val estimatedSuccess = b.getDouble()
    val rationale = b.string()
    val nextEvaluation = b.string()
    val errorClass = b.string()
    val policy = b.string()
    val guardrails = List(b.getInt()) { b.string() }
    return Decision(
        shouldRetry = shouldRetry,
        delayMs = delayMs,
        maxAttempts = maxAttempts,
        confidence = confidence,
        rationale = rationale,
        method = method,
        estimatedSuccess = estimatedSuccess,
        nextEvaluation = nextEvaluation,
        policyGuardrails = guardrails,
        errorClass = errorClass,
        policy = policy,
        checkInMs = if (hasCheckIn) checkIn else null,
    )
}

private fun decodeError(b: ByteBuffer): SmartRetryException {
    val kind = b.get().toInt()
    val field = b.string()
    val reason = b.string()
    return when (kind) {
        0 -> SmartRetryException.InvalidInput(field, reason)
        1 -> SmartRetryException.Config(field, reason)
        2 -> SmartRetryException.NotFound(field)
        3 -> SmartRetryException.Store(reason)
        4 -> SmartRetryException.Model(reason)
        else -> SmartRetryException.Internal(reason)
    }
}

/**
 * Runs one compact call: encodes with [write] into this thread's buffer, calls [native],
 * and reads the output (a result, or an error thrown as [SmartRetryException]).
 */
private inline fun <T> Engine.compactCall(
    write: (ByteBuffer) -> Unit,
    native: (handle: Long, input: Long, inputLen: Long, out: Long, outLen: Long, spill: Long) -> Int,
    read: (ByteBuffer) -> T,
): T {
    check(!uniffiIsDestroyed) { "Engine object has already been destroyed" }
    val handle = hot(state)
    val bufs = buffers.get()
    val input = bufs.input.clear()
    write(input)
    val at = bufs.address
    bufs.memory.setLong(8, 0L)
    val status = native(handle, at + HEADER, input.position().toLong(), at + HEADER + IN_CAP, at, at + 8)
    val outLen = bufs.memory.getLong(0)
    val spill = bufs.memory.getLong(8)
    val output = if (spill == 0L) {
        bufs.output.clear().limit(outLen.toInt())
    } else {
        val copy = Pointer(spill).getByteArray(0, outLen.toInt())
        HotLib.smartretry_jvm_bytes_free(spill, outLen)
        ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN)
    }
    if (status != 0) throw decodeError(output)
    return read(output)
}

/** [Engine.decide] on the compact path (the generated one for an input over 4 KiB). */
internal fun Engine.decideCompact(features: Features, nowMs: Long? = null): Decision = try {
    if (nowMs != null && nowMs < 0) throw TooLong() // the generated path names it
    compactCall({ encode(it, features) }, { h, i, n, o, len, spill ->
        HotLib.smartretry_jvm_decide(h, i, n, nowMs ?: NOW, o, OUT_CAP.toLong(), len, spill)
    }) { decodeDecision(it) }
} catch (e: TooLong) {
    decide(features, nowMs)
}

/** [Engine.record] on the compact path (the generated one for an input over 4 KiB). */
internal fun Engine.recordCompact(attempt: Attempt, nowMs: Long? = null) = try {
    if (nowMs != null && nowMs < 0) throw TooLong()
    compactCall({ encode(it, attempt) }, { h, i, n, o, len, spill ->
        HotLib.smartretry_jvm_record(h, i, n, nowMs ?: NOW, o, OUT_CAP.toLong(), len, spill)
    }) { }
} catch (e: TooLong) {
    record(attempt, nowMs)
}

/** A direct-mapped call that does nothing: the crossing's own cost, for the benchmark. */
internal fun nativeNoop() = HotLib.smartretry_jvm_bytes_free(0L, 0L)
