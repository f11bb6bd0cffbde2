"""What the resource builders share: quoted paths, reads, job-submitting writes, tags."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

import pydantic

from gwm.rapi.calls import (
    Query,
    RapiCall,
    RapiRequest,
    model_list_parser,
    parse_job_id,
    parse_str_list,
)

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)


def path(*segments: str | int) -> str:
    """``/2/instances/web1``: each segment quoted, so a name can never add a path level."""
    return "/2/" + "/".join(quote(str(s), safe="") for s in segments)


def read(
    url: str,
    action: str,
    parse: Callable[[Any], T],
    *,
    query: Query | None = None,
    creates_job: bool = False,
) -> RapiCall[T]:
    request = RapiRequest(
        "GET", url, action, query=query.build() if query else (), creates_job=creates_job
    )
    return RapiCall(request, parse)


def read_bulk(url: str, action: str, model: type[M]) -> RapiCall[list[M]]:
    """``GET <url>?bulk=1``: every object of a collection with its fields, as ``model``."""
    return read(url, action, model_list_parser(model), query=Query().add("bulk", True))


def write(
    method: str,
    url: str,
    action: str,
    *,
    query: Query | None = None,
    body: Any = None,
) -> RapiCall[int]:
    """A request that submits a Ganeti job and answers its id."""
    request = RapiRequest(
        method, url, action, query=query.build() if query else (), body=body, creates_job=True
    )
    return RapiCall(request, parse_job_id)


def get_tags(url: str, subject: str) -> RapiCall[list[str]]:
    return read(url, f"read the tags of {subject}", parse_str_list)


def change_tags(
    method: str, url: str, subject: str, tags: Iterable[str], *, dry_run: bool, reason: str | None
) -> RapiCall[int]:
    # Ganeti reads tags from the query string (?tag=a&tag=b), not from a body.
    tags = list(tags)
    if not tags:
        raise ValueError("give at least one tag")
    verb = "add tags to" if method == "PUT" else "remove tags from"
    query = Query().tags(tags).dry_run(dry_run).reason(reason)
    return write(method, url, f"{verb} {subject}", query=query)
