"""When to send a failed request again: idempotent reads only, with backoff and jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from gwm.rapi.calls import RapiRequest
from gwm.rapi.errors import RapiConnectionError, RapiError, RapiHTTPError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for reads that submit no job.

    A write is never sent twice: Ganeti may have queued the first one even
    if the answer was lost, and gwm finds such jobs again by their reason.
    Retried failures: connection errors and timeouts (:class:`RapiConnectionError`)
    and the statuses in ``RapiRequest.retry_statuses`` (502, 503, 504).
    """

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retries and backoff must not be negative")

    def delay(self, request: RapiRequest, attempt: int, error: RapiError) -> float | None:
        """Seconds to wait before sending ``request`` again, or None to give up.

        ``attempt`` counts the failures so far, starting at 0.
        """
        if attempt >= self.retries or not request.idempotent:
            return None
        if isinstance(error, RapiHTTPError):
            if error.status not in request.retry_statuses:
                return None
        elif not isinstance(error, RapiConnectionError):
            return None
        ceiling: float = min(self.max_backoff, self.backoff * 2**attempt)
        # Half fixed, half random: spreads out many workers retrying against
        # one recovering master without ever retrying immediately.
        delay = ceiling / 2 + self.uniform(0, ceiling / 2)
        retry_after = _retry_after(error)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        return delay


def _retry_after(error: RapiError) -> float | None:
    if error.response is None:
        return None
    value = error.response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
