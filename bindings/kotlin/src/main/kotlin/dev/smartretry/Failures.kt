package dev.smartretry

import java.lang.reflect.InvocationTargetException
import java.lang.reflect.UndeclaredThrowableException
import java.net.ConnectException
import java.net.NoRouteToHostException
import java.util.concurrent.CompletionException
import java.util.concurrent.ExecutionException

/**
 * Thrown (or wrapped) by callers whose HTTP client does not expose a status: the status
 * and the raw `Retry-After` header let the engine classify the failure and respect the
 * server's wait.
 */
open class HttpStatusException(
    val statusCode: Int,
    val retryAfter: String? = null,
    message: String = "HTTP $statusCode",
    cause: Throwable? = null,
) : RuntimeException(message, cause)

/**
 * What a failure tells the engine. Extraction only: the engine classifies these
 * (status, then class name, then code) and parses the header.
 */
data class FailureInfo(
    val httpStatus: Int? = null,
    val errorClass: String? = null,
    val errorCode: String? = null,
    val retryAfter: String? = null,
)

/** Wrappers whose cause is the real failure. */
private fun unwrap(t: Throwable): Throwable {
    var e = t
    repeat(8) {
        val cause = e.cause
        val wrapper = e is ExecutionException || e is CompletionException ||
            e is InvocationTargetException || e is UndeclaredThrowableException
        if (!wrapper || cause == null) return e
        e = cause
    }
    return e
}

/** Zero-argument getters that HTTP clients use for a status code. */
private val STATUS_GETTERS = listOf("getStatusCode", "statusCode", "getRawStatusCode", "getStatus", "status", "code", "getCode")

/** Getters that lead from an exception to a response object. */
private val RESPONSE_GETTERS = listOf("getResponse", "response")

private fun call(target: Any, name: String): Any? = try {
    val m = target.javaClass.methods.firstOrNull { it.name == name && it.parameterCount == 0 }
    m?.invoke(target)
} catch (e: Exception) {
    null
}

/** An Int in the HTTP range, or a status object whose `value()`/`getValue()` is one. */
private fun asStatus(v: Any?): Int? = when (v) {
    null -> null
    is Int -> v.takeIf { it in 100..599 }
    is Number, is String, is Boolean -> null
    else -> (call(v, "value") ?: call(v, "getValue")).let { it as? Int }?.takeIf { it in 100..599 }
}

private fun statusOf(target: Any): Int? =
    STATUS_GETTERS.firstNotNullOfOrNull { asStatus(call(target, it)) }

/** `Retry-After` from a java.net.http.HttpResponse-like `headers().firstValue(name)`. */
private fun retryAfterOf(response: Any): String? {
    val headers = call(response, "headers") ?: return null
    return try {
        val first = headers.javaClass.methods.firstOrNull { it.name == "firstValue" && it.parameterCount == 1 }
        (first?.invoke(headers, "retry-after") as? java.util.Optional<*>)?.orElse(null) as? String
    } catch (e: Exception) {
        null
    }
}

/**
 * Describes a failure for the engine. Understood without importing any client:
 * [HttpStatusException]; anything with a status getter (`getStatusCode()`/`statusCode()`
 * as Int or as an object with `value()`, e.g. Spring's `HttpStatusCodeException`,
 * Retrofit's `HttpException.code()`, Ktor's `ResponseException.response.status`);
 * an exception carrying a `response` with `statusCode()` and `headers()` (java.net.http);
 * and JDK network exceptions by class name (`SocketTimeoutException`,
 * `UnknownHostException`…). `ConnectException` is reported as `ECONNREFUSED`: the
 * request never left, so even a non-idempotent call may be retried.
 */
fun describeFailure(failure: Throwable): FailureInfo {
    val e = unwrap(failure)
    if (e is HttpStatusException) {
        return FailureInfo(httpStatus = e.statusCode, retryAfter = e.retryAfter)
    }
    val response = RESPONSE_GETTERS.firstNotNullOfOrNull { call(e, it) }
    val status = statusOf(e) ?: response?.let(::statusOf)
    val code = when (e) {
        is ConnectException, is NoRouteToHostException -> "ECONNREFUSED"
        else -> null
    }
    return FailureInfo(
        httpStatus = status,
        // A status names the failure better than a client's wrapper class.
        errorClass = if (status == null) e.javaClass.simpleName.ifEmpty { null } else null,
        errorCode = code,
        retryAfter = response?.let(::retryAfterOf),
    )
}
