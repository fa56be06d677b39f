package dev.smartretry

import java.io.File
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

/**
 * The shared conformance vectors (the JSON files in tests/vectors) through the typed Kotlin API,
 * exactly as core/tests/vectors.rs runs them through the Rust engine.
 */
class VectorsTest {
    private val dir = File(System.getProperty("smartretry.vectors.dir") ?: "../../tests/vectors")
    private val files = dir.listFiles { f -> f.name.endsWith(".json") }.orEmpty().sortedBy { it.name }

    @Test
    fun `the shared vectors are present`() {
        assertTrue(files.size >= 4, "vectors in $dir: $files")
    }

    /** Every key of `expected` matches in `actual` (numbers within 1e-9). */
    private fun matches(expected: Any?, actual: Any?, at: String, errors: MutableList<String>) {
        when {
            expected is JSONObject && actual is JSONObject -> for (k in expected.keySet()) {
                if (k == "rationale_contains") {
                    val rationale = actual.optString("rationale")
                    if (!rationale.contains(expected.getString(k))) errors += "$at.rationale \"$rationale\" lacks ${expected[k]}"
                } else if (!actual.has(k)) {
                    errors += "$at.$k missing"
                } else {
                    matches(expected[k], actual[k], "$at.$k", errors)
                }
            }
            expected is JSONArray && actual is JSONArray && expected.length() == actual.length() ->
                for (i in 0 until expected.length()) matches(expected[i], actual[i], "$at[$i]", errors)
            expected is Number && actual is Number ->
                if (Math.abs(expected.toDouble() - actual.toDouble()) > 1e-9) errors += "$at: expected $expected, got $actual"
            expected.toString() != actual.toString() -> errors += "$at: expected $expected, got $actual"
        }
    }

    private fun runStep(engine: Engine, step: JSONObject, now: Long): Any? = when (val op = step.getString("op")) {
        "decide" -> JSONObject(engine.decide(featuresFromJson(step.getJSONObject("features").toString()), now).toJson())
        "record" -> engine.record(attemptFromJson(step.getJSONObject("attempt").toString()), now).let { null }
        "preview" -> JSONObject(
            engine.preview(featuresFromJson(step.getJSONObject("features").toString()), step.optInt("max_attempts", 5), now).toJson(),
        )
        "stats" -> JSONObject(
            engine.stats(
                step.optString("job_type"),
                step.optString("error_class"),
                if (step.has("window_ms")) step.getLong("window_ms") else null,
                now,
            ).toJson(),
        )
        "emergency_stop" -> engine.emergencyStop(step.optBoolean("on", true)).let { null }
        "update_guardrails" -> JSONObject(engine.patchGuardrails(step.getJSONObject("guardrails").toString()).toJson())
        "add_policy" -> engine.addPolicyJson(step.getJSONObject("policy").toString()).let { null }
        "remove_policy" -> JSONObject(engine.removePolicy(step.optString("name")))
        "record_successes" -> engine.recordSuccesses(
            step.optString("job_type"),
            if (step.has("tenant")) step.getString("tenant") else null,
            step.optLong("count", 1),
            now,
        ).let { null }
        "policies" -> JSONArray(engine.policiesJson())
        "guardrails" -> JSONObject(engine.guardrails().toJson())
        "add_override" -> engine.addOverrideJson(step.getJSONObject("override").toString(), now)?.let(::JSONObject) ?: JSONObject.NULL
        "remove_override" -> JSONObject(engine.removeOverride(step.optString("name")))
        "overrides" -> JSONArray(engine.overridesJson(now))
        "health" -> JSONObject(engine.healthJson(step.optString("job_type"), now))
        else -> error("unknown op $op")
    }

    /** The error as the vectors spell it: the core's kind names. */
    private fun kindAndField(e: SmartRetryException): JSONObject = when (e) {
        is SmartRetryException.InvalidInput -> JSONObject().put("kind", "invalid_input").put("field", e.field)
        is SmartRetryException.Config -> JSONObject().put("kind", "config").put("field", e.field)
        is SmartRetryException.NotFound -> JSONObject().put("kind", "not_found").put("field", JSONObject.NULL)
        is SmartRetryException.Store -> JSONObject().put("kind", "store").put("field", JSONObject.NULL)
        is SmartRetryException.Model -> JSONObject().put("kind", "model").put("field", JSONObject.NULL)
        is SmartRetryException.Internal -> JSONObject().put("kind", "internal").put("field", JSONObject.NULL)
    }

    @TestFactory
    fun vectors(): List<DynamicTest> = files.map { file ->
        DynamicTest.dynamicTest(file.name) {
            val vector = JSONObject(file.readText())
            val config = vector.optJSONObject("config")?.toString()
            Engine(vector.optLong("seed", 0), config).use { engine ->
                val errors = mutableListOf<String>()
                val steps = vector.getJSONArray("steps")
                for (i in 0 until steps.length()) {
                    val step = steps.getJSONObject(i)
                    var now = step.getLong("now_ms")
                    var result: Any? = null
                    var thrown: SmartRetryException? = null
                    repeat(step.optInt("repeat", 1)) {
                        try {
                            result = runStep(engine, step, now)
                            thrown = null
                        } catch (e: SmartRetryException) {
                            thrown = e
                        }
                        now += step.optLong("step_ms", 0)
                    }
                    val at = "${vector.getString("name")} step $i (${step.getString("op")})"
                    val failure = thrown
                    when {
                        step.has("expect_error") && failure == null -> errors += "$at: expected an error, got $result"
                        step.has("expect_error") -> matches(step["expect_error"], kindAndField(failure!!), at, errors)
                        failure != null -> errors += "$at: unexpected error $failure"
                        step.has("expect") -> matches(step["expect"], result, at, errors)
                    }
                }
                assertEquals(emptyList<String>(), errors)
                assertTrue(steps.length() > 0)
            }
        }
    }
}
