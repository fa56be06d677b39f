package dev.smartretry

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

/** examples/kotlin is compiled with the tests and run here, so it cannot rot. */
class ExamplesTest {
    @Test
    fun `FlakyHttp charges every order, order 3 on its third attempt, against a real local server`() {
        val expected = (1..5).joinToString(", ") { "order $it charged (attempt ${if (it == 3) 3 else 1})" }
        assertEquals(expected, examples.runExample())
    }
}
