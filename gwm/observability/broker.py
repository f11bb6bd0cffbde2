"""The broker's queues at scrape time: messages waiting and workers consuming, per kind.

The database holds the work (gwm.observability.collector's backlogs are its truth); the
broker's depth says whether the doorbells are being taken: a queue whose messages grow
while ``consumers`` is 0 has no worker for that kind. Read with a passive declare of
each of the three queues on one short connection, bounded by ``TIMEOUT_SECONDS`` so a
broker that does not answer costs a scrape that long and shows as ``gwm_broker_up 0``.
Embedded mode (``memory://``) has no broker to ask: nothing is reported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from kombu import Connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gwm.kit.queues import KINDS, queue_name

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2


class BrokerCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        url: str = settings.CELERY_BROKER_URL
        if url.startswith("memory://"):
            return
        up = GaugeMetricFamily("gwm_broker_up", "1 when the broker answered this scrape.")
        messages = GaugeMetricFamily(
            "gwm_broker_queue_messages",
            "Doorbells waiting in the broker's queue of each kind of work.",
            labels=["kind"],
        )
        consumers = GaugeMetricFamily(
            "gwm_broker_queue_consumers",
            "Workers consuming each kind's queue (0: no worker takes that kind).",
            labels=["kind"],
        )
        try:
            with Connection(url, connect_timeout=TIMEOUT_SECONDS) as connection:
                connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
                for kind in KINDS:
                    waiting, taking = _depth(
                        connection, queue_name(settings.GWM_CELERY_QUEUE, kind)
                    )
                    messages.add_metric([kind], waiting)
                    consumers.add_metric([kind], taking)
        except Exception as exc:  # a scrape must answer whatever the broker does
            log.warning("the broker did not answer the metrics scrape: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, messages, consumers)


def _depth(connection: Connection, name: str) -> tuple[int, int]:
    """(messages, consumers) of queue ``name``; (0, 0) if no worker declared it yet.
    A channel of its own: a passive declare of a missing queue closes its channel."""
    channel: Any = connection.channel()  # kombu types it as a bare StdChannel
    try:
        found = channel.queue_declare(name, passive=True)
    except connection.channel_errors:
        return 0, 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()
    return int(found.message_count), int(found.consumer_count)
