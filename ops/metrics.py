"""Prometheus metrics, one registry per app.

The global ``prometheus_client`` registry would let every app built in a process
(one per test) count into, and refuse to re-register, the same series; each app
gets its own ``CollectorRegistry`` instead, kept in ``app.extensions``.  Counts
that live elsewhere (connections, rooms, limit refusals, the engine's runs) are
read when Prometheus scrapes, so nothing has to be kept in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

EXTENSION = "threadroom.metrics"
# A turn is a model call plus tools: most finish in seconds, a slow local model or
# a long tool run takes minutes (RUN_TIMEOUT_S defaults to 120).
TURN_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class Metrics:
    """The app's series; ``observe_*`` and ``model_error`` are what others call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter(
            "threadroom_turns",
            "Assistant turns by how they ended (a run status, deferred, rejected).",
            ["status"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "threadroom_turn_duration_seconds",
            "Time from ai-start to ai-end of a turn.",
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "threadroom_time_to_first_token_seconds",
            "Time from ai-start until the room first sees reply text (the first "
            "streamed delta, or the finished reply in poll mode).",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.model_errors = Counter(
            "threadroom_model_errors",
            "Failed model calls by kind (auth, unknown_model, no_endpoint, "
            "rate_limit, server_error, timeout, connection, bad_request, "
            "malformed, stream_error, deadline).",
            ["kind"],
            registry=self.registry,
        )

    def observe_turn(self, status: str, seconds: float, first_token: float | None):
        """Count a finished turn and its latencies."""
        self.turns.labels(status=status).inc()
        self.turn_seconds.observe(seconds)
        if first_token is not None:
            self.first_token_seconds.observe(first_token)

    def model_error(self, kind: str) -> None:
        """Count one failed model call of ``kind``."""
        self.model_errors.labels(kind=kind).inc()

    def watch(self, collector: Collector) -> None:
        """Add a collector read at scrape time."""
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """Return every series in the Prometheus text format."""
        return generate_latest(self.registry)


class ReadAtScrape(Collector):
    """Gauges and counters whose values live elsewhere, read when scraped.

    Each reader returns the value, or None when it cannot say (then the series is
    left out rather than reported as a false zero).
    """

    def __init__(self) -> None:
        self._gauges: list[tuple[str, str, Callable[[], float | None]]] = []
        self._counters: list[tuple[str, str, Callable[[], float | None]]] = []
        self._labelled: list[tuple[str, str, str, Callable[[], dict | None]]] = []

    def gauge(self, name: str, doc: str, read: Callable[[], float | None]) -> None:
        """Report ``read()`` as a gauge."""
        self._gauges.append((name, doc, read))

    def counter(self, name: str, doc: str, read: Callable[[], float | None]) -> None:
        """Report ``read()`` as a counter (``name`` without ``_total``)."""
        self._counters.append((name, doc, read))

    def labelled_gauge(
        self, name: str, doc: str, label: str, read: Callable[[], dict | None]
    ) -> None:
        """Report ``read()`` (label value -> number) as a gauge per label value."""
        self._labelled.append((name, doc, label, read))

    def describe(self) -> Iterable[Metric]:
        """Name the series without reading them (registration must not block)."""
        return [
            *(GaugeMetricFamily(n, d) for n, d, _ in self._gauges),
            *(CounterMetricFamily(n, d) for n, d, _ in self._counters),
            *(GaugeMetricFamily(n, d, labels=[lb]) for n, d, lb, _ in self._labelled),
        ]

    def collect(self) -> Iterator[Metric]:
        """Read every value now."""
        for name, doc, read in self._gauges:
            value = _read(name, read)
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value)
        for name, doc, read in self._counters:
            value = _read(name, read)
            if value is not None:
                yield CounterMetricFamily(name, doc, value=value)
        for name, doc, label, read_all in self._labelled:
            values = _read(name, read_all)
            if values is None:
                continue
            family = GaugeMetricFamily(name, doc, labels=[label])
            for key, number in sorted(values.items()):
                family.add_metric([key], number)
            yield family


def _read(name: str, read: Callable):
    """Call a reader; a failing one costs its series, never the whole scrape."""
    try:
        return read()
    except Exception:
        log.exception("metric %s could not be read", name)
        return None


def init_metrics(app: Flask) -> Metrics:
    """Give the app its own metrics registry."""
    metrics = Metrics()
    app.extensions[EXTENSION] = metrics
    return metrics


def get_metrics(app: Flask) -> Metrics:
    """Return the app's metrics."""
    return app.extensions[EXTENSION]
