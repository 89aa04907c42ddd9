"""Named, timed steps: INFO logs with durations, and Spark job descriptions so the Spark UI
shows which step each job belongs to."""

from __future__ import annotations

import contextlib
import logging
import time

log = logging.getLogger("imbal_spark")


class Timings(dict):
    """Seconds per step name, in order; goes into every summary/report JSON."""

    @contextlib.contextmanager
    def step(self, spark, name: str):
        sc = spark.sparkContext if spark is not None else None
        if sc is not None:
            sc.setJobDescription(name)
        log.info("step %s: start", name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self[name] = round(self.get(name, 0.0) + dt, 3)
            if sc is not None:
                sc.setJobDescription(None)
            log.info("step %s: %.2f s", name, dt)


def setup_logging(level: str = "INFO") -> None:
    name = str(level or "INFO").upper()
    if name not in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"):
        from .errors import ConfigError

        raise ConfigError(f"log_level {level!r} is not a level; use DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(
        level=getattr(logging, name),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # py4j logs every gateway call at INFO/DEBUG; keep it quiet.
    logging.getLogger("py4j").setLevel(logging.WARNING)
