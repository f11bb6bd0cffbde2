"""JSON responses with weak ETags and If-None-Match handling.

The ETag covers every field but the freshness stamps (``synced_at``): a sync
round that confirms nothing changed moves every object's ``synced_at``, and a
client polling with ``If-None-Match`` should get ``304`` until something real
changed. The body differs only in when it was last confirmed, which is what a
weak validator (``W/"..."``, RFC 9110 section 8.8.1) allows.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from pydantic import BaseModel

#: ``"synced_at":"..."`` or ``"synced_at":null`` in compact JSON. A quote inside a
#: string value is escaped, so this can only match the key itself.
_FRESHNESS = re.compile(rb'"synced_at":(?:"[^"]*"|null)')


def json_default(value: Any) -> Any:
    # orjson's own datetime form (microseconds, "+00:00") is not the API's.
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_with_etag(request: HttpRequest, payload: Any, schema: type[BaseModel]) -> HttpResponse:
    """Render ``payload``, checked against its declared response ``schema``; 304 when
    the client already has this exact body.

    What the OpenAPI document declares is what is sent: with GWM_VALIDATE_RESPONSES
    (on in the test suite) a payload that does not validate is a bug and fails loudly
    (500, logged) instead of reaching a client. The payload itself is rendered, so a
    ``?fields=`` selection stays a selection.
    """
    if settings.GWM_VALIDATE_RESPONSES:
        schema.__pydantic_validator__.validate_python(payload)
    body = orjson.dumps(payload, default=json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    etag = 'W/"' + hashlib.blake2b(_FRESHNESS.sub(b"", body), digest_size=16).hexdigest() + '"'
    matches = _if_none_match(request)
    if etag.removeprefix("W/") in matches or "*" in matches:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response


def _if_none_match(request: HttpRequest) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
