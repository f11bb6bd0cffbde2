"""The I/O-free core shared by :class:`RapiClient` and :class:`AsyncRapiClient`.

Every RAPI method of the clients is made from a *builder* (in
:mod:`gwm.rapi.builders`, or ``raw_call`` in :mod:`gwm.rapi.base`) that
returns a :class:`RapiCall`: what to send (:class:`RapiRequest`) and how to
read the answer (``parse``). Methods that need several round trips
(``wait_for_job``) are generators (:data:`Flow`) yielding calls and
:class:`Sleep` instructions. The two client classes only carry these out, so
sync and async cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import httpx
import orjson
import pydantic

from gwm.rapi.errors import RapiError, RapiHTTPError, RapiProtocolError, describe_body, http_error

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)

#: Statuses worth retrying for a read: the master daemon was briefly away.
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RapiRequest:
    """One HTTP request to Ganeti, before it touches the network.

    ``action`` names what the request does in words ("shut down instance
    'web1'"); every error message is built around it. ``creates_job`` marks
    the requests that submit a Ganeti job: every write, and the GETs that do
    (``/2/os``, ``/2/instances/x/info``), which are not retried either.
    """

    method: str
    path: str
    action: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    creates_job: bool = False
    retry_statuses: frozenset[int] = RETRY_STATUSES
    #: The least read timeout to use: the server holds the answer back (job wait).
    min_read_timeout: float | None = None

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a failure: a read that submits no job."""
        return self.method in ("GET", "HEAD") and not self.creates_job

    def encoded_body(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class RapiCall(Generic[T]):
    """A request plus the function that turns its decoded JSON into ``T``.

    ``on_status`` turns chosen HTTP errors into results or other errors
    (``/2/features`` answers 404 on old servers, meaning "no features").
    """

    request: RapiRequest
    parse: Callable[[Any], T]
    on_status: Mapping[int, Callable[[RapiHTTPError], T]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Instruction from a flow to its driver: wait this many seconds."""

    seconds: float


#: A multi-step method: yields calls (and gets their results back) or sleeps.
Flow: TypeAlias = Generator[RapiCall[Any] | Sleep, Any, T]


class ShapeError(ValueError):
    """The JSON decoded but is not what this resource returns."""


class Query:
    """Query string builder: booleans as ``1``/``0``, ``None`` left out."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, name: str, value: str | int | bool | None) -> Query:
        if value is None:
            return self
        if isinstance(value, bool):
            value = 1 if value else 0
        self.items.append((name, str(value)))
        return self

    def dry_run(self, enabled: bool) -> Query:
        # Only sent when asked for, as Ganeti's own client does.
        return self.add("dry-run", True) if enabled else self

    def reason(self, text: str | None) -> Query:
        return self.add("reason", text or None)

    def tags(self, tags: Iterable[str]) -> Query:
        for tag in tags:
            self.items.append(("tag", tag))
        return self

    def build(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.items)


def body_of(**values: Any) -> dict[str, Any]:
    """A JSON body without the parameters left at ``None`` (server default)."""
    return {k: v for k, v in values.items() if v is not None}


def decode_json(response: httpx.Response, *, action: str, base_url: str) -> Any:
    """The JSON of a 2xx answer, or RapiProtocolError if it is not JSON."""
    content_type = response.headers.get("content-type", "")
    try:
        if "html" in content_type:
            raise ValueError("HTML")
        # orjson: a bulk read of 10,000 instances (8.7 MB) decodes in half json's time.
        return orjson.loads(response.content)
    except ValueError:
        raise RapiProtocolError.about(
            response,
            f"cannot {action}: {base_url} answered {response.status_code} with "
            f"{describe_body(response)}, not Ganeti RAPI JSON; is this the Ganeti RAPI port?",
        ) from None


def complete(
    call: RapiCall[T], response: httpx.Response, *, base_url: str, username: str | None
) -> T:
    """The result of ``call`` from its HTTP answer, or the matching RapiError."""
    action = call.request.action
    if not response.is_success:
        error = http_error(response, action=action, base_url=base_url, username=username)
        if isinstance(error, RapiHTTPError) and error.status in call.on_status:
            return call.on_status[error.status](error)
        raise error
    value = decode_json(response, action=action, base_url=base_url)
    try:
        return call.parse(value)
    except RapiError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, pydantic.ValidationError) as exc:
        summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RapiProtocolError.about(
            response,
            f"cannot {action}: the answer from {base_url} does not have the shape Ganeti "
            f"RAPI uses ({summary}); is this really Ganeti?",
        ) from exc


# Parsers: each takes the decoded JSON and raises ShapeError (or a pydantic
# error) when it is not what Ganeti sends for that resource.


def parse_job_id(value: Any) -> int:
    """Job ids are JSON numbers on current Ganeti and strings on old ones."""
    if isinstance(value, bool):
        raise ShapeError(f"expected a job id, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ShapeError(f"expected a job id, got {type(value).__name__} {value!r:.60}")


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ShapeError(f"expected a string, got {type(value).__name__}")
    return value


def parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"expected an integer, got {type(value).__name__}")
    return value


def parse_str_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ShapeError(f"expected a list of strings, got {type(value).__name__}")
    return value


def parse_names(value: Any) -> list[str]:
    """``[{"id": name, "uri": ...}]`` (or ``"name"`` for groups/networks) → names."""
    if not isinstance(value, list):
        raise ShapeError(f"expected a list of {{id, uri}} objects, got {type(value).__name__}")
    names: list[str] = []
    for item in value:
        name = item.get("id", item.get("name")) if isinstance(item, dict) else None
        if name is None:
            raise ShapeError(f"expected {{id, uri}} objects, got {item!r:.60}")
        names.append(str(name))
    return names


def parse_job_ids(value: Any) -> list[int]:
    return [parse_job_id(name) for name in parse_names(value)]


def model_parser(model: type[M]) -> Callable[[Any], M]:
    def parse(value: Any) -> M:
        if not isinstance(value, dict):
            raise ShapeError(f"expected an object, got {type(value).__name__}")
        return model.model_validate(value)

    return parse


def model_list_parser(model: type[M]) -> Callable[[Any], list[M]]:
    def parse(value: Any) -> list[M]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ShapeError(f"expected a list of objects, got {type(value).__name__}")
        return [model.model_validate(v) for v in value]

    return parse
