"""A flaky payment API on 127.0.0.1 and a client that learns when to retry it.

The server answers 503 to each payment until it has "recovered", 1.5–3 s after that
payment's first request (its recovery clock), and rate-limits every fourth payment once
with 429 and ``Retry-After: 1``. The client is a plain ``@smart_retry`` function using
``urllib``: the first wave is retried by the rules tier's exponential backoff
(0.5 s, 1 s, 2 s…); once the engine has seen enough outcomes, the Bayesian tier places
the retry where recoveries happen, and later waves need fewer attempts.

    python examples/python/flaky_payments.py            # ~15 s, real sleeping
    python examples/python/flaky_payments.py --scale 0.2
"""

from __future__ import annotations

import argparse
import collections
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Tuple

from smartretry import Engine, RetryCallState, smart_retry


class PaymentAPI(BaseHTTPRequestHandler):
    """POST-less toy API: GET /capture/<payment_id>."""

    scale = 1.0
    first_seen: Dict[str, float] = {}
    recovery_s: Dict[str, float] = {}
    limited: Dict[str, bool] = {}
    lock = threading.Lock()
    rng = random.Random(7)

    def do_GET(self) -> None:
        payment = self.path.rsplit("/", 1)[-1]
        now = time.monotonic()
        with self.lock:
            first = self.first_seen.setdefault(payment, now)
            recovery = self.recovery_s.setdefault(payment, self.rng.uniform(1.5, 3.0) * self.scale)
            rate_limited = int(payment.rsplit("-", 1)[-1]) % 4 == 0 and not self.limited.get(payment)
            if rate_limited:
                self.limited[payment] = True
        if rate_limited:
            self.send_response(429)
            self.send_header("Retry-After", f"{1.0 * self.scale:.3f}")
            self.end_headers()
        elif now - first < recovery:
            self.send_response(503)
            self.end_headers()
        else:
            body = f'{{"payment": "{payment}", "status": "captured"}}'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_server(scale: float) -> Tuple[ThreadingHTTPServer, str]:
    PaymentAPI.scale = scale
    server = ThreadingHTTPServer(("127.0.0.1", 0), PaymentAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def make_engine(scale: float) -> Engine:
    """Defaults, plus a payments policy in the server's time scale and a Bayesian tier
    that starts learning after 10 outcomes (the API document's default) and refits often."""

    def ms(seconds: float) -> int:
        return max(1, int(seconds * 1000 * scale))

    engine = Engine(
        seed=42,
        config={
            "strategy": {
                "bayesian": {"min_samples": 10, "refit_every": 5, "full_confidence_samples": 30},
                # Every payment fails at first here; a breaker would read that as an outage.
                "circuit_breaker": {"enabled": False},
            }
        },
    )
    engine.add_policy(
        {
            "name": "payments",
            "job_type_patterns": ["payment_capture"],
            "error_patterns": ["503", "service_unavailable"],
            "max_attempts": 6,
            "base_delay_ms": ms(0.5),
            "max_delay_ms": ms(8.0),
            "jitter_percent": 10,
            "priority": 500,
        }
    )
    # Likewise adaptive throttling (an overloaded downstream): this demo is about delays.
    engine.update_guardrails({"min_retries_per_sec": 100, "adaptive_throttle": False})
    return engine


def run(scale: float = 1.0, waves: Tuple[int, ...] = (24, 12, 12)) -> List[Dict[str, Any]]:
    server, base = start_server(scale)
    engine = make_engine(scale)
    finished: List[RetryCallState] = []
    lock = threading.Lock()

    def remember(state: RetryCallState) -> None:
        if state.exception is None:  # `after` runs after every attempt: keep the last
            with lock:
                finished.append(state)

    @smart_retry(job_type="payment_capture", engine=engine, after=remember)
    def capture(payment_id: str) -> bytes:
        try:
            with urllib.request.urlopen(f"{base}/capture/{payment_id}", timeout=5) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as e:  # status and Retry-After are read from it
            e.close()
            raise

    report: List[Dict[str, Any]] = []
    try:
        for number, size in enumerate(waves, 1):
            finished.clear()
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=size) as pool:
                bodies = list(pool.map(capture, [f"w{number}-{i}" for i in range(size)]))
            assert all(b"captured" in body for body in bodies)
            states = list(finished)
            methods: Dict[str, int] = collections.Counter()
            first_delays: List[int] = []
            for state in states:
                for record in state.history:
                    if record.decision is not None and record.decision.should_retry:
                        methods[record.decision.method] += 1
                if len(state.history) > 1:
                    first_delays.append(state.history[1].delay_ms)
            row = {
                "wave": number,
                "jobs": size,
                "attempts_per_job": sum(len(s.history) for s in states) / len(states),
                "first_delay_ms": sum(first_delays) / max(1, len(first_delays)),
                "methods": dict(methods),
                "seconds": time.monotonic() - started,
            }
            report.append(row)
            print(
                f"wave {number}: {size} payments, {row['attempts_per_job']:.2f} attempts each, "
                f"first retry after {row['first_delay_ms']:.0f} ms on average, "
                f"decided by {dict(methods)}, {row['seconds']:.1f} s"
            )
        example = next(
            (r.decision for s in finished for r in s.history if r.decision and r.decision.method == "bayesian"),
            None,
        )
        if example is not None:
            print(f"a learned decision: {example.rationale}")
        stats = engine.stats("payment_capture", "service_unavailable")
        print(
            f"learned from {stats.total_attempts} retries of payment_capture/service_unavailable "
            f"({stats.success_rate:.0%} succeeded); by delay since the first failure:"
        )
        for bucket in stats.buckets:
            if bucket["successes"] or bucket["failures"]:
                print(
                    f"  {bucket['label']:>6}: {bucket['successes']:3d} ok, {bucket['failures']:3d} failed, "
                    f"P(success) {bucket['success_probability']:.2f}"
                )
    finally:
        server.shutdown()
        server.server_close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="time scale of the server and policy")
    args = parser.parse_args()
    run(args.scale)


if __name__ == "__main__":
    main()
