"""Seal lag sampled while a scenario runs: every 100 ms, the age of the oldest row waiting for
the sealer, read from the database (audit.sealing.seal_backlog, the gauge's own query)."""

import threading
import time

from django.db import connections


class SealLagSampler:
    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.samples: list[float] = []
        self.rows: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from audit.sealing import seal_backlog

        try:
            while not self._stop.is_set():
                started = time.monotonic()
                backlog = seal_backlog()
                self.samples.append(backlog.lag_seconds)
                self.rows.append(backlog.rows)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            connections.close_all()  # this thread's connection

    def __enter__(self) -> "SealLagSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        ordered = sorted(self.samples)

        def quantile(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        if not ordered:
            return {"seal_lag_samples": 0}
        return {
            "seal_lag_samples": len(ordered),
            "seal_lag_p50_s": quantile(0.5),
            "seal_lag_p99_s": quantile(0.99),
            "seal_lag_max_s": round(ordered[-1], 2),
            "unsealed_rows_max": max(self.rows),
        }
