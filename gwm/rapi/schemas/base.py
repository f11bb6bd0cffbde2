"""What every answer model shares: pydantic settings, and the fields all resources carry."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


# The base of every answer model: unknown fields kept, names or aliases accepted,
# Ganeti's names written. (No docstring: pydantic would make it a schema description.)
class RapiModel(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class RapiResource(RapiModel):
    """The bookkeeping fields of every Ganeti object (instance, node, group, network)."""

    ctime: float | None = None
    mtime: float | None = None
    uuid: str | None = None
    serial_no: int | None = None
    tags: list[str] | None = None
